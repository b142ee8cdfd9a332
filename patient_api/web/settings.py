"""Routes of the person's settings (bearer token): emergency access (bris de glace) and
regulation (centre 15), auto-unmask, prevention, contact, blocked professionals, feeding
oppositions and the médecin traitant (CSP L.1111-15, L.1111-17, R.1111-46). Each change answers
the settings overview.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify

from espace import settings as rights
from habilitation.model import Action, Actor
from patient_api.http import ApiError, bearer_actor, json_body, route
from patient_api.web.common import PATIENT, S_REQ, SP, B, S, in_operation, space_operation

bp = Blueprint("settings", __name__)


def _change(
    ins: str,
    event: str,
    change: Callable[..., object],
    *args: Any,
    actor: Actor | None = None,
) -> Response:
    """Call ``change(op, *args)`` in one MANAGE_SETTINGS operation of the bearer's (or
    ``actor``'s) on the space of ``ins``; answer the settings overview."""
    with space_operation(actor or bearer_actor(), Action.MANAGE_SETTINGS, ins, event) as op:
        change(op, *args)
        return jsonify(rights.overview(op))


@route(
    bp,
    PATIENT,
    SP + "/settings",
    "GET",
    "Settings: emergency and regulation access, auto-unmask, prevention, contact, blocks, "
    "feeding oppositions, médecin traitant",
)
def settings_get(ins: str) -> Response:
    return in_operation(
        bearer_actor(), Action.MANAGE_SETTINGS, ins, "settings.read", rights.overview
    )


FLAGS = {k: B for k in rights.BOOLEAN_SETTINGS}


@route(
    bp,
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
    return in_operation(
        actor, Action.MANAGE_SETTINGS, ins, "settings.flags", lambda op: rights.set_flags(op, data)
    )


CONTACT = {"email": S, "phone": S}


@route(
    bp,
    PATIENT,
    SP + "/contact",
    "PUT",
    "Change the contact e-mail or phone (identity traits come from the INS)",
    body=CONTACT,
)
def contact_put(ins: str) -> Response:
    actor = bearer_actor()
    data = json_body(CONTACT)
    return in_operation(
        actor,
        Action.MANAGE_SETTINGS,
        ins,
        "settings.contact",
        lambda op: rights.change_contact(op, email=data.get("email"), phone=data.get("phone")),
    )


PRO = SP + "/professionals/<professional_id>"


@route(bp, PATIENT, PRO + "/block", "PUT", "Block a professional (read and write)")
def block_put(ins: str, professional_id: str) -> Response:
    return _change(ins, "settings.block", rights.block_professional, professional_id)


@route(bp, PATIENT, PRO + "/block", "DELETE", "Unblock a professional")
def block_delete(ins: str, professional_id: str) -> Response:
    return _change(ins, "settings.unblock", rights.unblock_professional, professional_id)


@route(
    bp, PATIENT, PRO + "/feeding-opposition", "PUT", "Oppose this professional's feeding of the DMP"
)
def feeding_put(ins: str, professional_id: str) -> Response:
    return _change(ins, "settings.feeding", rights.set_feeding_opposed, professional_id, True)


@route(bp, PATIENT, PRO + "/feeding-opposition", "DELETE", "Withdraw the feeding opposition")
def feeding_delete(ins: str, professional_id: str) -> Response:
    return _change(ins, "settings.feeding", rights.set_feeding_opposed, professional_id, False)


MT = {"professional_id": S_REQ}


@route(bp, PATIENT, SP + "/medecin-traitant", "PUT", "Designate the médecin traitant", body=MT)
def mt_put(ins: str) -> Response:
    actor = bearer_actor()
    data = json_body(MT)
    return _change(
        ins,
        "settings.medecin_traitant",
        rights.set_medecin_traitant,
        data["professional_id"],
        actor=actor,
    )


@route(bp, PATIENT, SP + "/medecin-traitant", "DELETE", "Remove the médecin traitant")
def mt_delete(ins: str) -> Response:
    return _change(ins, "settings.medecin_traitant", rights.set_medecin_traitant, None)
