"""The one combining algorithm of the PDP: deny overrides, and no permit means DENY.

Rules are evaluated in a fixed order. The first DENY decides (later rules are not evaluated, so
the reported ``rule_id`` is the first forbidding rule in that order). Without a DENY, the
request is permitted when at least one rule permitted it: the result carries the rule id and
reason of the last (most specific) permit and the obligations of all permits, in order. When
no rule applies the answer is DENY with rule id ``default_deny`` (HAPI FHIR's
``PolicyEnum.DENY``).
"""

from __future__ import annotations

from collections.abc import Iterable

from habilitation.model import Decision, Effect, Obligation

DEFAULT_DENY = Decision.deny("default_deny", "no rule grants this request")


def deny_overrides(decisions: Iterable[Decision | None]) -> Decision:
    last_permit: Decision | None = None
    obligations: list[Obligation] = []
    for decision in decisions:
        if decision is None:
            continue
        if decision.effect is Effect.DENY:
            return decision
        last_permit = decision
        obligations.extend(o for o in decision.obligations if o not in obligations)
    if last_permit is None:
        return DEFAULT_DENY
    if tuple(obligations) == last_permit.obligations:
        return last_permit
    return Decision(Effect.PERMIT, last_permit.rule_id, last_permit.reason, tuple(obligations))
