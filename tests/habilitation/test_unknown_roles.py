"""Unknown callers, wrong authentication modes, and the default deny."""

from __future__ import annotations

from typing import Any, cast

import pytest
from hab_fixtures import INS, document, medecin, request, space

from habilitation.combiner import DEFAULT_DENY, deny_overrides
from habilitation.model import (
    AccessMode,
    Action,
    Actor,
    ActorKind,
    AuthenticationMode,
    Decision,
    Effect,
    Obligation,
)
from habilitation.pdp import PolicyDecisionPoint


@pytest.mark.parametrize("role", ["insurer", "employer", "state", "mutuelle"])
@pytest.mark.parametrize("action", list(Action))
def test_roles_without_a_kind_are_denied_everything(
    pdp: PolicyDecisionPoint, role: str, action: Action
) -> None:
    actor = Actor(cast(Any, role), "X-1", profession="10")
    decision = pdp.authorize_operation(request(actor, action, space()))
    assert not decision.permitted
    assert decision.rule_id in {"unknown_role", "space_required"}
    assert pdp.visible_documents(actor, space()).nothing


@pytest.mark.parametrize(
    ("kind", "mode"),
    [
        (ActorKind.PATIENT, AuthenticationMode.DIRECT),
        (ActorKind.LEGAL_REPRESENTATIVE, AuthenticationMode.APP_TOKEN),
        (ActorKind.APP, AuthenticationMode.PATIENT_LOGIN),
        (ActorKind.SYSTEM, AuthenticationMode.CPE),
        (ActorKind.SUPPORT_AGENT, AuthenticationMode.DIRECT),
        (ActorKind.PROFESSIONAL, AuthenticationMode.PATIENT_LOGIN),
        (ActorKind.PROFESSIONAL, AuthenticationMode.APP_TOKEN),
        (ActorKind.PROFESSIONAL, None),
    ],
)
def test_authentication_mode_must_fit_the_kind(
    pdp: PolicyDecisionPoint, kind: ActorKind, mode: AuthenticationMode | None
) -> None:
    actor = Actor(
        kind, INS, profession="10", authentication_mode=mode, on_behalf_of=INS, app_id="a"
    )
    decision = pdp.authorize_operation(request(actor, Action.READ_DOCUMENT, space()))
    assert not decision.permitted and decision.rule_id == "authentication_mode_mismatch"


@pytest.mark.parametrize("access", [AccessMode.BREAK_GLASS, AccessMode.REGULATION])
def test_emergency_modes_are_for_professionals_only(
    pdp: PolicyDecisionPoint, access: AccessMode
) -> None:
    actor = Actor(ActorKind.PATIENT, INS, access_mode=access)
    decision = pdp.authorize_operation(request(actor, Action.READ_PROFILE, space()))
    assert decision.rule_id == "emergency_mode_professionals_only"


def test_default_deny_when_no_rule_applies() -> None:
    assert deny_overrides([None, None]) is DEFAULT_DENY
    assert deny_overrides([]) == Decision.deny("default_deny", "no rule grants this request")


def test_deny_overrides_permit_whatever_the_order() -> None:
    permit = Decision.permit("a", "ok", Obligation.NOTIFY_PATIENT_NOW)
    deny = Decision.deny("b", "no")
    assert deny_overrides([permit, deny]) is deny
    assert deny_overrides([deny, permit]) is deny


def test_combined_permit_keeps_the_last_rule_and_all_obligations() -> None:
    first = Decision.permit("general", "g", Obligation.TRACE_SECURITY_ALERT)
    last = Decision.permit("specific", "s", Obligation.NOTIFY_PATIENT_NOW)
    combined = deny_overrides([first, None, last])
    assert combined.effect is Effect.PERMIT and combined.rule_id == "specific"
    assert combined.obligations == (Obligation.TRACE_SECURITY_ALERT, Obligation.NOTIFY_PATIENT_NOW)


def test_first_deny_is_reported() -> None:
    assert deny_overrides([Decision.deny("x", ""), Decision.deny("y", "")]).rule_id == "x"


def test_every_denial_names_a_rule_and_a_reason(pdp: PolicyDecisionPoint) -> None:
    facts = space(authorized_professionals=frozenset())
    for action in Action:
        decision = pdp.authorize_operation(request(medecin(), action, facts, document()))
        assert decision.rule_id and decision.reason
        assert decision.rule_id == decision.rule_id.lower().replace(" ", "_")
