"""The patient side: the patient, the legal representatives of a minor, a protected adult's
representative.

They may use every patient-side brick of the space (profile, measurements, agenda, mailbox,
trace, settings, consents, lifecycle, export) and its documents: search, read, add, mask to
professionals, unmask, archive, delete, each on a document they can see. Legal representatives
act only while the patient is a minor. Patient-side visibility: Approved and Archived entries
(no older versions, nothing deleted), without ``INVISIBLE_PATIENT`` ones; representatives also
lose ``INVISIBLE_REPRESENTANTS_LEGAUX`` ones (:mod:`habilitation.rules.minor_secret`).
"""

from __future__ import annotations

from habilitation.context import Context
from habilitation.model import (
    INVISIBLE_TO_PATIENT,
    Action,
    Actor,
    ActorKind,
    Decision,
    DocumentStatus,
    DocumentVisibility,
    SpaceFacts,
)
from habilitation.rules import minor_secret

PATIENT_SIDE_ACTIONS = frozenset(
    {
        Action.READ_ADMINISTRATIVE_DATA,
        Action.LIST_AUTHORIZED_PROFESSIONALS,
        Action.SUBMIT_DOCUMENT,
        Action.SEARCH_METADATA,
        Action.SEARCH_REFERENCE,
        Action.READ_DOCUMENT,
        Action.MASK_DOCUMENT,
        Action.UNMASK_DOCUMENT,
        Action.ARCHIVE_DOCUMENT,
        Action.UNARCHIVE_DOCUMENT,
        Action.DELETE_DOCUMENT,
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
    }
)
PATIENT_SIDE_STATUSES = frozenset({DocumentStatus.APPROVED, DocumentStatus.ARCHIVED})


def _acts_for(actor: Actor, space: SpaceFacts) -> bool:
    return actor.on_behalf_of is None or actor.on_behalf_of == space.ins


def standing(actor: Actor, space: SpaceFacts) -> Decision:
    """Whether this patient-side actor speaks for this space, and as whom."""
    if actor.kind is ActorKind.PATIENT:
        if actor.id == space.ins or actor.on_behalf_of == space.ins:
            return Decision.permit("patient_side", "the patient")
    elif actor.kind is ActorKind.LEGAL_REPRESENTATIVE:
        if actor.id in space.legal_representatives and _acts_for(actor, space):
            if not space.is_minor:
                return Decision.deny(
                    "representative_of_adult",
                    "legal representatives act only while the patient is a minor",
                )
            return Decision.permit("patient_side", "a legal representative of the minor patient")
    elif actor.kind is ActorKind.PROTECTED_ADULT_REPRESENTATIVE:
        if (
            space.protected_adult_representative is not None
            and actor.id == space.protected_adult_representative
            and _acts_for(actor, space)
        ):
            return Decision.permit("patient_side", "the representative of the protected adult")
    return Decision.deny("not_patient_side_of_space", "the caller does not speak for this patient")


def decide(ctx: Context) -> Decision | None:
    space = ctx.space
    if not ctx.is_patient_side or space is None:
        return None
    who = standing(ctx.actor, space)
    if not who.permitted:
        return who
    if ctx.action not in PATIENT_SIDE_ACTIONS:
        return Decision.deny(
            "not_a_patient_side_action", f"{ctx.action.value} is not a patient-side action"
        )
    return who


def visibility(kind: ActorKind, rule_id: str, reason: str) -> DocumentVisibility:
    """The documents the patient side (or an app acting for the patient) may see."""
    hidden = frozenset({INVISIBLE_TO_PATIENT}) | minor_secret.hidden_codes(kind)
    return DocumentVisibility(
        statuses=PATIENT_SIDE_STATUSES,
        hidden_confidentiality_codes=hidden,
        rule_id=rule_id,
        reason=reason,
    )
