"""The patient's mailbox API: HTTP JSON under ``/api/mailbox`` (OpenAPI at ``openapi.json``).

One enforcement point: ``before_request`` authenticates the bearer token (RFC 6750,
``mes.tokens.actor_from_bearer``) and every handler runs in exactly one ``Espace.operation``
(``READ_MAILBOX`` / ``WRITE_MAILBOX``; ``SUBMIT_DOCUMENT`` to save to the DMP), which asks the
PDP and traces the action. Apps are refused by the PDP (no pairing purpose covers the mailbox).
Errors render as ``{"error": <code>, "message": ...}`` with 400/401/403/404/409/413.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from sqlalchemy import select

from espace import mailbox as mb
from espace.errors import AccessDenied, DomainError, InvalidInput, NotFound, UnknownSpace
from espace.models import DocumentContent, DocumentEntryRow, flat, unflat
from espace.service import Espace, Operation
from espace.store import visibility_clause
from espace.trace import Source, Target
from habilitation.model import Action, Actor
from mes.tokens import TokenError, actor_from_bearer
from mssante.mime import render_mdn, render_outgoing

bp = Blueprint("mailbox", __name__, url_prefix="/api/mailbox")

STATUS = {
    "access_denied": 403,
    "not_found": 404,
    "unknown_space": 404,
    "invalid_input": 400,
    "too_large": 413,
}


def _espace() -> Espace:
    espace: Espace = current_app.extensions["espace"]
    return espace


def _mail() -> mb.MailSettings:
    return mb.MailSettings.from_mapping(current_app.config)


@bp.before_request
def authenticate() -> Response | None:
    if request.endpoint == "mailbox.openapi":
        return None
    try:
        g.mail_actor = actor_from_bearer(current_app.config, request.headers.get("Authorization"))
    except TokenError as exc:
        response = jsonify(error=exc.error, message=str(exc))
        response.status_code = 401
        response.headers["WWW-Authenticate"] = f'Bearer error="{exc.error}"'
        return response
    return None


@bp.errorhandler(DomainError)
def domain_error(exc: DomainError) -> tuple[Response, int]:
    if isinstance(exc, NotFound | UnknownSpace):
        status = 404
    elif isinstance(exc, mb.MailRefused):
        status = 403
    else:
        status = STATUS.get(exc.code, 400)
    return jsonify(error=exc.code, message=exc.message), status


@bp.errorhandler(AccessDenied)
def access_denied(exc: AccessDenied) -> tuple[Response, int]:
    return jsonify(
        error="access_denied", rule=exc.decision.rule_id, message=exc.decision.reason
    ), 403


@contextmanager
def operation(action: Action, event: str, target: Target | None = None) -> Iterator[Operation]:
    """The one road of this face: authenticated actor -> PDP -> transaction -> trace."""
    actor: Actor = g.mail_actor
    source = Source(
        face="mailbox",
        address=request.remote_addr or "",
        request_id=g.get("request_id", ""),
        software=request.headers.get("User-Agent", "")[:200],
    )
    with _espace().operation(
        actor,
        action,
        event_type=f"mailbox.{event}",
        source=source,
        space_ins=actor.on_behalf_of or actor.id,
        target=target,
    ) as op:
        assert op.space is not None
        yield op


# ----------------------------------------------------------------------------- rendering
def _conversation_json(op: Operation, conv: mb.MailConversation, unread: int) -> dict[str, Any]:
    refusal = mb.reply_refusal(op.session, conv.space_id, conv, _mail())
    return {
        "id": conv.id,
        "subject": conv.subject,
        "counterpart": {
            "address": conv.counterpart_address,
            "name": conv.counterpart_name,
            "kind": conv.counterpart_kind,
        },
        "started_by": conv.started_by,
        "status": conv.status,
        "last_message_at": conv.last_message_at.isoformat(),
        "unread": unread,
        "can_reply": refusal is None,
        "reply_refusal": refusal,
    }


def _attachment_json(att: mb.MailAttachment) -> dict[str, Any]:
    documents = [
        {
            "unique_id": d.get("unique_id"),
            "title": d.get("title"),
            "type_code": (d.get("type_code") or {}).get("code"),
            "mime_type": d.get("mime_type"),
        }
        for d in att.xdm.get("documents", [])
    ]
    return {
        "id": att.id,
        "filename": att.filename,
        "content_type": att.content_type,
        "size": att.size,
        "is_xdm": att.is_xdm,
        "documents": documents,
        "saved_to_dmp": sorted(unflat(att.saved_document_ids)),
    }


def _message_json(
    op: Operation, row: mb.MailMessage, atts: list[mb.MailAttachment], *, body: bool
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row.id,
        "conversation_id": row.conversation_id,
        "direction": row.direction,
        "from": {"address": row.from_address, "name": row.from_name},
        "to": [a for a in row.to_addresses.splitlines() if a],
        "subject": row.subject,
        "received_at": row.received_at.isoformat(),
        "read": row.read_at is not None,
        "no_reply": row.no_reply,
        "no_reply_reason": row.no_reply_reason or None,
        "x_mss": row.x_mss,
        "delivery_status": row.delivery_status or None,
        "attachments": [_attachment_json(a) for a in atts],
    }
    if body:
        out["body"] = mb.message_body(op.espace.cipher, row)
    return out


# ----------------------------------------------------------------------------- input
def _json() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise InvalidInput("a JSON object body is required", code="invalid_input")
    return data


def _text(data: dict[str, Any], name: str, *, required: bool = False, limit: int = 100_000) -> str:
    value = data.get(name, "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidInput(
            f"{name} must be a non-empty string" if required else f"{name} must be a string",
            code="invalid_input",
        )
    if len(value) > limit:
        raise InvalidInput(f"{name} is too long", code="too_large")
    return value


def _attachments(
    op: Operation, data: dict[str, Any], *, resolve: bool = True
) -> tuple[list[tuple[str, str, bytes]], list[dict[str, Any]]]:
    """Uploaded (base64), DMP (uniqueId, visibility checked) or profile-summary attachments.

    With ``resolve=False`` (drafts) DMP references are kept as references, not fetched.
    """
    specs = data.get("attachments", [])
    if not isinstance(specs, list):
        raise InvalidInput("attachments must be a list", code="invalid_input")
    limit = int(current_app.config.get("MAX_ATTACHMENT_BYTES") or 50 * 1024 * 1024)
    out: list[tuple[str, str, bytes]] = []
    references: list[dict[str, Any]] = []
    total = 0
    for spec in specs:
        if not isinstance(spec, dict):
            raise InvalidInput("each attachment is an object", code="invalid_input")
        if "content_base64" in spec:
            try:
                content = base64.b64decode(str(spec["content_base64"]), validate=True)
            except (binascii.Error, ValueError):
                raise InvalidInput("content_base64 is not base64", code="invalid_input") from None
            filename = str(spec.get("filename") or "piece-jointe.bin")[:200]
            ctype = str(spec.get("content_type") or "application/octet-stream")
            if "/" not in ctype or "\n" in ctype or "\r" in filename or "\n" in filename:
                raise InvalidInput("bad content_type or filename", code="invalid_input")
            out.append((filename, ctype, content))
        elif "dmp_document" in spec:
            references.append({"dmp_document": str(spec["dmp_document"])})
            if not resolve:
                continue
            out.append(_dmp_document(op, str(spec["dmp_document"])))
        elif spec.get("profile_summary"):
            raise InvalidInput(
                "the profile summary is not available on this server yet",
                code="profile_summary_unavailable",
            )
        else:
            raise InvalidInput("unknown attachment kind", code="invalid_input")
        if not out:
            continue
        total += len(out[-1][2])
        if len(out[-1][2]) > limit or total > int(
            current_app.config.get("MAIL_MAX_MESSAGE_BYTES") or 20 * 1024 * 1024
        ):
            raise InvalidInput("attachment too large", code="too_large")
    return out, references


def _dmp_document(op: Operation, unique_id: str) -> tuple[str, str, bytes]:
    """A DMP document the patient can see (visibility pushed into SQL), decrypted."""
    assert op.space is not None
    row = (
        op.session.execute(
            select(DocumentEntryRow).where(
                DocumentEntryRow.space_id == op.space.id,
                DocumentEntryRow.unique_id == unique_id,
                visibility_clause(op.visibility()),
            )
        )
        .scalars()
        .first()
    )
    if row is None:
        raise NotFound("no such document in your DMP", code="document_not_found")
    content = (
        op.session.execute(
            select(DocumentContent).where(
                DocumentContent.space_id == op.space.id, DocumentContent.unique_id == unique_id
            )
        )
        .scalars()
        .first()
    )
    if content is None:
        raise NotFound("document bytes not stored here", code="document_not_found")
    data = op.espace.cipher.decrypt(content.encrypted, space_id=op.space.id, object_id=unique_id)
    ext = {"text/xml": "xml", "application/pdf": "pdf"}.get(row.mime_type, "bin")
    name = (row.title or unique_id)[:80].replace("/", "-")
    return f"{name}.{ext}", row.mime_type or "application/octet-stream", data


# ----------------------------------------------------------------------------- endpoints
@bp.get("/openapi.json")
def openapi() -> Response:
    from mssante.openapi import OPENAPI

    return jsonify(OPENAPI)


@bp.get("/conversations")
def list_conversations() -> Response:
    with operation(Action.READ_MAILBOX, "list") as op:
        assert op.space is not None
        unread = mb.unread_counts(op.session, op.space.id)
        items = [
            _conversation_json(op, c, unread.get(c.id, 0))
            for c in mb.conversations(op.session, op.space.id)
        ]
        op.detail["count"] = len(items)
    return jsonify(conversations=items, total=len(items))


@bp.get("/conversations/<conversation_id>")
def get_conversation(conversation_id: str) -> Response:
    with operation(
        Action.READ_MAILBOX, "conversation", Target("MailConversation", conversation_id)
    ) as op:
        assert op.space is not None
        conv = mb.get_conversation(op.session, op.space.id, conversation_id)
        rows = mb.messages_of(op.session, op.space.id, conv.id)
        atts = mb.attachments_of(op.session, op.space.id, [r.id for r in rows])
        unread = mb.unread_counts(op.session, op.space.id).get(conv.id, 0)
        out = _conversation_json(op, conv, unread)
        out["messages"] = [
            _message_json(op, r, [a for a in atts if a.message_row_id == r.id], body=False)
            for r in rows
        ]
    return jsonify(out)


@bp.delete("/conversations/<conversation_id>")
def delete_conversation(conversation_id: str) -> tuple[str, int]:
    with operation(
        Action.WRITE_MAILBOX, "delete", Target("MailConversation", conversation_id)
    ) as op:
        assert op.space is not None
        op.detail["messages"] = mb.delete_conversation(op.session, op.space.id, conversation_id)
    return "", 204


@bp.get("/messages/<message_id>")
def read_message(message_id: str) -> Response:
    """Read one message: marks it read and queues the MDN its sender asked for (RFC 8098)."""
    with operation(Action.READ_MAILBOX, "read", Target("MailMessage", message_id)) as op:
        assert op.space is not None
        row = mb.get_message(op.session, op.space.id, message_id)
        op.detail["mdn"] = mb.mark_read(
            op.session,
            op.space,
            row,
            cipher=op.espace.cipher,
            settings=_mail(),
            now=op.now,
            render_mdn=render_mdn,
        )
        out = _message_json(
            op, row, mb.attachments_of(op.session, op.space.id, [row.id]), body=True
        )
    return jsonify(out)


@bp.get("/messages/<message_id>/attachments/<attachment_id>")
def download_attachment(message_id: str, attachment_id: str) -> Response:
    with operation(Action.READ_MAILBOX, "download", Target("MailAttachment", attachment_id)) as op:
        assert op.space is not None
        att = mb.get_attachment(op.session, op.space.id, attachment_id)
        if att.message_row_id != message_id:
            raise NotFound("no such attachment", code="attachment_not_found")
        data = mb.attachment_bytes(op.espace.cipher, att)
        filename, ctype = att.filename, att.content_type
    response = Response(data, mimetype=ctype)
    response.headers["Content-Disposition"] = _disposition(filename)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _disposition(filename: str) -> str:
    from urllib.parse import quote

    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


@bp.post("/messages/<message_id>/attachments/<attachment_id>/dmp")
def save_attachment_to_dmp(message_id: str, attachment_id: str) -> tuple[Response, int]:
    """Save an XDM attachment's document(s) to the DMP (same use case as an ITI-41)."""
    from espace.registry.model import Author
    from mssante.dmp import save_to_dmp

    data = request.get_json(silent=True) or {}
    unique_id = data.get("document_unique_id") if isinstance(data, dict) else None
    with operation(
        Action.SUBMIT_DOCUMENT, "save_to_dmp", Target("MailAttachment", attachment_id)
    ) as op:
        assert op.space is not None
        att = mb.get_attachment(op.session, op.space.id, attachment_id)
        if att.message_row_id != message_id:
            raise NotFound("no such attachment", code="attachment_not_found")
        message = mb.get_message(op.session, op.space.id, message_id)
        sender = Author(person=message.from_address)
        results = save_to_dmp(
            op,
            att,
            document_unique_id=str(unique_id) if unique_id else None,
            settings=current_app.config,
            sender_author=sender,
        )
        saved = [u for r in results for u in r.unique_ids]
        att.saved_document_ids = flat(unflat(att.saved_document_ids) | set(saved))
        documents = [
            {
                "unique_id": u,
                "entry_uuid": r.document_uuids.get("Document01"),
                "already_present": u in r.already_present,
            }
            for r in results
            for u in r.unique_ids
        ]
    return jsonify(documents=documents), 201


@bp.post("/conversations/<conversation_id>/messages")
def reply(conversation_id: str) -> tuple[Response, int]:
    """The patient answers (refused when the rules forbid it: FIN, closed, blocked...)."""
    data = _json()
    body = _text(data, "body", required=True)
    draft_id = data.get("draft_id")
    with operation(
        Action.WRITE_MAILBOX, "reply", Target("MailConversation", conversation_id)
    ) as op:
        assert op.space is not None
        attachments, _ = _attachments(op, data)
        if isinstance(draft_id, str):
            attachments += _take_draft(op, draft_id)
        row = mb.reply(
            op.session,
            op.space,
            conversation_id,
            body=body,
            attachments=attachments,
            cipher=op.espace.cipher,
            settings=_mail(),
            now=op.now,
            render=render_outgoing,
        )
        op.detail["message_id"] = row.message_id
        out = _message_json(
            op, row, mb.attachments_of(op.session, op.space.id, [row.id]), body=True
        )
    return jsonify(out), 201


def _take_draft(op: Operation, draft_id: str) -> list[tuple[str, str, bytes]]:
    assert op.space is not None
    draft = mb.get_draft(op.session, op.space.id, draft_id)
    atts = mb.draft_attachments(op.session, op.space.id, draft_id)
    files = [(a.filename, a.content_type, mb.attachment_bytes(op.espace.cipher, a)) for a in atts]
    files += [
        _dmp_document(op, str(ref["dmp_document"]))
        for ref in draft.references_json
        if ref.get("dmp_document")
    ]
    mb.delete_draft(op.session, op.space.id, draft_id)
    return files


@bp.post("/conversations")
def start_conversation() -> tuple[Response, int]:
    """Write first: only to a community pharmacy of the last 12 months of history."""
    data = _json()
    to = _text(data, "to", required=True, limit=320)
    subject = _text(data, "subject", required=True, limit=400)
    body = _text(data, "body", required=True)
    with operation(Action.WRITE_MAILBOX, "start") as op:
        assert op.space is not None
        attachments, _ = _attachments(op, data)
        if isinstance(data.get("draft_id"), str):
            attachments += _take_draft(op, data["draft_id"])
        row = mb.start_conversation(
            op.session,
            op.space,
            to_address=to,
            subject=subject,
            body=body,
            attachments=attachments,
            cipher=op.espace.cipher,
            settings=_mail(),
            now=op.now,
            render=render_outgoing,
        )
        op.target = Target("MailConversation", row.conversation_id)
        out = _message_json(
            op, row, mb.attachments_of(op.session, op.space.id, [row.id]), body=True
        )
    return jsonify(out), 201


@bp.get("/pharmacies")
def pharmacies() -> Response:
    with operation(Action.READ_MAILBOX, "pharmacies") as op:
        assert op.space is not None
        items = [
            {
                "address": p.pharmacy_address,
                "name": p.pharmacy_name,
                "last_dispensation": p.dispensed_on.isoformat(),
            }
            for p in mb.eligible_pharmacies(op.session, op.space.id, op.now)
        ]
    return jsonify(pharmacies=items)


# ----------------------------------------------------------------------------- drafts
def _draft_json(op: Operation, draft: mb.MailDraft) -> dict[str, Any]:
    assert op.space is not None
    return {
        "id": draft.id,
        "conversation_id": draft.conversation_id,
        "to": draft.to_address,
        "subject": draft.subject,
        "body": mb.draft_body(op.espace.cipher, draft),
        "attachments": [
            _attachment_json(a) for a in mb.draft_attachments(op.session, op.space.id, draft.id)
        ],
        "references": draft.references_json,
        "updated_at": draft.updated_at.isoformat(),
    }


def _save_draft(draft_id: str | None) -> dict[str, Any]:
    data = _json()
    conversation_id = data.get("conversation_id")
    with operation(Action.WRITE_MAILBOX, "draft", Target("MailDraft", draft_id or "")) as op:
        assert op.space is not None
        uploads, references = _attachments(op, data, resolve=False)
        draft = mb.save_draft(
            op.session,
            op.space.id,
            draft_id=draft_id,
            conversation_id=conversation_id if isinstance(conversation_id, str) else None,
            to_address=_text(data, "to", limit=320),
            subject=_text(data, "subject", limit=400),
            body=_text(data, "body"),
            uploads=uploads,
            references=references,
            cipher=op.espace.cipher,
            now=op.now,
        )
        op.session.flush()
        op.target = Target("MailDraft", draft.id)
        return _draft_json(op, draft)


@bp.post("/drafts")
def create_draft() -> tuple[Response, int]:
    return jsonify(_save_draft(None)), 201


@bp.put("/drafts/<draft_id>")
def update_draft(draft_id: str) -> Response:
    return jsonify(_save_draft(draft_id))


@bp.get("/drafts")
def list_drafts() -> Response:
    with operation(Action.READ_MAILBOX, "drafts") as op:
        assert op.space is not None
        rows = op.session.execute(
            select(mb.MailDraft)
            .where(mb.MailDraft.space_id == op.space.id)
            .order_by(mb.MailDraft.updated_at.desc())
        ).scalars()
        items = [_draft_json(op, d) for d in rows]
    return jsonify(drafts=items)


@bp.get("/drafts/<draft_id>")
def get_draft(draft_id: str) -> Response:
    with operation(Action.READ_MAILBOX, "draft_read", Target("MailDraft", draft_id)) as op:
        assert op.space is not None
        out = _draft_json(op, mb.get_draft(op.session, op.space.id, draft_id))
    return jsonify(out)


@bp.delete("/drafts/<draft_id>")
def delete_draft(draft_id: str) -> tuple[str, int]:
    with operation(Action.WRITE_MAILBOX, "draft_delete", Target("MailDraft", draft_id)) as op:
        assert op.space is not None
        mb.delete_draft(op.session, op.space.id, draft_id)
    return "", 204


def init_app(app: Flask) -> None:
    """Mount the mailbox API (Flask extension pattern, called by ``mes.app.create_app``)."""
    app.register_blueprint(bp)
