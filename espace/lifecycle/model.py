"""Tables, constants and result types of the space lifecycle (CSP L.1111-14, R.1111-26 to
R.1111-43; décret 2021-1048 for the six-week opposition period; CSP R.1111-36 for retention)."""

from __future__ import annotations

from dataclasses import dataclass, field
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
)
from sqlalchemy.orm import Mapped, mapped_column

from espace.clock import as_utc
from espace.db import Base
from habilitation.model import ActorKind

Timestamp = DateTime(timezone=True)

OPPOSITION_PERIOD = timedelta(weeks=6)  # décret 2021-1048
CODE_VALIDITY = timedelta(weeks=6)
RETENTION_YEARS = 10  # CSP R.1111-36
# Guessing the one-time code (OWASP ASVS 4.0.3 V2.2.1, NIST SP 800-63B 5.2.2, ANSSI
# "Recommandations relatives à l'authentification multifacteur et aux mots de passe" 2021:
# temporisation rather than a hard lock). Arithmetic in docs/lifecycle.md.
CODE_FREE_ATTEMPTS = 3  # per requester, before the back-off starts
CODE_BACKOFF_BASE = timedelta(minutes=1)  # then 1, 2, 4 ... minutes between attempts
CODE_BACKOFF_MAX = timedelta(hours=1)
CODE_REQUESTER_MEMORY = timedelta(hours=24)  # a requester quiet this long starts afresh
CODE_SPACE_ATTEMPTS_PER_HOUR = 30  # every requester together, per space (fixed hour window)
NEW_CODE_PER_ADDRESS_PER_HOUR = 10  # "send me a new code" requests from one address
NEW_CODE_PER_SPACE_PER_DAY = 3  # codes sent to one person on request, per 24 h window
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


class AttemptCounter(Base):
    """A throttling counter (one-time code guesses, new-code requests): a fixed window with the
    time of the last counted attempt and of the last lock notice (``espace.lifecycle.throttle``).
    Keys name the INS or the requester's address, never a secret; rows are forgotten two
    days after their last use."""

    __tablename__ = "attempt_counter"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(Timestamp)
    count: Mapped[int] = mapped_column(Integer, default=0)
    last_at: Mapped[datetime] = mapped_column(Timestamp, index=True)
    notified_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)


class CodeLetter(Base):
    """A new one-time code waiting for the insurer's print run (a person with no e-mail on
    file): the code is sealed with the document cipher until ``mes space letters`` prints it,
    then erased."""

    __tablename__ = "code_letter"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    space_id: Mapped[str] = mapped_column(ForeignKey("patient_space.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    expires_at: Mapped[datetime] = mapped_column(Timestamp)
    printed_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    sealed: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class ExportArchive(Base):
    """An encrypted export (espace.export): requested (``pending``), built by the job worker
    (``ready``, downloadable with its link until it expires), then ``expired``; ``failed``
    after three failed builds."""

    __tablename__ = "export_archive"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    space_id: Mapped[str] = mapped_column(ForeignKey("patient_space.id"), index=True)
    requested_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    expires_at: Mapped[datetime] = mapped_column(Timestamp, index=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer, default=0)
    # pending | ready | failed | expired
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    downloads: Mapped[int] = mapped_column(Integer, default=0)
    blob: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # the requester as the policy saw them (JSON): the job builds the export as they see it
    requester: Mapped[str] = mapped_column(Text, default="")
    public_key: Mapped[str] = mapped_column(String(64), default="")  # X25519, hex
    ready_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    documents: Mapped[int] = mapped_column(Integer, default=0)
    resources: Mapped[int] = mapped_column(Integer, default=0)


# --------------------------------------------------------------------------- inputs and results
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


@dataclass(frozen=True, slots=True)
class Enrolment:
    space_id: str
    ins: str
    code: str  # shown once (letter / e-mail); only its hash is stored
    expires_at: datetime
    opposition_deadline: datetime


@dataclass(frozen=True, slots=True)
class CodeDelivery:
    """A new code sent to the contact channel on file (the code itself is not in here)."""

    space_id: str
    channel: str  # email | letter
    expires_at: datetime


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
    exports_built: int = 0
    exports_expired: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "majority": self.majority,
            "reenrolled": self.reenrolled,
            "purged": self.purged,
            "prevention": self.prevention,
            "exports_built": self.exports_built,
            "exports_expired": self.exports_expired,
            "errors": list(self.errors),
        }
