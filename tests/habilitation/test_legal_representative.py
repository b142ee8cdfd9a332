"""The patient side: patient, legal representatives of a minor, protected adult's representative."""

from __future__ import annotations

import pytest
from hab_fixtures import (
    INS,
    LR_ID,
    document,
    legal_representative,
    patient,
    request,
    space,
    tutor,
)

from habilitation.model import (
    INVISIBLE_TO_LEGAL_REPRESENTATIVES,
    Action,
    Actor,
    ActorKind,
    AuthenticationMode,
    DocumentStatus,
)
from habilitation.pdp import PolicyDecisionPoint
from habilitation.rules.legal_representative import PATIENT_SIDE_ACTIONS

MINOR = space(is_minor=True)
SIDE = [patient(), legal_representative(), tutor()]
SIDE_IDS = ["patient", "legal_representative", "tutor"]
NOT_PATIENT_SIDE = sorted(set(Action) - PATIENT_SIDE_ACTIONS)


@pytest.mark.parametrize("actor", SIDE, ids=SIDE_IDS)
@pytest.mark.parametrize("action", sorted(PATIENT_SIDE_ACTIONS))
def test_patient_side_may_use_every_brick(
    pdp: PolicyDecisionPoint, actor: Actor, action: Action
) -> None:
    decision = pdp.authorize_operation(request(actor, action, MINOR))
    assert decision.permitted and decision.rule_id == "patient_side", decision


def test_patient_side_covers_the_bricks_named_by_the_issue() -> None:
    assert {
        Action.READ_PROFILE,
        Action.WRITE_PROFILE,
        Action.READ_MEASUREMENTS,
        Action.WRITE_MEASUREMENTS,
        Action.READ_AGENDA,
        Action.WRITE_AGENDA,
        Action.READ_MAILBOX,
        Action.WRITE_MAILBOX,
        Action.READ_TRACE,
        Action.MANAGE_SETTINGS,
        Action.MANAGE_CONSENTS,
        Action.MANAGE_LIFECYCLE,
        Action.EXPORT_SPACE,
        Action.READ_DOCUMENT,
    } <= PATIENT_SIDE_ACTIONS


@pytest.mark.parametrize("action", NOT_PATIENT_SIDE)
def test_patient_side_cannot_act_as_a_professional_or_the_system(
    pdp: PolicyDecisionPoint, action: Action
) -> None:
    decision = pdp.authorize_operation(request(patient(), action, space()))
    assert not decision.permitted
    assert decision.rule_id in {"not_a_patient_side_action", "space_required"}


def test_legal_representative_of_an_adult_has_no_access(pdp: PolicyDecisionPoint) -> None:
    decision = pdp.authorize_operation(
        request(legal_representative(), Action.READ_PROFILE, space())
    )
    assert not decision.permitted and decision.rule_id == "representative_of_adult"
    assert pdp.visible_documents(legal_representative(), space()).nothing


@pytest.mark.parametrize(
    "actor",
    [
        legal_representative("LR-STRANGER"),
        Actor(
            ActorKind.PATIENT,
            "999999999999999",
            authentication_mode=AuthenticationMode.PATIENT_LOGIN,
        ),
        Actor(
            ActorKind.LEGAL_REPRESENTATIVE,
            LR_ID,
            authentication_mode=AuthenticationMode.PATIENT_LOGIN,
            on_behalf_of="999999999999999",
        ),
        Actor(ActorKind.PROTECTED_ADULT_REPRESENTATIVE, "TUTOR-OTHER"),
    ],
    ids=["unknown-lr", "other-patient", "lr-for-another-patient", "other-tutor"],
)
def test_strangers_do_not_speak_for_the_patient(pdp: PolicyDecisionPoint, actor: Actor) -> None:
    decision = pdp.authorize_operation(request(actor, Action.READ_PROFILE, MINOR))
    assert not decision.permitted and decision.rule_id == "not_patient_side_of_space"


def test_patient_acting_on_behalf_of_their_ins(pdp: PolicyDecisionPoint) -> None:
    actor = Actor(ActorKind.PATIENT, "account-42", on_behalf_of=INS)
    assert pdp.authorize_operation(request(actor, Action.READ_TRACE, space())).permitted


def test_space_without_tutor_has_no_tutor(pdp: PolicyDecisionPoint) -> None:
    facts = space(protected_adult_representative=None)
    assert not pdp.authorize_operation(request(tutor(), Action.READ_PROFILE, facts)).permitted


@pytest.mark.parametrize("actor", SIDE, ids=SIDE_IDS)
def test_patient_side_statuses(pdp: PolicyDecisionPoint, actor: Actor) -> None:
    vis = pdp.visible_documents(actor, MINOR)
    assert vis.statuses == {DocumentStatus.APPROVED, DocumentStatus.ARCHIVED}
    for status, visible in [
        (DocumentStatus.APPROVED, True),
        (DocumentStatus.ARCHIVED, True),
        (DocumentStatus.DEPRECATED, False),
        (DocumentStatus.DELETED, False),
    ]:
        decision = pdp.can_see_document(actor, MINOR, document(status=status))
        assert decision.permitted is visible
        if not visible:
            assert decision.rule_id == "document_status"


def test_patient_side_is_not_filtered_by_type(pdp: PolicyDecisionPoint) -> None:
    assert pdp.can_see_document(patient(), space(), document(type_code="ATTEST-RESID")).permitted


def test_document_actions_need_a_visible_document(pdp: PolicyDecisionPoint) -> None:
    hidden = document(codes=frozenset({INVISIBLE_TO_LEGAL_REPRESENTATIVES}))
    for action in (Action.READ_DOCUMENT, Action.MASK_DOCUMENT, Action.DELETE_DOCUMENT):
        lr = pdp.authorize_operation(request(legal_representative(), action, MINOR, hidden))
        assert not lr.permitted and lr.rule_id == "minor_secret"
        assert pdp.authorize_operation(request(patient(), action, MINOR, hidden)).permitted


def test_patient_may_delete_or_mask_a_professional_document(pdp: PolicyDecisionPoint) -> None:
    for action in (Action.DELETE_DOCUMENT, Action.MASK_DOCUMENT, Action.ARCHIVE_DOCUMENT):
        assert pdp.authorize_operation(request(patient(), action, space(), document())).permitted
