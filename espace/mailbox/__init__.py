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

Modules: ``model`` (tables), ``messages`` (values exchanged with the faces, settings),
``store`` (encryption at rest, new rows, deletion and retention), ``intake`` (reception,
threading, receipts), ``rules`` (conversation rules, system messages, blocks, pharmacies),
``outbound`` (the patient's messages, drafts, MDNs, the outbound queue) and ``queries``.
This package re-exports their public names: ``from espace.mailbox import deliver``.
"""

from __future__ import annotations

from espace.mailbox.intake import counterpart_kind, deliver
from espace.mailbox.messages import (
    Delivered,
    InboundAttachment,
    InboundMessage,
    MailRefused,
    MailSettings,
    OutgoingMail,
    Renderer,
)
from espace.mailbox.model import (
    APPLICATION,
    DEFAULT_RETENTION_YEARS,
    ESTABLISHMENT,
    PHARMACY,
    PHARMACY_WINDOW,
    PROFESSIONAL,
    SYSTEM,
    MailAttachment,
    MailBlock,
    MailConversation,
    MailDraft,
    MailMessage,
    MailOutbound,
    PharmacyVisit,
    new_id,
)
from espace.mailbox.outbound import (
    delete_draft,
    draft_attachments,
    mark_read,
    queue_outbound,
    reply,
    save_draft,
    send_patient_message,
    start_conversation,
)
from espace.mailbox.queries import (
    attachments_of,
    conversations,
    get_attachment,
    get_conversation,
    get_draft,
    get_message,
    is_expired,
    message_target,
    messages_of,
    unread_counts,
)
from espace.mailbox.rules import (
    add_pharmacy_visit,
    add_system_message,
    block_patient,
    eligible_pharmacies,
    end_conversation,
    reply_refusal,
)
from espace.mailbox.store import (
    attachment_bytes,
    delete_conversation,
    draft_body,
    message_body,
    outbound_bytes,
    purge_expired,
    purge_space,
)

__all__ = [
    "APPLICATION",
    "DEFAULT_RETENTION_YEARS",
    "ESTABLISHMENT",
    "PHARMACY",
    "PHARMACY_WINDOW",
    "PROFESSIONAL",
    "SYSTEM",
    "Delivered",
    "InboundAttachment",
    "InboundMessage",
    "MailAttachment",
    "MailBlock",
    "MailConversation",
    "MailDraft",
    "MailMessage",
    "MailOutbound",
    "MailRefused",
    "MailSettings",
    "OutgoingMail",
    "PharmacyVisit",
    "Renderer",
    "add_pharmacy_visit",
    "add_system_message",
    "attachment_bytes",
    "attachments_of",
    "block_patient",
    "conversations",
    "counterpart_kind",
    "delete_conversation",
    "delete_draft",
    "deliver",
    "draft_attachments",
    "draft_body",
    "eligible_pharmacies",
    "end_conversation",
    "get_attachment",
    "get_conversation",
    "get_draft",
    "get_message",
    "is_expired",
    "mark_read",
    "message_body",
    "message_target",
    "messages_of",
    "new_id",
    "outbound_bytes",
    "purge_expired",
    "purge_space",
    "queue_outbound",
    "reply",
    "reply_refusal",
    "save_draft",
    "send_patient_message",
    "start_conversation",
    "unread_counts",
]
