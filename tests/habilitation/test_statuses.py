"""Document statuses: what professionals may read vs. what a search returns by default."""

from __future__ import annotations

from hab_fixtures import (
    STRUCTURE,
    cpe,
    document,
    indirect,
    infirmier,
    medecin,
    medecin_du_travail,
    request,
    space,
)

from habilitation.model import Action, DocumentStatus
from habilitation.pdp import PolicyDecisionPoint
from habilitation.visibility import DEFAULT_SEARCH_STATUSES, search_statuses

ALL = frozenset(DocumentStatus)


def test_professionals_may_read_every_status_td32(pdp: PolicyDecisionPoint) -> None:
    for actor in (medecin(), infirmier()):
        assert pdp.visible_documents(actor, space()).statuses == ALL


def test_search_defaults_to_approved(pdp: PolicyDecisionPoint) -> None:
    vis = pdp.visible_documents(medecin(), space())
    assert DEFAULT_SEARCH_STATUSES == {DocumentStatus.APPROVED}
    assert search_statuses(vis) == {DocumentStatus.APPROVED}
    asked = frozenset({DocumentStatus.DEPRECATED, DocumentStatus.DELETED})
    assert search_statuses(vis, asked) == asked


def test_patient_search_never_returns_deleted(pdp: PolicyDecisionPoint) -> None:
    from hab_fixtures import patient

    vis = pdp.visible_documents(patient(), space())
    assert search_statuses(vis, ALL) == {DocumentStatus.APPROVED, DocumentStatus.ARCHIVED}


def test_medecin_du_travail_sees_nothing(pdp: PolicyDecisionPoint) -> None:
    vis = pdp.visible_documents(medecin_du_travail(), space())
    assert vis.nothing and vis.rule_id == "functional_rights"
    # but may search metadata (PDT-INF-526 TD3.1: oui) and will simply find nothing
    search = pdp.authorize_operation(request(medecin_du_travail(), Action.SEARCH_METADATA, space()))
    assert search.permitted


def test_structure_actors_list_only_their_structure_documents(pdp: PolicyDecisionPoint) -> None:
    ours = document(structures=frozenset({STRUCTURE}))
    theirs = document()
    for actor in (cpe(), indirect()):
        vis = pdp.visible_documents(actor, space())
        assert not vis.nothing and vis.only_author_structures == {STRUCTURE}
        assert pdp.can_see_document(actor, space(), ours).permitted
        denied = pdp.can_see_document(actor, space(), theirs)
        assert denied.rule_id == "structure_documents_only"
        # they read no content (TD3.2 non)
        read = pdp.authorize_operation(request(actor, Action.READ_DOCUMENT, space(), ours))
        assert read.rule_id == "functional_rights"
