"""What each FHIR interaction on each resource type is, for the policy decision point.

The face's one enforcement point (``fhir_server.web``) maps every request to an
:class:`~habilitation.model.Action` with :func:`action_for` before any handler runs; the
per-request repository then re-asks the PDP for the brick of each resource it touches.

Bricks (the purposes of app pairing, ``habilitation.model.Purpose``): measurements, profile,
agenda, documents; plus the patient-only consents (pairings) and trace.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from espace.measurements import is_measurement_code, measurement_of
from habilitation.model import Action, ActorKind

MEASUREMENTS, PROFILE, AGENDA, CONSENTS, TRACE, DOCUMENTS = (
    "measurements", "profile", "agenda", "consents", "trace", "documents",
)
STORED_BRICKS = (MEASUREMENTS, PROFILE, AGENDA, CONSENTS)

READ, WRITE = "read", "write"
BRICK_ACTIONS: dict[str, dict[str, Action]] = {
    MEASUREMENTS: {READ: Action.READ_MEASUREMENTS, WRITE: Action.WRITE_MEASUREMENTS},
    PROFILE: {READ: Action.READ_PROFILE, WRITE: Action.WRITE_PROFILE},
    AGENDA: {READ: Action.READ_AGENDA, WRITE: Action.WRITE_AGENDA},
    CONSENTS: {READ: Action.MANAGE_CONSENTS, WRITE: Action.MANAGE_CONSENTS},
    TRACE: {READ: Action.READ_TRACE},
    DOCUMENTS: {READ: Action.SEARCH_METADATA, WRITE: Action.SUBMIT_DOCUMENT},
}

# Resource types stored in the generic FHIR store, with their (default) brick.
STORED_TYPES: dict[str, str] = {
    "Observation": MEASUREMENTS,  # or PROFILE, by code (see brick_of)
    "Device": MEASUREMENTS,
    "Condition": PROFILE,
    "MedicationStatement": PROFILE,
    "Procedure": PROFILE,
    "AllergyIntolerance": PROFILE,
    "FamilyMemberHistory": PROFILE,
    "Immunization": PROFILE,
    "RelatedPerson": PROFILE,
    "CareTeam": PROFILE,
    "Consent": PROFILE,  # or CONSENTS for app pairings
    "Appointment": AGENDA,
    "CommunicationRequest": AGENDA,
}
# Resource types computed from other stores (read and search only).
VIRTUAL_TYPES: dict[str, str] = {
    "Patient": PROFILE,
    "AuditEvent": TRACE,
    "DocumentReference": DOCUMENTS,
    "Binary": DOCUMENTS,
}
SERVED_TYPES = {**STORED_TYPES, **VIRTUAL_TYPES}
WRITE_INTERACTIONS = frozenset({"create", "update", "patch", "delete"})
PAIRING_CATEGORY = "app-pairing"
PAIRING_CATEGORY_SYSTEM = "https://monespacesante.fr/fhir/CodeSystem/consent-category"


def is_pairing_consent(resource: dict[str, Any]) -> bool:
    for concept in resource.get("category") or []:
        for coding in concept.get("coding") or []:
            if coding.get("system") == PAIRING_CATEGORY_SYSTEM and (
                coding.get("code") == PAIRING_CATEGORY
            ):
                return True
    return False


def brick_of(resource: dict[str, Any]) -> str:
    """The brick a resource belongs to, from its content."""
    rtype = str(resource.get("resourceType"))
    if rtype == "Observation":
        return MEASUREMENTS if measurement_of(resource) is not None else PROFILE
    if rtype == "Consent" and is_pairing_consent(resource):
        return CONSENTS
    return SERVED_TYPES.get(rtype, PROFILE)


def brick_hint(
    resource_type: str, codes: Iterable[str], body: Any, actor_kind: ActorKind
) -> str:
    """The brick a request is about before anything is read (the operation's gate)."""
    if isinstance(body, dict) and body.get("resourceType") == resource_type:
        return brick_of(body)
    if resource_type == "Observation":
        values = [v for c in codes for v in c.split(",") if v]
        if values and not any(is_measurement_code(v) for v in values):
            return PROFILE
        return MEASUREMENTS
    if resource_type == "Consent":
        patient_side = actor_kind in (
            ActorKind.PATIENT,
            ActorKind.LEGAL_REPRESENTATIVE,
            ActorKind.PROTECTED_ADULT_REPRESENTATIVE,
        )
        return CONSENTS if patient_side else PROFILE
    return SERVED_TYPES.get(resource_type, PROFILE)


def action_for(brick: str, interaction: str, actor_kind: ActorKind) -> Action:
    """The PDP action of an interaction on a brick (the system runs everything as a job)."""
    if actor_kind is ActorKind.SYSTEM:
        return Action.SYSTEM_JOB
    mode = WRITE if interaction in WRITE_INTERACTIONS else READ
    actions = BRICK_ACTIONS[brick]
    if brick == DOCUMENTS and interaction in ("read", "vread", "binary"):
        return Action.READ_DOCUMENT
    return actions.get(mode, actions[READ])


@dataclass(frozen=True, slots=True)
class Route:
    """One request, classified: interaction, type, ids, and the action the gate decides."""

    interaction: str  # read vread search-type search-system create update delete patch
    # history-instance history-type history-system transaction batch capabilities
    resource_type: str | None
    resource_id: str | None
    version_id: str | None
    action: Action
    brick: str

    @property
    def event_type(self) -> str:
        """The trace's event type: the IHE MHD transaction when there is one (ITI-65 provide,
        ITI-67 find, ITI-68 retrieve), else ``rest.<interaction>``."""
        if self.brick == DOCUMENTS:
            if self.interaction == "transaction":
                return "ITI-65"
            if self.resource_type == "DocumentReference" and self.interaction == "search-type":
                return "ITI-67"
            if self.resource_type == "Binary":
                return "ITI-68"
        return f"rest.{self.interaction}"
