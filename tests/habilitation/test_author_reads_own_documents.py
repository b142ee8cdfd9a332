"""A professional always reads the documents they wrote, whatever the habilitation matrix."""

from __future__ import annotations

from habilitation import PolicyDecisionPoint
from habilitation.model import (
    Actor,
    ActorKind,
    AuthenticationMode,
    DocumentFacts,
    SpaceFacts,
    SpaceStatus,
)

DENTIST = Actor(
    ActorKind.PROFESSIONAL,
    "840000000011",
    profession="40",
    authentication_mode=AuthenticationMode.DIRECT,
)
OTHER_DENTIST = Actor(
    ActorKind.PROFESSIONAL,
    "840000000029",
    profession="40",
    authentication_mode=AuthenticationMode.DIRECT,
)
SPACE = SpaceFacts(
    space_id="s",
    ins="207058575627097",
    status=SpaceStatus.ACTIVE,
    authorized_professionals=frozenset({DENTIST.id, OTHER_DENTIST.id}),
)
# Synthèse psychiatrique: one of the five types denied to dentists (arrêté of 26 Oct 2023)
PSY = "68599-0"


def test_the_author_reads_a_type_the_matrix_denies_to_the_profession() -> None:
    pdp = PolicyDecisionPoint()
    own = DocumentFacts("urn:uuid:1", PSY, author_ids=frozenset({DENTIST.id}))
    assert pdp.can_see_document(DENTIST, SPACE, own).permitted
    assert pdp.visible_documents(DENTIST, SPACE).matches(own)


def test_another_professional_of_the_same_profession_does_not() -> None:
    pdp = PolicyDecisionPoint()
    own = DocumentFacts("urn:uuid:1", PSY, author_ids=frozenset({DENTIST.id}))
    decision = pdp.can_see_document(OTHER_DENTIST, SPACE, own)
    assert not decision.permitted
    assert decision.rule_id == "profession_matrix"


def test_the_exemption_does_not_lift_masking_rules() -> None:
    pdp = PolicyDecisionPoint()
    masked = DocumentFacts(
        "urn:uuid:2",
        PSY,
        confidentiality_codes=frozenset({"MASQUE_PS"}),
        author_ids=frozenset({DENTIST.id}),
    )
    assert pdp.can_see_document(DENTIST, SPACE, masked).permitted  # the author of a masked doc
    assert not pdp.can_see_document(OTHER_DENTIST, SPACE, masked).permitted
