"""Only an ACTIVE space is open.

A PENDING space is not created yet (six-week opposition window), an OPPOSED, CLOSED or DELETED
one holds nothing anyone may read, support desk included. The only operations left on a
non-active space are its lifecycle (oppose, activate, close, reopen) by the patient side or the
support desk on PENDING / OPPOSED / CLOSED spaces, and system jobs (purge) on any status.
"""

from __future__ import annotations

from habilitation.context import SPACELESS_ACTIONS, Context
from habilitation.model import Action, ActorKind, Decision, SpaceStatus

LIFECYCLE_STATUSES = frozenset({SpaceStatus.PENDING, SpaceStatus.OPPOSED, SpaceStatus.CLOSED})


def decide(ctx: Context) -> Decision | None:
    space = ctx.space
    if space is None:
        if ctx.action in SPACELESS_ACTIONS:
            return None
        return Decision.deny("space_required", f"{ctx.action.value} needs a patient space")
    if space.status is SpaceStatus.ACTIVE or ctx.action is Action.SYSTEM_JOB:
        return None
    if (
        space.status in LIFECYCLE_STATUSES
        and ctx.action is Action.MANAGE_LIFECYCLE
        and (ctx.is_patient_side or ctx.actor.kind is ActorKind.SUPPORT_AGENT)
    ):
        return None
    return Decision.deny(
        "space_not_active", f"the space is {space.status.value}: only an active space is open"
    )
