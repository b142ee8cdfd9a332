"""Tables of the patient's secure mailbox (MSSanté "messagerie de santé" of Mon espace santé;
ANS Référentiel socle MSSanté #2). Every table carries ``space_id``.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from espace.db import Base
from espace.models import Timestamp

PHARMACY_WINDOW = timedelta(days=365)
DEFAULT_RETENTION_YEARS = 10

# Conversation counterpart kinds
PROFESSIONAL = "professional"
ESTABLISHMENT = "establishment"
APPLICATION = "application"
PHARMACY = "pharmacy"
SYSTEM = "system"


def new_id() -> str:
    return uuid.uuid4().hex


# ----------------------------------------------------------------------------- tables
class MailConversation(Base):
    """A thread between the patient and one correspondent."""

    __tablename__ = "mail_conversation"
    __table_args__ = (Index("ix_mail_conversation_space_last", "space_id", "last_message_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    space_id: Mapped[str] = mapped_column(ForeignKey("patient_space.id"))
    subject: Mapped[str] = mapped_column(String(400), default="")
    counterpart_address: Mapped[str] = mapped_column(String(320))
    counterpart_name: Mapped[str] = mapped_column(String(200), default="")
    counterpart_kind: Mapped[str] = mapped_column(String(16), default=PROFESSIONAL)
    started_by: Mapped[str] = mapped_column(String(16))  # professional | patient | system
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | closed
    closed_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    closed_by: Mapped[str] = mapped_column(String(320), default="")
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    last_message_at: Mapped[datetime] = mapped_column(Timestamp)


class MailMessage(Base):
    """One message of a conversation: inbound (received), outbound (patient's) or system."""

    __tablename__ = "mail_message"
    __table_args__ = (
        UniqueConstraint("space_id", "message_id"),
        Index("ix_mail_message_conversation", "space_id", "conversation_id"),
        Index("ix_mail_message_expiry", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    space_id: Mapped[str] = mapped_column(ForeignKey("patient_space.id"))
    conversation_id: Mapped[str] = mapped_column(ForeignKey("mail_conversation.id"))
    direction: Mapped[str] = mapped_column(String(16))  # inbound | outbound | system
    message_id: Mapped[str] = mapped_column(String(250))  # RFC 5322 Message-ID, no brackets
    in_reply_to: Mapped[str] = mapped_column(String(250), default="")
    references: Mapped[str] = mapped_column(Text, default="")  # space separated
    from_address: Mapped[str] = mapped_column(String(320))
    from_name: Mapped[str] = mapped_column(String(200), default="")
    to_addresses: Mapped[str] = mapped_column(Text, default="")  # one per line
    reply_to: Mapped[str] = mapped_column(String(320), default="")
    subject: Mapped[str] = mapped_column(String(400), default="")
    body_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    x_mss: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    no_reply: Mapped[bool] = mapped_column(Boolean, default=False)
    no_reply_reason: Mapped[str] = mapped_column(String(32), default="")
    disposition_notification_to: Mapped[str] = mapped_column(String(320), default="")
    mdn_sent: Mapped[bool] = mapped_column(Boolean, default=False)
    read_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    received_at: Mapped[datetime] = mapped_column(Timestamp)
    expires_at: Mapped[datetime] = mapped_column(Timestamp)
    # outbound: queued | sent | failed; then displayed | processed | error from the MDN
    delivery_status: Mapped[str] = mapped_column(String(16), default="")
    delivery_detail: Mapped[str] = mapped_column(Text, default="")
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    # the message as received: written by sessions 1-2 only; new messages keep their decoded
    # parts, not this copy (espace.mailbox.intake.deliver)
    raw_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class MailAttachment(Base):
    """An attachment's bytes, encrypted at rest (AES-GCM bound to space and attachment)."""

    __tablename__ = "mail_attachment"
    __table_args__ = (Index("ix_mail_attachment_message", "space_id", "message_row_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    space_id: Mapped[str] = mapped_column(ForeignKey("patient_space.id"))
    message_row_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    draft_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    filename: Mapped[str] = mapped_column(String(255), default="")
    content_type: Mapped[str] = mapped_column(String(128), default="application/octet-stream")
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    sha1: Mapped[str] = mapped_column(String(40), default="")
    encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    is_xdm: Mapped[bool] = mapped_column(Boolean, default=False)
    xdm: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # parsed XDM metadata
    saved_document_ids: Mapped[str] = mapped_column(Text, default="")  # flat uniqueIds


class MailDraft(Base):
    __tablename__ = "mail_draft"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    space_id: Mapped[str] = mapped_column(ForeignKey("patient_space.id"), index=True)
    conversation_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    to_address: Mapped[str] = mapped_column(String(320), default="")
    subject: Mapped[str] = mapped_column(String(400), default="")
    body_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    references_json: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)


class MailOutbound(Base):
    """The durable outbound queue (replies, MDNs, DSNs) drained by ``mssante.outbound``."""

    __tablename__ = "mail_outbound"
    __table_args__ = (
        Index("ix_mail_outbound_due", "status", "next_attempt_at"),
        UniqueConstraint("message_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    space_id: Mapped[str] = mapped_column(ForeignKey("patient_space.id"), index=True)
    message_row_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    kind: Mapped[str] = mapped_column(String(8))  # reply | mdn | dsn
    message_id: Mapped[str] = mapped_column(String(250))  # stable: receivers dedupe on it
    mail_from: Mapped[str] = mapped_column(String(320))
    rcpt_to: Mapped[str] = mapped_column(String(320))
    raw_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    # pending | sending | sent | failed
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(Timestamp)
    lease_until: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    sent_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)


class PharmacyVisit(Base):
    """A community pharmacy of the patient's reimbursement history (dispensation date)."""

    __tablename__ = "mail_pharmacy_visit"
    __table_args__ = (Index("ix_mail_pharmacy_visit_space", "space_id", "pharmacy_address"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    space_id: Mapped[str] = mapped_column(ForeignKey("patient_space.id"))
    pharmacy_address: Mapped[str] = mapped_column(String(320))
    pharmacy_name: Mapped[str] = mapped_column(String(200), default="")
    structure_id: Mapped[str] = mapped_column(String(64), default="")  # FINESS / Struct_IdNat
    dispensed_on: Mapped[date] = mapped_column(Date)
    recorded_at: Mapped[datetime] = mapped_column(Timestamp)


class MailBlock(Base):
    """A professional who blocked this patient (abuse): the patient can no longer write."""

    __tablename__ = "mail_block"
    __table_args__ = (UniqueConstraint("space_id", "counterpart_address"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    space_id: Mapped[str] = mapped_column(ForeignKey("patient_space.id"))
    counterpart_address: Mapped[str] = mapped_column(String(320))
    reason: Mapped[str] = mapped_column(String(400), default="")
    blocked_at: Mapped[datetime] = mapped_column(Timestamp)
