"""Confidentiality codes (TRE_A07) towards professionals, patients and representatives."""

from __future__ import annotations

import pytest
from hab_fixtures import (
    INFIRMIER_ID,
    MEDECIN_ID,
    document,
    infirmier,
    legal_representative,
    medecin,
    medecin_traitant,
    patient,
    request,
    space,
    tutor,
)

from habilitation.model import (
    INVISIBLE_TO_LEGAL_REPRESENTATIVES,
    INVISIBLE_TO_PATIENT,
    MASKED_TO_PROFESSIONALS,
    Action,
    Actor,
)
from habilitation.pdp import PolicyDecisionPoint

MASKED = document(codes=frozenset({MASKED_TO_PROFESSIONALS}))


@pytest.mark.parametrize("actor", [medecin(), infirmier()], ids=["medecin", "infirmier"])
def test_masked_document_is_hidden_from_other_professionals(
    pdp: PolicyDecisionPoint, actor: Actor
) -> None:
    decision = pdp.can_see_document(actor, space(), MASKED)
    assert not decision.permitted and decision.rule_id == "masked_documents"
    read = pdp.authorize_operation(request(actor, Action.READ_DOCUMENT, space(), MASKED))
    assert read.rule_id == "masked_documents"
    assert not pdp.visible_documents(actor, space()).matches(MASKED)


@pytest.mark.parametrize(
    ("actor", "author"), [(medecin(), MEDECIN_ID), (infirmier(), INFIRMIER_ID)], ids=["med", "inf"]
)
def test_author_sees_their_masked_document(
    pdp: PolicyDecisionPoint, actor: Actor, author: str
) -> None:
    own = document(codes=frozenset({MASKED_TO_PROFESSIONALS}), authors=frozenset({author, "x"}))
    assert pdp.can_see_document(actor, space(), own).permitted


def test_medecin_traitant_sees_masked_documents(pdp: PolicyDecisionPoint) -> None:
    assert pdp.can_see_document(medecin_traitant(), space(), MASKED).permitted
    # ...but only the designated one: the same doctor without the designation does not
    undesignated = space(
        medecin_traitant=None, authorized_professionals=frozenset({"810000000001"})
    )
    assert not pdp.can_see_document(medecin_traitant(), undesignated, MASKED).permitted


@pytest.mark.parametrize(
    "actor", [patient(), legal_representative(), tutor()], ids=["p", "lr", "tutor"]
)
def test_patient_side_sees_documents_masked_to_professionals(
    pdp: PolicyDecisionPoint, actor: Actor
) -> None:
    assert pdp.can_see_document(actor, space(is_minor=True), MASKED).permitted


@pytest.mark.parametrize(
    "actor", [patient(), legal_representative(), tutor()], ids=["p", "lr", "tutor"]
)
def test_invisible_to_patient_is_hidden_from_the_patient_side(
    pdp: PolicyDecisionPoint, actor: Actor
) -> None:
    doc = document(codes=frozenset({INVISIBLE_TO_PATIENT}))
    decision = pdp.can_see_document(actor, space(is_minor=True), doc)
    assert not decision.permitted and decision.rule_id == "invisible_to_patient"


def test_invisible_to_patient_is_shown_to_professionals(pdp: PolicyDecisionPoint) -> None:
    doc = document(codes=frozenset({INVISIBLE_TO_PATIENT}))
    assert pdp.can_see_document(medecin(), space(), doc).permitted
    assert pdp.can_see_document(infirmier(), space(), doc).permitted


def test_made_visible_document_is_shown_to_the_patient(pdp: PolicyDecisionPoint) -> None:
    assert pdp.can_see_document(patient(), space(), document()).permitted


def test_invisible_to_representatives(pdp: PolicyDecisionPoint) -> None:
    doc = document(codes=frozenset({INVISIBLE_TO_LEGAL_REPRESENTATIVES}))
    minor = space(is_minor=True)
    lr = pdp.can_see_document(legal_representative(), minor, doc)
    assert not lr.permitted and lr.rule_id == "minor_secret"
    assert pdp.can_see_document(patient(), minor, doc).permitted
    assert pdp.can_see_document(medecin(), minor, doc).permitted
    assert not pdp.can_see_document(tutor(), minor, doc).permitted
