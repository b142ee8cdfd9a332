"""The conversation rules of the patient's mailbox (ANS Référentiel socle MSSanté #2 and the
Mon espace santé messaging rules):

- only a professional or an establishment starts a conversation; the patient only replies,
  except to a community pharmacy of their reimbursement history of the last 12 months
  (``PharmacyVisit``, fed by the back office);
- ``X-MSS-MES: FIN`` (ECO.2.2.8): the patient may not reply;
- a professional may end a conversation or block an abusive patient (the patient is told);
- application mailboxes (RFC 3834 ``Auto-Submitted``) and system messages cannot be answered;
- nothing leaves the trust space (configured operator domains).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from espace.crypto import DocumentCipher
from espace.errors import InvalidInput
from espace.mailbox.messages import MailRefused, MailSettings
from espace.mailbox.model import (
    APPLICATION,
    PHARMACY_WINDOW,
    SYSTEM,
    MailBlock,
    MailConversation,
    MailMessage,
    PharmacyVisit,
)
from espace.mailbox.queries import get_conversation
from espace.mailbox.store import new_conversation, new_message
from espace.models import PatientSpace


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
    if is_blocked(session, space_id, conversation.counterpart_address):
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
    if not settings.in_trust_space(reply_address(session, space_id, conversation)):
        return "outside_trust_space"
    return None


def reply_address(session: Session, space_id: str, conversation: MailConversation) -> str:
    """Where the patient's answer goes: the last Reply-To of the correspondent, or its address."""
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


def is_blocked(session: Session, space_id: str, address: str) -> bool:
    """True when the correspondent ``address`` blocked this patient."""
    return (
        session.execute(
            select(MailBlock.id).where(
                MailBlock.space_id == space_id, MailBlock.counterpart_address == address.lower()
            )
        ).first()
        is not None
    )


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
    from_address = sender or f"ne-pas-repondre@{settings.domain}"
    if conversation is None:
        conversation = new_conversation(
            session,
            space.id,
            subject=subject,
            address=from_address,
            name="Mon espace santé",
            kind=SYSTEM,
            started_by=SYSTEM,
            now=now,
        )
        session.flush()
    conversation.last_message_at = now
    row = new_message(
        cipher,
        settings,
        space_id=space.id,
        conversation_id=conversation.id,
        direction="system",
        body=body,
        now=now,
        message_id=settings.new_message_id(),
        from_address=from_address,
        from_name="Mon espace santé",
        subject=subject[:400],
        no_reply=True,
        no_reply_reason=reason,
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
