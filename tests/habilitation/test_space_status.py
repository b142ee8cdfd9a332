"""Only an ACTIVE space is open; lifecycle is what remains on the others."""

from __future__ import annotations

import pytest
from hab_fixtures import (
    app,
    document,
    legal_representative,
    medecin,
    medecin_traitant,
    patient,
    request,
    space,
    support,
    system,
    tutor,
)

from habilitation.model import AccessMode, Action, Actor, SpaceStatus
from habilitation.pdp import PolicyDecisionPoint

CLOSED_STATUSES = [s for s in SpaceStatus if s is not SpaceStatus.ACTIVE]
EVERYONE = [
    medecin(),
    medecin_traitant(),
    medecin(AccessMode.BREAK_GLASS),
    patient(),
    legal_representative(),
    tutor(),
    app(),
    support(),
    system(),
]
EVERYONE_IDS = ["med", "mt", "med-bg", "patient", "lr", "tutor", "app", "support", "system"]
READS = [
    Action.TEST_EXISTENCE,
    Action.READ_DOCUMENT,
    Action.SEARCH_METADATA,
    Action.READ_PROFILE,
    Action.READ_MEASUREMENTS,
    Action.READ_MAILBOX,
    Action.READ_TRACE,
    Action.EXPORT_SPACE,
    Action.SUBMIT_DOCUMENT,
    Action.DELIVER_MESSAGE,
]


@pytest.mark.parametrize("status", CLOSED_STATUSES)
@pytest.mark.parametrize("actor", EVERYONE, ids=EVERYONE_IDS)
@pytest.mark.parametrize("action", READS)
def test_nothing_is_readable_on_a_non_active_space(
    pdp: PolicyDecisionPoint, status: SpaceStatus, actor: Actor, action: Action
) -> None:
    facts = space(status=status, is_minor=True)
    decision = pdp.authorize_operation(request(actor, action, facts))
    assert not decision.permitted
    assert decision.rule_id == "space_not_active"


@pytest.mark.parametrize("status", CLOSED_STATUSES)
@pytest.mark.parametrize("actor", EVERYONE, ids=EVERYONE_IDS)
def test_no_document_is_visible_on_a_non_active_space(
    pdp: PolicyDecisionPoint, status: SpaceStatus, actor: Actor
) -> None:
    facts = space(status=status, is_minor=True)
    vis = pdp.visible_documents(actor, facts)
    assert vis.nothing and vis.rule_id == "space_not_active"
    assert pdp.can_see_document(actor, facts, document()).rule_id == "space_not_active"


@pytest.mark.parametrize("status", [SpaceStatus.PENDING, SpaceStatus.OPPOSED, SpaceStatus.CLOSED])
@pytest.mark.parametrize(
    "actor",
    [patient(), legal_representative(), tutor(), support()],
    ids=["p", "lr", "tutor", "support"],
)
def test_lifecycle_remains_possible(
    pdp: PolicyDecisionPoint, status: SpaceStatus, actor: Actor
) -> None:
    facts = space(status=status, is_minor=True)
    assert pdp.authorize_operation(request(actor, Action.MANAGE_LIFECYCLE, facts)).permitted


@pytest.mark.parametrize(
    "actor", [patient(), support(), medecin(), app()], ids=["p", "support", "med", "app"]
)
def test_deleted_space_allows_no_lifecycle(pdp: PolicyDecisionPoint, actor: Actor) -> None:
    facts = space(status=SpaceStatus.DELETED)
    decision = pdp.authorize_operation(request(actor, Action.MANAGE_LIFECYCLE, facts))
    assert decision.rule_id == "space_not_active"


@pytest.mark.parametrize("actor", [medecin(), app()], ids=["med", "app"])
def test_lifecycle_is_not_for_professionals_or_apps(pdp: PolicyDecisionPoint, actor: Actor) -> None:
    facts = space(status=SpaceStatus.PENDING)
    assert pdp.authorize_operation(request(actor, Action.MANAGE_LIFECYCLE, facts)).rule_id == (
        "space_not_active"
    )
    active = pdp.authorize_operation(request(actor, Action.MANAGE_LIFECYCLE, space()))
    assert not active.permitted


@pytest.mark.parametrize("status", list(SpaceStatus))
def test_system_jobs_run_on_every_status(pdp: PolicyDecisionPoint, status: SpaceStatus) -> None:
    decision = pdp.authorize_operation(request(system(), Action.SYSTEM_JOB, space(status=status)))
    assert decision.permitted and decision.rule_id == "system_job"


def test_actions_on_a_space_need_a_space(pdp: PolicyDecisionPoint) -> None:
    decision = pdp.authorize_operation(request(medecin(), Action.TEST_EXISTENCE, None))
    assert not decision.permitted and decision.rule_id == "space_required"
    listing = pdp.authorize_operation(request(medecin(), Action.LIST_AUTHORIZED_SPACES, None))
    assert listing.permitted
