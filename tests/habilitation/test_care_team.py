"""Consent: the care team (authorized professionals, médecin traitant, authorized structures)."""

from __future__ import annotations

import pytest
from hab_fixtures import (
    MEDECIN_ID,
    STRUCTURE,
    cpe,
    document,
    indirect,
    medecin,
    medecin_traitant,
    request,
    space,
)

from habilitation.model import AccessMode, Action, AuthenticationMode
from habilitation.pdp import PolicyDecisionPoint

NOBODY = space(authorized_professionals=frozenset(), authorized_structures=frozenset())
CARE_ACTIONS = [
    Action.READ_ADMINISTRATIVE_DATA,
    Action.SUBMIT_DOCUMENT,
    Action.SEARCH_METADATA,
    Action.READ_DOCUMENT,
    Action.LIST_AUTHORIZED_PROFESSIONALS,
    Action.REMOVE_AUTHORIZATION,
]


@pytest.mark.parametrize("action", CARE_ACTIONS)
def test_unauthorized_professional_is_denied_in_normal_mode(
    pdp: PolicyDecisionPoint, action: Action
) -> None:
    decision = pdp.authorize_operation(request(medecin(), action, NOBODY))
    assert not decision.permitted
    assert decision.rule_id == "care_team_not_authorized"


@pytest.mark.parametrize("action", CARE_ACTIONS)
def test_declared_professional_is_permitted(pdp: PolicyDecisionPoint, action: Action) -> None:
    facts = space(authorized_professionals=frozenset({MEDECIN_ID}))
    decision = pdp.authorize_operation(request(medecin(), action, facts))
    assert decision.permitted and decision.rule_id == "care_team"
    assert decision.obligations == ()


def test_medecin_traitant_needs_no_declaration(pdp: PolicyDecisionPoint) -> None:
    decision = pdp.authorize_operation(request(medecin_traitant(), Action.READ_DOCUMENT, NOBODY))
    assert decision.permitted and decision.rule_id == "care_team"
    assert "médecin traitant" in decision.reason


@pytest.mark.parametrize("action", [Action.TEST_EXISTENCE, Action.DECLARE_AUTHORIZATION])
def test_existence_test_and_declaration_need_no_prior_authorization(
    pdp: PolicyDecisionPoint, action: Action
) -> None:
    decision = pdp.authorize_operation(request(medecin(), action, NOBODY))
    assert decision.permitted and decision.rule_id == "functional_rights"


@pytest.mark.parametrize("access", [AccessMode.BREAK_GLASS, AccessMode.REGULATION])
def test_declaration_is_normal_mode_only(pdp: PolicyDecisionPoint, access: AccessMode) -> None:
    decision = pdp.authorize_operation(
        request(medecin(access), Action.DECLARE_AUTHORIZATION, NOBODY)
    )
    assert not decision.permitted and decision.rule_id == "functional_rights"


@pytest.mark.parametrize(
    "mode", [AuthenticationMode.INDIRECT, AuthenticationMode.INDIRECT_REINFORCED]
)
def test_indirect_mode_uses_the_structure_authorization(
    pdp: PolicyDecisionPoint, mode: AuthenticationMode
) -> None:
    actor = indirect(mode=mode)
    by_structure = space(authorized_professionals=frozenset(), authorized_structures={STRUCTURE})
    assert pdp.authorize_operation(request(actor, Action.SUBMIT_DOCUMENT, by_structure)).permitted
    denied = pdp.authorize_operation(request(actor, Action.SUBMIT_DOCUMENT, NOBODY))
    assert denied.rule_id == "care_team_not_authorized"


def test_cpe_uses_the_structure_authorization(pdp: PolicyDecisionPoint) -> None:
    by_structure = space(authorized_professionals=frozenset(), authorized_structures={STRUCTURE})
    assert pdp.authorize_operation(request(cpe(), Action.SUBMIT_DOCUMENT, by_structure)).permitted
    assert not pdp.authorize_operation(request(cpe(), Action.SUBMIT_DOCUMENT, NOBODY)).permitted


def test_direct_mode_does_not_ride_on_the_structure_authorization(pdp: PolicyDecisionPoint) -> None:
    by_structure = space(authorized_professionals=frozenset(), authorized_structures={STRUCTURE})
    decision = pdp.authorize_operation(request(medecin(), Action.READ_DOCUMENT, by_structure))
    assert decision.rule_id == "care_team_not_authorized"


def test_unauthorized_professional_sees_nothing(pdp: PolicyDecisionPoint) -> None:
    vis = pdp.visible_documents(medecin(), NOBODY)
    assert vis.nothing and vis.rule_id == "care_team_not_authorized"
    assert pdp.can_see_document(medecin(), NOBODY, document()).rule_id == (
        "care_team_not_authorized"
    )
