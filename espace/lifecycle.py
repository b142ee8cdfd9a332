"""The life of a patient space: enrolment, opposition, creation, activation, closure, reopening,
definitive deletion, death, purge, and the representatives of minors and protected adults.

Sources (see docs/lifecycle.md for what could not be sourced):

- CSP L.1111-13-1 and L.1111-14 (loi 2019-774, ordonnance 2020-1407): the space is opened
  automatically unless the person, the legal representative of a minor or the person in charge
  of a protection measure objects, after being informed;
- décret 2021-1048 (CSP R.1111-26 to R.1111-43): six-week opposition period after the
  information (letter or e-mail carrying a one-time code);
- CSP R.1111-36: closure at any time; data archived ten years after closure then deleted; an
  express request deletes earlier; a new space may be created at any time and receives the
  archived data;
- HL7v3 PRPA_IN201314UV02 (DMP TD1.4): closure reasons ``FERMETURE_DEMANDE_PATIENT``...

Every step runs in exactly one :meth:`espace.service.Espace.operation` (policy + trace + outbox
in one transaction) and notifies the person (``espace.notifications``). Durations read the
injectable clock. Enrolment codes are stored as scrypt hashes only.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
import weakref
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    delete,
    func,
    inspect,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from espace.admin import add_representative
from espace.clock import as_utc
from espace.db import Base
from espace.errors import Conflict, DomainError, InvalidInput, NotFound, UnknownSpace
from espace.models import (
    AppConsent,
    PatientSpace,
    SpaceProfessionalLink,
    SpaceRepresentative,
    TraceCheckpoint,
    TraceHead,
    TraceRecord,
)
from espace.service import Espace, Operation
from espace.spaces import (
    INS_OIDS,
    MAJORITY_AGE,
    age_on,
    find_space_by_ins,
    is_minor,
    nir_key_is_valid,
)
from espace.trace import Source, Target
from habilitation.model import Action, Actor, ActorKind, AuthenticationMode, SpaceStatus

Timestamp = DateTime(timezone=True)

OPPOSITION_PERIOD = timedelta(weeks=6)  # décret 2021-1048
CODE_VALIDITY = timedelta(weeks=6)
RETENTION_YEARS = 10  # CSP R.1111-36
MAX_CODE_FAILURES = 5
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"  # no 0/O, 1/I/L, U
CODE_LENGTH = 12
TERMS_VERSION = "2024-01"
CLOSURE_REASONS = frozenset(
    {"FERMETURE_DEMANDE_PATIENT", "FERMETURE_DECES", "FERMETURE_SUPPORT", "FERMETURE_AUTRE"}
)
REPRESENTATIVE_KINDS = frozenset({"legal_representative", "protected_adult_representative"})
PATIENT_SIDE = frozenset(
    {ActorKind.PATIENT, ActorKind.LEGAL_REPRESENTATIVE, ActorKind.PROTECTED_ADULT_REPRESENTATIVE}
)


# --------------------------------------------------------------------------- tables
class EnrolmentCode(Base):
    """A one-time code (letter or e-mail, or asked for later), stored as a scrypt hash."""

    __tablename__ = "enrolment_code"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    space_id: Mapped[str] = mapped_column(ForeignKey("patient_space.id"), index=True)
    salt: Mapped[str] = mapped_column(String(32))
    code_hash: Mapped[str] = mapped_column(String(128))
    issued_at: Mapped[datetime] = mapped_column(Timestamp)
    expires_at: Mapped[datetime] = mapped_column(Timestamp)
    used_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    channel: Mapped[str] = mapped_column(String(16), default="letter")  # letter | email


class SpaceLifecycle(Base):
    """Lifecycle facts of one space that ``patient_space`` does not hold."""

    __tablename__ = "space_lifecycle"

    space_id: Mapped[str] = mapped_column(ForeignKey("patient_space.id"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), default="letter")
    enrolled_as_minor: Mapped[bool] = mapped_column(Boolean, default=False)
    created_how: Mapped[str] = mapped_column(String(16), default="")  # automatic | voluntary
    opposed_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    opposed_by_kind: Mapped[str] = mapped_column(String(40), default="")
    opposed_by_id: Mapped[str] = mapped_column(String(64), default="")
    opposition_ref: Mapped[str] = mapped_column(String(40), default="")
    closure_reason: Mapped[str] = mapped_column(String(40), default="")
    closed_by: Mapped[str] = mapped_column(String(64), default="")
    purge_after: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True, index=True)
    reopened_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    majority_processed_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    terms_version: Mapped[str] = mapped_column(String(16), default="")
    terms_accepted_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)


class PreventionCampaign(Base):
    """One prevention message (espace.prevention) (and proposed appointment) sent to one space."""

    __tablename__ = "prevention_campaign"
    __table_args__ = (UniqueConstraint("space_id", "rule_id", "period_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    space_id: Mapped[str] = mapped_column(ForeignKey("patient_space.id"), index=True)
    rule_id: Mapped[str] = mapped_column(String(64))
    period_key: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    message: Mapped[str] = mapped_column(Text)
    sent_at: Mapped[datetime] = mapped_column(Timestamp)
    appointment_kind: Mapped[str] = mapped_column(String(32), default="")
    appointment_with: Mapped[str] = mapped_column(String(200), default="")
    appointment_proposed_for: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    delivered_to: Mapped[str] = mapped_column(String(64), default="prevention_campaign")


class ExportArchive(Base):
    """An encrypted export (espace.export), downloadable with its link until it expires."""

    __tablename__ = "export_archive"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    space_id: Mapped[str] = mapped_column(ForeignKey("patient_space.id"), index=True)
    requested_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    expires_at: Mapped[datetime] = mapped_column(Timestamp, index=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="ready")  # ready | expired
    downloads: Mapped[int] = mapped_column(Integer, default=0)
    blob: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


# --------------------------------------------------------------------------- results
@dataclass(frozen=True, slots=True)
class Enrolment:
    space_id: str
    ins: str
    code: str  # shown once (letter / e-mail); only its hash is stored
    expires_at: datetime
    opposition_deadline: datetime


@dataclass(frozen=True, slots=True)
class OppositionReceipt:
    """What the PDF confirmation shows (patient_api.pdf renders it)."""

    reference: str
    ins: str
    family_name: str
    given_names: str
    birth_date: date | None
    opposed_at: datetime
    opposed_by_kind: str
    opposed_by_id: str
    agent_id: str | None


@dataclass(frozen=True, slots=True)
class SpaceState:
    space_id: str
    ins: str
    status: str
    activated: bool
    created_at: datetime
    closed_at: datetime | None
    purge_after: datetime | None
    opposition_deadline: datetime | None

    def as_json(self) -> dict[str, Any]:
        def iso(d: datetime | None) -> str | None:
            return as_utc(d).isoformat() if d is not None else None

        return {
            "ins": self.ins,
            "status": self.status,
            "activated": self.activated,
            "created_at": iso(self.created_at),
            "closed_at": iso(self.closed_at),
            "purge_after": iso(self.purge_after),
            "opposition_deadline": iso(self.opposition_deadline),
        }


@dataclass
class JobReport:
    created: int = 0
    majority: int = 0
    reenrolled: int = 0
    purged: int = 0
    prevention: int = 0
    exports_expired: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "majority": self.majority,
            "reenrolled": self.reenrolled,
            "purged": self.purged,
            "prevention": self.prevention,
            "exports_expired": self.exports_expired,
            "errors": list(self.errors),
        }


# --------------------------------------------------------------------------- helpers
def system_actor(job: str) -> Actor:
    """The actor of a background job (CSP: the operator acting for the service)."""
    return Actor(
        kind=ActorKind.SYSTEM,
        id=f"job:{job}",
        name=job,
        authentication_mode=AuthenticationMode.SYSTEM,
    )


def support_actor(agent_id: str, name: str = "") -> Actor:
    """A support-desk / local-fund agent (traced with the agent's identity)."""
    if not agent_id.strip():
        raise InvalidInput("the agent identity is required", code="agent_required")
    return Actor(kind=ActorKind.SUPPORT_AGENT, id=agent_id.strip(), name=name)


def add_years(when: datetime, years: int) -> datetime:
    try:
        return when.replace(year=when.year + years)
    except ValueError:  # 29 February
        return when.replace(year=when.year + years, day=28)


def settings_duration(espace: Espace, key: str, default: timedelta) -> timedelta:
    value = espace.settings.get(key)
    return timedelta(days=int(value)) if value else default


def opposition_period(espace: Espace) -> timedelta:
    return settings_duration(espace, "LIFECYCLE_OPPOSITION_DAYS", OPPOSITION_PERIOD)


def retention_years(espace: Espace) -> int:
    return int(espace.settings.get("LIFECYCLE_RETENTION_YEARS") or RETENTION_YEARS)


def normalize_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def _hash_code(code: str, salt: str) -> str:
    digest = hashlib.scrypt(
        normalize_code(code).encode(), salt=bytes.fromhex(salt), n=2**14, r=8, p=1, dklen=32
    )
    return digest.hex()


def _new_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, CODE_LENGTH, 4))


def _issue_code(
    session: Session, space: PatientSpace, now: datetime, channel: str
) -> tuple[str, EnrolmentCode]:
    """Revoke the previous codes of the space and issue a new one."""
    for row in session.execute(
        select(EnrolmentCode).where(
            EnrolmentCode.space_id == space.id, EnrolmentCode.used_at.is_(None)
        )
    ).scalars():
        row.revoked = True
    code = _new_code()
    salt = secrets.token_hex(16)
    row = EnrolmentCode(
        space_id=space.id,
        salt=salt,
        code_hash=_hash_code(code, salt),
        issued_at=now,
        expires_at=now + CODE_VALIDITY,
        channel=channel,
    )
    session.add(row)
    space.enrolment_code_hash = row.code_hash
    return code, row


def _recent_failures(session: Session, space_id: str, since: datetime) -> int:
    """Wrong codes since ``since``: failures are traced, so the trace is the counter."""
    count = session.execute(
        select(func.count(TraceRecord.id)).where(
            TraceRecord.space_key == space_id,
            TraceRecord.error_code.in_(("invalid_code", "code_locked")),
            TraceRecord.recorded_at >= since,
        )
    ).scalar_one()
    return int(count)


def _consume_code(op: Operation, code: str) -> None:
    """Check a one-time code of ``op.space`` and mark it used (raises InvalidInput)."""
    assert op.space is not None
    now = op.now
    rows = list(
        op.session.execute(
            select(EnrolmentCode)
            .where(
                EnrolmentCode.space_id == op.space.id,
                EnrolmentCode.used_at.is_(None),
                EnrolmentCode.revoked.is_(False),
            )
            .order_by(EnrolmentCode.issued_at.desc())
        ).scalars()
    )
    if not rows:
        raise InvalidInput("no valid code for this space: ask for a new one", code="invalid_code")
    current = rows[0]
    if _recent_failures(op.session, op.space.id, as_utc(current.issued_at)) >= MAX_CODE_FAILURES:
        raise InvalidInput("too many wrong codes: ask for a new one", code="code_locked")
    if as_utc(current.expires_at) <= now:
        raise InvalidInput("the code has expired: ask for a new one", code="code_expired")
    if not hmac.compare_digest(_hash_code(code, current.salt), current.code_hash):
        raise InvalidInput("wrong code", code="invalid_code")
    current.used_at = now


def _lock(op: Operation) -> None:
    """Re-read the space row under a row lock (SELECT ... FOR UPDATE on PostgreSQL), so that
    two transitions (an opposition and the automatic creation) never both apply."""
    assert op.space is not None
    op.session.refresh(op.space, with_for_update=True)


def _lifecycle_row(session: Session, space: PatientSpace) -> SpaceLifecycle:
    row = session.get(SpaceLifecycle, space.id)
    if row is None:
        row = SpaceLifecycle(space_id=space.id)
        session.add(row)
        session.flush()
    return row


def _set_status(space: PatientSpace, status: SpaceStatus, now: datetime) -> None:
    space.status = status.value
    space.status_changed_at = now


def _require_status(space: PatientSpace, *allowed: SpaceStatus) -> None:
    if space.status not in {s.value for s in allowed}:
        raise Conflict(
            f"the space is {space.status}; expected {', '.join(s.value for s in allowed)}",
            code="wrong_status",
        )


def _require_patient_side_or_agent(actor: Actor) -> None:
    if actor.kind not in PATIENT_SIDE and actor.kind is not ActorKind.SUPPORT_AGENT:
        raise InvalidInput(
            "only the person, a representative or the support desk", code="wrong_actor"
        )


def _lifecycle_notice(op: Operation, key: str, body: str) -> None:
    assert op.space is not None
    op.notify("lifecycle", body, dedup_key=f"lifecycle:{op.space.id}:{key}:{op.now.isoformat()}")


def _state(session: Session, space: PatientSpace, espace: Espace) -> SpaceState:
    life = session.get(SpaceLifecycle, space.id)
    deadline = (
        as_utc(space.enrolment_sent_at) + opposition_period(espace)
        if space.enrolment_sent_at is not None and space.status == SpaceStatus.PENDING.value
        else None
    )
    return SpaceState(
        space_id=space.id,
        ins=space.ins,
        status=space.status,
        activated=space.activated_at is not None,
        created_at=as_utc(space.created_at),
        closed_at=as_utc(space.closed_at) if space.closed_at else None,
        purge_after=as_utc(life.purge_after) if life and life.purge_after else None,
        opposition_deadline=deadline,
    )


def _fmt(day: datetime | date) -> str:
    return f"{day:%d/%m/%Y}"


def _check_ins(ins: str) -> str:
    ins = ins.strip().upper()
    if not nir_key_is_valid(ins):
        raise InvalidInput(f"not a valid matricule INS (NIR + key): {ins!r}", code="invalid_ins")
    return ins


# --------------------------------------------------------------------------- enrolment
@dataclass(frozen=True, slots=True)
class Person:
    """Identity traits from the INS (not editable by the patient)."""

    ins: str
    family_name: str = ""
    given_names: str = ""
    birth_date: date | None = None
    sex: str = "U"
    email: str | None = None
    ins_oid: str = "1.2.250.1.213.1.4.8"


def enrol(
    espace: Espace,
    person: Person,
    *,
    source: Source,
    channel: str = "letter",
    actor: Actor | None = None,
    representatives: Iterable[Person] = (),
    protected_adult_representative: Person | None = None,
) -> Enrolment:
    """Inform a person (letter or e-mail with a one-time code): opens the six-week window.

    The space row exists from now on with status PENDING: nothing can be read or fed until it
    is created (``habilitation.rules.space_status``). A person whose earlier space was purged
    gets a new, empty space. A minor's code goes to the legal representatives (at most two).
    """
    if channel not in ("letter", "email"):
        raise InvalidInput("channel must be letter or email", code="invalid_channel")
    ins = _check_ins(person.ins)
    if person.ins_oid not in INS_OIDS:
        raise InvalidInput(f"unknown INS OID {person.ins_oid}", code="invalid_ins")
    if person.sex not in ("M", "F", "U"):
        raise InvalidInput("sex must be M, F or U", code="invalid_sex")
    reps = list(representatives)
    if len(reps) > 2:
        raise InvalidInput(
            "a minor has at most two legal representatives", code="too_many_representatives"
        )
    for rep in reps + ([protected_adult_representative] if protected_adult_representative else []):
        _check_ins(rep.ins)
    who = actor or system_actor("enrolment")
    with espace.operation(
        who,
        Action.SYSTEM_JOB if who.kind is ActorKind.SYSTEM else Action.MANAGE_LIFECYCLE,
        event_type="lifecycle.enrol",
        source=source,
        require_space=False,
    ) as op:
        now = op.now
        if find_space_by_ins(op.session, ins) is not None:
            raise Conflict(f"a space already exists for INS {ins}", code="space_exists")
        space = PatientSpace(
            id=uuid.uuid4().hex,
            ins=ins,
            ins_oid=person.ins_oid,
            family_name=person.family_name,
            given_names=person.given_names,
            birth_date=person.birth_date,
            sex=person.sex,
            email=person.email,
            status=SpaceStatus.PENDING.value,
            created_at=now,
            status_changed_at=now,
            enrolment_sent_at=now,
            enrolment_bounced=False,
        )
        op.session.add(space)
        op.session.flush()
        op.space = space
        minor = is_minor(space, now)
        if reps and not minor:
            raise InvalidInput("legal representatives are for minors", code="not_a_minor")
        for rep in reps:
            add_representative(
                op.session,
                space,
                rep.ins,
                kind="legal_representative",
                now=now,
                name=f"{rep.given_names} {rep.family_name}".strip(),
                email=rep.email,
                birth_date=rep.birth_date,
            )
        if protected_adult_representative is not None:
            rep = protected_adult_representative
            add_representative(
                op.session,
                space,
                rep.ins,
                kind="protected_adult_representative",
                now=now,
                name=f"{rep.given_names} {rep.family_name}".strip(),
                email=rep.email,
            )
        op.session.flush()
        life = _lifecycle_row(op.session, space)
        life.channel = channel
        life.enrolled_as_minor = minor
        code, row = _issue_code(op.session, space, now, channel)
        deadline = now + opposition_period(espace)
        op.target = Target("PatientSpace", space.id)
        op.detail = {
            "channel": channel,
            "minor": minor,
            "opposition_deadline": deadline.isoformat(),
        }
        _lifecycle_notice(
            op,
            "enrolled",
            "Votre profil Mon espace santé va être créé. Vous pouvez vous y opposer jusqu'au "
            f"{_fmt(deadline)} avec le code reçu par "
            f"{'courrier' if channel == 'letter' else 'e-mail'}.",
        )
        op.space_id = space.id  # the record starts the new space's chain
        return Enrolment(space.id, ins, code, as_utc(row.expires_at), deadline)


def report_bounce(espace: Espace, ins: str, *, source: Source, actor: Actor | None = None) -> None:
    """The letter or e-mail came back: no information, so no automatic creation."""
    who = actor or system_actor("enrolment")
    action = Action.SYSTEM_JOB if who.kind is ActorKind.SYSTEM else Action.MANAGE_LIFECYCLE
    with espace.operation(
        who, action, event_type="lifecycle.bounce", source=source, space_ins=_check_ins(ins)
    ) as op:
        assert op.space is not None
        _require_status(op.space, SpaceStatus.PENDING)
        op.space.enrolment_bounced = True
        op.target = Target("PatientSpace", op.space.id)


def issue_new_code(
    espace: Espace, ins: str, *, source: Source, actor: Actor | None = None, channel: str = "letter"
) -> Enrolment:
    """Send a new one-time code (the person asked; the previous ones are revoked).

    For a PENDING space the opposition deadline does not move (it runs from the information).
    """
    who = actor or system_actor("enrolment")
    action = Action.SYSTEM_JOB if who.kind is ActorKind.SYSTEM else Action.MANAGE_LIFECYCLE
    with espace.operation(
        who, action, event_type="lifecycle.code", source=source, space_ins=_check_ins(ins)
    ) as op:
        assert op.space is not None
        _require_status(
            op.space,
            SpaceStatus.PENDING,
            SpaceStatus.OPPOSED,
            SpaceStatus.CLOSED,
            SpaceStatus.ACTIVE,
        )
        code, row = _issue_code(op.session, op.space, op.now, channel)
        op.target = Target("PatientSpace", op.space.id)
        op.detail = {"channel": channel}
        start = as_utc(op.space.enrolment_sent_at or op.space.created_at)
        return Enrolment(
            op.space.id,
            op.space.ins,
            code,
            as_utc(row.expires_at),
            start + opposition_period(espace),
        )


# --------------------------------------------------------------------------- opposition
def oppose(
    espace: Espace, actor: Actor, ins: str, *, source: Source, code: str | None = None
) -> OppositionReceipt:
    """Record an opposition within the six-week window: the space is not created.

    The person, a legal representative of a minor or a protected adult's representative
    presents the one-time code; a support agent (support desk, local fund) needs none and is
    traced with the agent's identity. Later, the person closes the space instead.
    """
    _require_patient_side_or_agent(actor)
    if actor.kind is not ActorKind.SUPPORT_AGENT and not code:
        raise InvalidInput("the one-time code is required", code="code_required")
    with espace.operation(
        actor,
        Action.MANAGE_LIFECYCLE,
        event_type="lifecycle.oppose",
        source=source,
        space_ins=_check_ins(ins),
    ) as op:
        space = op.space
        assert space is not None
        _lock(op)
        op.target = Target("PatientSpace", space.id)
        if space.status == SpaceStatus.OPPOSED.value:
            raise Conflict("an opposition is already recorded", code="already_opposed")
        if space.status != SpaceStatus.PENDING.value:
            raise Conflict(
                "the space is already created: close it instead", code="opposition_period_over"
            )
        sent = as_utc(space.enrolment_sent_at or space.created_at)
        if op.now >= sent + opposition_period(espace) and not space.enrolment_bounced:
            raise Conflict("the six-week period is over", code="opposition_period_over")
        if code is not None and actor.kind is not ActorKind.SUPPORT_AGENT:
            _consume_code(op, code)
        _set_status(space, SpaceStatus.OPPOSED, op.now)
        life = _lifecycle_row(op.session, space)
        life.opposed_at = op.now
        life.opposed_by_kind = actor.kind.value
        life.opposed_by_id = actor.id
        life.opposition_ref = "OPP-" + secrets.token_hex(6).upper()
        op.detail = {"reference": life.opposition_ref, "by": actor.kind.value}
        _lifecycle_notice(
            op,
            "opposed",
            f"Votre opposition à la création de Mon espace santé a été enregistrée le "
            f"{_fmt(op.now)} (référence {life.opposition_ref}). Vous pourrez créer votre profil "
            "plus tard si vous le souhaitez.",
        )
        return _receipt(space, life, actor)


def _receipt(space: PatientSpace, life: SpaceLifecycle, actor: Actor | None) -> OppositionReceipt:
    assert life.opposed_at is not None
    return OppositionReceipt(
        reference=life.opposition_ref,
        ins=space.ins,
        family_name=space.family_name,
        given_names=space.given_names,
        birth_date=space.birth_date,
        opposed_at=as_utc(life.opposed_at),
        opposed_by_kind=life.opposed_by_kind,
        opposed_by_id=life.opposed_by_id,
        agent_id=life.opposed_by_id
        if life.opposed_by_kind == ActorKind.SUPPORT_AGENT.value
        else None,
    )


def opposition_receipt(
    espace: Espace, actor: Actor, ins: str, *, source: Source
) -> OppositionReceipt:
    """The confirmation of a recorded opposition (for the PDF), read as a lifecycle step."""
    with espace.operation(
        actor,
        Action.MANAGE_LIFECYCLE,
        event_type="lifecycle.opposition_receipt",
        source=source,
        space_ins=_check_ins(ins),
    ) as op:
        assert op.space is not None
        life = op.session.get(SpaceLifecycle, op.space.id)
        if life is None or life.opposed_at is None or op.space.status != SpaceStatus.OPPOSED.value:
            raise NotFound("no opposition recorded", code="no_opposition")
        op.target = Target("PatientSpace", op.space.id)
        return _receipt(op.space, life, None)


# --------------------------------------------------------------------------- creation
def _create(op: Operation, how: str) -> None:
    space = op.space
    assert space is not None
    _set_status(space, SpaceStatus.ACTIVE, op.now)
    space.created_at = op.now
    _lifecycle_row(op.session, space).created_how = how
    op.target = Target("PatientSpace", space.id)
    op.detail = {"created": how}
    _lifecycle_notice(
        op,
        "created",
        f"Votre profil Mon espace santé a été créé le {_fmt(op.now)}. Les professionnels qui vous "
        "soignent peuvent y déposer vos documents ; activez-le pour y accéder.",
    )


def create_voluntarily(
    espace: Espace, actor: Actor, ins: str, *, code: str, source: Source
) -> SpaceState:
    """Create one's space with a code: before the end of the window, or after an opposition."""
    _require_patient_side_or_agent(actor)
    with espace.operation(
        actor,
        Action.MANAGE_LIFECYCLE,
        event_type="lifecycle.create",
        source=source,
        space_ins=_check_ins(ins),
    ) as op:
        assert op.space is not None
        _lock(op)
        _require_status(op.space, SpaceStatus.PENDING, SpaceStatus.OPPOSED)
        _consume_code(op, code)
        _create(op, "voluntary")
        return _state(op.session, op.space, espace)


def activate(
    espace: Espace,
    actor: Actor,
    ins: str,
    *,
    email: str,
    phone: str,
    accept_terms: bool,
    source: Source,
    code: str | None = None,
) -> SpaceState:
    """Create one's access: contact e-mail and phone, acceptance of the terms of use.

    With a code, a PENDING space is created at once (voluntary creation + activation).
    """
    if actor.kind not in PATIENT_SIDE:
        raise InvalidInput("only the person or a representative activates", code="wrong_actor")
    if not accept_terms:
        raise InvalidInput("the terms of use must be accepted", code="terms_not_accepted")
    email, phone = _check_email(email), _check_phone(phone)
    with espace.operation(
        actor,
        Action.MANAGE_LIFECYCLE,
        event_type="lifecycle.activate",
        source=source,
        space_ins=_check_ins(ins),
    ) as op:
        space = op.space
        assert space is not None
        _lock(op)
        if space.status in (SpaceStatus.PENDING.value, SpaceStatus.OPPOSED.value):
            if not code:
                raise InvalidInput("the one-time code is required", code="code_required")
            _consume_code(op, code)
            _create(op, "voluntary")
        else:
            _require_status(space, SpaceStatus.ACTIVE)
            if code:
                _consume_code(op, code)
        if space.activated_at is not None:
            raise Conflict("the space is already activated", code="already_activated")
        space.email, space.phone, space.activated_at = email, phone, op.now
        life = _lifecycle_row(op.session, space)
        life.terms_version = str(espace.settings.get("TERMS_VERSION", TERMS_VERSION))
        life.terms_accepted_at = op.now
        op.target = Target("PatientSpace", space.id)
        op.detail = {**op.detail, "activated": True, "terms_version": life.terms_version}
        _lifecycle_notice(
            op, "activated", f"Votre profil Mon espace santé est activé depuis le {_fmt(op.now)}."
        )
        return _state(op.session, space, espace)


def _check_email(email: str) -> str:
    email = email.strip()
    local, _, domain = email.partition("@")
    if not local or "." not in domain or len(email) > 320 or any(c.isspace() for c in email):
        raise InvalidInput("invalid e-mail address", code="invalid_email")
    return email


def _check_phone(phone: str) -> str:
    digits = phone.replace(" ", "").replace(".", "")
    body = digits[1:] if digits.startswith("+") else digits
    if not body.isdigit() or not 8 <= len(body) <= 15:
        raise InvalidInput("invalid phone number", code="invalid_phone")
    return digits


def space_state(espace: Espace, actor: Actor, ins: str, *, source: Source) -> SpaceState:
    """The status of a space as its person sees it (a traced lifecycle read)."""
    with espace.operation(
        actor,
        Action.MANAGE_LIFECYCLE,
        event_type="lifecycle.read",
        source=source,
        space_ins=_check_ins(ins),
    ) as op:
        assert op.space is not None
        op.target = Target("PatientSpace", op.space.id)
        return _state(op.session, op.space, espace)


# --------------------------------------------------------------------------- closure
def close(
    espace: Espace,
    actor: Actor,
    ins: str,
    *,
    source: Source,
    reason: str = "FERMETURE_DEMANDE_PATIENT",
    delete_now: bool = False,
    code: str | None = None,
) -> SpaceState | None:
    """Close a space (logical deletion, CSP R.1111-36): nothing is readable by anyone.

    App pairings are withdrawn, professional authorizations (and the médecin traitant) end;
    blocks and feeding oppositions are kept so that a reopening restores the person's choices.
    Data are kept ten years, then purged. With ``delete_now`` everything is deleted at once,
    including the spaces of the children and represented persons of the caller (returns None).
    A person without an account may present a one-time code instead of a login (``code``).
    """
    _require_patient_side_or_agent(actor)
    if reason not in CLOSURE_REASONS:
        raise InvalidInput(f"unknown closure reason {reason!r}", code="invalid_reason")
    ins = _check_ins(ins)
    if delete_now:
        delete_definitively(espace, actor, ins, source=source, code=code)
        return None
    with espace.operation(
        actor, Action.MANAGE_LIFECYCLE, event_type="lifecycle.close", source=source, space_ins=ins
    ) as op:
        assert op.space is not None
        _lock(op)
        _require_status(op.space, SpaceStatus.ACTIVE)
        if code is not None and actor.kind is not ActorKind.SUPPORT_AGENT:
            _consume_code(op, code)
        _close(op, reason, op.now)
        return _state(op.session, op.space, espace)


def _close(op: Operation, reason: str, retention_start: datetime) -> None:
    space = op.space
    assert space is not None
    now = op.now
    ended = _end_access(op.session, space, now)
    life = _lifecycle_row(op.session, space)
    life.closure_reason = reason
    life.closed_by = op.actor.id
    life.purge_after = add_years(retention_start, retention_years(op.espace))
    op.target = Target("PatientSpace", space.id)
    op.detail = {"reason": reason, "purge_after": life.purge_after.isoformat(), **ended}
    _lifecycle_notice(
        op,
        "closed",
        f"Votre profil Mon espace santé a été clôturé le {_fmt(now)}. Vos données sont conservées "
        f"jusqu'au {_fmt(life.purge_after)} ; vous pouvez le rouvrir d'ici là.",
    )
    _set_status(space, SpaceStatus.CLOSED, now)
    space.closed_at = now


def _end_access(session: Session, space: PatientSpace, now: datetime) -> dict[str, int]:
    links = session.execute(
        delete(SpaceProfessionalLink).where(
            SpaceProfessionalLink.space_id == space.id,
            SpaceProfessionalLink.kind.in_(("authorized", "authorized_structure")),
        )
    ).rowcount  # type: ignore[attr-defined]
    apps = 0
    for consent in session.execute(
        select(AppConsent).where(AppConsent.space_id == space.id, AppConsent.withdrawn_at.is_(None))
    ).scalars():
        consent.withdrawn_at = now
        apps += 1
    had_mt = space.medecin_traitant_id is not None
    space.medecin_traitant_id = None
    return {
        "authorizations_removed": int(links or 0),
        "app_pairings_withdrawn": apps,
        "mt_removed": int(had_mt),
    }


def reopen(
    espace: Espace, actor: Actor, ins: str, *, source: Source, code: str | None = None
) -> SpaceState:
    """Reopen a closed space within the retention period: everything comes back.

    The person presents a one-time code (asked for again, as for a voluntary creation); the
    support desk needs none. A deceased person's space is not reopened.
    """
    _require_patient_side_or_agent(actor)
    if actor.kind is not ActorKind.SUPPORT_AGENT and not code:
        raise InvalidInput("the one-time code is required", code="code_required")
    with espace.operation(
        actor,
        Action.MANAGE_LIFECYCLE,
        event_type="lifecycle.reopen",
        source=source,
        space_ins=_check_ins(ins),
    ) as op:
        space = op.space
        assert space is not None
        _lock(op)
        _require_status(space, SpaceStatus.CLOSED)
        if space.death_date is not None:
            raise Conflict("the space of a deceased person is not reopened", code="deceased")
        life = _lifecycle_row(op.session, space)
        if life.purge_after is not None and as_utc(life.purge_after) <= op.now:
            raise Conflict("the retention period is over", code="retention_over")
        if code is not None and actor.kind is not ActorKind.SUPPORT_AGENT:
            _consume_code(op, code)
        _set_status(space, SpaceStatus.ACTIVE, op.now)
        space.closed_at = None
        life.reopened_at, life.purge_after, life.closure_reason = op.now, None, ""
        op.target = Target("PatientSpace", space.id)
        _lifecycle_notice(
            op, "reopened", f"Votre profil Mon espace santé a été rouvert le {_fmt(op.now)}."
        )
        return _state(op.session, space, espace)


def record_death(
    espace: Espace, actor: Actor, ins: str, *, death_date: date, source: Source
) -> SpaceState:
    """Close the space of a deceased person: kept ten years from death, then purged."""
    if actor.kind not in (ActorKind.SUPPORT_AGENT, ActorKind.SYSTEM):
        raise InvalidInput(
            "a death is recorded by the insurer or the support desk", code="wrong_actor"
        )
    action = Action.SYSTEM_JOB if actor.kind is ActorKind.SYSTEM else Action.MANAGE_LIFECYCLE
    with espace.operation(
        actor, action, event_type="lifecycle.death", source=source, space_ins=_check_ins(ins)
    ) as op:
        space = op.space
        assert space is not None
        _lock(op)
        if death_date > op.now.date():
            raise InvalidInput("the death date is in the future", code="invalid_date")
        space.death_date = death_date
        start = datetime(death_date.year, death_date.month, death_date.day, tzinfo=op.now.tzinfo)
        if space.status == SpaceStatus.ACTIVE.value:
            _close(op, "FERMETURE_DECES", start)
        else:
            life = _lifecycle_row(op.session, space)
            life.purge_after = add_years(start, retention_years(espace))
            life.closure_reason = "FERMETURE_DECES"
            if space.status == SpaceStatus.PENDING.value:
                _set_status(space, SpaceStatus.CLOSED, op.now)
                space.closed_at = op.now
            op.target = Target("PatientSpace", space.id)
        return _state(op.session, space, espace)


# --------------------------------------------------------------------------- deletion / purge
def purge_space_rows(session: Session, space_id: str) -> int:
    """Delete every row of ``space_id`` in every table, its trace chain, then the space."""
    removed = 0
    existing = set(inspect(session.connection()).get_table_names())
    for table in reversed(Base.metadata.sorted_tables):
        if (
            table.name == PatientSpace.__tablename__
            or "space_id" not in table.c
            or table.name not in existing
        ):
            continue
        result = session.execute(table.delete().where(table.c.space_id == space_id))
        removed += int(result.rowcount or 0)  # type: ignore[attr-defined]
    for model in (TraceCheckpoint, TraceRecord, TraceHead):
        result = session.execute(delete(model).where(model.space_key == space_id))
        removed += int(result.rowcount or 0)  # type: ignore[attr-defined]
    session.execute(delete(PatientSpace).where(PatientSpace.id == space_id))
    return removed + 1


def delete_definitively(
    espace: Espace, actor: Actor, ins: str, *, source: Source, code: str | None = None
) -> list[str]:
    """Delete a space now with all its data (CSP R.1111-36 express request), and the spaces of
    the persons the caller represents. Traced in the service chain (the space's chain is gone).

    Returns the INS of every deleted space.
    """
    _require_patient_side_or_agent(actor)
    ins = _check_ins(ins)
    with espace.operation(
        actor, Action.MANAGE_LIFECYCLE, event_type="lifecycle.delete", source=source, space_ins=ins
    ) as op:
        space = op.space
        assert space is not None
        _lock(op)
        _require_status(
            space, SpaceStatus.ACTIVE, SpaceStatus.CLOSED, SpaceStatus.OPPOSED, SpaceStatus.PENDING
        )
        if code is not None and actor.kind is not ActorKind.SUPPORT_AGENT:
            _consume_code(op, code)
        represented = list(
            op.session.execute(
                select(PatientSpace)
                .join(SpaceRepresentative, SpaceRepresentative.space_id == PatientSpace.id)
                .where(
                    SpaceRepresentative.representative_id == space.ins,
                    SpaceRepresentative.status == "active",
                    SpaceRepresentative.kind.in_(sorted(REPRESENTATIVE_KINDS)),
                )
            ).scalars()
        )
        deleted = [space.ins] + [p.ins for p in represented]
        ids = [space.id] + [p.id for p in represented]
        rows = 0
        for space_id in ids:
            rows += purge_space_rows(op.session, space_id)
        op.space = op.space_id = None  # to the service chain: the space's chain is gone
        op.target = Target("PatientSpace", space.id)
        op.detail = {"deleted_spaces": ids, "rows": rows, "reason": "demande_suppression"}
        return deleted


# --------------------------------------------------------------------------- representatives
def invite_representative(
    espace: Espace,
    actor: Actor,
    minor_ins: str,
    *,
    representative_ins: str,
    name: str,
    birth_date: date,
    email: str | None,
    source: Source,
) -> None:
    """The first legal representative invites the second (name, birth date, NIR)."""
    if actor.kind is not ActorKind.LEGAL_REPRESENTATIVE:
        raise InvalidInput("only a legal representative invites the other one", code="wrong_actor")
    rep_ins = _check_ins(representative_ins)
    _check_nir_birth(rep_ins, birth_date)
    if not name.strip():
        raise InvalidInput("the name is required", code="name_required")
    with espace.operation(
        actor,
        Action.MANAGE_SETTINGS,
        event_type="representative.invite",
        source=source,
        space_ins=_check_ins(minor_ins),
    ) as op:
        assert op.space is not None
        if rep_ins in (actor.id, op.space.ins):
            raise InvalidInput("cannot invite oneself or the minor", code="invalid_representative")
        _attach(
            op, rep_ins, name=name.strip(), birth_date=birth_date, email=email, status="invited"
        )
        op.notify(
            "lifecycle",
            f"{actor.name or 'Le représentant légal'} vous invite à gérer le profil Mon espace "
            "santé de votre enfant. Acceptez ou refusez depuis votre espace.",
            dedup_key=f"invite:{op.space.id}:{rep_ins}:{op.now.isoformat()}",
        )


def _attach(
    op: Operation,
    rep_ins: str,
    *,
    name: str,
    birth_date: date | None,
    email: str | None,
    status: str,
) -> SpaceRepresentative:
    assert op.space is not None
    if not is_minor(op.space, op.now):
        raise Conflict("the person is not a minor", code="not_a_minor")
    existing = op.session.execute(
        select(SpaceRepresentative).where(
            SpaceRepresentative.space_id == op.space.id,
            SpaceRepresentative.representative_id == rep_ins,
        )
    ).scalar_one_or_none()
    if existing is not None and existing.status in ("active", "invited"):
        raise Conflict("already a representative of this minor", code="already_representative")
    if existing is not None:  # declined or ended earlier: invite again
        op.session.delete(existing)
        op.session.flush()
    row = add_representative(
        op.session,
        op.space,
        rep_ins,
        kind="legal_representative",
        now=op.now,
        name=name,
        email=email,
        status=status,
        invited_by=op.actor.id,
        birth_date=birth_date,
    )
    op.target = Target("SpaceRepresentative", rep_ins)
    op.detail = {"representative": rep_ins, "status": status}
    return row


def _check_nir_birth(nir: str, birth_date: date) -> None:
    """NIR digits 2-3 are the birth year, 4-5 the month (20-42/99: unknown month, kept)."""
    year, month = int(nir[1:3]), int(nir[3:5])
    if year != birth_date.year % 100 or (1 <= month <= 12 and month != birth_date.month):
        raise InvalidInput("the birth date does not match the NIR", code="nir_birth_mismatch")


def answer_invitation(
    espace: Espace, actor: Actor, minor_ins: str, *, accept: bool, source: Source
) -> None:
    """The invited representative accepts or declines.

    The invitee is not yet a representative, so the PDP (which only knows active
    representatives) cannot authorize them on the minor's space: the system applies the answer
    of the authenticated invitee, and the trace names the invitee (``on_behalf_of``, detail).
    """
    if actor.kind not in (ActorKind.LEGAL_REPRESENTATIVE, ActorKind.PATIENT):
        raise InvalidInput("only the invited person answers", code="wrong_actor")
    invitee = actor.id
    job = replace(system_actor("invitation"), on_behalf_of=invitee, name=actor.name or invitee)
    with espace.operation(
        job,
        Action.SYSTEM_JOB,
        event_type="representative.answer",
        source=source,
        space_ins=_check_ins(minor_ins),
    ) as op:
        assert op.space is not None
        row = op.session.execute(
            select(SpaceRepresentative).where(
                SpaceRepresentative.space_id == op.space.id,
                SpaceRepresentative.representative_id == invitee,
                SpaceRepresentative.status == "invited",
            )
        ).scalar_one_or_none()
        if row is None:
            raise NotFound("no pending invitation for this person", code="no_invitation")
        if op.space.status != SpaceStatus.ACTIVE.value and accept:
            raise Conflict("the space is not open", code="wrong_status")
        row.status = "active" if accept else "declined"
        row.ended_at = None if accept else op.now
        op.target = Target("SpaceRepresentative", invitee)
        op.detail = {"representative": invitee, "accepted": accept}
        op.notify(
            "lifecycle",
            f"{row.name or invitee} a {'accepté' if accept else 'refusé'} de gérer le profil de "
            "votre enfant.",
            dedup_key=f"invite-answer:{op.space.id}:{invitee}:{op.now.isoformat()}",
        )


def attach_representative(
    espace: Espace,
    agent: Actor,
    minor_ins: str,
    *,
    representative_ins: str,
    name: str,
    birth_date: date | None,
    email: str | None,
    source: Source,
    kind: str = "legal_representative",
) -> None:
    """The support desk attaches a representative directly (second parent, protection measure)."""
    if agent.kind is not ActorKind.SUPPORT_AGENT:
        raise InvalidInput("only the support desk attaches directly", code="wrong_actor")
    if kind not in REPRESENTATIVE_KINDS:
        raise InvalidInput(f"unknown representative kind {kind!r}", code="invalid_kind")
    rep_ins = _check_ins(representative_ins)
    if birth_date is not None:
        _check_nir_birth(rep_ins, birth_date)
    with espace.operation(
        agent,
        Action.MANAGE_LIFECYCLE,
        event_type="representative.attach",
        source=source,
        space_ins=_check_ins(minor_ins),
    ) as op:
        assert op.space is not None
        if kind == "legal_representative":
            _attach(op, rep_ins, name=name, birth_date=birth_date, email=email, status="active")
        else:
            for old in op.session.execute(
                select(SpaceRepresentative).where(
                    SpaceRepresentative.space_id == op.space.id,
                    SpaceRepresentative.kind == kind,
                    SpaceRepresentative.status == "active",
                )
            ).scalars():
                old.status, old.ended_at = "ended", op.now
            add_representative(
                op.session,
                op.space,
                rep_ins,
                kind=kind,
                now=op.now,
                name=name,
                email=email,
                invited_by=agent.id,
                birth_date=birth_date,
            )
            op.target = Target("SpaceRepresentative", rep_ins)
            op.detail = {"representative": rep_ins, "kind": kind}
        op.notify(
            "lifecycle",
            f"{name or rep_ins} a été rattaché(e) comme représentant(e) par l'assistance.",
            dedup_key=f"attach:{op.space.id}:{rep_ins}:{op.now.isoformat()}",
        )


def list_representatives(
    espace: Espace, actor: Actor, ins: str, *, source: Source
) -> list[dict[str, Any]]:
    with espace.operation(
        actor,
        Action.MANAGE_SETTINGS,
        event_type="representative.list",
        source=source,
        space_ins=_check_ins(ins),
    ) as op:
        assert op.space is not None
        rows = op.session.execute(
            select(SpaceRepresentative)
            .where(SpaceRepresentative.space_id == op.space.id)
            .order_by(SpaceRepresentative.id)
        ).scalars()
        return [
            {
                "ins": r.representative_id,
                "kind": r.kind,
                "status": r.status,
                "name": r.name,
                "invited_by": r.invited_by,
            }
            for r in rows
        ]


# --------------------------------------------------------------------------- jobs
def run_automatic_creation(espace: Espace, *, source: Source | None = None) -> int:
    """Create the spaces whose six-week window ended without opposition (not when bounced)."""
    src = source or Source(face="job")
    cutoff = espace.clock.now() - opposition_period(espace)
    with espace.session_factory() as session:
        due = list(
            session.execute(
                select(PatientSpace.id).where(
                    PatientSpace.status == SpaceStatus.PENDING.value,
                    PatientSpace.enrolment_bounced.is_(False),
                    PatientSpace.enrolment_sent_at <= cutoff,
                )
            ).scalars()
        )
    count = 0
    for space_id in due:
        with suppress(UnknownSpace, IntegrityError):  # another node did it
            with espace.operation(
                system_actor("automatic_creation"),
                Action.SYSTEM_JOB,
                event_type="lifecycle.create",
                source=src,
                space_id=space_id,
            ) as op:
                assert op.space is not None
                _lock(op)
                if op.space.status != SpaceStatus.PENDING.value:
                    continue  # raced with an opposition: nothing to do (an empty success is traced)
                _create(op, "automatic")
                count += 1
    return count


def run_majority(espace: Espace, *, source: Source | None = None) -> tuple[int, int]:
    """At 18 the legal representatives' access ends and they are told; a new adult whose space
    was never created (pending or opposed by the representatives) gets the six-week notice.

    Returns (representatives' accesses ended, spaces re-enrolled).
    """
    src = source or Source(face="job")
    now = espace.clock.now()
    cutoff = _years_before(now.date(), MAJORITY_AGE)
    with espace.session_factory() as session:
        ending = set(
            session.execute(
                select(PatientSpace.id)
                .join(SpaceRepresentative, SpaceRepresentative.space_id == PatientSpace.id)
                .where(
                    PatientSpace.birth_date <= cutoff,
                    SpaceRepresentative.kind == "legal_representative",
                    SpaceRepresentative.status.in_(("active", "invited")),
                )
            ).scalars()
        )
        never_created = set(
            session.execute(
                select(PatientSpace.id)
                .join(SpaceLifecycle, SpaceLifecycle.space_id == PatientSpace.id)
                .where(
                    PatientSpace.birth_date <= cutoff,
                    PatientSpace.status.in_((SpaceStatus.PENDING.value, SpaceStatus.OPPOSED.value)),
                    SpaceLifecycle.enrolled_as_minor.is_(True),
                    SpaceLifecycle.majority_processed_at.is_(None),
                )
            ).scalars()
        )
    ended = reenrolled = 0
    for space_id in sorted(ending | never_created):
        with suppress(UnknownSpace, IntegrityError):  # another node did it
            with espace.operation(
                system_actor("majority"),
                Action.SYSTEM_JOB,
                event_type="lifecycle.majority",
                source=src,
                space_id=space_id,
            ) as op:
                space = op.space
                assert space is not None
                _lock(op)
                op.target = Target("PatientSpace", space.id)
                reps = list(
                    op.session.execute(
                        select(SpaceRepresentative).where(
                            SpaceRepresentative.space_id == space.id,
                            SpaceRepresentative.kind == "legal_representative",
                            SpaceRepresentative.status.in_(("active", "invited")),
                        )
                    ).scalars()
                )
                if reps:
                    emails = [r.email for r in reps if r.email and r.status == "active"]
                    _notify_representatives(
                        op,
                        emails,
                        f"{space.given_names} {space.family_name} a 18 ans depuis le "
                        f"{_fmt(_years_after(space.birth_date, MAJORITY_AGE))} : votre accès à son "
                        "profil Mon espace santé a pris fin.",
                    )
                    for rep in reps:
                        rep.status, rep.ended_at = "ended", op.now
                    ended += len(reps)
                life = _lifecycle_row(op.session, space)
                if space.id in never_created:
                    space.enrolment_sent_at = op.now
                    space.enrolment_bounced = False
                    _set_status(space, SpaceStatus.PENDING, op.now)
                    life.opposed_at, life.opposed_by_kind, life.opposed_by_id = None, "", ""
                    deadline = op.now + opposition_period(espace)
                    _lifecycle_notice(
                        op,
                        "majority-enrolment",
                        "Vous avez 18 ans : votre profil Mon espace santé va être créé. Vous "
                        f"pouvez vous y opposer jusqu'au {_fmt(deadline)} (demandez votre code "
                        "provisoire en ligne ou au 3422).",
                    )
                    reenrolled += 1
                elif space.status == SpaceStatus.ACTIVE.value:
                    _lifecycle_notice(
                        op,
                        "majority",
                        "Vous avez 18 ans : vous gérez désormais seul(e) votre profil Mon espace "
                        "santé ; l'accès de vos représentants légaux a pris fin.",
                    )
                life.majority_processed_at = op.now
                op.detail = {"representatives_ended": [r.representative_id for r in reps]}
    return ended, reenrolled


def _notify_representatives(op: Operation, emails: list[str], body: str) -> None:
    """Queue the majority notice to the representatives themselves (not the new adult)."""
    from espace.notifications import notify

    assert op.space is not None
    row = notify(
        op.session,
        op.space,
        "lifecycle",
        body,
        dedup_key=f"majority-reps:{op.space.id}",
        now=op.now,
    )
    if row is not None:
        row.recipients = "\n".join(emails)


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def _years_after(day: date | None, years: int) -> date:
    assert day is not None
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, month=3, day=1)


def run_purge(espace: Espace, *, source: Source | None = None, progress: bool = False) -> int:
    """Purge the spaces closed (or of persons deceased) more than ten years ago.

    The purge is traced in the service chain (the space's own chain is deleted with it).
    """
    from tqdm import tqdm

    src = source or Source(face="job")
    now = espace.clock.now()
    with espace.session_factory() as session:
        due = list(
            session.execute(
                select(PatientSpace.id)
                .join(SpaceLifecycle, SpaceLifecycle.space_id == PatientSpace.id)
                .where(
                    PatientSpace.status.in_((SpaceStatus.CLOSED.value, SpaceStatus.DELETED.value)),
                    SpaceLifecycle.purge_after.is_not(None),
                    SpaceLifecycle.purge_after <= now,
                )
                .order_by(PatientSpace.id)
            ).scalars()
        )
    count = 0
    for space_id in tqdm(due, desc="purge", unit="space", disable=not progress):
        with suppress(UnknownSpace, IntegrityError):  # another node did it
            with espace.operation(
                system_actor("purge"),
                Action.SYSTEM_JOB,
                event_type="lifecycle.purge",
                source=src,
                space_id=space_id,
            ) as op:
                rows = purge_space_rows(op.session, space_id)
                op.space = op.space_id = None
                op.target = Target("PatientSpace", space_id)
                op.detail = {"rows": rows, "reason": "retention_over"}
                count += 1
    return count


_DAILY: dict[tuple[int, str], tuple[weakref.ref[Espace], date]] = {}


def _first_run_today(espace: Espace, job: str) -> bool:
    """Daily jobs (prevention scans every space) run once a day per process; the scheduler
    calls :func:`run_due_jobs` every minute. Several nodes may each run it once: the campaign
    table's unique key keeps one message per rule and period."""
    today = espace.clock.now().date()
    key = (id(espace), job)
    seen = _DAILY.get(key)
    if seen is not None and seen[0]() is espace and seen[1] == today:
        return False
    _DAILY[key] = (weakref.ref(espace), today)
    return True


def run_due_jobs(
    espace: Espace,
    *,
    progress: bool = False,
    extra: Iterable[tuple[str, Callable[[Espace], int]]] = (),
    force_daily: bool = False,
) -> dict[str, Any]:
    """Run every time-based job once (``mes serve`` calls this every minute; ``mes jobs run``).

    Jobs: automatic creation, majority, purge, prevention campaigns (once a day unless
    ``force_daily``), expiry of exports, plus
    ``extra`` (name, callable) pairs such as the notification digest of ``mes.notifier``.
    One failing job does not stop the others; its error is reported.
    """
    report = JobReport()
    source = Source(face="job")

    def step(name: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except DomainError as exc:  # report and continue with the other jobs
            report.errors.append(f"{name}: {exc.code}")
        except Exception as exc:  # noqa: BLE001 - a scheduler must survive one job's crash
            report.errors.append(f"{name}: {type(exc).__name__}: {exc}")
        return None

    report.created = (
        step("automatic_creation", lambda: run_automatic_creation(espace, source=source)) or 0
    )
    majority = step("majority", lambda: run_majority(espace, source=source)) or (0, 0)
    report.majority, report.reenrolled = majority
    report.purged = step("purge", lambda: run_purge(espace, source=source, progress=progress)) or 0

    from espace import export, prevention

    if force_daily or _first_run_today(espace, "prevention"):
        report.prevention = (
            step("prevention", lambda: prevention.run_campaigns(espace, source=source)) or 0
        )
    report.exports_expired = step("exports", lambda: export.expire_exports(espace)) or 0
    result = report.as_dict()
    for name, fn in extra:
        result[name] = step(name, lambda fn=fn: fn(espace))  # type: ignore[misc]
    result["errors"] = list(report.errors)
    return result


def get_space_or_raise(session: Session, ins: str) -> PatientSpace:
    space = find_space_by_ins(session, ins)
    if space is None:
        raise UnknownSpace(f"no space for {ins}")
    return space


def age_of(space: PatientSpace, now: datetime) -> int | None:
    return age_on(space.birth_date, now.date()) if space.birth_date else None
