"""Emergency access: bris de glace and centre 15."""

from __future__ import annotations

import pytest
from hab_fixtures import (
    INFIRMIER_ID,
    MEDECIN_ID,
    document,
    indirect,
    infirmier,
    medecin,
    medecin_traitant,
    request,
    space,
)

from habilitation.model import MASKED_TO_PROFESSIONALS, AccessMode, Action, Obligation
from habilitation.pdp import PolicyDecisionPoint

STRANGERS = space(authorized_professionals=frozenset(), authorized_structures=frozenset())
EMERGENCY = [(AccessMode.BREAK_GLASS, "break_glass"), (AccessMode.REGULATION, "centre_15")]


@pytest.mark.parametrize(("access", "rule"), EMERGENCY)
@pytest.mark.parametrize(
    "action", [Action.READ_DOCUMENT, Action.SUBMIT_DOCUMENT, Action.SEARCH_METADATA]
)
def test_emergency_bypasses_the_authorization_and_notifies(
    pdp: PolicyDecisionPoint, access: AccessMode, rule: str, action: Action
) -> None:
    decision = pdp.authorize_operation(request(medecin(access), action, STRANGERS))
    assert decision.permitted and decision.rule_id == rule
    assert decision.obligations == (Obligation.NOTIFY_PATIENT_NOW,)


def test_normal_mode_permits_carry_no_notification(pdp: PolicyDecisionPoint) -> None:
    decision = pdp.authorize_operation(request(medecin(), Action.READ_DOCUMENT, space()))
    assert decision.permitted and Obligation.NOTIFY_PATIENT_NOW not in decision.obligations


def test_break_glass_refused_when_the_patient_disabled_it(pdp: PolicyDecisionPoint) -> None:
    facts = space(break_glass_allowed=False)
    decision = pdp.authorize_operation(
        request(medecin(AccessMode.BREAK_GLASS), Action.READ_DOCUMENT, facts)
    )
    assert not decision.permitted and decision.rule_id == "break_glass_refused_by_patient"
    assert pdp.visible_documents(medecin(AccessMode.BREAK_GLASS), facts).nothing
    # centre 15 is a separate switch
    ok = pdp.authorize_operation(
        request(medecin(AccessMode.REGULATION), Action.READ_DOCUMENT, facts)
    )
    assert ok.permitted


def test_regulation_refused_when_the_patient_disabled_it(pdp: PolicyDecisionPoint) -> None:
    facts = space(regulation_allowed=False)
    decision = pdp.authorize_operation(
        request(medecin(AccessMode.REGULATION), Action.READ_DOCUMENT, facts)
    )
    assert not decision.permitted and decision.rule_id == "regulation_refused_by_patient"
    ok = pdp.authorize_operation(
        request(medecin(AccessMode.BREAK_GLASS), Action.READ_DOCUMENT, facts)
    )
    assert ok.permitted


@pytest.mark.parametrize(("access", "_rule"), EMERGENCY)
def test_emergency_does_not_lift_a_block(
    pdp: PolicyDecisionPoint, access: AccessMode, _rule: str
) -> None:
    facts = space(blocked_professionals=frozenset({MEDECIN_ID}))
    decision = pdp.authorize_operation(request(medecin(access), Action.READ_DOCUMENT, facts))
    assert decision.rule_id == "blocked_professional"


def test_indirect_regulation_is_an_emergency_access(pdp: PolicyDecisionPoint) -> None:
    decision = pdp.authorize_operation(
        request(indirect(AccessMode.REGULATION), Action.SUBMIT_DOCUMENT, STRANGERS)
    )
    assert decision.permitted and decision.rule_id == "centre_15"
    assert Obligation.NOTIFY_PATIENT_NOW in decision.obligations


def test_search_without_ins_exists_only_in_regulation(pdp: PolicyDecisionPoint) -> None:
    action = Action.SEARCH_PATIENT_WITHOUT_INS
    assert pdp.authorize_operation(request(medecin(AccessMode.REGULATION), action)).permitted
    normal = pdp.authorize_operation(request(medecin(), action))
    assert normal.rule_id == "functional_rights"


@pytest.mark.parametrize(("access", "_rule"), EMERGENCY)
def test_masked_documents_in_emergency_follow_the_patient_setting(
    pdp: PolicyDecisionPoint, access: AccessMode, _rule: str
) -> None:
    masked = document(codes=frozenset({MASKED_TO_PROFESSIONALS}))
    for actor in (medecin(access), infirmier(access)):
        hidden = pdp.can_see_document(actor, space(), masked)
        assert not hidden.permitted and hidden.rule_id == "masked_documents"
        assert pdp.can_see_document(actor, space(auto_unmask_in_emergency=True), masked).permitted


def test_medecin_traitant_in_break_glass_also_follows_the_setting(pdp: PolicyDecisionPoint) -> None:
    masked = document(codes=frozenset({MASKED_TO_PROFESSIONALS}))
    mt = medecin_traitant(AccessMode.BREAK_GLASS)
    assert not pdp.can_see_document(mt, space(), masked).permitted
    assert pdp.can_see_document(mt, space(auto_unmask_in_emergency=True), masked).permitted
    # in normal mode the médecin traitant sees masked documents
    assert pdp.can_see_document(medecin_traitant(), space(), masked).permitted


def test_author_keeps_seeing_a_masked_document_in_emergency(pdp: PolicyDecisionPoint) -> None:
    own = document(codes=frozenset({MASKED_TO_PROFESSIONALS}), authors=frozenset({INFIRMIER_ID}))
    assert pdp.can_see_document(infirmier(AccessMode.BREAK_GLASS), space(), own).permitted
