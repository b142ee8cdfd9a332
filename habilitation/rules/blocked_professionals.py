"""A professional the patient blocked never gets in; an opposed one may not feed the space.

The block holds whatever the access mode (bris de glace and centre 15 included) and the action
(TD0.2, TD0.3 declare, submission, mail delivery).
"""

from __future__ import annotations

from habilitation.context import Context
from habilitation.model import Action, Decision


def decide(ctx: Context) -> Decision | None:
    space = ctx.space
    if not ctx.is_professional or space is None:
        return None
    if ctx.actor.id in space.blocked_professionals:
        return Decision.deny("blocked_professional", "the patient blocked this professional")
    if ctx.action is Action.SUBMIT_DOCUMENT and ctx.actor.id in space.feeding_opposed_professionals:
        return Decision.deny(
            "feeding_opposed", "the patient opposed the feeding of the space by this professional"
        )
    return None
