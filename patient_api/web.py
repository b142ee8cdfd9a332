"""Routes of the patient API (``/api/patient``) and the support desk (``/api/admin``).

Every call is one ``Espace.operation`` with the right action (the enforcement point): the PDP
decides, the trace records success, failure and denial. The enrolment endpoints take the
one-time code instead of a token (the person has no account yet); everything else takes an
OAuth2 bearer token (``mes.tokens``). The OpenAPI document is at ``/api/patient/openapi.json``.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Blueprint, Flask, Response, jsonify, request, send_file

from espace import export as exports
from espace import lifecycle, prevention
from espace import settings as rights
from espace.clock import as_utc
from espace.service import Operation
from espace.store import document_facts
from habilitation.model import Action, Actor, ActorKind, AuthenticationMode
from patient_api.http import (
    ApiError,
    Field,
    bearer_actor,
    espace,
    handle_error,
    json_body,
    query_int,
    reject_unknown_query,
    route,
    source,
    support_actor,
)

PATIENT = "/api/patient"
ADMIN = "/api/admin"
patient_bp = Blueprint("patient_api", __name__, url_prefix=PATIENT)
admin_bp = Blueprint("patient_admin", __name__, url_prefix=ADMIN)

S = Field("string")
S_REQ = Field("string", required=True)
B = Field("boolean")
B_REQ = Field("boolean", required=True)
D = Field("date")
D_REQ = Field("date", required=True)
REP_KINDS = ("legal_representative", "protected_adult_representative")


@contextmanager
def _op(actor: Actor, action: Action, ins: str, event: str) -> Iterator[Operation]:
    with espace().operation(actor, action, event_type=event, source=source(), space_ins=ins) as op:
        yield op


def _code_actor(ins: str, rep_ins: str | None, rep_kind: str | None) -> Actor:
    """The person (or their representative) authenticated by the one-time code."""
    if rep_ins is None:
        return Actor(ActorKind.PATIENT, ins, authentication_mode=AuthenticationMode.PATIENT_LOGIN)
    kind = ActorKind(rep_kind or "legal_representative")
    return Actor(
        kind, rep_ins, authentication_mode=AuthenticationMode.PATIENT_LOGIN, on_behalf_of=ins
    )


def _pdf_or_json(receipt: lifecycle.OppositionReceipt, status: int = 200) -> Response:
    if request.args.get("format") == "pdf":
        from patient_api.pdf import opposition_pdf

        pdf = send_file(
            io.BytesIO(opposition_pdf(receipt)),
            mimetype="application/pdf",
            download_name=f"opposition-{receipt.reference}.pdf",
        )
        pdf.status_code = status
        return pdf
    response = jsonify(
        {
            "reference": receipt.reference,
            "ins": receipt.ins,
            "opposed_at": receipt.opposed_at.isoformat(),
            "opposed_by_kind": receipt.opposed_by_kind,
            "agent_id": receipt.agent_id,
        }
    )
    response.status_code = status
    return response


# =========================================================================== enrolment (code)
ENROL_WHO = {
    "ins": S_REQ,
    "code": S_REQ,
    "representative_ins": S,
    "representative_kind": Field("string", enum=REP_KINDS),
}


@route(
    patient_bp,
    PATIENT,
    "/enrolment/oppose",
    "POST",
    "Oppose the creation of the space within six weeks (one-time code); ?format=pdf "
    "returns the PDF confirmation",
    auth="none",
    body=ENROL_WHO,
    query={"format": Field("string", enum=("json", "pdf"))},
    responses={"201": "Opposition recorded", "409": "Already created or opposed"},
)
def enrolment_oppose() -> Response:
    reject_unknown_query({"format"})
    data = json_body(ENROL_WHO)
    actor = _code_actor(
        data["ins"], data.get("representative_ins"), data.get("representative_kind")
    )
    receipt = lifecycle.oppose(espace(), actor, data["ins"], code=data["code"], source=source())
    return _pdf_or_json(receipt, 201)


@route(
    patient_bp,
    PATIENT,
    "/enrolment/create",
    "POST",
    "Create one's space voluntarily with a one-time code (also after an opposition)",
    auth="none",
    body=ENROL_WHO,
)
def enrolment_create() -> Response:
    data = json_body(ENROL_WHO)
    actor = _code_actor(
        data["ins"], data.get("representative_ins"), data.get("representative_kind")
    )
    state = lifecycle.create_voluntarily(
        espace(), actor, data["ins"], code=data["code"], source=source()
    )
    return jsonify(state.as_json())


ACTIVATE = {**ENROL_WHO, "email": S_REQ, "phone": S_REQ, "accept_terms": B_REQ}


@route(
    patient_bp,
    PATIENT,
    "/enrolment/activate",
    "POST",
    "Activate one's access: contact e-mail, phone, acceptance of the terms",
    auth="none",
    body=ACTIVATE,
)
def enrolment_activate() -> Response:
    data = json_body(ACTIVATE)
    actor = _code_actor(
        data["ins"], data.get("representative_ins"), data.get("representative_kind")
    )
    state = lifecycle.activate(
        espace(),
        actor,
        data["ins"],
        email=data["email"],
        phone=data["phone"],
        accept_terms=data["accept_terms"],
        code=data["code"],
        source=source(),
    )
    return jsonify(state.as_json())


@route(
    patient_bp,
    PATIENT,
    "/enrolment/reopen",
    "POST",
    "Reopen a closed space within ten years (one-time code)",
    auth="none",
    body=ENROL_WHO,
)
def enrolment_reopen() -> Response:
    data = json_body(ENROL_WHO)
    actor = _code_actor(
        data["ins"], data.get("representative_ins"), data.get("representative_kind")
    )
    state = lifecycle.reopen(espace(), actor, data["ins"], code=data["code"], source=source())
    return jsonify(state.as_json())


@route(
    patient_bp,
    PATIENT,
    "/prevention/rules",
    "GET",
    "The prevention rules (public: age, sex, interval, source)",
    auth="none",
)
def prevention_rules() -> Response:
    return jsonify({"rules": prevention.rules_for_patient(espace())})


@route(patient_bp, PATIENT, "/openapi.json", "GET", "This OpenAPI document", auth="none")
def openapi() -> Response:
    from patient_api.openapi import build_openapi

    return jsonify(build_openapi())


# =========================================================================== bearer: the space
SP = "/spaces/<ins>"


@route(patient_bp, PATIENT, SP, "GET", "The status of the space (lifecycle)")
def space_get(ins: str) -> Response:
    actor = bearer_actor()
    return jsonify(lifecycle.space_state(espace(), actor, ins, source=source()).as_json())


CLOSE = {"delete_now": B, "reason": Field("string", enum=("FERMETURE_DEMANDE_PATIENT",))}


@route(
    patient_bp,
    PATIENT,
    SP + "/close",
    "POST",
    "Close the space (kept ten years), or delete everything now with delete_now",
    body=CLOSE,
)
def space_close(ins: str) -> Response:
    actor = bearer_actor()
    data = json_body(CLOSE)
    state = lifecycle.close(
        espace(),
        actor,
        ins,
        source=source(),
        delete_now=bool(data.get("delete_now")),
        reason=data.get("reason", "FERMETURE_DEMANDE_PATIENT"),
    )
    return jsonify(state.as_json() if state else {"ins": ins, "status": "deleted"})


@route(
    patient_bp,
    PATIENT,
    SP + "/settings",
    "GET",
    "Settings: emergency and regulation access, auto-unmask, prevention, contact, blocks, "
    "feeding oppositions, médecin traitant",
)
def settings_get(ins: str) -> Response:
    with _op(bearer_actor(), Action.MANAGE_SETTINGS, ins, "settings.read") as op:
        return jsonify(rights.overview(op))


FLAGS = {k: B for k in rights.BOOLEAN_SETTINGS}


@route(
    patient_bp,
    PATIENT,
    SP + "/settings",
    "PATCH",
    "Change break_glass_allowed (bris_de_glace), regulation_allowed (centre_15), "
    "auto_unmask_in_emergency, prevention_opposed",
    body=FLAGS,
)
def settings_patch(ins: str) -> Response:
    actor = bearer_actor()
    data = json_body(FLAGS)
    if not data:
        raise ApiError(400, "empty_change", "nothing to change")
    with _op(actor, Action.MANAGE_SETTINGS, ins, "settings.flags") as op:
        return jsonify(rights.set_flags(op, data))


CONTACT = {"email": S, "phone": S}


@route(
    patient_bp,
    PATIENT,
    SP + "/contact",
    "PUT",
    "Change the contact e-mail or phone (identity traits come from the INS)",
    body=CONTACT,
)
def contact_put(ins: str) -> Response:
    actor = bearer_actor()
    data = json_body(CONTACT)
    with _op(actor, Action.MANAGE_SETTINGS, ins, "settings.contact") as op:
        return jsonify(rights.change_contact(op, email=data.get("email"), phone=data.get("phone")))


PRO = SP + "/professionals/<professional_id>"


@route(patient_bp, PATIENT, PRO + "/block", "PUT", "Block a professional (read and write)")
def block_put(ins: str, professional_id: str) -> Response:
    with _op(bearer_actor(), Action.MANAGE_SETTINGS, ins, "settings.block") as op:
        rights.block_professional(op, professional_id)
        return jsonify(rights.overview(op))


@route(patient_bp, PATIENT, PRO + "/block", "DELETE", "Unblock a professional")
def block_delete(ins: str, professional_id: str) -> Response:
    with _op(bearer_actor(), Action.MANAGE_SETTINGS, ins, "settings.unblock") as op:
        rights.unblock_professional(op, professional_id)
        return jsonify(rights.overview(op))


@route(
    patient_bp,
    PATIENT,
    PRO + "/feeding-opposition",
    "PUT",
    "Oppose this professional's feeding of the DMP",
)
def feeding_put(ins: str, professional_id: str) -> Response:
    with _op(bearer_actor(), Action.MANAGE_SETTINGS, ins, "settings.feeding") as op:
        rights.set_feeding_opposed(op, professional_id, True)
        return jsonify(rights.overview(op))


@route(
    patient_bp, PATIENT, PRO + "/feeding-opposition", "DELETE", "Withdraw the feeding opposition"
)
def feeding_delete(ins: str, professional_id: str) -> Response:
    with _op(bearer_actor(), Action.MANAGE_SETTINGS, ins, "settings.feeding") as op:
        rights.set_feeding_opposed(op, professional_id, False)
        return jsonify(rights.overview(op))


MT = {"professional_id": S_REQ}


@route(
    patient_bp, PATIENT, SP + "/medecin-traitant", "PUT", "Designate the médecin traitant", body=MT
)
def mt_put(ins: str) -> Response:
    actor = bearer_actor()
    data = json_body(MT)
    with _op(actor, Action.MANAGE_SETTINGS, ins, "settings.medecin_traitant") as op:
        rights.set_medecin_traitant(op, data["professional_id"])
        return jsonify(rights.overview(op))


@route(patient_bp, PATIENT, SP + "/medecin-traitant", "DELETE", "Remove the médecin traitant")
def mt_delete(ins: str) -> Response:
    with _op(bearer_actor(), Action.MANAGE_SETTINGS, ins, "settings.medecin_traitant") as op:
        rights.set_medecin_traitant(op, None)
        return jsonify(rights.overview(op))


@route(
    patient_bp,
    PATIENT,
    SP + "/documents",
    "GET",
    "The documents the caller sees (filtered before paging)",
    query={"offset": Field("integer"), "limit": Field("integer")},
)
def documents_get(ins: str) -> Response:
    actor = bearer_actor()
    reject_unknown_query({"offset", "limit"})
    offset, limit = query_int("offset", 0, high=10**6), query_int("limit", 50, low=1, high=500)
    with _op(actor, Action.SEARCH_METADATA, ins, "documents.list") as op:
        return jsonify(rights.list_documents(op, offset=offset, limit=limit))


def _mask(ins: str, entry_id: str, masked: bool) -> Response:
    actor = bearer_actor()
    action = Action.MASK_DOCUMENT if masked else Action.UNMASK_DOCUMENT
    with _op(actor, action, ins, "documents.mask" if masked else "documents.unmask") as op:
        # a document the caller cannot see is "not found" (404), never "forbidden": its
        # existence is not revealed; a visible one still gets its per-document decision
        op.authorize(action, document_facts(rights.find_document(op, entry_id)))
        return jsonify(rights.set_masked(op, entry_id, masked))


DOC = SP + "/documents/<entry_id>"


@route(patient_bp, PATIENT, DOC + "/mask", "POST", "Mask a document to professionals")
def document_mask(ins: str, entry_id: str) -> Response:
    return _mask(ins, entry_id, True)


@route(patient_bp, PATIENT, DOC + "/unmask", "POST", "Unmask a document (visible to professionals)")
def document_unmask(ins: str, entry_id: str) -> Response:
    return _mask(ins, entry_id, False)


@route(
    patient_bp,
    PATIENT,
    DOC + "/make-visible",
    "POST",
    "Make a masked document visible to professionals again (same as unmask)",
)
def document_make_visible(ins: str, entry_id: str) -> Response:
    return _mask(ins, entry_id, False)


@route(
    patient_bp,
    PATIENT,
    SP + "/trace",
    "GET",
    "The whole trace of the space, newest first",
    query={"offset": Field("integer"), "limit": Field("integer")},
)
def trace_get(ins: str) -> Response:
    actor = bearer_actor()
    reject_unknown_query({"offset", "limit"})
    offset, limit = query_int("offset", 0, high=10**9), query_int("limit", 100, low=1, high=1000)
    with _op(actor, Action.READ_TRACE, ins, "trace.read") as op:
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


@route(patient_bp, PATIENT, SP + "/representatives", "GET", "Representatives of the space")
def reps_get(ins: str) -> Response:
    actor = bearer_actor()
    return jsonify(
        {"representatives": lifecycle.list_representatives(espace(), actor, ins, source=source())}
    )


INVITE = {"ins": S_REQ, "name": S_REQ, "birth_date": D_REQ, "email": S}


@route(
    patient_bp,
    PATIENT,
    SP + "/representatives/invitations",
    "POST",
    "The first legal representative invites the second (name, birth date, NIR)",
    body=INVITE,
    responses={"201": "Invited"},
)
def reps_invite(ins: str) -> Response:
    actor = bearer_actor()
    data = json_body(INVITE)
    lifecycle.invite_representative(
        espace(),
        actor,
        ins,
        representative_ins=data["ins"],
        name=data["name"],
        birth_date=data["birth_date"],
        email=data.get("email"),
        source=source(),
    )
    return Response(status=201)


ANSWER = {"accept": B_REQ}


@route(
    patient_bp,
    PATIENT,
    SP + "/representatives/invitations/answer",
    "POST",
    "The invited representative accepts or declines",
    body=ANSWER,
)
def reps_answer(ins: str) -> Response:
    actor = bearer_actor()
    data = json_body(ANSWER)
    lifecycle.answer_invitation(espace(), actor, ins, accept=data["accept"], source=source())
    return jsonify({"accepted": data["accept"]})


@route(
    patient_bp,
    PATIENT,
    SP + "/prevention",
    "GET",
    "Prevention messages and proposed appointments received (no reply possible)",
)
def prevention_get(ins: str) -> Response:
    with _op(bearer_actor(), Action.READ_MAILBOX, ins, "prevention.read") as op:
        assert op.space is not None
        return jsonify({"campaigns": prevention.campaigns_of(op.session, op.space.id)})


@route(
    patient_bp,
    PATIENT,
    SP + "/exports",
    "POST",
    "Export everything (FHIR Bundle + documents) as an encrypted archive; the link holds "
    "the key and expires",
    responses={"201": "Export ready"},
)
def export_post(ins: str) -> Response:
    actor = bearer_actor()
    json_body({})
    with _op(actor, Action.EXPORT_SPACE, ins, "export.create") as op:
        ticket = exports.create_export(op)
    url = f"{PATIENT}/spaces/{ins}/exports/{ticket.id}?key={ticket.key}"
    response = jsonify(
        {
            "id": ticket.id,
            "download_url": url,
            "expires_at": as_utc(ticket.expires_at).isoformat(),
            "size": ticket.size,
            "documents": ticket.documents,
            "resources": ticket.resources,
        }
    )
    response.status_code = 201
    return response


@route(
    patient_bp,
    PATIENT,
    SP + "/exports/<export_id>",
    "GET",
    "Download an export (ZIP) with the key of its link, before it expires",
    query={"key": Field("string", required=True)},
    produces="application/zip",
    responses={"200": "The archive", "410": "The link expired"},
)
def export_get(ins: str, export_id: str) -> Response:
    actor = bearer_actor()
    reject_unknown_query({"key"})
    key = request.args.get("key", "")
    with _op(actor, Action.EXPORT_SPACE, ins, "export.download") as op:
        data = exports.open_export(op, export_id, key)
    return send_file(
        io.BytesIO(data),
        mimetype="application/zip",
        download_name=f"mon-espace-sante-{export_id}.zip",
    )


# =========================================================================== back office
AD = "/spaces/<ins>"


@route(
    admin_bp,
    ADMIN,
    AD + "/opposition",
    "POST",
    "Record an opposition for the person (support desk, local fund; agent traced)",
    auth="support",
    query={"format": Field("string", enum=("json", "pdf"))},
    responses={"201": "Opposition recorded"},
)
def admin_oppose(ins: str) -> Response:
    agent = support_actor()
    reject_unknown_query({"format"})
    json_body({})
    receipt = lifecycle.oppose(espace(), agent, ins, source=source())
    return _pdf_or_json(receipt, 201)


@route(
    admin_bp,
    ADMIN,
    AD + "/opposition.pdf",
    "GET",
    "The PDF confirmation of a recorded opposition",
    auth="support",
    produces="application/pdf",
)
def admin_opposition_pdf(ins: str) -> Response:
    from patient_api.pdf import opposition_pdf

    receipt = lifecycle.opposition_receipt(espace(), support_actor(), ins, source=source())
    return send_file(
        io.BytesIO(opposition_pdf(receipt)),
        mimetype="application/pdf",
        download_name=f"opposition-{receipt.reference}.pdf",
    )


ADMIN_CLOSE = {
    "delete_now": B,
    "reason": Field("string", enum=tuple(sorted(lifecycle.CLOSURE_REASONS))),
}


@route(
    admin_bp,
    ADMIN,
    AD + "/close",
    "POST",
    "Close a space for the person",
    auth="support",
    body=ADMIN_CLOSE,
)
def admin_close(ins: str) -> Response:
    agent = support_actor()
    data = json_body(ADMIN_CLOSE)
    state = lifecycle.close(
        espace(),
        agent,
        ins,
        source=source(),
        reason=data.get("reason", "FERMETURE_SUPPORT"),
        delete_now=bool(data.get("delete_now")),
    )
    return jsonify(state.as_json() if state else {"ins": ins, "status": "deleted"})


@route(
    admin_bp,
    ADMIN,
    AD + "/reopen",
    "POST",
    "Reopen a closed space within ten years",
    auth="support",
)
def admin_reopen(ins: str) -> Response:
    agent = support_actor()
    json_body({})
    return jsonify(lifecycle.reopen(espace(), agent, ins, source=source()).as_json())


ATTACH = {
    "ins": S_REQ,
    "name": S_REQ,
    "birth_date": D,
    "email": S,
    "kind": Field("string", enum=REP_KINDS),
}


@route(
    admin_bp,
    ADMIN,
    AD + "/representatives",
    "POST",
    "Attach a representative directly (second legal representative, protection measure)",
    auth="support",
    body=ATTACH,
    responses={"201": "Attached"},
)
def admin_attach(ins: str) -> Response:
    agent = support_actor()
    data = json_body(ATTACH)
    lifecycle.attach_representative(
        espace(),
        agent,
        ins,
        representative_ins=data["ins"],
        name=data["name"],
        birth_date=data.get("birth_date"),
        email=data.get("email"),
        source=source(),
        kind=data.get("kind", "legal_representative"),
    )
    return Response(status=201)


CODE = {"channel": Field("string", enum=("letter", "email"))}


@route(
    admin_bp,
    ADMIN,
    AD + "/code",
    "POST",
    "Send a new one-time code to the person (the code is never shown to the agent)",
    auth="support",
    body=CODE,
)
def admin_code(ins: str) -> Response:
    agent = support_actor()
    data = json_body(CODE)
    ticket = lifecycle.issue_new_code(
        espace(), ins, source=source(), actor=agent, channel=data.get("channel", "letter")
    )
    return jsonify({"sent": True, "expires_at": ticket.expires_at.isoformat()})


DEATH = {"death_date": D_REQ}


@route(
    admin_bp,
    ADMIN,
    AD + "/death",
    "POST",
    "Record the death of the person",
    auth="support",
    body=DEATH,
)
def admin_death(ins: str) -> Response:
    agent = support_actor()
    data = json_body(DEATH)
    state = lifecycle.record_death(
        espace(), agent, ins, death_date=data["death_date"], source=source()
    )
    return jsonify(state.as_json())


patient_bp.register_error_handler(Exception, handle_error)
admin_bp.register_error_handler(Exception, handle_error)


def init_app(app: Flask) -> None:
    """Mount the patient API and the back office (one error handler for both)."""
    app.register_blueprint(patient_bp)
    app.register_blueprint(admin_bp)
