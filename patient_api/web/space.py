"""Routes on the space itself, for its person or their representative (bearer token): status,
closure or immediate deletion (CSP R.1111-36), and the representatives of a minor (invitation
of the second legal representative, answer of the invitee).
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from espace import lifecycle
from patient_api.http import Field, bearer_actor, espace, json_body, route, source
from patient_api.web.common import B_REQ, D_REQ, PATIENT, S_REQ, SP, B, S, state_json

bp = Blueprint("space", __name__)


@route(bp, PATIENT, SP, "GET", "The status of the space (lifecycle)")
def space_get(ins: str) -> Response:
    actor = bearer_actor()
    return jsonify(lifecycle.space_state(espace(), actor, ins, source=source()).as_json())


CLOSE = {"delete_now": B, "reason": Field("string", enum=("FERMETURE_DEMANDE_PATIENT",))}


@route(
    bp,
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
    return state_json(ins, state)


@route(bp, PATIENT, SP + "/representatives", "GET", "Representatives of the space")
def reps_get(ins: str) -> Response:
    actor = bearer_actor()
    return jsonify(
        {"representatives": lifecycle.list_representatives(espace(), actor, ins, source=source())}
    )


INVITE = {"ins": S_REQ, "name": S_REQ, "birth_date": D_REQ, "email": S}


@route(
    bp,
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
    bp,
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
