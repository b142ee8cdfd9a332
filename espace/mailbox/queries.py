"""Read queries of the patient's mailbox: one row by id (never across spaces), conversations
(newest first), unread counts, messages of a conversation, attachments of messages; each
filtered on the space first.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol, TypeVar

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from espace.clock import as_utc
from espace.errors import NotFound
from espace.mailbox.model import MailAttachment, MailConversation, MailDraft, MailMessage
from espace.trace import Target


class _SpaceRow(Protocol):
    space_id: str


RowT = TypeVar("RowT", bound=_SpaceRow)


def _owned(session: Session, model: type[RowT], row_id: str, what: str, space_id: str) -> RowT:
    """The row ``row_id`` of ``model`` if it belongs to ``space_id``; else NotFound (a row of
    another space is not revealed)."""
    row = session.get(model, row_id)
    if row is None or row.space_id != space_id:
        raise NotFound(f"no such {what}", code=f"{what}_not_found")
    return row


def get_conversation(session: Session, space_id: str, conversation_id: str) -> MailConversation:
    return _owned(session, MailConversation, conversation_id, "conversation", space_id)


def get_message(session: Session, space_id: str, message_row_id: str) -> MailMessage:
    return _owned(session, MailMessage, message_row_id, "message", space_id)


def get_attachment(session: Session, space_id: str, attachment_id: str) -> MailAttachment:
    return _owned(session, MailAttachment, attachment_id, "attachment", space_id)


def get_draft(session: Session, space_id: str, draft_id: str) -> MailDraft:
    return _owned(session, MailDraft, draft_id, "draft", space_id)


# ----------------------------------------------------------------------------- lists
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


def message_target(row: MailMessage) -> Target:
    return Target(type="MailMessage", id=row.id)


def is_expired(row: MailMessage, now: datetime) -> bool:
    return as_utc(row.expires_at) < now
