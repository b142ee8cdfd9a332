"""Notifications to the patient: an outbox written in the event's own transaction.

Immediate categories (sent at once): first access by a new professional, new document,
vaccination added, emergency access, new secure message, plus lifecycle notices. Everything
else waits for the daily digest. A minor's notifications go to the legal representatives.
The worker (``NotificationWorker``) sends French e-mails through the configured SMTP smarthost.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Insert, select
from sqlalchemy.dialects import postgresql, sqlite
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
        "enrolment_code",
        "export_ready",
        "security",
        "agenda",
    }
)

# Categories whose body carries a secret (a one-time enrolment code): the outbox is the mail
# spool, so the body is kept only until the message leaves (sent, undeliverable or given up),
# then replaced by ``SCRUBBED_BODY`` — the database then holds no usable code
# (décret 2021-1048: the code reaches the person and no one else).
SECRET_CATEGORIES = frozenset({"enrolment_code"})
SCRUBBED_BODY = "[message contenant un code à usage unique : effacé après envoi]"

SUBJECTS = {
    "first_access": "Mon espace santé : un nouveau professionnel a consulté votre dossier",
    "new_document": "Mon espace santé : un nouveau document a été ajouté",
    "vaccination_added": "Mon espace santé : une vaccination a été ajoutée",
    "emergency_access": "Mon espace santé : accès en urgence à votre dossier",
    "new_message": "Mon espace santé : vous avez reçu un nouveau message",
    "lifecycle": "Mon espace santé : information sur votre profil",
    "enrolment_code": "Mon espace santé : votre nouveau code",
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


def _insert_ignoring_duplicates(session: Session, values: dict[str, Any]) -> Insert:
    """``INSERT .. ON CONFLICT (dedup_key) DO NOTHING RETURNING id`` in the session's dialect.

    PostgreSQL and SQLite (>= 3.35) both have the clause; the unique dedup key decides, so two
    concurrent transactions queueing the same event keep one row without a savepoint.
    """
    dialect = session.get_bind().dialect.name
    if dialect not in ("postgresql", "sqlite"):  # pragma: no cover - the two supported stores
        raise RuntimeError(f"unsupported database {dialect!r}: PostgreSQL and SQLite only")
    module: Any = postgresql if dialect == "postgresql" else sqlite
    table = NotificationOutbox.metadata.tables[NotificationOutbox.__tablename__]  # Core insert
    statement: Insert = (
        module.insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[table.c.dedup_key])
        .returning(table.c.id)
    )
    return statement


def enqueue(
    session: Session,
    space: PatientSpace,
    category: str,
    body: str,
    *,
    dedup_key: str,
    now: datetime,
    subject: str | None = None,
) -> int | None:
    """Queue one notification in the caller's transaction; return its id, or None when an
    event with the same ``dedup_key`` is already queued (one statement, no savepoint)."""
    values: dict[str, Any] = {
        "space_id": space.id,
        "dedup_key": dedup_key[:200],
        "category": category,
        "immediate": category in IMMEDIATE_CATEGORIES,
        "recipients": "\n".join(recipients_for(session, space, now)),
        "subject": subject or SUBJECTS.get(category, SUBJECTS["lifecycle"]),
        "body": body,
        "created_at": now,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "last_error": "",
    }
    new_id = session.execute(_insert_ignoring_duplicates(session, values)).scalar_one_or_none()
    return None if new_id is None else int(new_id)


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
    """Queue one notification in the caller's transaction (idempotent on ``dedup_key``).

    Returns the new row, for callers that adjust it (recipients, immediacy), or None when the
    event was already queued. Callers that do not need the row use ``enqueue``.
    """
    new_id = enqueue(session, space, category, body, dedup_key=dedup_key, now=now, subject=subject)
    return None if new_id is None else session.get(NotificationOutbox, new_id)
