"""The minor's secret: secret connections and INVISIBLE_REPRESENTANTS_LEGAUX."""

from __future__ import annotations

from hab_fixtures import document, legal_representative, medecin, patient, request, space

from habilitation.model import INVISIBLE_TO_LEGAL_REPRESENTATIVES, Action
from habilitation.pdp import PolicyDecisionPoint

MINOR = space(is_minor=True)
SECRET = frozenset({INVISIBLE_TO_LEGAL_REPRESENTATIVES})


def test_secret_submission_must_be_invisible_to_representatives(pdp: PolicyDecisionPoint) -> None:
    actor = medecin(secret_connection=True)
    unmarked = pdp.authorize_operation(request(actor, Action.SUBMIT_DOCUMENT, MINOR, document()))
    assert not unmarked.permitted
    assert unmarked.rule_id == "minor_secret_unmarked_submission"
    marked = document(codes=SECRET)
    assert pdp.authorize_operation(request(actor, Action.SUBMIT_DOCUMENT, MINOR, marked)).permitted


def test_secret_connection_is_irrelevant_for_adults(pdp: PolicyDecisionPoint) -> None:
    actor = medecin(secret_connection=True)
    assert pdp.authorize_operation(
        request(actor, Action.SUBMIT_DOCUMENT, space(), document())
    ).permitted


def test_ordinary_submission_needs_no_mark(pdp: PolicyDecisionPoint) -> None:
    assert pdp.authorize_operation(
        request(medecin(), Action.SUBMIT_DOCUMENT, MINOR, document())
    ).permitted


def test_secret_documents_reach_the_minor_but_not_the_parents(pdp: PolicyDecisionPoint) -> None:
    doc = document(codes=SECRET)
    assert pdp.can_see_document(patient(), MINOR, doc).permitted
    parents = pdp.visible_documents(legal_representative(), MINOR)
    assert INVISIBLE_TO_LEGAL_REPRESENTATIVES in parents.hidden_confidentiality_codes
    assert not parents.matches(doc)
    assert pdp.can_see_document(legal_representative(), MINOR, doc).rule_id == "minor_secret"
