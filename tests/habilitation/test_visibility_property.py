"""Property: can_see_document agrees with visible_documents().matches, for any actor and doc."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from habilitation.model import (
    INVISIBLE_TO_LEGAL_REPRESENTATIVES,
    INVISIBLE_TO_PATIENT,
    MASKED_TO_PROFESSIONALS,
    AccessMode,
    AccessRequest,
    Action,
    Actor,
    ActorKind,
    AuthenticationMode,
    DocumentFacts,
    DocumentStatus,
    Purpose,
    SpaceFacts,
    SpaceStatus,
)
from habilitation.pdp import PolicyDecisionPoint

PDP = PolicyDecisionPoint()
INS = "123456789012345"
IDS = ["8A", "8B", "8C", INS, "LR", "TUTOR", "app-1"]
STRUCTURES = ["S1", "S2"]
CODES = [MASKED_TO_PROFESSIONALS, INVISIBLE_TO_PATIENT, INVISIBLE_TO_LEGAL_REPRESENTATIVES, "N"]
TYPES = ["11488-4", "ATTEST-RESID", "68599-0", "28653-4", "DOCPAT01", "UNKNOWN"]
PROFESSIONS = [None, "10", "21", "40", "41", "60", "99", "300"]
SPECIALTIES = [None, "SM26", "SM25", "C41", "CAPA11"]

ids = st.sampled_from(IDS)
id_sets = st.frozensets(ids, max_size=3)

PROFESSIONAL_MODES = [
    AuthenticationMode.DIRECT,
    AuthenticationMode.DIRECT,
    AuthenticationMode.CPE,
    AuthenticationMode.INDIRECT,
    AuthenticationMode.INDIRECT_REINFORCED,
]
ACCESS_MODES = [AccessMode.NORMAL, AccessMode.NORMAL, AccessMode.BREAK_GLASS, AccessMode.REGULATION]

professionals = st.builds(
    Actor,
    kind=st.just(ActorKind.PROFESSIONAL),
    id=st.sampled_from(["8A", "8B", "8C"]),
    profession=st.sampled_from(PROFESSIONS),
    specialty=st.sampled_from(SPECIALTIES),
    structure_id=st.sampled_from([None, *STRUCTURES]),
    authentication_mode=st.sampled_from(PROFESSIONAL_MODES),
    access_mode=st.sampled_from(ACCESS_MODES),
    secret_connection=st.booleans(),
)
patient_side = st.one_of(
    st.builds(
        Actor,
        kind=st.just(ActorKind.PATIENT),
        id=st.sampled_from([INS, INS, "999"]),
        authentication_mode=st.sampled_from([None, AuthenticationMode.PATIENT_LOGIN]),
    ),
    st.builds(
        Actor,
        kind=st.sampled_from(
            [ActorKind.LEGAL_REPRESENTATIVE, ActorKind.PROTECTED_ADULT_REPRESENTATIVE]
        ),
        id=st.sampled_from(["LR", "TUTOR", "8C"]),
        authentication_mode=st.just(AuthenticationMode.PATIENT_LOGIN),
        on_behalf_of=st.sampled_from([None, INS, "999"]),
    ),
    st.builds(
        Actor,
        kind=st.just(ActorKind.APP),
        id=st.just("app-1"),
        app_id=st.sampled_from([None, "app-1", "app-2"]),
        authentication_mode=st.just(AuthenticationMode.APP_TOKEN),
        on_behalf_of=st.sampled_from([INS, INS, "999"]),
    ),
)
anyone = st.builds(
    Actor,
    kind=st.sampled_from(list(ActorKind)),
    id=ids,
    profession=st.sampled_from(PROFESSIONS),
    specialty=st.sampled_from(SPECIALTIES),
    structure_id=st.sampled_from([None, *STRUCTURES]),
    authentication_mode=st.sampled_from([None, *AuthenticationMode]),
    access_mode=st.sampled_from(list(AccessMode)),
    on_behalf_of=st.sampled_from([None, INS, "999"]),
    app_id=st.sampled_from([None, "app-1"]),
    secret_connection=st.booleans(),
)
actors = st.one_of(professionals, patient_side, anyone)
spaces = st.builds(
    SpaceFacts,
    space_id=st.just("s"),
    ins=st.just(INS),
    status=st.sampled_from([SpaceStatus.ACTIVE] * 4 + list(SpaceStatus)),
    is_minor=st.booleans(),
    blocked_professionals=st.frozensets(st.sampled_from(["8B", "LR"]), max_size=1),
    authorized_professionals=st.frozensets(st.sampled_from(["8A", "8B", "8C"])),
    authorized_structures=st.frozensets(st.sampled_from(STRUCTURES)),
    feeding_opposed_professionals=id_sets,
    medecin_traitant=st.sampled_from([None, "8A", "8B"]),
    break_glass_allowed=st.booleans(),
    regulation_allowed=st.booleans(),
    auto_unmask_in_emergency=st.booleans(),
    legal_representatives=st.frozensets(st.sampled_from(["LR", "8C"])),
    protected_adult_representative=st.sampled_from([None, "TUTOR"]),
    app_consents=st.dictionaries(
        st.sampled_from(["app-1", "app-2"]), st.frozensets(st.sampled_from(list(Purpose)))
    ),
)
documents = st.builds(
    DocumentFacts,
    entry_id=st.just("d"),
    type_code=st.sampled_from(TYPES),
    confidentiality_codes=st.frozensets(st.sampled_from(CODES)),
    author_ids=id_sets,
    author_structure_ids=st.frozensets(st.sampled_from(STRUCTURES)),
    status=st.sampled_from(list(DocumentStatus)),
    added_by_patient=st.booleans(),
)


@settings(max_examples=1500, deadline=None)
@given(actors, spaces, documents)
def test_can_see_document_agrees_with_the_visibility_predicate(
    actor: Actor, space: SpaceFacts, doc: DocumentFacts
) -> None:
    vis = PDP.visible_documents(actor, space)
    decision = PDP.can_see_document(actor, space, doc)
    assert decision.permitted is vis.matches(doc)
    assert decision.rule_id
    read = PDP.authorize_operation(AccessRequest(actor, Action.READ_DOCUMENT, space, doc))
    if read.permitted:  # reading implies seeing
        assert vis.matches(doc)
    if vis.matches(doc) and actor.kind is not ActorKind.PROFESSIONAL:
        assert read.permitted  # the patient side and apps read whatever they see


@settings(max_examples=400, deadline=None)
@given(actors, spaces)
def test_nothing_is_visible_on_a_space_that_is_not_active(actor: Actor, space: SpaceFacts) -> None:
    vis = PDP.visible_documents(actor, space)
    if space.status is not SpaceStatus.ACTIVE:
        assert vis.nothing
    if actor.kind is ActorKind.PROFESSIONAL and actor.id in space.blocked_professionals:
        assert vis.nothing
