"""Opposition to the creation of the space within the six-week window (CSP L.1111-14,
décret 2021-1048, CSP R.1111-29), and its receipt (rendered as PDF by ``patient_api.pdf``).

The person, a legal representative of a minor or a protected adult's representative presents
the one-time code; a support agent (support desk, local fund) needs none and is traced with the
agent's identity. Later, the person closes the space instead.
"""

from __future__ import annotations

import secrets

from espace.clock import as_utc
from espace.errors import Conflict, NotFound
from espace.lifecycle.codes import (
    code_operation,
    consume_code_unless_agent,
    require_code_unless_agent,
)
from espace.lifecycle.common import (
    fmt_day,
    lifecycle_notice,
    lifecycle_row,
    locked_space,
    opposition_period,
    require_patient_side_or_agent,
    set_status,
    space_operation,
)
from espace.lifecycle.model import OppositionReceipt, SpaceLifecycle
from espace.models import PatientSpace
from espace.service import Espace
from espace.trace import Source, Target
from habilitation.model import Actor, ActorKind, SpaceStatus


def oppose(
    espace: Espace, actor: Actor, ins: str, *, source: Source, code: str | None = None
) -> OppositionReceipt:
    """Record an opposition within the six-week window: the space is not created.

    The person, a legal representative of a minor or a protected adult's representative
    presents the one-time code; a support agent (support desk, local fund) needs none and is
    traced with the agent's identity. Later, the person closes the space instead.
    """
    require_patient_side_or_agent(actor)
    require_code_unless_agent(actor, code)
    with code_operation(
        espace, actor, ins, code, event_type="lifecycle.oppose", source=source
    ) as op:
        space = locked_space(op)
        op.target = Target("PatientSpace", space.id)
        if space.status == SpaceStatus.OPPOSED.value:
            raise Conflict("an opposition is already recorded", code="already_opposed")
        if space.status != SpaceStatus.PENDING.value:
            raise Conflict(
                "the space is already created: close it instead", code="opposition_period_over"
            )
        sent = as_utc(space.enrolment_sent_at or space.created_at)
        if op.now >= sent + opposition_period(espace) and not space.enrolment_bounced:
            raise Conflict("the six-week period is over", code="opposition_period_over")
        consume_code_unless_agent(op, actor, code)
        set_status(space, SpaceStatus.OPPOSED, op.now)
        life = lifecycle_row(op.session, space)
        life.opposed_at = op.now
        life.opposed_by_kind = actor.kind.value
        life.opposed_by_id = actor.id
        life.opposition_ref = "OPP-" + secrets.token_hex(6).upper()
        op.detail = {"reference": life.opposition_ref, "by": actor.kind.value}
        lifecycle_notice(
            op,
            "opposed",
            f"Votre opposition à la création de Mon espace santé a été enregistrée le "
            f"{fmt_day(op.now)} (référence {life.opposition_ref}). Vous pourrez créer votre "
            "profil plus tard si vous le souhaitez.",
        )
        return _receipt(space, life)


def _receipt(space: PatientSpace, life: SpaceLifecycle) -> OppositionReceipt:
    assert life.opposed_at is not None
    return OppositionReceipt(
        reference=life.opposition_ref,
        ins=space.ins,
        family_name=space.family_name,
        given_names=space.given_names,
        birth_date=space.birth_date,
        opposed_at=as_utc(life.opposed_at),
        opposed_by_kind=life.opposed_by_kind,
        opposed_by_id=life.opposed_by_id,
        agent_id=life.opposed_by_id
        if life.opposed_by_kind == ActorKind.SUPPORT_AGENT.value
        else None,
    )


def opposition_receipt(
    espace: Espace, actor: Actor, ins: str, *, source: Source
) -> OppositionReceipt:
    """The confirmation of a recorded opposition (for the PDF), read as a lifecycle step."""
    with space_operation(
        espace, actor, ins, event_type="lifecycle.opposition_receipt", source=source
    ) as op:
        assert op.space is not None
        life = op.session.get(SpaceLifecycle, op.space.id)
        if life is None or life.opposed_at is None or op.space.status != SpaceStatus.OPPOSED.value:
            raise NotFound("no opposition recorded", code="no_opposition")
        op.target = Target("PatientSpace", op.space.id)
        return _receipt(op.space, life)
