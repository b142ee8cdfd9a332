"""The DMP's authorization services (PDT-INF-526 TD0.2, TD0.3, TD0.4, TD1.6).

- TD0.2 test of existence (HL7v3 PRPA_IN201307/08): does a DMP exist for this INS, is the
  caller authorized on it, is the caller the médecin traitant;
- TD0.3 setAuthorization (Habilitations.wsdl): declare oneself authorized (AJOUT), remove one's
  authorization (SUPPRESSION), the médecin traitant removes that status (SUPPRESSION +
  MEDECIN_TRAITANT). In indirect/CPE mode the authorization is given to the structure
  (PDT-INF-526 note (1));
- TD0.4 patientList (PatientsSpecific.wsdl): the DMPs the caller is authorized on;
- TD1.6 listAuthorizationByPatient: the authorized (ACTIVE) and blocked (INTERDITE)
  professionals of a DMP;
- TD0.5 patient search without INS (IHE PDQv3 ITI-47 shape, ``PRPA_IN201305UV02``): the
  active DMPs whose identity traits match, capped (:func:`search_patients`). PDT-INF-526 v1.8
  allows it in régulation (centre 15) access only; the PDP decides that, once per search.

The wire formats stay in ``xds/transactions/dmp_authorizations.py``.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute

from espace.admin import link_professional, unlink_professional
from espace.errors import DomainError, InvalidInput
from espace.models import (
    DocumentEntryRow,
    PatientSpace,
    Professional,
    SpaceProfessionalLink,
    TraceRecord,
)
from espace.service import Operation
from espace.trace import Target
from habilitation.context import STRUCTURE_MODES
from habilitation.model import Action, Actor


@dataclass(slots=True)
class ExistenceResult:
    """TD0.2: AUTORISATION (VALIDE / INTERDITE / NON_EXISTANTE) and STATUT_MT."""

    ins: str
    ins_oid: str
    status: str
    authorization: str
    is_medecin_traitant: bool
    family_name: str = ""
    given_names: str = ""
    birth_date: date | None = None
    sex: str = "U"


@dataclass(slots=True)
class AuthorizationEntry:
    """TD1.6: one professional authorized on (ACTIVE) or blocked from (INTERDITE) the DMP."""

    professional_id: str
    mode: str
    since: datetime
    first_name: str = ""
    last_name: str = ""
    specialties: list[str] = field(default_factory=list)
    last_action: datetime | None = None


@dataclass(slots=True)
class PatientListEntry:
    """TD0.4: one DMP the caller is authorized on."""

    ins: str
    ins_oid: str
    family_name: str
    given_names: str
    birth_date: date | None
    is_medecin_traitant: bool
    last_access: datetime | None = None
    last_update: datetime | None = None
    last_add: datetime | None = None


def _authorized(op: Operation, actor: Actor) -> bool:
    facts = op.facts
    if facts is None:
        return False
    return (
        facts.medecin_traitant == actor.id
        or actor.id in facts.authorized_professionals
        or (
            actor.authentication_mode in STRUCTURE_MODES
            and actor.structure_id is not None
            and actor.structure_id in facts.authorized_structures
        )
    )


def test_existence(op: Operation) -> ExistenceResult:
    """TD0.2 on ``op.space`` for ``op.actor``."""
    space, facts = op.space, op.facts
    assert space is not None and facts is not None
    actor = op.actor
    if actor.id in facts.blocked_professionals:
        authorization = "INTERDITE"
    elif _authorized(op, actor):
        authorization = "VALIDE"
    else:
        authorization = "NON_EXISTANTE"
    op.target = Target("PatientSpace", space.ins, "")
    return ExistenceResult(
        ins=space.ins,
        ins_oid=space.ins_oid,
        status=space.status,
        authorization=authorization,
        is_medecin_traitant=facts.medecin_traitant == actor.id,
        family_name=space.family_name,
        given_names=space.given_names,
        birth_date=space.birth_date,
        sex=space.sex,
    )


test_existence.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def authorization_action(action: str, role: str | None) -> Action:
    """Map setAuthorization's ``action``/``role`` to the PDT-INF-526 TD0.3 row."""
    if action == "AJOUT" and not role:
        return Action.DECLARE_AUTHORIZATION
    if action == "SUPPRESSION" and not role:
        return Action.REMOVE_AUTHORIZATION
    if action == "SUPPRESSION" and role == "MEDECIN_TRAITANT":
        return Action.REMOVE_MEDECIN_TRAITANT
    raise InvalidInput(
        f"setAuthorization {action!r}/{role!r} is not supported", code="invalid_action"
    )


def set_authorization(op: Operation, action: Action) -> str:
    """TD0.3; returns the DMP ``context`` text (empty when something changed)."""
    space = op.space
    assert space is not None
    actor = op.actor
    structure_mode = actor.authentication_mode in STRUCTURE_MODES and actor.structure_id
    kind = "authorized_structure" if structure_mode else "authorized"
    subject = str(actor.structure_id) if structure_mode else actor.id
    op.target = Target("Authorization", subject, "")
    if action is Action.DECLARE_AUTHORIZATION:
        exists = op.session.execute(
            select(SpaceProfessionalLink.id).where(
                SpaceProfessionalLink.space_id == space.id,
                SpaceProfessionalLink.professional_id == subject,
                SpaceProfessionalLink.kind == kind,
            )
        ).first()
        if exists:
            return "Autorisation déjà présente aucune action effectuée"
        link_professional(op.session, space, subject, kind, declared_by=actor.id, now=op.now)
        return ""
    if action is Action.REMOVE_AUTHORIZATION:
        if not unlink_professional(op.session, space, subject, kind):
            return "Aucune autorisation à supprimer"
        if space.medecin_traitant_id == actor.id:
            space.medecin_traitant_id = None
        return ""
    if action is Action.REMOVE_MEDECIN_TRAITANT:
        if space.medecin_traitant_id != actor.id:
            return "Le professionnel n'est pas médecin traitant"
        space.medecin_traitant_id = None
        return ""
    raise InvalidInput(f"{action} is not a TD0.3 action")


def list_authorizations(op: Operation, mode: str = "TOUTE") -> list[AuthorizationEntry]:
    """TD1.6: ``mode`` ACTIVE (authorized), INTERDITE (blocked) or TOUTE."""
    space = op.space
    assert space is not None
    kinds = {"ACTIVE": ["authorized"], "INTERDITE": ["blocked"]}.get(
        mode, ["authorized", "blocked"]
    )
    rows = op.session.execute(
        select(SpaceProfessionalLink, Professional)
        .join(Professional, Professional.id == SpaceProfessionalLink.professional_id, isouter=True)
        .where(SpaceProfessionalLink.space_id == space.id, SpaceProfessionalLink.kind.in_(kinds))
        .order_by(SpaceProfessionalLink.declared_at)
    ).all()
    entries = []
    for link, professional in rows:
        name = professional.name if professional is not None else ""
        first, _, last = name.partition(" ")
        specialties = []
        if professional is not None and professional.profession:
            specialties.append(
                f"G15_{professional.profession}"
                + (f"/{professional.specialty}" if professional.specialty else "")
            )
        entries.append(
            AuthorizationEntry(
                professional_id=link.professional_id,
                mode="ACTIVE" if link.kind == "authorized" else "INTERDITE",
                since=link.declared_at,
                first_name=first,
                last_name=last,
                specialties=specialties,
                last_action=link.declared_at,
            )
        )
    op.target = Target("PatientSpace", space.ins, "")
    op.detail["count"] = len(entries)
    return entries


def list_authorized_spaces(
    op: Operation, *, since: datetime | None = None, date_type: str = "LASTAUTORIZATION"
) -> list[PatientListEntry]:
    """TD0.4: the active DMPs the caller (or, in structure modes, its structure) may access."""
    actor = op.actor
    subjects = [actor.id]
    if actor.authentication_mode in STRUCTURE_MODES and actor.structure_id:
        subjects.append(actor.structure_id)
    session = op.session
    links = session.execute(
        select(SpaceProfessionalLink.space_id, func.max(SpaceProfessionalLink.declared_at))
        .where(
            SpaceProfessionalLink.professional_id.in_(subjects),
            SpaceProfessionalLink.kind.in_(("authorized", "authorized_structure")),
        )
        .group_by(SpaceProfessionalLink.space_id)
    ).all()
    declared = {space_id: when for space_id, when in links}
    mt_spaces = (
        session.execute(select(PatientSpace.id).where(PatientSpace.medecin_traitant_id == actor.id))
        .scalars()
        .all()
    )
    blocked = set(
        session.execute(
            select(SpaceProfessionalLink.space_id).where(
                SpaceProfessionalLink.professional_id == actor.id,
                SpaceProfessionalLink.kind == "blocked",
            )
        ).scalars()
    )
    space_ids = (set(declared) | set(mt_spaces)) - blocked
    entries = []
    for space in session.execute(
        select(PatientSpace)
        .where(PatientSpace.id.in_(space_ids), PatientSpace.status == "active")
        .order_by(PatientSpace.ins)
    ).scalars():
        last_add = session.execute(
            select(func.max(DocumentEntryRow.submission_time)).where(
                DocumentEntryRow.space_id == space.id
            )
        ).scalar_one_or_none()
        last_update = session.execute(
            select(func.max(DocumentEntryRow.updated_at)).where(
                DocumentEntryRow.space_id == space.id
            )
        ).scalar_one_or_none()
        last_access = session.execute(
            select(func.max(TraceRecord.recorded_at)).where(
                TraceRecord.space_key == space.id, TraceRecord.actor_id == actor.id
            )
        ).scalar_one_or_none()
        pivot = last_add if date_type == "LASTDOC" else declared.get(space.id)
        if since is not None and (pivot is None or _naive(pivot) < _naive(since)):
            continue
        entries.append(
            PatientListEntry(
                ins=space.ins,
                ins_oid=space.ins_oid,
                family_name=space.family_name,
                given_names=space.given_names,
                birth_date=space.birth_date,
                is_medecin_traitant=space.medecin_traitant_id == actor.id,
                last_access=last_access,
                last_update=last_update,
                last_add=last_add,
            )
        )
    op.detail["count"] = len(entries)
    return entries


def _naive(moment: datetime) -> datetime:
    return moment.replace(tzinfo=None)


# ----------------------------------------------------------------------------- TD0.5
DEFAULT_SEARCH_MAX_RESULTS = 10
"""Our cap on TD0.5 results when the deployment sets none (the DMP's figure is not public)."""


@dataclass(frozen=True, slots=True)
class PatientSearchCriteria:
    """TD0.5 identity traits (the ITI-47 query parameters, IHE ITI TF-2b 3.47.4.1.2.1).

    ``birth_from``/``birth_until`` bound the birth date (a ``YYYY``, ``YYYYMM`` or
    ``YYYYMMDD`` birthTime is a range; ``birth_until`` is exclusive). ``postal_code`` is
    accepted but not matched: spaces hold no address (see :func:`search_patients`).
    """

    family_name: str = ""
    given_name: str = ""
    birth_from: date | None = None
    birth_until: date | None = None
    sex: str = ""  # M | F | U; empty: any
    ins: str = ""  # livingSubjectId in an INS domain, if the LPS sends one
    postal_code: str = ""

    def used(self) -> list[str]:
        """The names of the criteria given (for the trace: never their values)."""
        names = {
            "family_name": self.family_name,
            "given_name": self.given_name,
            "birth_date": self.birth_from,
            "sex": self.sex,
            "ins": self.ins,
            "postal_code": self.postal_code,
        }
        return [name for name, value in names.items() if value]


@dataclass(slots=True)
class PatientCandidate:
    """TD0.5: one active DMP matching the traits (``PRPA_IN201306UV02`` subject)."""

    ins: str
    ins_oid: str
    family_name: str
    given_names: str
    birth_date: date | None
    sex: str
    emergency_access_opposed: bool  # OPPOSITION_ACCES_URGENCE (centre 15 access disabled)


class TooManyMatches(DomainError):
    """More DMPs match than the cap: the caller must refine the traits."""

    code = "too_many_matches"


def normalize_name(value: str) -> str:
    """Upper case without diacritics, single spaces: the form INS traits are written in."""
    decomposed = unicodedata.normalize("NFKD", value)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.upper().split())


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _name_equals(column: InstrumentedAttribute[str], value: str) -> ColumnElement[bool]:
    forms = {normalize_name(value), " ".join(value.upper().split())}
    return or_(*(func.upper(column) == form for form in forms))


def _has_given_name(column: InstrumentedAttribute[str], value: str) -> ColumnElement[bool]:
    """``value`` is the whole given-names field or one of its space-separated names."""
    clauses: list[ColumnElement[bool]] = []
    for form in {normalize_name(value), " ".join(value.upper().split())}:
        escaped = _escape_like(form)
        upper = func.upper(column)
        clauses += [
            upper == form,
            upper.like(f"{escaped} %", escape="\\"),
            upper.like(f"% {escaped}", escape="\\"),
            upper.like(f"% {escaped} %", escape="\\"),
        ]
    return or_(*clauses)


def search_patients(
    op: Operation,
    criteria: PatientSearchCriteria,
    *,
    max_results: int = DEFAULT_SEARCH_MAX_RESULTS,
) -> list[PatientCandidate]:
    """TD0.5: the active DMPs matching ``criteria``, at most ``max_results`` of them.

    Only ACTIVE spaces are searched (a PENDING, OPPOSED, CLOSED or DELETED space is not a
    DMP anyone may find), and never one whose patient blocked the caller. Names match
    exactly, case- and accent-insensitively (INS traits are upper case without accents); a
    given name matches one of the given names. More matches than ``max_results`` raise
    :class:`TooManyMatches` instead of returning a truncated list, so no one pages through
    the population. A search with no trait at all is refused.
    """
    if not (criteria.family_name or criteria.given_name or criteria.birth_from or criteria.ins):
        raise InvalidInput(
            "a patient search needs a name, a birth date or an identifier",
            code="no_search_criteria",
        )
    actor = op.actor
    blocked = select(SpaceProfessionalLink.space_id).where(
        SpaceProfessionalLink.professional_id == actor.id,
        SpaceProfessionalLink.kind == "blocked",
    )
    conditions: list[ColumnElement[bool]] = [
        PatientSpace.status == "active",
        PatientSpace.id.not_in(blocked),
    ]
    if criteria.family_name:
        conditions.append(_name_equals(PatientSpace.family_name, criteria.family_name))
    if criteria.given_name:
        conditions.append(_has_given_name(PatientSpace.given_names, criteria.given_name))
    if criteria.birth_from is not None:
        until = criteria.birth_until or criteria.birth_from + timedelta(days=1)
        conditions.append(
            and_(PatientSpace.birth_date >= criteria.birth_from, PatientSpace.birth_date < until)
        )
    if criteria.sex:
        conditions.append(PatientSpace.sex == criteria.sex)
    if criteria.ins:
        conditions.append(PatientSpace.ins == criteria.ins)
    rows = (
        op.session.execute(
            select(PatientSpace)
            .where(*conditions)
            .order_by(PatientSpace.family_name, PatientSpace.given_names, PatientSpace.ins)
            .limit(max_results + 1)
        )
        .scalars()
        .all()
    )
    op.detail["criteria"] = criteria.used()
    if len(rows) > max_results:
        op.detail["count"] = f">{max_results}"
        raise TooManyMatches(
            f"more than {max_results} patients match: refine the search "
            "(given name, birth date, sex)",
        )
    op.detail["count"] = len(rows)
    return [
        PatientCandidate(
            ins=space.ins,
            ins_oid=space.ins_oid,
            family_name=space.family_name,
            given_names=space.given_names,
            birth_date=space.birth_date,
            sex=space.sex,
            emergency_access_opposed=not space.regulation_allowed,
        )
        for space in rows
    ]
