"""A blocked professional never gets in; an opposed one may not feed the space."""

from __future__ import annotations

import pytest
from hab_fixtures import MEDECIN_ID, MT_ID, document, medecin, medecin_traitant, request, space

from habilitation.model import AccessMode, Action
from habilitation.pdp import PolicyDecisionPoint

PROFESSIONAL_ACTIONS = [
    Action.TEST_EXISTENCE,
    Action.DECLARE_AUTHORIZATION,
    Action.READ_ADMINISTRATIVE_DATA,
    Action.SUBMIT_DOCUMENT,
    Action.SEARCH_METADATA,
    Action.READ_DOCUMENT,
    Action.MASK_DOCUMENT,
    Action.ARCHIVE_DOCUMENT,
    Action.DELETE_DOCUMENT,
    Action.DELIVER_MESSAGE,
]


@pytest.mark.parametrize("access", list(AccessMode))
@pytest.mark.parametrize("action", PROFESSIONAL_ACTIONS)
def test_blocked_professional_is_denied_everything(
    pdp: PolicyDecisionPoint, access: AccessMode, action: Action
) -> None:
    facts = space(blocked_professionals=frozenset({MEDECIN_ID}))
    decision = pdp.authorize_operation(request(medecin(access), action, facts))
    assert not decision.permitted
    assert decision.rule_id == "blocked_professional"


@pytest.mark.parametrize("access", list(AccessMode))
def test_blocked_professional_sees_no_document(
    pdp: PolicyDecisionPoint, access: AccessMode
) -> None:
    facts = space(blocked_professionals=frozenset({MEDECIN_ID}), auto_unmask_in_emergency=True)
    vis = pdp.visible_documents(medecin(access), facts)
    assert vis.nothing and vis.rule_id == "blocked_professional"
    assert pdp.can_see_document(medecin(access), facts, document()).rule_id == (
        "blocked_professional"
    )


def test_blocking_the_medecin_traitant_also_holds(pdp: PolicyDecisionPoint) -> None:
    facts = space(blocked_professionals=frozenset({MT_ID}))
    decision = pdp.authorize_operation(request(medecin_traitant(), Action.READ_DOCUMENT, facts))
    assert decision.rule_id == "blocked_professional"


def test_block_is_per_professional(pdp: PolicyDecisionPoint) -> None:
    facts = space(blocked_professionals=frozenset({"someone-else"}))
    assert pdp.authorize_operation(request(medecin(), Action.READ_DOCUMENT, facts)).permitted


def test_feeding_opposition_denies_submission_only(pdp: PolicyDecisionPoint) -> None:
    facts = space(feeding_opposed_professionals=frozenset({MEDECIN_ID}))
    submit = pdp.authorize_operation(request(medecin(), Action.SUBMIT_DOCUMENT, facts))
    assert not submit.permitted and submit.rule_id == "feeding_opposed"
    assert pdp.authorize_operation(request(medecin(), Action.READ_DOCUMENT, facts)).permitted
    other = space(feeding_opposed_professionals=frozenset({"someone-else"}))
    assert pdp.authorize_operation(request(medecin(), Action.SUBMIT_DOCUMENT, other)).permitted
