"""The patient's secure mailbox (MSSanté "messagerie de santé" of Mon espace santé).

Tables (every one carries ``space_id``) and the conversation rules, as plain use cases that run
inside one ``Espace.operation`` (the face authenticated the caller and the PDP already said yes):

- only a professional or an establishment starts a conversation; the patient only replies,
  except to a community pharmacy of their reimbursement history of the last 12 months
  (``PharmacyVisit``, fed by the back office);
- ``X-MSS-MES: FIN`` (ANS Référentiel socle MSSanté #2, ECO.2.2.8): the patient may not reply;
- a professional may end a conversation or block an abusive patient (the patient is told);
- application mailboxes (RFC 3834 ``Auto-Submitted``) and system messages cannot be answered;
- nothing leaves the trust space (configured operator domains);
- messages are kept ``MAIL_RETENTION_YEARS`` (10) years; deleting a conversation deletes it here;
- each new message notifies the patient at once (``new_message``).

No wire format here: the SMTP face turns MIME into :class:`InboundMessage`, and renders the
patient's outgoing mail through a ``render`` callable it passes in.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
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
    delete,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from espace.clock import as_utc
from espace.crypto import DocumentCipher
from espace.db import Base
from espace.errors import DomainError, InvalidInput, NotFound
from espace.models import PatientSpace, Professional, Timestamp
from espace.trace import Target

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


# ----------------------------------------------------------------------------- inputs
@dataclass(frozen=True, slots=True)
class InboundAttachment:
    filename: str
    content_type: str
    content: bytes
    xdm: Mapping[str, Any] | None = None  # parsed, checked IHE XDM metadata (mssante.xdm)


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A parsed RFC 5322 message, as the SMTP face hands it to the use case."""

    message_id: str
    from_address: str
    from_name: str
    to_addresses: tuple[str, ...]
    subject: str
    body_text: str
    raw: bytes
    x_mss: Mapping[str, str] = field(default_factory=dict)
    in_reply_to: str = ""
    references: tuple[str, ...] = ()
    reply_to: str = ""
    disposition_notification_to: str = ""
    auto_submitted: bool = False
    attachments: tuple[InboundAttachment, ...] = ()
    # the INS the attachments identify (XDM patientId / CDA recordTarget), for the owner check
    identified_ins: frozenset[str] = frozenset()
    # receipts (RFC 8098 MDN / RFC 3464 DSN) about a message we sent
    report_type: str = ""  # "" | disposition-notification | delivery-status
    report_original_message_id: str = ""
    report_status: str = ""  # displayed | processed | error | failed | delivered
    report_detail: str = ""


@dataclass(frozen=True, slots=True)
class OutgoingMail:
    """What the face renders to MIME for the patient's reply / new message / MDN."""

    message_id: str
    from_address: str
    to_address: str
    subject: str
    body_text: str
    in_reply_to: str = ""
    references: tuple[str, ...] = ()
    attachments: tuple[tuple[str, str, bytes], ...] = ()  # filename, content type, bytes
    date: datetime | None = None


Renderer = Callable[[OutgoingMail], bytes]


@dataclass(frozen=True, slots=True)
class MailSettings:
    domain: str = "patient.mssante.fr"
    trust_domains: tuple[str, ...] = ("operateur.test.mssante.fr", "mssante.fr")
    retention_years: int = DEFAULT_RETENTION_YEARS

    @classmethod
    def from_mapping(cls, settings: Mapping[str, Any]) -> MailSettings:
        trust = str(settings.get("MAIL_TRUST_DOMAINS") or "operateur.test.mssante.fr,mssante.fr")
        return cls(
            domain=str(settings.get("MAIL_DOMAIN") or "patient.mssante.fr").lower(),
            trust_domains=tuple(d.strip().lower() for d in trust.split(",") if d.strip()),
            retention_years=int(settings.get("MAIL_RETENTION_YEARS") or DEFAULT_RETENTION_YEARS),
        )

    def in_trust_space(self, address: str) -> bool:
        """True when ``address``'s domain is a trust domain or one of its subdomains."""
        domain = address.rpartition("@")[2].strip().lower().rstrip(">")
        if not domain or "@" not in address:
            return False
        return any(domain == d or domain.endswith("." + d) for d in self.trust_domains)

    def patient_address(self, ins: str) -> str:
        return f"{ins}@{self.domain}"

    def new_message_id(self) -> str:
        return f"{uuid.uuid4().hex}@{self.domain}"


class MailRefused(DomainError):
    """A mailbox rule refused the request; ``code`` names the rule (tests assert on it)."""

    code = "mail_refused"


# ----------------------------------------------------------------------------- helpers
def _enc(cipher: DocumentCipher, data: bytes, space_id: str, kind: str, object_id: str) -> bytes:
    return cipher.encrypt(data, space_id=space_id, object_id=f"mail-{kind}/{object_id}")


def _dec(cipher: DocumentCipher, blob: bytes, space_id: str, kind: str, object_id: str) -> bytes:
    return cipher.decrypt(blob, space_id=space_id, object_id=f"mail-{kind}/{object_id}")


def message_body(cipher: DocumentCipher, row: MailMessage) -> str:
    return _dec(cipher, row.body_encrypted, row.space_id, "body", row.id).decode("utf-8")


def draft_body(cipher: DocumentCipher, row: MailDraft) -> str:
    return _dec(cipher, row.body_encrypted, row.space_id, "draft", row.id).decode("utf-8")


def attachment_bytes(cipher: DocumentCipher, row: MailAttachment) -> bytes:
    return _dec(cipher, row.encrypted, row.space_id, "att", row.id)


def outbound_bytes(cipher: DocumentCipher, row: MailOutbound) -> bytes:
    return _dec(cipher, row.raw_encrypted, row.space_id, "out", row.id)


def _years_later(when: datetime, years: int) -> datetime:
    try:
        return when.replace(year=when.year + years)
    except ValueError:  # 29 February
        return when.replace(year=when.year + years, day=28)


def _store_attachment(
    session: Session,
    cipher: DocumentCipher,
    space_id: str,
    filename: str,
    content_type: str,
    content: bytes,
    *,
    position: int,
    message_row_id: str | None = None,
    draft_id: str | None = None,
    xdm: Mapping[str, Any] | None = None,
) -> MailAttachment:
    att_id = new_id()
    row = MailAttachment(
        id=att_id,
        space_id=space_id,
        message_row_id=message_row_id,
        draft_id=draft_id,
        position=position,
        filename=filename[:255],
        content_type=content_type[:128] or "application/octet-stream",
        size=len(content),
        sha1=hashlib.sha1(content).hexdigest(),  # noqa: S324 - XDS hash is SHA-1
        encrypted=_enc(cipher, content, space_id, "att", att_id),
        is_xdm=xdm is not None,
        xdm=dict(xdm or {}),
    )
    session.add(row)
    return row


def counterpart_kind(session: Session, address: str, *, auto_submitted: bool) -> str:
    """Classify a correspondent: application mailbox, establishment, pharmacy or professional."""
    if auto_submitted:
        return APPLICATION
    prof = (
        session.execute(
            select(Professional).where(func.lower(Professional.mssante_address) == address.lower())
        )
        .scalars()
        .first()
    )
    if prof is not None and not prof.profession:
        return ESTABLISHMENT  # an organisational mailbox of the directory (no profession)
    return PROFESSIONAL


# ----------------------------------------------------------------------------- delivery
@dataclass(frozen=True, slots=True)
class Delivered:
    message_row_id: str
    conversation_id: str
    duplicate: bool = False
    receipt: bool = False


def deliver(
    session: Session,
    space: PatientSpace,
    message: InboundMessage,
    *,
    cipher: DocumentCipher,
    settings: MailSettings,
    now: datetime,
    notify: Callable[[str, str, str], None],
) -> Delivered:
    """Store one inbound message in ``space``'s mailbox (MSSanté reception, idempotent).

    A second delivery of the same Message-ID (a sender retrying after a lost 250) is answered
    without storing anything again. Refuses a message whose attachments identify another
    patient by INS (ANS applicationErrorCondition 904).
    """
    if not message.message_id:
        raise InvalidInput("message without Message-ID", code="no_message_id")
    existing = session.execute(
        select(MailMessage).where(
            MailMessage.space_id == space.id, MailMessage.message_id == message.message_id
        )
    ).scalar_one_or_none()
    if existing is not None:
        return Delivered(existing.id, existing.conversation_id, duplicate=True)
    other = {ins for ins in message.identified_ins if ins != space.ins}
    if other:
        raise MailRefused(
            "the INS in the attached documents is not the mailbox owner's", code="904"
        )
    if message.report_type:
        return _apply_receipt(session, space, message, now=now)
    conversation = _thread_of(session, space.id, message)
    kind = counterpart_kind(session, message.from_address, auto_submitted=message.auto_submitted)
    if conversation is None:
        conversation = MailConversation(
            id=new_id(),
            space_id=space.id,
            subject=message.subject[:400],
            counterpart_address=message.from_address.lower(),
            counterpart_name=message.from_name[:200],
            counterpart_kind=kind,
            started_by=PROFESSIONAL,
            status="open",
            created_at=now,
            last_message_at=now,
        )
        session.add(conversation)
    conversation.last_message_at = now
    fin = message.x_mss.get("X-MSS-MES", "").strip().upper() == "FIN"
    no_reply_reason = "fin" if fin else ("application_mailbox" if kind == APPLICATION else "")
    row_id = new_id()
    row = MailMessage(
        id=row_id,
        space_id=space.id,
        conversation_id=conversation.id,
        direction="inbound",
        message_id=message.message_id[:250],
        in_reply_to=message.in_reply_to[:250],
        references=" ".join(message.references),
        from_address=message.from_address.lower(),
        from_name=message.from_name[:200],
        to_addresses="\n".join(message.to_addresses),
        reply_to=message.reply_to[:320],
        subject=message.subject[:400],
        body_encrypted=_enc(cipher, message.body_text.encode(), space.id, "body", row_id),
        x_mss=dict(message.x_mss),
        no_reply=bool(no_reply_reason),
        no_reply_reason=no_reply_reason,
        disposition_notification_to=message.disposition_notification_to[:320],
        received_at=now,
        expires_at=_years_later(now, settings.retention_years),
        size=len(message.raw),
        raw_encrypted=_enc(cipher, message.raw, space.id, "raw", row_id),
    )
    session.add(row)
    for position, att in enumerate(message.attachments):
        _store_attachment(
            session,
            cipher,
            space.id,
            att.filename,
            att.content_type,
            att.content,
            position=position,
            message_row_id=row_id,
            xdm=att.xdm,
        )
    sender = message.from_name or message.from_address
    notify(
        "new_message",
        f"Vous avez reçu un nouveau message de {sender} dans votre messagerie de santé.",
        f"new_message:{space.id}:{message.message_id}",
    )
    return Delivered(row_id, conversation.id)


def _thread_of(session: Session, space_id: str, message: InboundMessage) -> MailConversation | None:
    ids = [i for i in (message.in_reply_to, *message.references) if i]
    if not ids:
        return None
    conversation_id = session.execute(
        select(MailMessage.conversation_id)
        .where(MailMessage.space_id == space_id, MailMessage.message_id.in_(ids))
        .limit(1)
    ).scalar_one_or_none()
    if conversation_id is None:
        return None
    conversation = session.get(MailConversation, conversation_id)
    if conversation is None or conversation.counterpart_address != message.from_address.lower():
        return None
    return conversation


def _apply_receipt(
    session: Session, space: PatientSpace, message: InboundMessage, *, now: datetime
) -> Delivered:
    """Record an MDN (RFC 8098) or DSN (RFC 3464) about one of the patient's messages."""
    original = session.execute(
        select(MailMessage).where(
            MailMessage.space_id == space.id,
            MailMessage.message_id == message.report_original_message_id,
            MailMessage.direction == "outbound",
        )
    ).scalar_one_or_none()
    if original is None:  # never bounce a report (RFC 3464 §2): accept, store nothing
        return Delivered("", "", receipt=True)
    original.delivery_status = message.report_status[:16]
    original.delivery_detail = message.report_detail[:2000]
    return Delivered(original.id, original.conversation_id, receipt=True)


# ----------------------------------------------------------------------------- replies
def reply_refusal(
    session: Session, space_id: str, conversation: MailConversation, settings: MailSettings
) -> str | None:
    """Why the patient may not answer this conversation (None: they may)."""
    if conversation.status == "closed":
        return "conversation_closed"
    if conversation.counterpart_kind == SYSTEM:
        return "system_message"
    if conversation.counterpart_kind == APPLICATION:
        return "application_mailbox"
    if _blocked(session, space_id, conversation.counterpart_address):
        return "blocked_by_professional"
    last_inbound = session.execute(
        select(MailMessage)
        .where(
            MailMessage.space_id == space_id,
            MailMessage.conversation_id == conversation.id,
            MailMessage.direction.in_(("inbound", "system")),
        )
        .order_by(MailMessage.received_at.desc(), MailMessage.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if last_inbound is not None and last_inbound.no_reply:
        return last_inbound.no_reply_reason or "no_reply"
    if not settings.in_trust_space(_reply_address(session, space_id, conversation)):
        return "outside_trust_space"
    return None


def _reply_address(session: Session, space_id: str, conversation: MailConversation) -> str:
    reply_to = session.execute(
        select(MailMessage.reply_to)
        .where(
            MailMessage.space_id == space_id,
            MailMessage.conversation_id == conversation.id,
            MailMessage.direction == "inbound",
            MailMessage.reply_to != "",
        )
        .order_by(MailMessage.received_at.desc())
        .limit(1)
    ).scalar_one_or_none()
    return (reply_to or conversation.counterpart_address).lower()


def _blocked(session: Session, space_id: str, address: str) -> bool:
    return (
        session.execute(
            select(MailBlock.id).where(
                MailBlock.space_id == space_id, MailBlock.counterpart_address == address.lower()
            )
        ).first()
        is not None
    )


def get_conversation(session: Session, space_id: str, conversation_id: str) -> MailConversation:
    row = session.get(MailConversation, conversation_id)
    if row is None or row.space_id != space_id:
        raise NotFound("no such conversation", code="conversation_not_found")
    return row


def get_message(session: Session, space_id: str, message_row_id: str) -> MailMessage:
    row = session.get(MailMessage, message_row_id)
    if row is None or row.space_id != space_id:
        raise NotFound("no such message", code="message_not_found")
    return row


def get_attachment(session: Session, space_id: str, attachment_id: str) -> MailAttachment:
    row = session.get(MailAttachment, attachment_id)
    if row is None or row.space_id != space_id:
        raise NotFound("no such attachment", code="attachment_not_found")
    return row


def eligible_pharmacies(session: Session, space_id: str, now: datetime) -> list[PharmacyVisit]:
    """Community pharmacies of the last 12 months of reimbursement history, newest first."""
    since = (now - PHARMACY_WINDOW).date()
    rows = session.execute(
        select(PharmacyVisit)
        .where(PharmacyVisit.space_id == space_id, PharmacyVisit.dispensed_on >= since)
        .order_by(PharmacyVisit.dispensed_on.desc())
    ).scalars()
    seen: dict[str, PharmacyVisit] = {}
    for row in rows:
        seen.setdefault(row.pharmacy_address.lower(), row)
    return list(seen.values())


def queue_outbound(
    session: Session,
    cipher: DocumentCipher,
    space_id: str,
    *,
    kind: str,
    message_id: str,
    mail_from: str,
    rcpt_to: str,
    raw: bytes,
    now: datetime,
    message_row_id: str | None,
) -> MailOutbound:
    out_id = new_id()
    row = MailOutbound(
        id=out_id,
        space_id=space_id,
        message_row_id=message_row_id,
        kind=kind,
        message_id=message_id,
        mail_from=mail_from,
        rcpt_to=rcpt_to,
        raw_encrypted=_enc(cipher, raw, space_id, "out", out_id),
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(row)
    return row


def send_patient_message(
    session: Session,
    space: PatientSpace,
    *,
    conversation: MailConversation,
    body: str,
    attachments: Sequence[tuple[str, str, bytes]],
    cipher: DocumentCipher,
    settings: MailSettings,
    now: datetime,
    render: Renderer,
) -> MailMessage:
    """Store the patient's message and queue it for the operator, in the caller's transaction."""
    to_address = _reply_address(session, space.id, conversation)
    if not settings.in_trust_space(to_address):
        raise MailRefused("nothing leaves the MSSanté trust space", code="outside_trust_space")
    last = session.execute(
        select(MailMessage.message_id)
        .where(MailMessage.space_id == space.id, MailMessage.conversation_id == conversation.id)
        .order_by(MailMessage.received_at.desc(), MailMessage.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    refs = tuple(
        session.execute(
            select(MailMessage.message_id)
            .where(MailMessage.space_id == space.id, MailMessage.conversation_id == conversation.id)
            .order_by(MailMessage.received_at)
            .limit(20)
        ).scalars()
    )
    subject = conversation.subject
    if last is not None and not subject.lower().startswith("re:"):
        subject = f"Re: {subject}"
    message_id = settings.new_message_id()
    from_address = settings.patient_address(space.ins)
    raw = render(
        OutgoingMail(
            message_id=message_id,
            from_address=from_address,
            to_address=to_address,
            subject=subject,
            body_text=body,
            in_reply_to=last or "",
            references=refs,
            attachments=tuple(attachments),
            date=now,
        )
    )
    row_id = new_id()
    row = MailMessage(
        id=row_id,
        space_id=space.id,
        conversation_id=conversation.id,
        direction="outbound",
        message_id=message_id,
        in_reply_to=last or "",
        references=" ".join(refs),
        from_address=from_address,
        to_addresses=to_address,
        subject=subject[:400],
        body_encrypted=_enc(cipher, body.encode(), space.id, "body", row_id),
        read_at=now,
        received_at=now,
        expires_at=_years_later(now, settings.retention_years),
        delivery_status="queued",
        size=len(raw),
    )
    session.add(row)
    for position, (filename, content_type, content) in enumerate(attachments):
        _store_attachment(
            session,
            cipher,
            space.id,
            filename,
            content_type,
            content,
            position=position,
            message_row_id=row_id,
        )
    conversation.last_message_at = now
    queue_outbound(
        session,
        cipher,
        space.id,
        kind="reply",
        message_id=message_id,
        mail_from=from_address,
        rcpt_to=to_address,
        raw=raw,
        now=now,
        message_row_id=row_id,
    )
    return row


def reply(
    session: Session,
    space: PatientSpace,
    conversation_id: str,
    *,
    body: str,
    attachments: Sequence[tuple[str, str, bytes]],
    cipher: DocumentCipher,
    settings: MailSettings,
    now: datetime,
    render: Renderer,
) -> MailMessage:
    """The patient answers a conversation, when the rules allow it."""
    conversation = get_conversation(session, space.id, conversation_id)
    refusal = reply_refusal(session, space.id, conversation, settings)
    if refusal is not None:
        raise MailRefused(f"this conversation cannot be answered ({refusal})", code=refusal)
    return send_patient_message(
        session,
        space,
        conversation=conversation,
        body=body,
        attachments=attachments,
        cipher=cipher,
        settings=settings,
        now=now,
        render=render,
    )


def start_conversation(
    session: Session,
    space: PatientSpace,
    *,
    to_address: str,
    subject: str,
    body: str,
    attachments: Sequence[tuple[str, str, bytes]],
    cipher: DocumentCipher,
    settings: MailSettings,
    now: datetime,
    render: Renderer,
) -> MailMessage:
    """The patient writes first: only to a community pharmacy of the last 12 months."""
    address = to_address.strip().lower()
    eligible = eligible_pharmacies(session, space.id, now)
    pharmacies = {p.pharmacy_address.lower(): p for p in eligible}
    pharmacy = pharmacies.get(address)
    if pharmacy is None:
        raise MailRefused(
            "a patient may only start a conversation with a pharmacy of their last 12 months "
            "of reimbursement history",
            code="patient_cannot_start_conversation",
        )
    if _blocked(session, space.id, address):
        raise MailRefused("this correspondent blocked the patient", code="blocked_by_professional")
    conversation = MailConversation(
        id=new_id(),
        space_id=space.id,
        subject=subject[:400],
        counterpart_address=address,
        counterpart_name=pharmacy.pharmacy_name,
        counterpart_kind=PHARMACY,
        started_by="patient",
        status="open",
        created_at=now,
        last_message_at=now,
    )
    session.add(conversation)
    session.flush()
    return send_patient_message(
        session,
        space,
        conversation=conversation,
        body=body,
        attachments=attachments,
        cipher=cipher,
        settings=settings,
        now=now,
        render=render,
    )


def mark_read(
    session: Session,
    space: PatientSpace,
    row: MailMessage,
    *,
    cipher: DocumentCipher,
    settings: MailSettings,
    now: datetime,
    render_mdn: Callable[[MailMessage, str, str], bytes],
) -> bool:
    """Mark an inbound message read; queue the MDN (RFC 8098) the sender asked for, once.

    Returns True when an MDN was queued.
    """
    if row.read_at is None:
        row.read_at = now
    if (
        row.direction != "inbound"
        or not row.disposition_notification_to
        or row.mdn_sent
        or not settings.in_trust_space(row.disposition_notification_to)
    ):
        return False
    mdn_id = settings.new_message_id()
    from_address = settings.patient_address(space.ins)
    raw = render_mdn(row, mdn_id, from_address)
    queue_outbound(
        session,
        cipher,
        space.id,
        kind="mdn",
        message_id=mdn_id,
        mail_from=from_address,
        rcpt_to=row.disposition_notification_to,
        raw=raw,
        now=now,
        message_row_id=row.id,
    )
    row.mdn_sent = True
    return True


def add_system_message(
    session: Session,
    space: PatientSpace,
    *,
    subject: str,
    body: str,
    cipher: DocumentCipher,
    settings: MailSettings,
    now: datetime,
    conversation: MailConversation | None = None,
    sender: str = "",
    reason: str = "system_message",
) -> MailMessage:
    """A message from the system (prevention, delivery failure, block notice): no reply."""
    if conversation is None:
        conversation = MailConversation(
            id=new_id(),
            space_id=space.id,
            subject=subject[:400],
            counterpart_address=sender or f"ne-pas-repondre@{settings.domain}",
            counterpart_name="Mon espace santé",
            counterpart_kind=SYSTEM,
            started_by=SYSTEM,
            status="open",
            created_at=now,
            last_message_at=now,
        )
        session.add(conversation)
        session.flush()
    conversation.last_message_at = now
    row_id = new_id()
    row = MailMessage(
        id=row_id,
        space_id=space.id,
        conversation_id=conversation.id,
        direction="system",
        message_id=settings.new_message_id(),
        from_address=sender or f"ne-pas-repondre@{settings.domain}",
        from_name="Mon espace santé",
        subject=subject[:400],
        body_encrypted=_enc(cipher, body.encode(), space.id, "body", row_id),
        no_reply=True,
        no_reply_reason=reason,
        received_at=now,
        expires_at=_years_later(now, settings.retention_years),
    )
    session.add(row)
    return row


def end_conversation(
    session: Session,
    space: PatientSpace,
    conversation_id: str,
    *,
    by_address: str,
    cipher: DocumentCipher,
    settings: MailSettings,
    now: datetime,
) -> MailConversation:
    """The professional ends the conversation: the patient sees it closed and cannot reply."""
    conversation = get_conversation(session, space.id, conversation_id)
    if conversation.counterpart_address != by_address.lower():
        raise MailRefused(
            "only the correspondent may end this conversation", code="not_counterpart"
        )
    conversation.status = "closed"
    conversation.closed_at = now
    conversation.closed_by = by_address.lower()
    add_system_message(
        session,
        space,
        subject=conversation.subject,
        body=f"{by_address} a clôturé cette conversation. Vous ne pouvez plus y répondre.",
        cipher=cipher,
        settings=settings,
        now=now,
        conversation=conversation,
        reason="conversation_closed",
    )
    return conversation


def block_patient(
    session: Session,
    space: PatientSpace,
    *,
    by_address: str,
    reason: str,
    cipher: DocumentCipher,
    settings: MailSettings,
    now: datetime,
) -> MailBlock:
    """A professional blocks a patient who abuses the channel; the patient is told."""
    address = by_address.strip().lower()
    row = session.execute(
        select(MailBlock).where(
            MailBlock.space_id == space.id, MailBlock.counterpart_address == address
        )
    ).scalar_one_or_none()
    if row is None:
        row = MailBlock(
            space_id=space.id, counterpart_address=address, reason=reason[:400], blocked_at=now
        )
        session.add(row)
        add_system_message(
            session,
            space,
            subject="Votre correspondant a bloqué les échanges",
            body=(
                f"{address} ne souhaite plus recevoir de messages de votre part. "
                "Vous pouvez toujours lire ses messages."
            ),
            cipher=cipher,
            settings=settings,
            now=now,
            reason="blocked_by_professional",
        )
    return row


def delete_conversation(session: Session, space_id: str, conversation_id: str) -> int:
    """Delete a conversation with its messages, attachments and drafts (also back office)."""
    conversation = get_conversation(session, space_id, conversation_id)
    message_ids = list(
        session.execute(
            select(MailMessage.id).where(
                MailMessage.space_id == space_id, MailMessage.conversation_id == conversation.id
            )
        ).scalars()
    )
    if message_ids:
        session.execute(
            delete(MailAttachment).where(
                MailAttachment.space_id == space_id, MailAttachment.message_row_id.in_(message_ids)
            )
        )
    drafts = list(
        session.execute(
            select(MailDraft.id).where(
                MailDraft.space_id == space_id, MailDraft.conversation_id == conversation.id
            )
        ).scalars()
    )
    if drafts:
        session.execute(
            delete(MailAttachment).where(
                MailAttachment.space_id == space_id, MailAttachment.draft_id.in_(drafts)
            )
        )
        session.execute(delete(MailDraft).where(MailDraft.id.in_(drafts)))
    session.execute(
        delete(MailMessage).where(
            MailMessage.space_id == space_id, MailMessage.conversation_id == conversation.id
        )
    )
    session.delete(conversation)
    return len(message_ids)


def purge_space(session: Session, space_id: str) -> int:
    """Delete every mailbox row of a space (space deletion by the lifecycle)."""
    total = 0
    for model in (
        MailAttachment,
        MailMessage,
        MailDraft,
        MailOutbound,
        MailConversation,
        PharmacyVisit,
        MailBlock,
    ):
        result = session.execute(delete(model).where(model.space_id == space_id))
        total += int(getattr(result, "rowcount", 0) or 0)
    return total


def purge_expired(session: Session, now: datetime) -> int:
    """Delete messages past their retention date (10 years by default), then empty threads."""
    expired = list(
        session.execute(select(MailMessage.id).where(MailMessage.expires_at < now)).scalars()
    )
    for start in range(0, len(expired), 500):
        chunk = expired[start : start + 500]
        session.execute(delete(MailAttachment).where(MailAttachment.message_row_id.in_(chunk)))
        session.execute(delete(MailMessage).where(MailMessage.id.in_(chunk)))
    empty = select(MailConversation.id).where(
        ~select(MailMessage.id).where(MailMessage.conversation_id == MailConversation.id).exists()
    )
    session.execute(delete(MailConversation).where(MailConversation.id.in_(empty)))
    return len(expired)


# ----------------------------------------------------------------------------- drafts
def save_draft(
    session: Session,
    space_id: str,
    *,
    draft_id: str | None,
    conversation_id: str | None,
    to_address: str,
    subject: str,
    body: str,
    uploads: Sequence[tuple[str, str, bytes]],
    references: Sequence[Mapping[str, Any]],
    cipher: DocumentCipher,
    now: datetime,
) -> MailDraft:
    """Create or update a draft (uploads are added to those it already holds)."""
    if conversation_id is not None:
        get_conversation(session, space_id, conversation_id)
    if draft_id is None:
        draft = MailDraft(id=new_id(), space_id=space_id, created_at=now)
        session.add(draft)
    else:
        found = session.get(MailDraft, draft_id)
        if found is None or found.space_id != space_id:
            raise NotFound("no such draft", code="draft_not_found")
        draft = found
    draft.conversation_id = conversation_id
    draft.to_address = to_address[:320]
    draft.subject = subject[:400]
    draft.body_encrypted = _enc(cipher, body.encode(), space_id, "draft", draft.id)
    draft.references_json = [dict(r) for r in references]
    draft.updated_at = now
    start = session.execute(
        select(func.count(MailAttachment.id)).where(MailAttachment.draft_id == draft.id)
    ).scalar_one()
    for offset, (filename, content_type, content) in enumerate(uploads):
        _store_attachment(
            session,
            cipher,
            space_id,
            filename,
            content_type,
            content,
            position=start + offset,
            draft_id=draft.id,
        )
    return draft


def get_draft(session: Session, space_id: str, draft_id: str) -> MailDraft:
    row = session.get(MailDraft, draft_id)
    if row is None or row.space_id != space_id:
        raise NotFound("no such draft", code="draft_not_found")
    return row


def draft_attachments(session: Session, space_id: str, draft_id: str) -> list[MailAttachment]:
    return list(
        session.execute(
            select(MailAttachment)
            .where(MailAttachment.space_id == space_id, MailAttachment.draft_id == draft_id)
            .order_by(MailAttachment.position)
        ).scalars()
    )


def delete_draft(session: Session, space_id: str, draft_id: str) -> None:
    draft = get_draft(session, space_id, draft_id)
    session.execute(delete(MailAttachment).where(MailAttachment.draft_id == draft.id))
    session.delete(draft)


# ----------------------------------------------------------------------------- queries
def conversations(session: Session, space_id: str) -> list[MailConversation]:
    return list(
        session.execute(
            select(MailConversation)
            .where(MailConversation.space_id == space_id)
            .order_by(MailConversation.last_message_at.desc(), MailConversation.id)
        ).scalars()
    )


def unread_counts(session: Session, space_id: str) -> dict[str, int]:
    rows = session.execute(
        select(MailMessage.conversation_id, func.count(MailMessage.id))
        .where(
            MailMessage.space_id == space_id,
            MailMessage.read_at.is_(None),
            or_(MailMessage.direction == "inbound", MailMessage.direction == "system"),
        )
        .group_by(MailMessage.conversation_id)
    ).all()
    return {conversation_id: int(count) for conversation_id, count in rows}


def messages_of(session: Session, space_id: str, conversation_id: str) -> list[MailMessage]:
    return list(
        session.execute(
            select(MailMessage)
            .where(MailMessage.space_id == space_id, MailMessage.conversation_id == conversation_id)
            .order_by(MailMessage.received_at, MailMessage.id)
        ).scalars()
    )


def attachments_of(
    session: Session, space_id: str, message_row_ids: Iterable[str]
) -> list[MailAttachment]:
    ids = list(message_row_ids)
    if not ids:
        return []
    return list(
        session.execute(
            select(MailAttachment)
            .where(MailAttachment.space_id == space_id, MailAttachment.message_row_id.in_(ids))
            .order_by(MailAttachment.message_row_id, MailAttachment.position)
        ).scalars()
    )


def add_pharmacy_visit(
    session: Session,
    space: PatientSpace,
    *,
    pharmacy_address: str,
    pharmacy_name: str,
    dispensed_on: date,
    now: datetime,
    structure_id: str = "",
) -> PharmacyVisit:
    """Back office: record a dispensation by a community pharmacy (reimbursement history)."""
    if "@" not in pharmacy_address:
        raise InvalidInput("a pharmacy MSSanté address is required", code="invalid_address")
    row = PharmacyVisit(
        space_id=space.id,
        pharmacy_address=pharmacy_address.strip().lower(),
        pharmacy_name=pharmacy_name[:200],
        structure_id=structure_id[:64],
        dispensed_on=dispensed_on,
        recorded_at=now,
    )
    session.add(row)
    return row


def message_target(row: MailMessage) -> Target:
    return Target(type="MailMessage", id=row.id)


def is_expired(row: MailMessage, now: datetime) -> bool:
    return as_utc(row.expires_at) < now
