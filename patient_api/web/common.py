"""What the route modules of the patient API share: URL prefixes, field specs of the JSON
bodies, the one operation per call, the one-time-code caller, and small response helpers."""

from __future__ import annotations

import io
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from flask import Response, jsonify, request, send_file

from espace import lifecycle
from espace.service import Operation
from habilitation.model import Action, Actor, ActorKind, AuthenticationMode
from patient_api.http import Field, espace, source

PATIENT = "/api/patient"
ADMIN = "/api/admin"

S = Field("string")
S_REQ = Field("string", required=True)
B = Field("boolean")
B_REQ = Field("boolean", required=True)
D = Field("date")
D_REQ = Field("date", required=True)
REP_KINDS = ("legal_representative", "protected_adult_representative")
SP = "/spaces/<ins>"  # the space of the person, in both the patient API and the back office


def space_operation(
    actor: Actor, action: Action, ins: str, event: str
) -> AbstractContextManager[Operation]:
    """One ``Espace.operation`` on the space of ``ins`` (the enforcement point)."""
    return espace().operation(actor, action, event_type=event, source=source(), space_ins=ins)


def in_operation(
    actor: Actor, action: Action, ins: str, event: str, fn: Callable[[Operation], Any]
) -> Response:
    """Run ``fn`` in one operation on the space of ``ins`` and answer its result as JSON."""
    with space_operation(actor, action, ins, event) as op:
        return jsonify(fn(op))


def code_actor(data: dict[str, Any]) -> Actor:
    """The person (or their representative) authenticated by the one-time code of ``data``."""
    ins, rep_ins = data["ins"], data.get("representative_ins")
    if rep_ins is None:
        return Actor(ActorKind.PATIENT, ins, authentication_mode=AuthenticationMode.PATIENT_LOGIN)
    kind = ActorKind(data.get("representative_kind") or "legal_representative")
    return Actor(
        kind, rep_ins, authentication_mode=AuthenticationMode.PATIENT_LOGIN, on_behalf_of=ins
    )


def with_status(response: Response, status: int) -> Response:
    response.status_code = status
    return response


def opposition_pdf(receipt: lifecycle.OppositionReceipt) -> Response:
    """The PDF confirmation of an opposition, as a download."""
    from patient_api.pdf import opposition_pdf as render

    return send_file(
        io.BytesIO(render(receipt)),
        mimetype="application/pdf",
        download_name=f"opposition-{receipt.reference}.pdf",
    )


def pdf_or_json(receipt: lifecycle.OppositionReceipt, status: int = 200) -> Response:
    """An opposition receipt as JSON, or as PDF with ``?format=pdf``."""
    if request.args.get("format") == "pdf":
        return with_status(opposition_pdf(receipt), status)
    response = jsonify(
        {
            "reference": receipt.reference,
            "ins": receipt.ins,
            "opposed_at": receipt.opposed_at.isoformat(),
            "opposed_by_kind": receipt.opposed_by_kind,
            "agent_id": receipt.agent_id,
        }
    )
    return with_status(response, status)


def state_json(ins: str, state: lifecycle.SpaceState | None) -> Response:
    """The space's state after a closure (None: it was deleted at once)."""
    return jsonify(state.as_json() if state else {"ins": ins, "status": "deleted"})
