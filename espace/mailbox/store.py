"""Mailbox rows at rest: encryption of bodies, attachments and raw messages (AES-GCM bound to
the space and the object, ``espace.crypto``), retention dates, new rows, and deletion (a
conversation, a whole space, messages past their retention).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from espace.crypto import DocumentCipher
from espace.mailbox.messages import MailSettings
from espace.mailbox.model import (
    MailAttachment,
    MailBlock,
    MailConversation,
    MailDraft,
    MailMessage,
    MailOutbound,
    PharmacyVisit,
    new_id,
)
from espace.mailbox.queries import get_conversation

# An attachment to store: filename, content type, bytes, parsed XDM metadata (or None).
AttachmentItem = tuple[str, str, bytes, Mapping[str, Any] | None]


# ----------------------------------------------------------------------------- encryption
def encrypt(cipher: DocumentCipher, data: bytes, space_id: str, kind: str, object_id: str) -> bytes:
    return cipher.encrypt(data, space_id=space_id, object_id=f"mail-{kind}/{object_id}")


def _decrypt(
    cipher: DocumentCipher, blob: bytes, space_id: str, kind: str, object_id: str
) -> bytes:
    return cipher.decrypt(blob, space_id=space_id, object_id=f"mail-{kind}/{object_id}")


def message_body(cipher: DocumentCipher, row: MailMessage) -> str:
    return _decrypt(cipher, row.body_encrypted, row.space_id, "body", row.id).decode("utf-8")


def draft_body(cipher: DocumentCipher, row: MailDraft) -> str:
    return _decrypt(cipher, row.body_encrypted, row.space_id, "draft", row.id).decode("utf-8")


def attachment_bytes(cipher: DocumentCipher, row: MailAttachment) -> bytes:
    return _decrypt(cipher, row.encrypted, row.space_id, "att", row.id)


def outbound_bytes(cipher: DocumentCipher, row: MailOutbound) -> bytes:
    return _decrypt(cipher, row.raw_encrypted, row.space_id, "out", row.id)


def years_later(when: datetime, years: int) -> datetime:
    try:
        return when.replace(year=when.year + years)
    except ValueError:  # 29 February
        return when.replace(year=when.year + years, day=28)


# ----------------------------------------------------------------------------- new rows
def new_message(
    cipher: DocumentCipher,
    settings: MailSettings,
    *,
    space_id: str,
    conversation_id: str,
    direction: str,
    body: str,
    now: datetime,
    **columns: Any,
) -> MailMessage:
    """A message row with its encrypted body, received ``now``, kept the retention period."""
    row_id = new_id()
    return MailMessage(
        id=row_id,
        space_id=space_id,
        conversation_id=conversation_id,
        direction=direction,
        body_encrypted=encrypt(cipher, body.encode(), space_id, "body", row_id),
        received_at=now,
        expires_at=years_later(now, settings.retention_years),
        **columns,
    )


def new_conversation(
    session: Session,
    space_id: str,
    *,
    subject: str,
    address: str,
    name: str,
    kind: str,
    started_by: str,
    now: datetime,
) -> MailConversation:
    """Open a conversation with one correspondent (added to the session)."""
    conversation = MailConversation(
        id=new_id(),
        space_id=space_id,
        subject=subject[:400],
        counterpart_address=address,
        counterpart_name=name,
        counterpart_kind=kind,
        started_by=started_by,
        status="open",
        created_at=now,
        last_message_at=now,
    )
    session.add(conversation)
    return conversation


def store_attachments(
    session: Session,
    cipher: DocumentCipher,
    space_id: str,
    items: Iterable[AttachmentItem],
    *,
    first_position: int = 0,
    message_row_id: str | None = None,
    draft_id: str | None = None,
) -> None:
    """Store attachments encrypted, numbered from ``first_position``, for a message or draft."""
    for position, (filename, content_type, content, xdm) in enumerate(items, first_position):
        att_id = new_id()
        session.add(
            MailAttachment(
                id=att_id,
                space_id=space_id,
                message_row_id=message_row_id,
                draft_id=draft_id,
                position=position,
                filename=filename[:255],
                content_type=content_type[:128] or "application/octet-stream",
                size=len(content),
                sha1=hashlib.sha1(content).hexdigest(),  # noqa: S324 - XDS hash is SHA-1
                encrypted=encrypt(cipher, content, space_id, "att", att_id),
                is_xdm=xdm is not None,
                xdm=dict(xdm or {}),
            )
        )


# ----------------------------------------------------------------------------- deletion
def delete_conversation(session: Session, space_id: str, conversation_id: str) -> int:
    """Delete a conversation with its messages, attachments and drafts (also back office)."""
    conversation = get_conversation(session, space_id, conversation_id)
    messages = (MailMessage.space_id == space_id, MailMessage.conversation_id == conversation.id)
    drafts = (MailDraft.space_id == space_id, MailDraft.conversation_id == conversation.id)
    message_ids = list(session.execute(select(MailMessage.id).where(*messages)).scalars())
    draft_ids = list(session.execute(select(MailDraft.id).where(*drafts)).scalars())
    for owner, ids in (
        (MailAttachment.message_row_id, message_ids),
        (MailAttachment.draft_id, draft_ids),
    ):
        if ids:
            session.execute(
                delete(MailAttachment).where(MailAttachment.space_id == space_id, owner.in_(ids))
            )
    if draft_ids:
        session.execute(delete(MailDraft).where(MailDraft.id.in_(draft_ids)))
    session.execute(delete(MailMessage).where(*messages))
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
