"""Emergency access: bris de glace and centre 15 (TRE_R248 ModeAcces).

They bypass the authorization (not a block: see
:mod:`habilitation.rules.blocked_professionals`) unless the patient disabled them, and each
permit obliges the enforcement point to notify the patient at once.
"""

from __future__ import annotations

from habilitation.context import Context
from habilitation.model import AccessMode, Decision, Obligation


def decide(ctx: Context) -> Decision | None:
    space = ctx.space
    if not ctx.is_professional or space is None or not ctx.rights.covers(ctx.action):
        return None
    mode = ctx.actor.access_mode
    if mode is AccessMode.BREAK_GLASS:
        if not space.break_glass_allowed:
            return Decision.deny(
                "break_glass_refused_by_patient", "the patient disabled bris de glace access"
            )
        return Decision.permit(
            "break_glass", "emergency access (bris de glace)", Obligation.NOTIFY_PATIENT_NOW
        )
    if mode is AccessMode.REGULATION:
        if not space.regulation_allowed:
            return Decision.deny(
                "regulation_refused_by_patient", "the patient disabled centre 15 access"
            )
        return Decision.permit(
            "centre_15", "medical regulation access (centre 15)", Obligation.NOTIFY_PATIENT_NOW
        )
    return None
