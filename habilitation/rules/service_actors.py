"""The support desk and background jobs.

A support agent (MES support desk, local health-insurance fund) only handles the space
lifecycle (opposition via the support desk, closure); it never reads documents, profile,
measurements or mail. The system runs system jobs (purge, digest) on any space and delivers
prevention messages (see :mod:`habilitation.rules.messaging`); nothing else.
"""

from __future__ import annotations

from habilitation.context import Context
from habilitation.model import Action, ActorKind, Decision


def decide(ctx: Context) -> Decision | None:
    kind = ctx.actor.kind
    if kind is ActorKind.SUPPORT_AGENT:
        if ctx.action is Action.MANAGE_LIFECYCLE:
            return Decision.permit("support_lifecycle", "support desk lifecycle operation")
        return Decision.deny(
            "support_agent_lifecycle_only", "the support desk only manages the lifecycle"
        )
    if kind is ActorKind.SYSTEM:
        if ctx.action is Action.SYSTEM_JOB:
            return Decision.permit("system_job", "background job")
        if ctx.action is Action.DELIVER_MESSAGE:
            return None
        return Decision.deny("system_jobs_only", "the system only runs jobs and prevention mail")
    return None
