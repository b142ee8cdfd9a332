"""Routes without a token: the enrolment steps authenticated by the one-time code (décret
2021-1048: opposition within six weeks, voluntary creation, activation, reopening), the request
for a new code (sent to the contact channel on file, never in the answer), the public
prevention rules and the OpenAPI 3.1 document.

Code guesses are throttled per requester with an exponential back-off and per space per hour
(``espace.lifecycle.throttle``): a throttled call answers 429 with ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, Response, jsonify

from espace import lifecycle, prevention
from patient_api.http import Field, espace, json_body, reject_unknown_query, route, source
from patient_api.web.common import (
    B_REQ,
    PATIENT,
    REP_KINDS,
    S_REQ,
    S,
    code_actor,
    pdf_or_json,
    with_status,
)

bp = Blueprint("enrolment", __name__)

THROTTLED = {"429": "Too many attempts from this requester or on this space (Retry-After)"}
ENROL_WHO = {
    "ins": S_REQ,
    "code": S_REQ,
    "representative_ins": S,
    "representative_kind": Field("string", enum=REP_KINDS),
}


def _code_step(step: Callable[..., lifecycle.SpaceState]) -> Response:
    """A lifecycle step taken with the one-time code (creation, reopening): the new state."""
    data = json_body(ENROL_WHO)
    state = step(espace(), code_actor(data), data["ins"], code=data["code"], source=source())
    return jsonify(state.as_json())


@route(
    bp,
    PATIENT,
    "/enrolment/oppose",
    "POST",
    "Oppose the creation of the space within six weeks (one-time code); ?format=pdf "
    "returns the PDF confirmation",
    auth="none",
    body=ENROL_WHO,
    query={"format": Field("string", enum=("json", "pdf"))},
    responses={"201": "Opposition recorded", "409": "Already created or opposed", **THROTTLED},
)
def enrolment_oppose() -> Response:
    reject_unknown_query({"format"})
    data = json_body(ENROL_WHO)
    receipt = lifecycle.oppose(
        espace(), code_actor(data), data["ins"], code=data["code"], source=source()
    )
    return pdf_or_json(receipt, 201)


@route(
    bp,
    PATIENT,
    "/enrolment/create",
    "POST",
    "Create one's space voluntarily with a one-time code (also after an opposition)",
    auth="none",
    body=ENROL_WHO,
    responses={"200": "Created", **THROTTLED},
)
def enrolment_create() -> Response:
    return _code_step(lifecycle.create_voluntarily)


ACTIVATE = {**ENROL_WHO, "email": S_REQ, "phone": S_REQ, "accept_terms": B_REQ}


@route(
    bp,
    PATIENT,
    "/enrolment/activate",
    "POST",
    "Activate one's access: contact e-mail, phone, acceptance of the terms",
    auth="none",
    body=ACTIVATE,
    responses={"200": "Activated", **THROTTLED},
)
def enrolment_activate() -> Response:
    data = json_body(ACTIVATE)
    state = lifecycle.activate(
        espace(),
        code_actor(data),
        data["ins"],
        email=data["email"],
        phone=data["phone"],
        accept_terms=data["accept_terms"],
        code=data["code"],
        source=source(),
    )
    return jsonify(state.as_json())


@route(
    bp,
    PATIENT,
    "/enrolment/reopen",
    "POST",
    "Reopen a closed space within ten years (one-time code)",
    auth="none",
    body=ENROL_WHO,
    responses={"200": "Reopened", **THROTTLED},
)
def enrolment_reopen() -> Response:
    return _code_step(lifecycle.reopen)


NEW_CODE = {"ins": S_REQ}


@route(
    bp,
    PATIENT,
    "/enrolment/new-code",
    "POST",
    "Ask for a new one-time code: it is sent to the contact channel on file (the e-mail, a "
    "minor's representatives, else a letter), never in this answer, which is the same "
    "whether or not the INS has a space",
    auth="none",
    body=NEW_CODE,
    responses={
        "202": "Accepted: if a space exists for this INS, a new code is on its way",
        "429": "Too many requests from this address (Retry-After)",
    },
)
def enrolment_new_code() -> Response:
    data = json_body(NEW_CODE)
    lifecycle.request_new_code(espace(), data["ins"], source=source())
    response = jsonify(
        {
            "status": "accepted",
            "message": "Si un profil existe pour cet INS, un nouveau code est envoyé par le "
            "canal connu (e-mail ou courrier).",
        }
    )
    return with_status(response, 202)


@route(
    bp,
    PATIENT,
    "/prevention/rules",
    "GET",
    "The prevention rules (public: age, sex, interval, source)",
    auth="none",
)
def prevention_rules() -> Response:
    return jsonify({"rules": prevention.rules_for_patient(espace())})


@route(bp, PATIENT, "/openapi.json", "GET", "This OpenAPI document", auth="none")
def openapi() -> Response:
    from patient_api.openapi import build_openapi

    return jsonify(build_openapi())
