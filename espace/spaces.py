"""Reading a patient space and its consent state (the PDP's ``SpaceFacts``)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BindParameter, CompoundSelect, bindparam, literal, select, union_all
from sqlalchemy.orm import Session

from espace.clock import as_utc
from espace.models import (
    AppConsent,
    PatientSpace,
    ReferencedApp,
    SpaceProfessionalLink,
    SpaceRepresentative,
    unflat,
)
from habilitation.model import Purpose, SpaceFacts, SpaceStatus

MAJORITY_AGE = 18
INS_OID_NIR = "1.2.250.1.213.1.4.8"
INS_OID_NIA = "1.2.250.1.213.1.4.9"
INS_OID_TEST = "1.2.250.1.213.1.4.10"
INS_OID_DEMO = "1.2.250.1.213.1.4.11"
INS_OIDS = frozenset({INS_OID_NIR, INS_OID_NIA, INS_OID_TEST, INS_OID_DEMO})
_PURPOSES = frozenset(p.value for p in Purpose)


def nir_key_is_valid(ins: str) -> bool:
    """Check a 15-character matricule INS (13-char NIR + 2-digit key, Corsica 2A/2B aware)."""
    if len(ins) != 15:
        return False
    body, key = ins[:13], ins[13:]
    body = body.upper().replace("2A", "19", 1) if body[5:7] == "2A" else body
    body = body.upper().replace("2B", "18", 1) if body[5:7] == "2B" else body
    if not (body.isdigit() and key.isdigit()):
        return False
    return 97 - int(body) % 97 == int(key)


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def is_minor(space: PatientSpace, now: datetime) -> bool:
    return space.birth_date is not None and age_on(space.birth_date, now.date()) < MAJORITY_AGE


def find_space_by_ins(session: Session, ins: str) -> PatientSpace | None:
    return session.execute(select(PatientSpace).where(PatientSpace.ins == ins)).scalar_one_or_none()


def _facts_statement() -> CompoundSelect[str, str, str]:
    space_id: BindParameter[str] = bindparam("space_id")
    return union_all(
        select(
            literal("link").label("source"),
            SpaceProfessionalLink.kind.label("key"),
            SpaceProfessionalLink.professional_id.label("value"),
        ).where(SpaceProfessionalLink.space_id == space_id),
        select(
            literal("rep"), SpaceRepresentative.kind, SpaceRepresentative.representative_id
        ).where(SpaceRepresentative.space_id == space_id, SpaceRepresentative.status == "active"),
        select(literal("app"), AppConsent.app_id, AppConsent.purposes)
        .join(ReferencedApp, ReferencedApp.id == AppConsent.app_id)
        .where(
            AppConsent.space_id == space_id,
            AppConsent.withdrawn_at.is_(None),
            ReferencedApp.status == "referenced",  # a dereferenced app loses access at once
        ),
    )


# built once (a statement built per request cost ~0.3 ms of CPU to build and key, issue #8)
_FACTS_STATEMENT = _facts_statement()


def space_facts(session: Session, space: PatientSpace, now: datetime) -> SpaceFacts:
    """Snapshot the consent state of ``space`` for the policy decision point.

    One round trip: the professional links, the active representatives and the consents of
    referenced apps come back as one ``UNION ALL`` of (source, key, value) rows.
    """
    rows = session.execute(_FACTS_STATEMENT, {"space_id": space.id}).all()
    by_kind: dict[str, set[str]] = {}
    reps: list[tuple[str, str]] = []
    consents: dict[str, frozenset[Purpose]] = {}
    for source, key, value in rows:
        if source == "link":
            by_kind.setdefault(key, set()).add(value)
        elif source == "rep":
            reps.append((key, value))
        else:
            valid = frozenset(Purpose(p) for p in unflat(value) if p in _PURPOSES)
            consents[key] = consents.get(key, frozenset()) | valid
    minor = is_minor(space, now)
    legal = frozenset(r for k, r in reps if k == "legal_representative") if minor else frozenset()
    protected = next((r for k, r in reps if k == "protected_adult_representative"), None)
    return SpaceFacts(
        space_id=space.id,
        ins=space.ins,
        status=SpaceStatus(space.status),
        is_minor=minor,
        blocked_professionals=frozenset(by_kind.get("blocked", ())),
        authorized_professionals=frozenset(by_kind.get("authorized", ())),
        authorized_structures=frozenset(by_kind.get("authorized_structure", ())),
        feeding_opposed_professionals=frozenset(by_kind.get("feeding_opposed", ())),
        medecin_traitant=space.medecin_traitant_id,
        break_glass_allowed=space.break_glass_allowed,
        regulation_allowed=space.regulation_allowed,
        auto_unmask_in_emergency=space.auto_unmask_in_emergency,
        legal_representatives=legal,
        protected_adult_representative=protected if space.is_protected_adult else None,
        app_consents=consents,
        prevention_opposed=space.prevention_opposed,
    )


def closed_since(space: PatientSpace) -> datetime | None:
    return as_utc(space.closed_at) if space.closed_at else None
