"""Routes on what the space holds (bearer token): the documents the caller sees (filtered
before paging), masking to professionals (CSP L.1111-15), the trace of every access (CSP
R.1111-44), prevention messages, and the export of everything (RGPD art. 20, portability): asked
for here (202 Accepted with a status URL), built by the job worker, then downloaded.
"""

from __future__ import annotations

import io
from typing import Any

from flask import Blueprint, Response, jsonify, request, send_file

from espace import prevention
from espace import settings as rights
from espace.clock import as_utc
from espace.lifecycle import export_jobs
from espace.store import document_facts
from habilitation.model import Action
from patient_api.http import (
    Field,
    bearer_actor,
    json_body,
    query_int,
    reject_unknown_query,
    route,
)
from patient_api.web.common import PATIENT, SP, space_operation, with_status

bp = Blueprint("documents", __name__)
PAGE = {"offset": Field("integer"), "limit": Field("integer")}


@route(
    bp,
    PATIENT,
    SP + "/documents",
    "GET",
    "The documents the caller sees (filtered before paging)",
    query=PAGE,
)
def documents_get(ins: str) -> Response:
    actor = bearer_actor()
    reject_unknown_query({"offset", "limit"})
    offset, limit = query_int("offset", 0, high=10**6), query_int("limit", 50, low=1, high=500)
    with space_operation(actor, Action.SEARCH_METADATA, ins, "documents.list") as op:
        return jsonify(rights.list_documents(op, offset=offset, limit=limit))


def _mask(ins: str, entry_id: str, masked: bool) -> Response:
    actor = bearer_actor()
    action = Action.MASK_DOCUMENT if masked else Action.UNMASK_DOCUMENT
    event = "documents.mask" if masked else "documents.unmask"
    with space_operation(actor, action, ins, event) as op:
        # a document the caller cannot see is "not found" (404), never "forbidden": its
        # existence is not revealed; a visible one still gets its per-document decision
        op.authorize(action, document_facts(rights.find_document(op, entry_id)))
        return jsonify(rights.set_masked(op, entry_id, masked))


DOC = SP + "/documents/<entry_id>"


@route(bp, PATIENT, DOC + "/mask", "POST", "Mask a document to professionals")
def document_mask(ins: str, entry_id: str) -> Response:
    return _mask(ins, entry_id, True)


@route(bp, PATIENT, DOC + "/unmask", "POST", "Unmask a document (visible to professionals)")
def document_unmask(ins: str, entry_id: str) -> Response:
    return _mask(ins, entry_id, False)


@route(
    bp,
    PATIENT,
    DOC + "/make-visible",
    "POST",
    "Make a masked document visible to professionals again (same as unmask)",
)
def document_make_visible(ins: str, entry_id: str) -> Response:
    return _mask(ins, entry_id, False)


@route(bp, PATIENT, SP + "/trace", "GET", "The whole trace of the space, newest first", query=PAGE)
def trace_get(ins: str) -> Response:
    actor = bearer_actor()
    reject_unknown_query({"offset", "limit"})
    offset, limit = query_int("offset", 0, high=10**9), query_int("limit", 100, low=1, high=1000)
    with space_operation(actor, Action.READ_TRACE, ins, "trace.read") as op:
        assert op.space is not None
        records = rights.trace_page(op, offset=offset, limit=limit)
        return jsonify({"records": [_trace_json(r) for r in records]})


def _trace_json(r: Any) -> dict[str, Any]:
    return {
        "seq": r.seq,
        "recorded_at": as_utc(r.recorded_at).isoformat(),
        "event_type": r.event_type,
        "action": r.action,
        "actor": {
            "kind": r.actor_kind,
            "id": r.actor_id,
            "name": r.actor_name,
            "profession": r.actor_profession,
            "on_behalf_of": r.on_behalf_of,
        },
        "access_mode": r.access_mode,
        "target": {"type": r.target_type, "id": r.target_id, "document_type": r.document_type},
        "decision": r.decision,
        "rule_id": r.rule_id,
        "outcome": r.outcome,
        "error_code": r.error_code,
    }


@route(
    bp,
    PATIENT,
    SP + "/prevention",
    "GET",
    "Prevention messages and proposed appointments received (no reply possible)",
)
def prevention_get(ins: str) -> Response:
    with space_operation(bearer_actor(), Action.READ_MAILBOX, ins, "prevention.read") as op:
        assert op.space is not None
        return jsonify({"campaigns": prevention.campaigns_of(op.session, op.space.id)})


@route(
    bp,
    PATIENT,
    SP + "/exports",
    "POST",
    "Ask for an export of everything (FHIR Bundle + documents) as an encrypted archive: the job "
    "worker builds it; the answer holds the status URL and the download link, whose key is "
    "shown only here; the link expires EXPORT_TTL_HOURS after the archive is ready",
    responses={"202": "Accepted: follow status_url", "409": "An export is being prepared"},
)
def export_post(ins: str) -> Response:
    actor = bearer_actor()
    json_body({})
    with space_operation(actor, Action.EXPORT_SPACE, ins, "export.request") as op:
        ticket = export_jobs.request_export(op)
    base = f"{PATIENT}/spaces/{ins}/exports/{ticket.id}"
    response = jsonify(
        {
            "id": ticket.id,
            "status": ticket.status,
            "status_url": f"{base}/status",
            "download_url": f"{base}?key={ticket.key}",
        }
    )
    response.headers["Location"] = f"{base}/status"
    response.headers["Retry-After"] = str(RETRY_AFTER)
    return with_status(response, 202)


RETRY_AFTER = 60  # seconds: the job runner's period in ``mes serve``


@route(
    bp,
    PATIENT,
    SP + "/exports/<export_id>/status",
    "GET",
    "The status of an export: pending, ready (size, expiry), failed or expired",
)
def export_status(ins: str, export_id: str) -> Response:
    actor = bearer_actor()
    reject_unknown_query(set())
    with space_operation(actor, Action.EXPORT_SPACE, ins, "export.status") as op:
        status = export_jobs.export_status(op, export_id)
    response = jsonify(status)
    if status["status"] == "pending":
        response.headers["Retry-After"] = str(RETRY_AFTER)
    return response


@route(
    bp,
    PATIENT,
    SP + "/exports/<export_id>",
    "GET",
    "Download a ready export (ZIP) with the key of its link, before it expires",
    query={"key": Field("string", required=True)},
    produces="application/zip",
    responses={
        "200": "The archive",
        "409": "Not ready yet (export_not_ready) or failed (export_failed)",
        "410": "The link expired",
    },
)
def export_get(ins: str, export_id: str) -> Response:
    actor = bearer_actor()
    reject_unknown_query({"key"})
    key = request.args.get("key", "")
    with space_operation(actor, Action.EXPORT_SPACE, ins, "export.download") as op:
        data = export_jobs.open_export(op, export_id, key)
    return send_file(
        io.BytesIO(data),
        mimetype="application/zip",
        download_name=f"mon-espace-sante-{export_id}.zip",
    )
