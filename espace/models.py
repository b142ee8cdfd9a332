"""Typed SQLAlchemy 2 models of the patient space.

Every table holding patient data carries ``space_id``: it is the partition key when the
store outgrows one node (see docs/scaling.md), and every query filters by it.
Multi-valued codes used in SQL filters are stored flat as ``|a|b|`` so that a visibility
predicate is one portable ``LIKE`` per code (see ``espace.store.visibility_clause``).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from espace.db import Base

Timestamp = DateTime(timezone=True)


def flat(values: Any) -> str:
    """Encode codes as ``|a|b|`` for LIKE-based filtering ('' when empty)."""
    items = sorted({str(v) for v in values if v})
    return "|" + "|".join(items) + "|" if items else ""


def unflat(value: str | None) -> frozenset[str]:
    return frozenset(v for v in (value or "").split("|") if v)


class PatientSpace(Base):
    """One person's space: identity from the INS, status, and the patient's settings."""

    __tablename__ = "patient_space"
    __table_args__ = (
        # TD0.5 patient search without INS (espace.registry.authorizations.search_patients):
        # names compare upper-cased, so the index is on the expression; the birth date
        # narrows given-name searches
        Index("ix_patient_space_family_name_upper", func.upper(text("family_name"))),
        Index("ix_patient_space_birth_date", "birth_date"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    ins: Mapped[str] = mapped_column(String(15), unique=True)  # matricule INS (NIR + key)
    ins_oid: Mapped[str] = mapped_column(String(64), default="1.2.250.1.213.1.4.8")
    family_name: Mapped[str] = mapped_column(String(200), default="")
    given_names: Mapped[str] = mapped_column(String(200), default="")
    birth_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    sex: Mapped[str] = mapped_column(String(1), default="U")  # M | F | U
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(40), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="active", index=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    status_changed_at: Mapped[datetime] = mapped_column(Timestamp)
    activated_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    death_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    # enrolment (opt-out): one-time code valid six weeks, letter/e-mail bounce
    enrolment_code_hash: Mapped[str | None] = mapped_column(String(128), nullable=True)
    enrolment_sent_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    enrolment_bounced: Mapped[bool] = mapped_column(Boolean, default=False)
    is_protected_adult: Mapped[bool] = mapped_column(Boolean, default=False)
    # settings
    medecin_traitant_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    break_glass_allowed: Mapped[bool] = mapped_column(Boolean, default=True)
    regulation_allowed: Mapped[bool] = mapped_column(Boolean, default=True)
    auto_unmask_in_emergency: Mapped[bool] = mapped_column(Boolean, default=False)
    prevention_opposed: Mapped[bool] = mapped_column(Boolean, default=False)


class Professional(Base):
    """Directory of professionals known to the server (names for traces and the patient)."""

    __tablename__ = "professional"
    # the SMTP intake finds the sender by lower(mssante_address) for every message
    __table_args__ = (
        Index("ix_professional_mssante_address_lower", func.lower(text("mssante_address"))),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # PS_IdNat
    name: Mapped[str] = mapped_column(String(200), default="")
    profession: Mapped[str | None] = mapped_column(String(8), nullable=True)  # TRE_G15
    specialty: Mapped[str | None] = mapped_column(String(16), nullable=True)
    structure_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    mssante_address: Mapped[str | None] = mapped_column(String(320), nullable=True)


class SpaceProfessionalLink(Base):
    """A relation between a space and a professional (or a structure, for indirect mode).

    ``kind``: ``authorized`` (TD0.3 declaration), ``authorized_structure``, ``blocked``,
    ``feeding_opposed``. A removed link is deleted (the trace keeps the history).
    """

    __tablename__ = "space_professional_link"
    __table_args__ = (UniqueConstraint("space_id", "professional_id", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    space_id: Mapped[str] = mapped_column(ForeignKey("patient_space.id"), index=True)
    professional_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    declared_by: Mapped[str] = mapped_column(String(64), default="")
    declared_at: Mapped[datetime] = mapped_column(Timestamp)


class SpaceRepresentative(Base):
    """A legal representative of a minor (at most two) or a protected adult's representative."""

    __tablename__ = "space_representative"
    __table_args__ = (UniqueConstraint("space_id", "representative_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    space_id: Mapped[str] = mapped_column(ForeignKey("patient_space.id"), index=True)
    representative_id: Mapped[str] = mapped_column(String(64), index=True)  # their INS
    kind: Mapped[str] = mapped_column(String(40))  # legal_representative | protected_adult_...
    status: Mapped[str] = mapped_column(
        String(16), default="active"
    )  # invited|active|declined|ended
    name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    birth_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    invited_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    ended_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)


class ReferencedApp(Base):
    """An app of the MES catalogue (registration, OID, allowed purposes, status)."""

    __tablename__ = "referenced_app"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    oid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    allowed_purposes: Mapped[str] = mapped_column(String(400), default="")  # flat
    redirect_uris: Mapped[str] = mapped_column(Text, default="")  # one per line
    status: Mapped[str] = mapped_column(String(16), default="referenced")  # | dereferenced
    created_at: Mapped[datetime] = mapped_column(Timestamp)


class AppConsent(Base):
    """The patient's pairing of an app, per purpose (read/write per brick)."""

    __tablename__ = "app_consent"
    __table_args__ = (Index("ix_app_consent_space_app", "space_id", "app_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    space_id: Mapped[str] = mapped_column(ForeignKey("patient_space.id"))
    app_id: Mapped[str] = mapped_column(ForeignKey("referenced_app.id"))
    purposes: Mapped[str] = mapped_column(String(400))  # flat
    granted_by: Mapped[str] = mapped_column(String(64))
    granted_at: Mapped[datetime] = mapped_column(Timestamp)
    withdrawn_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)


# ----------------------------------------------------------------------------- registry
class SubmissionSetRow(Base):
    __tablename__ = "submission_set"

    entry_uuid: Mapped[str] = mapped_column(String(80), primary_key=True)
    space_id: Mapped[str] = mapped_column(ForeignKey("patient_space.id"), index=True)
    unique_id: Mapped[str] = mapped_column(String(128), unique=True)
    source_id: Mapped[str] = mapped_column(String(128), default="")
    submission_time: Mapped[datetime] = mapped_column(Timestamp)
    content_type_code: Mapped[str] = mapped_column(String(64), default="")
    author_ids: Mapped[str] = mapped_column(Text, default="")  # flat
    status: Mapped[str] = mapped_column(String(16), default="Approved")
    metadata_json: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class DocumentEntryRow(Base):
    """An XDS DocumentEntry (stable or on-demand), shared by XDS, FHIR MHD and the mailbox."""

    __tablename__ = "document_entry"
    __table_args__ = (
        Index("ix_document_entry_space_status", "space_id", "status"),
        Index("ix_document_entry_space_logical", "space_id", "logical_id"),
        Index("ix_document_entry_unique", "unique_id"),
    )

    entry_uuid: Mapped[str] = mapped_column(String(80), primary_key=True)
    space_id: Mapped[str] = mapped_column(ForeignKey("patient_space.id"))
    logical_id: Mapped[str] = mapped_column(String(80))
    version: Mapped[int] = mapped_column(Integer, default=1)
    unique_id: Mapped[str] = mapped_column(String(128))
    repository_unique_id: Mapped[str] = mapped_column(String(128), default="")
    status: Mapped[str] = mapped_column(String(16), default="Approved")
    type_code: Mapped[str] = mapped_column(String(64), default="")
    type_code_system: Mapped[str] = mapped_column(String(64), default="")
    class_code: Mapped[str] = mapped_column(String(64), default="")
    format_code: Mapped[str] = mapped_column(String(128), default="")
    practice_setting_code: Mapped[str] = mapped_column(String(64), default="")
    healthcare_facility_type_code: Mapped[str] = mapped_column(String(64), default="")
    confidentiality_codes: Mapped[str] = mapped_column(String(400), default="")  # flat
    event_codes: Mapped[str] = mapped_column(Text, default="")  # flat "code^scheme"
    author_ids: Mapped[str] = mapped_column(Text, default="")  # flat PS_IdNat / INS
    author_structure_ids: Mapped[str] = mapped_column(Text, default="")  # flat
    author_persons: Mapped[str] = mapped_column(Text, default="")  # flat XCN values
    creation_time: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    service_start_time: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    service_stop_time: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    submission_time: Mapped[datetime] = mapped_column(Timestamp)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)
    mime_type: Mapped[str] = mapped_column(String(128), default="")
    hash: Mapped[str] = mapped_column(String(64), default="")  # SHA-1 hex, per XDS.b
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    title: Mapped[str] = mapped_column(String(400), default="")
    language_code: Mapped[str] = mapped_column(String(16), default="")
    object_type: Mapped[str] = mapped_column(
        String(64), default="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
    )
    added_by_patient: Mapped[bool] = mapped_column(Boolean, default=False)
    origin: Mapped[str] = mapped_column(String(16), default="xds")  # xds | fhir | mail
    submission_set_uuid: Mapped[str | None] = mapped_column(String(80), nullable=True)
    metadata_json: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # the entry's wire form, rendered on every change (``espace.registry.prerender``); only
    # the stored-query path loads it
    ebrim: Mapped[str | None] = mapped_column(Text, nullable=True, deferred=True)


class DocumentContent(Base):
    """The repository: document bytes, encrypted at rest (AES-GCM), one row per uniqueId."""

    __tablename__ = "document_content"
    __table_args__ = (UniqueConstraint("repository_unique_id", "unique_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    space_id: Mapped[str] = mapped_column(ForeignKey("patient_space.id"), index=True)
    repository_unique_id: Mapped[str] = mapped_column(String(128))
    unique_id: Mapped[str] = mapped_column(String(128))
    mime_type: Mapped[str] = mapped_column(String(128))
    hash: Mapped[str] = mapped_column(String(64))  # SHA-1 hex of the plaintext
    size: Mapped[int] = mapped_column(BigInteger)
    stored_at: Mapped[datetime] = mapped_column(Timestamp)
    # last column: SQLite inserts a trailing zeroblob without expanding it, so the ciphertext
    # is written in place piece by piece (espace.registry.content_store, migration 0004)
    encrypted: Mapped[bytes] = mapped_column(LargeBinary)


class FolderRow(Base):
    __tablename__ = "folder"

    entry_uuid: Mapped[str] = mapped_column(String(80), primary_key=True)
    space_id: Mapped[str] = mapped_column(ForeignKey("patient_space.id"), index=True)
    unique_id: Mapped[str] = mapped_column(String(128), unique=True)
    logical_id: Mapped[str] = mapped_column(String(80), default="")
    version: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16), default="Approved")
    code_list: Mapped[str] = mapped_column(Text, default="")  # flat "code^scheme"
    last_update_time: Mapped[datetime] = mapped_column(Timestamp)
    metadata_json: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class AssociationRow(Base):
    __tablename__ = "association"
    __table_args__ = (
        Index("ix_association_source", "space_id", "source_uuid"),
        Index("ix_association_target", "space_id", "target_uuid"),
    )

    entry_uuid: Mapped[str] = mapped_column(String(80), primary_key=True)
    space_id: Mapped[str] = mapped_column(ForeignKey("patient_space.id"))
    association_type: Mapped[str] = mapped_column(String(128))
    source_uuid: Mapped[str] = mapped_column(String(80))
    target_uuid: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(16), default="Approved")
    metadata_json: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


# ----------------------------------------------------------------------------- trace
class TraceRecord(Base):
    """The one append-only trace: every operation on every face, permitted or denied.

    Tamper-evident: ``hash`` = SHA-256 over the canonical record and ``prev_hash`` (a chain per
    space, ``space_key`` '-' for operations on no space); checkpoints sign chain heads.
    """

    __tablename__ = "trace_record"
    __table_args__ = (
        UniqueConstraint("space_key", "seq"),
        Index("ix_trace_record_space_time", "space_key", "recorded_at"),
        Index("ix_trace_record_space_actor", "space_key", "actor_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    space_key: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    recorded_at: Mapped[datetime] = mapped_column(Timestamp)
    event_type: Mapped[str] = mapped_column(String(64))  # e.g. ITI-41, rest.read, smtp.deliver
    action: Mapped[str] = mapped_column(String(64))
    actor_kind: Mapped[str] = mapped_column(String(40))
    actor_id: Mapped[str] = mapped_column(String(128))
    actor_name: Mapped[str] = mapped_column(String(200), default="")
    actor_profession: Mapped[str] = mapped_column(String(8), default="")
    actor_specialty: Mapped[str] = mapped_column(String(16), default="")
    actor_structure: Mapped[str] = mapped_column(String(64), default="")
    authentication_mode: Mapped[str] = mapped_column(String(32), default="")
    on_behalf_of: Mapped[str] = mapped_column(String(64), default="")
    access_mode: Mapped[str] = mapped_column(String(16), default="normal")
    declared_reason: Mapped[str] = mapped_column(String(400), default="")
    target_type: Mapped[str] = mapped_column(String(64), default="")
    target_id: Mapped[str] = mapped_column(String(200), default="")
    document_type: Mapped[str] = mapped_column(String(64), default="")
    decision: Mapped[str] = mapped_column(String(8))  # permit | deny
    rule_id: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(400), default="")
    outcome: Mapped[str] = mapped_column(String(16))  # success | failure | denied
    error_code: Mapped[str] = mapped_column(String(128), default="")
    request_id: Mapped[str] = mapped_column(String(80), default="")
    source_face: Mapped[str] = mapped_column(String(16), default="")
    source_address: Mapped[str] = mapped_column(String(64), default="")
    software: Mapped[str] = mapped_column(String(200), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class TraceHead(Base):
    """The last link of each space's chain, locked for update to append (no forks)."""

    __tablename__ = "trace_head"

    space_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class TraceCheckpoint(Base):
    """An Ed25519 signature over a chain head: deleting the tail of a chain is detected."""

    __tablename__ = "trace_checkpoint"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    space_key: Mapped[str] = mapped_column(String(64), index=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime] = mapped_column(Timestamp)
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))  # base64


# ----------------------------------------------------------------------------- notifications
class NotificationOutbox(Base):
    """E-mails to the patient, written in the same transaction as the event they announce."""

    __tablename__ = "notification_outbox"
    __table_args__ = (Index("ix_notification_outbox_pending", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    space_id: Mapped[str] = mapped_column(ForeignKey("patient_space.id"), index=True)
    dedup_key: Mapped[str] = mapped_column(String(200), unique=True)
    category: Mapped[str] = mapped_column(String(40))
    immediate: Mapped[bool] = mapped_column(Boolean)
    recipients: Mapped[str] = mapped_column(Text)  # one address per line
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    status: Mapped[str] = mapped_column(
        String(16), default="pending"
    )  # pending|sent|digested|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(Timestamp)
    sent_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
