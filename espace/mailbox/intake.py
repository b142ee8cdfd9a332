"""Reception of a message into the patient's mailbox (MSSanté reception, idempotent on the
RFC 5322 Message-ID), threading by In-Reply-To / References, and the receipts about the
patient's own messages (RFC 8098 MDN, RFC 3464 DSN).

``X-MSS-MES: FIN`` (ANS Référentiel socle MSSanté #2, ECO.2.2.8) and application mailboxes
(RFC 3834 ``Auto-Submitted``) make a message that cannot be answered.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from espace.crypto import DocumentCipher
from espace.errors import InvalidInput
from espace.mailbox.messages import Delivered, InboundMessage, MailRefused, MailSettings
from espace.mailbox.model import (
    APPLICATION,
    ESTABLISHMENT,
    PROFESSIONAL,
    MailConversation,
    MailMessage,
)
from espace.mailbox.store import new_conversation, new_message, store_attachments
from espace.models import PatientSpace, Professional


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
        return _apply_receipt(session, space, message)
    conversation = _thread_of(session, space.id, message)
    kind = counterpart_kind(session, message.from_address, auto_submitted=message.auto_submitted)
    if conversation is None:
        conversation = new_conversation(
            session,
            space.id,
            subject=message.subject,
            address=message.from_address.lower(),
            name=message.from_name[:200],
            kind=kind,
            started_by=PROFESSIONAL,
            now=now,
        )
    conversation.last_message_at = now
    fin = message.x_mss.get("X-MSS-MES", "").strip().upper() == "FIN"
    no_reply_reason = "fin" if fin else ("application_mailbox" if kind == APPLICATION else "")
    row = new_message(
        cipher,
        settings,
        space_id=space.id,
        conversation_id=conversation.id,
        direction="inbound",
        body=message.body_text,
        now=now,
        message_id=message.message_id[:250],
        in_reply_to=message.in_reply_to[:250],
        references=" ".join(message.references),
        from_address=message.from_address.lower(),
        from_name=message.from_name[:200],
        to_addresses="\n".join(message.to_addresses),
        reply_to=message.reply_to[:320],
        subject=message.subject[:400],
        x_mss=dict(message.x_mss),
        no_reply=bool(no_reply_reason),
        no_reply_reason=no_reply_reason,
        disposition_notification_to=message.disposition_notification_to[:320],
        size=len(message.raw),
    )
    # The message as received is not stored: its body, the headers the mailbox uses and its
    # attachments are (decoded, encrypted), and nothing reads the rest (GDPR art. 5(1)(c), data
    # minimisation: transport headers, MIME framing, a second copy of every attachment).
    # Storing it doubled the bytes written per message (issue #8: +10 % messages/s without).
    session.add(row)
    store_attachments(
        session,
        cipher,
        space.id,
        ((a.filename, a.content_type, a.content, a.xdm) for a in message.attachments),
        message_row_id=row.id,
    )
    sender = message.from_name or message.from_address
    notify(
        "new_message",
        f"Vous avez reçu un nouveau message de {sender} dans votre messagerie de santé.",
        f"new_message:{space.id}:{message.message_id}",
    )
    return Delivered(row.id, conversation.id)


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


def _apply_receipt(session: Session, space: PatientSpace, message: InboundMessage) -> Delivered:
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
