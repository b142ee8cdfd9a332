"""Routes without a token: the enrolment steps authenticated by the one-time code (décret
2021-1048: opposition within six weeks, voluntary creation, activation, reopening), the public
prevention rules and the OpenAPI 3.1 document.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, Response, jsonify

from espace import lifecycle, prevention
from patient_api.http import Field, espace, json_body, reject_unknown_query, route, source
from patient_api.web.common import B_REQ, PATIENT, REP_KINDS, S_REQ, S, code_actor, pdf_or_json

bp = Blueprint("enrolment", __name__)

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
    responses={"201": "Opposition recorded", "409": "Already created or opposed"},
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
)
def enrolment_reopen() -> Response:
    return _code_step(lifecycle.reopen)


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
