"""Support desk, system jobs and mail delivery."""

from __future__ import annotations

import pytest
from hab_fixtures import MEDECIN_ID, app, medecin, patient, request, space, support, system

from habilitation.model import AccessMode, Action, Actor
from habilitation.pdp import PolicyDecisionPoint


def test_support_agent_manages_the_lifecycle(pdp: PolicyDecisionPoint) -> None:
    decision = pdp.authorize_operation(request(support(), Action.MANAGE_LIFECYCLE, space()))
    assert decision.permitted and decision.rule_id == "support_lifecycle"


@pytest.mark.parametrize("action", sorted(set(Action) - {Action.MANAGE_LIFECYCLE}))
def test_support_agent_does_nothing_else(pdp: PolicyDecisionPoint, action: Action) -> None:
    decision = pdp.authorize_operation(request(support(), action, space()))
    assert not decision.permitted
    assert decision.rule_id in {"support_agent_lifecycle_only", "space_required"}


def test_support_agent_reads_no_document(pdp: PolicyDecisionPoint) -> None:
    vis = pdp.visible_documents(support(), space())
    assert vis.nothing and vis.rule_id == "support_agent_lifecycle_only"


def test_system_runs_jobs_without_a_space(pdp: PolicyDecisionPoint) -> None:
    assert pdp.authorize_operation(request(system(), Action.SYSTEM_JOB, None)).permitted


@pytest.mark.parametrize(
    "action", sorted(set(Action) - {Action.SYSTEM_JOB, Action.DELIVER_MESSAGE})
)
def test_system_does_nothing_else(pdp: PolicyDecisionPoint, action: Action) -> None:
    decision = pdp.authorize_operation(request(system(), action, space()))
    assert not decision.permitted
    assert decision.rule_id in {"system_jobs_only", "space_required"}
    assert pdp.visible_documents(system(), space()).nothing


def test_system_delivers_prevention_messages_unless_opposed(pdp: PolicyDecisionPoint) -> None:
    ok = pdp.authorize_operation(request(system(), Action.DELIVER_MESSAGE, space()))
    assert ok.permitted and ok.rule_id == "prevention_message"
    opposed = space(prevention_opposed=True)
    refused = pdp.authorize_operation(request(system(), Action.DELIVER_MESSAGE, opposed))
    assert not refused.permitted and refused.rule_id == "prevention_opposed"


def test_professional_delivers_mail_without_authorization(pdp: PolicyDecisionPoint) -> None:
    strangers = space(authorized_professionals=frozenset())
    decision = pdp.authorize_operation(request(medecin(), Action.DELIVER_MESSAGE, strangers))
    assert decision.permitted and decision.rule_id == "mail_delivery"


def test_blocked_professional_cannot_deliver_mail(pdp: PolicyDecisionPoint) -> None:
    facts = space(blocked_professionals=frozenset({MEDECIN_ID}))
    decision = pdp.authorize_operation(request(medecin(), Action.DELIVER_MESSAGE, facts))
    assert decision.rule_id == "blocked_professional"


def test_mail_is_delivered_in_normal_mode_only(pdp: PolicyDecisionPoint) -> None:
    actor = medecin(AccessMode.BREAK_GLASS)
    decision = pdp.authorize_operation(request(actor, Action.DELIVER_MESSAGE, space()))
    assert decision.rule_id == "mail_delivery_normal_mode_only"


@pytest.mark.parametrize("actor", [patient(), app(), support()], ids=["patient", "app", "support"])
def test_others_do_not_deliver_mail(pdp: PolicyDecisionPoint, actor: Actor) -> None:
    decision = pdp.authorize_operation(request(actor, Action.DELIVER_MESSAGE, space()))
    assert not decision.permitted
