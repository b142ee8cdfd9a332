"""The back office (``/api/admin``): the support desk and the local funds act for the person
(token kind ``support_agent``; the agent is traced): opposition and its PDF confirmation,
closure, reopening, representatives, a new one-time code, death (CSP L.1111-14, R.1111-36).
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from espace import lifecycle
from patient_api.http import (
    Field,
    espace,
    json_body,
    reject_unknown_query,
    route,
    source,
    support_actor,
)
from patient_api.web.common import (
    ADMIN,
    D_REQ,
    REP_KINDS,
    S_REQ,
    SP,
    B,
    D,
    S,
    opposition_pdf,
    pdf_or_json,
    state_json,
)

admin_bp = Blueprint("patient_admin", __name__, url_prefix=ADMIN)


@route(
    admin_bp,
    ADMIN,
    SP + "/opposition",
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
    return pdf_or_json(receipt, 201)


@route(
    admin_bp,
    ADMIN,
    SP + "/opposition.pdf",
    "GET",
    "The PDF confirmation of a recorded opposition",
    auth="support",
    produces="application/pdf",
)
def admin_opposition_pdf(ins: str) -> Response:
    return opposition_pdf(
        lifecycle.opposition_receipt(espace(), support_actor(), ins, source=source())
    )


ADMIN_CLOSE = {
    "delete_now": B,
    "reason": Field("string", enum=tuple(sorted(lifecycle.CLOSURE_REASONS))),
}


@route(
    admin_bp,
    ADMIN,
    SP + "/close",
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
    return state_json(ins, state)


@route(
    admin_bp,
    ADMIN,
    SP + "/reopen",
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
    SP + "/representatives",
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


@route(
    admin_bp,
    ADMIN,
    SP + "/code",
    "POST",
    "Send a new one-time code to the contact channel on file (e-mail, a minor's "
    "representatives, else a letter); the code is never shown to the agent",
    auth="support",
)
def admin_code(ins: str) -> Response:
    agent = support_actor()
    json_body({})
    sent = lifecycle.send_new_code(espace(), agent, ins, source=source())
    return jsonify(
        {"sent": True, "channel": sent.channel, "expires_at": sent.expires_at.isoformat()}
    )


DEATH = {"death_date": D_REQ}


@route(
    admin_bp,
    ADMIN,
    SP + "/death",
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
