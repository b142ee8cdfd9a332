"""Referenced apps act for one patient, within the purposes the patient consented to.

Each action maps to one :class:`~habilitation.model.Purpose`; an app never touches the mailbox,
the trace, the settings, consents or lifecycle, nor masks or deletes documents. Apps see
documents as the patient does.
"""

from __future__ import annotations

from collections.abc import Mapping

from habilitation.context import Context
from habilitation.model import Action, ActorKind, Decision, Purpose

ACTION_PURPOSES: Mapping[Action, Purpose] = {
    Action.SEARCH_METADATA: Purpose.DOCUMENTS_READ,
    Action.SEARCH_REFERENCE: Purpose.DOCUMENTS_READ,
    Action.READ_DOCUMENT: Purpose.DOCUMENTS_READ,
    Action.SUBMIT_DOCUMENT: Purpose.DOCUMENTS_WRITE,
    Action.READ_MEASUREMENTS: Purpose.MEASUREMENTS_READ,
    Action.WRITE_MEASUREMENTS: Purpose.MEASUREMENTS_WRITE,
    Action.READ_AGENDA: Purpose.AGENDA_READ,
    Action.WRITE_AGENDA: Purpose.AGENDA_WRITE,
    Action.READ_PROFILE: Purpose.PROFILE_READ,
    Action.READ_ADMINISTRATIVE_DATA: Purpose.PROFILE_READ,
    Action.WRITE_PROFILE: Purpose.PROFILE_WRITE,
}


def decide(ctx: Context) -> Decision | None:
    space = ctx.space
    if ctx.actor.kind is not ActorKind.APP or space is None:
        return None
    if ctx.actor.on_behalf_of != space.ins:
        return Decision.deny("app_not_paired", "the app does not act for this patient")
    purpose = ACTION_PURPOSES.get(ctx.action)
    if purpose is None:
        return Decision.deny("app_action_not_pairable", f"no app may perform {ctx.action.value}")
    app_id = ctx.actor.app_id or ctx.actor.id
    if purpose not in space.app_consents.get(app_id, frozenset()):
        return Decision.deny(
            "app_purpose_not_consented", f"the patient did not consent to {purpose.value}"
        )
    return Decision.permit("app_pairing", f"paired app within the consented {purpose.value}")
