"""What every rule sees: the request, the data tables, and the actor's PDT-INF-526 column."""

from __future__ import annotations

from dataclasses import dataclass

from habilitation.matrix import HabilitationMatrix
from habilitation.model import (
    PROFESSION_MEDECIN,
    SPECIALTY_MEDECINE_DU_TRAVAIL,
    AccessMode,
    AccessRequest,
    Action,
    Actor,
    ActorKind,
    AuthenticationMode,
    DocumentFacts,
    SpaceFacts,
)
from habilitation.rights import ActorCategory, Column, FunctionalRights

PATIENT_SIDE_KINDS = frozenset(
    {
        ActorKind.PATIENT,
        ActorKind.LEGAL_REPRESENTATIVE,
        ActorKind.PROTECTED_ADULT_REPRESENTATIVE,
    }
)
EMERGENCY_MODES = frozenset({AccessMode.BREAK_GLASS, AccessMode.REGULATION})
STRUCTURE_MODES = frozenset(
    {AuthenticationMode.CPE, AuthenticationMode.INDIRECT, AuthenticationMode.INDIRECT_REINFORCED}
)
PROFESSIONAL_MODES = STRUCTURE_MODES | {AuthenticationMode.DIRECT}
# Operations that need no patient space.
SPACELESS_ACTIONS = frozenset(
    {Action.LIST_AUTHORIZED_SPACES, Action.SEARCH_PATIENT_WITHOUT_INS, Action.SYSTEM_JOB}
)
# Operations on one document entry (AccessRequest.document names it).
DOCUMENT_ACTIONS = frozenset(
    {
        Action.READ_DOCUMENT,
        Action.MASK_DOCUMENT,
        Action.UNMASK_DOCUMENT,
        Action.MAKE_VISIBLE_TO_PATIENT,
        Action.DELETE_DOCUMENT,
        Action.ARCHIVE_DOCUMENT,
        Action.UNARCHIVE_DOCUMENT,
    }
)


def is_medecin_du_travail(actor: Actor) -> bool:
    return (
        actor.profession == PROFESSION_MEDECIN and actor.specialty in SPECIALTY_MEDECINE_DU_TRAVAIL
    )


def actor_category(actor: Actor, space: SpaceFacts | None) -> ActorCategory | None:
    """Place a professional in a PDT-INF-526 actor column; None for anyone else."""
    if actor.kind is not ActorKind.PROFESSIONAL:
        return None
    mode = actor.authentication_mode
    if mode is AuthenticationMode.CPE:
        return ActorCategory.NON_PS_CPE
    if mode in (AuthenticationMode.INDIRECT, AuthenticationMode.INDIRECT_REINFORCED):
        return ActorCategory.STRUCTURE_CERTIFICATE
    if mode is not AuthenticationMode.DIRECT:
        return None
    if actor.profession != PROFESSION_MEDECIN:
        return ActorCategory.PS_NON_MEDECIN
    if is_medecin_du_travail(actor):
        return ActorCategory.MEDECIN_DU_TRAVAIL
    if space is not None and space.medecin_traitant == actor.id:
        return ActorCategory.MEDECIN_TRAITANT
    return ActorCategory.MEDECIN_NON_MT


@dataclass(frozen=True, slots=True)
class Context:
    """One request as the rules see it."""

    request: AccessRequest
    matrix: HabilitationMatrix
    rights: FunctionalRights
    category: ActorCategory | None
    column: Column | None

    @classmethod
    def build(
        cls, request: AccessRequest, matrix: HabilitationMatrix, rights: FunctionalRights
    ) -> Context:
        category = actor_category(request.actor, request.space)
        column = (
            rights.column_for(category, request.actor.access_mode) if category is not None else None
        )
        return cls(request, matrix, rights, category, column)

    @property
    def actor(self) -> Actor:
        return self.request.actor

    @property
    def action(self) -> Action:
        return self.request.action

    @property
    def space(self) -> SpaceFacts | None:
        return self.request.space

    @property
    def document(self) -> DocumentFacts | None:
        return self.request.document

    @property
    def is_professional(self) -> bool:
        return self.request.actor.kind is ActorKind.PROFESSIONAL

    @property
    def is_patient_side(self) -> bool:
        return self.request.actor.kind in PATIENT_SIDE_KINDS

    @property
    def emergency(self) -> bool:
        return self.request.actor.access_mode in EMERGENCY_MODES
