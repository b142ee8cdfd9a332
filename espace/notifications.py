"""Notifications to the patient: an outbox written in the event's own transaction.

Immediate categories (sent at once): first access by a new professional, new document,
vaccination added, emergency access, new secure message, plus lifecycle notices. Everything
else waits for the daily digest. A minor's notifications go to the legal representatives.
The worker (``NotificationWorker``) sends French e-mails through the configured SMTP smarthost.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from espace.models import NotificationOutbox, PatientSpace, SpaceRepresentative
from espace.spaces import is_minor

IMMEDIATE_CATEGORIES = frozenset(
    {
        "first_access",
        "new_document",
        "vaccination_added",
        "emergency_access",
        "new_message",
        "lifecycle",
        "export_ready",
        "security",
        "agenda",
    }
)

SUBJECTS = {
    "first_access": "Mon espace santé : un nouveau professionnel a consulté votre dossier",
    "new_document": "Mon espace santé : un nouveau document a été ajouté",
    "vaccination_added": "Mon espace santé : une vaccination a été ajoutée",
    "emergency_access": "Mon espace santé : accès en urgence à votre dossier",
    "new_message": "Mon espace santé : vous avez reçu un nouveau message",
    "lifecycle": "Mon espace santé : information sur votre profil",
    "export_ready": "Mon espace santé : votre export est prêt",
    "security": "Mon espace santé : alerte de sécurité",
    "agenda": "Mon espace santé : rappel de votre agenda",
    "digest": "Mon espace santé : résumé de la journée",
}


def recipients_for(session: Session, space: PatientSpace, now: datetime) -> list[str]:
    """The patient's e-mail, or the active legal representatives' for a minor."""
    if is_minor(space, now) or space.is_protected_adult:
        emails = session.execute(
            select(SpaceRepresentative.email).where(
                SpaceRepresentative.space_id == space.id,
                SpaceRepresentative.status == "active",
            )
        ).scalars()
        found = [e for e in emails if e]
        if found:
            return found
    return [space.email] if space.email else []


def notify(
    session: Session,
    space: PatientSpace,
    category: str,
    body: str,
    *,
    dedup_key: str,
    now: datetime,
    subject: str | None = None,
) -> NotificationOutbox | None:
    """Queue one notification in the caller's transaction (idempotent on ``dedup_key``)."""
    existing = session.execute(
        select(NotificationOutbox.id).where(NotificationOutbox.dedup_key == dedup_key)
    ).scalar_one_or_none()
    if existing is not None:
        return None
    row = NotificationOutbox(
        space_id=space.id,
        dedup_key=dedup_key[:200],
        category=category,
        immediate=category in IMMEDIATE_CATEGORIES,
        recipients="\n".join(recipients_for(session, space, now)),
        subject=subject or SUBJECTS.get(category, SUBJECTS["lifecycle"]),
        body=body,
        created_at=now,
        status="pending",
        attempts=0,
        next_attempt_at=now,
    )
    # Two concurrent transactions may queue the same event: the unique dedup key keeps one,
    # and the savepoint keeps the loser's transaction usable.
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return None
    return row
