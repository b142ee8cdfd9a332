"""Back-office set-up of spaces, professionals, representatives and apps.

Plain functions on a session, used by the demo loader, the admin CLI and tests. Patient- and
professional-facing changes go through ``Espace.operation`` instead, so they are authorized and
traced; the lifecycle use cases (``espace.lifecycle``) build on these.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from espace.errors import Conflict, InvalidInput
from espace.models import (
    AppConsent,
    PatientSpace,
    Professional,
    ReferencedApp,
    SpaceProfessionalLink,
    SpaceRepresentative,
    flat,
)
from espace.spaces import INS_OID_NIR, find_space_by_ins

LINK_KINDS = frozenset({"authorized", "authorized_structure", "blocked", "feeding_opposed"})


def register_space(
    session: Session,
    *,
    ins: str,
    now: datetime,
    family_name: str = "",
    given_names: str = "",
    birth_date: date | None = None,
    sex: str = "U",
    email: str | None = None,
    phone: str | None = None,
    ins_oid: str = INS_OID_NIR,
    status: str = "active",
    space_id: str | None = None,
) -> PatientSpace:
    """Create a space row for ``ins`` (refuses a second space for the same INS)."""
    if not (len(ins) == 15 and ins[:5].isdigit()):
        raise InvalidInput(f"not a 15-character matricule INS: {ins!r}", code="invalid_ins")
    if find_space_by_ins(session, ins) is not None:
        raise Conflict(f"a space already exists for INS {ins}")
    space = PatientSpace(
        id=space_id or uuid.uuid4().hex,
        ins=ins,
        ins_oid=ins_oid,
        family_name=family_name,
        given_names=given_names,
        birth_date=birth_date,
        sex=sex,
        email=email,
        phone=phone,
        status=status,
        created_at=now,
        status_changed_at=now,
    )
    session.add(space)
    session.flush()
    return space


def upsert_professional(
    session: Session,
    professional_id: str,
    *,
    name: str = "",
    profession: str | None = None,
    specialty: str | None = None,
    structure_id: str | None = None,
    mssante_address: str | None = None,
) -> Professional:
    row = session.get(Professional, professional_id)
    if row is None:
        row = Professional(id=professional_id)
        session.add(row)
    row.name = name or row.name
    row.profession = profession or row.profession
    row.specialty = specialty or row.specialty
    row.structure_id = structure_id or row.structure_id
    row.mssante_address = mssante_address or row.mssante_address
    return row


def link_professional(
    session: Session,
    space: PatientSpace,
    professional_id: str,
    kind: str,
    *,
    declared_by: str,
    now: datetime,
) -> SpaceProfessionalLink:
    """Add an authorization, a block or a feeding opposition (idempotent)."""
    if kind not in LINK_KINDS:
        raise InvalidInput(f"unknown link kind {kind!r}")
    row = session.execute(
        select(SpaceProfessionalLink).where(
            SpaceProfessionalLink.space_id == space.id,
            SpaceProfessionalLink.professional_id == professional_id,
            SpaceProfessionalLink.kind == kind,
        )
    ).scalar_one_or_none()
    if row is None:
        row = SpaceProfessionalLink(
            space_id=space.id,
            professional_id=professional_id,
            kind=kind,
            declared_by=declared_by,
            declared_at=now,
        )
        session.add(row)
    return row


def unlink_professional(
    session: Session, space: PatientSpace, professional_id: str, kind: str
) -> bool:
    result = session.execute(
        delete(SpaceProfessionalLink).where(
            SpaceProfessionalLink.space_id == space.id,
            SpaceProfessionalLink.professional_id == professional_id,
            SpaceProfessionalLink.kind == kind,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def add_representative(
    session: Session,
    space: PatientSpace,
    representative_id: str,
    *,
    kind: str = "legal_representative",
    now: datetime,
    name: str = "",
    email: str | None = None,
    status: str = "active",
    invited_by: str | None = None,
    birth_date: date | None = None,
) -> SpaceRepresentative:
    """Attach a representative; a minor has at most two active or invited legal ones."""
    if kind == "legal_representative":
        current = (
            session.execute(
                select(SpaceRepresentative).where(
                    SpaceRepresentative.space_id == space.id,
                    SpaceRepresentative.kind == kind,
                    SpaceRepresentative.status.in_(("active", "invited")),
                )
            )
            .scalars()
            .all()
        )
        if len(current) >= 2:
            raise Conflict("a minor has at most two legal representatives")
    if kind == "protected_adult_representative":
        space.is_protected_adult = True
    row = SpaceRepresentative(
        space_id=space.id,
        representative_id=representative_id,
        kind=kind,
        status=status,
        name=name,
        email=email,
        birth_date=birth_date,
        invited_by=invited_by,
        created_at=now,
    )
    session.add(row)
    return row


def register_app(
    session: Session,
    app_id: str,
    *,
    name: str,
    allowed_purposes: list[str],
    now: datetime,
    oid: str | None = None,
    redirect_uris: list[str] | None = None,
) -> ReferencedApp:
    row = session.get(ReferencedApp, app_id)
    if row is None:
        row = ReferencedApp(id=app_id, name=name, created_at=now)
        session.add(row)
    row.name = name
    row.oid = oid
    row.allowed_purposes = flat(allowed_purposes)
    row.redirect_uris = "\n".join(redirect_uris or [])
    row.status = "referenced"
    return row


def grant_app_consent(
    session: Session,
    space: PatientSpace,
    app_id: str,
    purposes: list[str],
    *,
    granted_by: str,
    now: datetime,
) -> AppConsent:
    """Record the patient's consent for ``app_id`` on ``purposes`` (replaces the previous one)."""
    for row in session.execute(
        select(AppConsent).where(
            AppConsent.space_id == space.id,
            AppConsent.app_id == app_id,
            AppConsent.withdrawn_at.is_(None),
        )
    ).scalars():
        row.withdrawn_at = now
    consent = AppConsent(
        space_id=space.id,
        app_id=app_id,
        purposes=flat(purposes),
        granted_by=granted_by,
        granted_at=now,
    )
    session.add(consent)
    return consent
