"""Delivering a message into the patient's secure mailbox (MSSanté relay).

A professional (the relay acts with the sender's identity) may deliver to an active space
unless blocked, in normal access mode only; no care-team authorization is needed. The system
may deliver prevention messages unless the patient opposed them.
"""

from __future__ import annotations

from habilitation.context import Context
from habilitation.model import Action, ActorKind, Decision


def decide(ctx: Context) -> Decision | None:
    space = ctx.space
    if ctx.action is not Action.DELIVER_MESSAGE or space is None:
        return None
    if ctx.is_professional:
        if ctx.emergency:
            return Decision.deny(
                "mail_delivery_normal_mode_only", "mail is delivered in normal access mode only"
            )
        return Decision.permit("mail_delivery", "secure message from a professional")
    if ctx.actor.kind is ActorKind.SYSTEM:
        if space.prevention_opposed:
            return Decision.deny("prevention_opposed", "the patient opposed prevention messages")
        return Decision.permit("prevention_message", "prevention message from the service")
    return None
