"""Referenced apps: only within the consented purposes, never the mailbox or the trace."""

from __future__ import annotations

import pytest
from hab_fixtures import APP_ID, app, document, medecin, request, space

from habilitation.model import INVISIBLE_TO_PATIENT, Action, Purpose
from habilitation.pdp import PolicyDecisionPoint
from habilitation.rules.app_pairing import ACTION_PURPOSES

NEVER = sorted(set(Action) - set(ACTION_PURPOSES))


@pytest.mark.parametrize(("action", "purpose"), sorted(ACTION_PURPOSES.items()))
def test_each_action_needs_its_purpose(
    pdp: PolicyDecisionPoint, action: Action, purpose: Purpose
) -> None:
    granted = space(app_consents={APP_ID: frozenset({purpose})})
    decision = pdp.authorize_operation(request(app(), action, granted))
    assert decision.permitted and decision.rule_id == "app_pairing"
    others = frozenset(set(Purpose) - {purpose})
    refused = pdp.authorize_operation(request(app(), action, space(app_consents={APP_ID: others})))
    assert not refused.permitted and refused.rule_id == "app_purpose_not_consented"


def test_measurements_read_needs_the_measurements_purpose(pdp: PolicyDecisionPoint) -> None:
    assert ACTION_PURPOSES[Action.READ_MEASUREMENTS] is Purpose.MEASUREMENTS_READ
    assert ACTION_PURPOSES[Action.WRITE_MEASUREMENTS] is Purpose.MEASUREMENTS_WRITE


@pytest.mark.parametrize("action", NEVER)
def test_apps_never_touch_mailbox_trace_settings_lifecycle(
    pdp: PolicyDecisionPoint, action: Action
) -> None:
    every_purpose = space(app_consents={APP_ID: frozenset(Purpose)})
    decision = pdp.authorize_operation(request(app(), action, every_purpose))
    assert not decision.permitted
    assert decision.rule_id in {"app_action_not_pairable", "space_required"}


def test_mailbox_trace_settings_lifecycle_are_never_pairable() -> None:
    for action in (
        Action.READ_MAILBOX,
        Action.WRITE_MAILBOX,
        Action.READ_TRACE,
        Action.MANAGE_SETTINGS,
        Action.MANAGE_LIFECYCLE,
        Action.MANAGE_CONSENTS,
        Action.EXPORT_SPACE,
    ):
        assert action in NEVER


def test_unpaired_app_is_denied(pdp: PolicyDecisionPoint) -> None:
    decision = pdp.authorize_operation(request(app("other-app"), Action.READ_MEASUREMENTS, space()))
    assert decision.rule_id == "app_purpose_not_consented"


def test_app_for_another_patient_is_denied(pdp: PolicyDecisionPoint) -> None:
    stranger = app(on_behalf_of="999999999999999")
    decision = pdp.authorize_operation(request(stranger, Action.READ_MEASUREMENTS, space()))
    assert decision.rule_id == "app_not_paired"
    assert pdp.visible_documents(stranger, space()).nothing


def test_app_sees_documents_as_the_patient(pdp: PolicyDecisionPoint) -> None:
    assert pdp.can_see_document(app(), space(), document()).permitted
    hidden = document(codes=frozenset({INVISIBLE_TO_PATIENT}))
    assert pdp.can_see_document(app(), space(), hidden).rule_id == "invisible_to_patient"
    no_docs = space(app_consents={APP_ID: frozenset({Purpose.MEASUREMENTS_READ})})
    assert pdp.visible_documents(app(), no_docs).nothing


@pytest.mark.parametrize(
    "action",
    [Action.READ_PROFILE, Action.WRITE_PROFILE, Action.READ_MEASUREMENTS, Action.READ_MAILBOX],
)
def test_professionals_never_read_profile_measurements_or_mail(
    pdp: PolicyDecisionPoint, action: Action
) -> None:
    decision = pdp.authorize_operation(request(medecin(), action, space()))
    assert not decision.permitted and decision.rule_id == "not_a_professional_transaction"
