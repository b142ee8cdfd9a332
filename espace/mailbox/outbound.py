"""What the patient writes: replies, a first message to a pharmacy, drafts, read receipts
(RFC 8098 MDN), and the durable outbound queue they go through (drained by
``mssante.outbound``). Threading headers follow RFC 5322 §3.6.4 (In-Reply-To, References).

Every message leaves only towards the MSSanté trust space (configured operator domains).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from espace.crypto import DocumentCipher
from espace.mailbox.messages import MailRefused, MailSettings, OutgoingMail, Renderer
from espace.mailbox.model import (
    PHARMACY,
    MailAttachment,
    MailConversation,
    MailDraft,
    MailMessage,
    MailOutbound,
    new_id,
)
from espace.mailbox.queries import get_conversation, get_draft
from espace.mailbox.rules import eligible_pharmacies, is_blocked, reply_address, reply_refusal
from espace.mailbox.store import encrypt, new_conversation, new_message, store_attachments
from espace.models import PatientSpace

# filename, content type, bytes
Upload = tuple[str, str, bytes]


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
        raw_encrypted=encrypt(cipher, raw, space_id, "out", out_id),
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
    attachments: Sequence[Upload],
    cipher: DocumentCipher,
    settings: MailSettings,
    now: datetime,
    render: Renderer,
) -> MailMessage:
    """Store the patient's message and queue it for the operator, in the caller's transaction."""
    to_address = reply_address(session, space.id, conversation)
    if not settings.in_trust_space(to_address):
        raise MailRefused("nothing leaves the MSSanté trust space", code="outside_trust_space")
    thread = select(MailMessage.message_id).where(
        MailMessage.space_id == space.id, MailMessage.conversation_id == conversation.id
    )
    last = session.execute(
        thread.order_by(MailMessage.received_at.desc(), MailMessage.id.desc()).limit(1)
    ).scalar_one_or_none()
    refs = tuple(session.execute(thread.order_by(MailMessage.received_at).limit(20)).scalars())
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
    row = new_message(
        cipher,
        settings,
        space_id=space.id,
        conversation_id=conversation.id,
        direction="outbound",
        body=body,
        now=now,
        message_id=message_id,
        in_reply_to=last or "",
        references=" ".join(refs),
        from_address=from_address,
        to_addresses=to_address,
        subject=subject[:400],
        read_at=now,
        delivery_status="queued",
        size=len(raw),
    )
    session.add(row)
    store_attachments(
        session, cipher, space.id, ((*a, None) for a in attachments), message_row_id=row.id
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
        message_row_id=row.id,
    )
    return row


def reply(
    session: Session,
    space: PatientSpace,
    conversation_id: str,
    *,
    body: str,
    attachments: Sequence[Upload],
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
    attachments: Sequence[Upload],
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
    if is_blocked(session, space.id, address):
        raise MailRefused("this correspondent blocked the patient", code="blocked_by_professional")
    conversation = new_conversation(
        session,
        space.id,
        subject=subject,
        address=address,
        name=pharmacy.pharmacy_name,
        kind=PHARMACY,
        started_by="patient",
        now=now,
    )
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
    uploads: Sequence[Upload],
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
        draft = get_draft(session, space_id, draft_id)
    draft.conversation_id = conversation_id
    draft.to_address = to_address[:320]
    draft.subject = subject[:400]
    draft.body_encrypted = encrypt(cipher, body.encode(), space_id, "draft", draft.id)
    draft.references_json = [dict(r) for r in references]
    draft.updated_at = now
    start = session.execute(
        select(func.count(MailAttachment.id)).where(MailAttachment.draft_id == draft.id)
    ).scalar_one()
    store_attachments(
        session,
        cipher,
        space_id,
        ((*u, None) for u in uploads),
        first_position=start,
        draft_id=draft.id,
    )
    return draft


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
