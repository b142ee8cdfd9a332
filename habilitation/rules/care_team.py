"""Consent: in normal mode a professional needs the patient's authorization.

A professional is authorized when declared (TD0.3, ``authorized_professionals``), when they are
the médecin traitant, or, for a structure-level actor (CPE, indirect and AIR modes), when their
structure is authorized (PDT-INF-526 note (1): a CPE declaration authorizes the structure).
TD0.2 (test existence and authorization) and TD0.3 declare need no prior authorization: that is
how one becomes authorized. Emergency modes are handled by :mod:`habilitation.rules.break_glass`.
"""

from __future__ import annotations

from habilitation.context import STRUCTURE_MODES, Context
from habilitation.model import Action, Actor, Decision, SpaceFacts

NO_AUTHORIZATION_NEEDED = frozenset({Action.TEST_EXISTENCE, Action.DECLARE_AUTHORIZATION})


def authorization(actor: Actor, space: SpaceFacts) -> str | None:
    """Say why the actor is authorized on the space, or None."""
    if space.medecin_traitant is not None and actor.id == space.medecin_traitant:
        return "the médecin traitant of the patient"
    if actor.id in space.authorized_professionals:
        return "a professional the patient authorized"
    if (
        actor.authentication_mode in STRUCTURE_MODES
        and actor.structure_id is not None
        and actor.structure_id in space.authorized_structures
    ):
        return "a member of a structure the patient authorized"
    return None


def decide(ctx: Context) -> Decision | None:
    space = ctx.space
    if (
        not ctx.is_professional
        or space is None
        or ctx.emergency
        or not ctx.rights.covers(ctx.action)
        or ctx.action in NO_AUTHORIZATION_NEEDED
    ):
        return None
    why = authorization(ctx.actor, space)
    if why is None:
        return Decision.deny(
            "care_team_not_authorized",
            "the professional is not authorized on this space (declare the authorization first)",
        )
    return Decision.permit("care_team", f"normal access by {why}")
