"""Closure, reopening, death and definitive deletion of a space (CSP R.1111-36; closure reasons
of the DMP HL7v3 PRPA_IN201314UV02, TD1.4: ``FERMETURE_DEMANDE_PATIENT``...).

A closed space is readable by no one; its data are kept ten years, then purged; an express
request deletes everything at once, with the spaces of the persons the caller represents.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import delete, inspect, select
from sqlalchemy.orm import Session

from espace.clock import as_utc
from espace.db import Base
from espace.errors import Conflict, InvalidInput
from espace.lifecycle.codes import (
    code_operation,
    consume_code_unless_agent,
    require_code_unless_agent,
)
from espace.lifecycle.common import (
    action_of,
    add_years,
    check_ins,
    fmt_day,
    lifecycle_notice,
    lifecycle_row,
    locked_space,
    require_patient_side_or_agent,
    require_status,
    retention_years,
    set_status,
    space_operation,
    state_of,
)
from espace.lifecycle.model import CLOSURE_REASONS, REPRESENTATIVE_KINDS, SpaceState
from espace.models import (
    AppConsent,
    PatientSpace,
    SpaceProfessionalLink,
    SpaceRepresentative,
    TraceCheckpoint,
    TraceHead,
    TraceRecord,
)
from espace.service import Espace, Operation
from espace.trace import Source, Target
from habilitation.model import Actor, ActorKind, SpaceStatus


def close(
    espace: Espace,
    actor: Actor,
    ins: str,
    *,
    source: Source,
    reason: str = "FERMETURE_DEMANDE_PATIENT",
    delete_now: bool = False,
    code: str | None = None,
) -> SpaceState | None:
    """Close a space (logical deletion, CSP R.1111-36): nothing is readable by anyone.

    App pairings are withdrawn, professional authorizations (and the médecin traitant) end;
    blocks and feeding oppositions are kept so that a reopening restores the person's choices.
    Data are kept ten years, then purged. With ``delete_now`` everything is deleted at once,
    including the spaces of the children and represented persons of the caller (returns None).
    A person without an account may present a one-time code instead of a login (``code``).
    """
    require_patient_side_or_agent(actor)
    if reason not in CLOSURE_REASONS:
        raise InvalidInput(f"unknown closure reason {reason!r}", code="invalid_reason")
    ins = check_ins(ins)
    if delete_now:
        delete_definitively(espace, actor, ins, source=source, code=code)
        return None
    with code_operation(
        espace, actor, ins, code, event_type="lifecycle.close", source=source
    ) as op:
        space = locked_space(op)
        require_status(space, SpaceStatus.ACTIVE)
        consume_code_unless_agent(op, actor, code)
        close_space(op, reason, op.now)
        return state_of(op.session, space, espace)


def close_space(op: Operation, reason: str, retention_start: datetime) -> None:
    """Close the space of ``op``: access ends, retention runs from ``retention_start``."""
    space = op.space
    assert space is not None
    now = op.now
    ended = _end_access(op.session, space, now)
    life = lifecycle_row(op.session, space)
    life.closure_reason = reason
    life.closed_by = op.actor.id
    life.purge_after = add_years(retention_start, retention_years(op.espace))
    op.target = Target("PatientSpace", space.id)
    op.detail = {"reason": reason, "purge_after": life.purge_after.isoformat(), **ended}
    lifecycle_notice(
        op,
        "closed",
        f"Votre profil Mon espace santé a été clôturé le {fmt_day(now)}. Vos données sont "
        f"conservées jusqu'au {fmt_day(life.purge_after)} ; vous pouvez le rouvrir d'ici là.",
    )
    set_status(space, SpaceStatus.CLOSED, now)
    space.closed_at = now


def _end_access(session: Session, space: PatientSpace, now: datetime) -> dict[str, int]:
    links = session.execute(
        delete(SpaceProfessionalLink).where(
            SpaceProfessionalLink.space_id == space.id,
            SpaceProfessionalLink.kind.in_(("authorized", "authorized_structure")),
        )
    ).rowcount  # type: ignore[attr-defined]
    apps = 0
    for consent in session.execute(
        select(AppConsent).where(AppConsent.space_id == space.id, AppConsent.withdrawn_at.is_(None))
    ).scalars():
        consent.withdrawn_at = now
        apps += 1
    had_mt = space.medecin_traitant_id is not None
    space.medecin_traitant_id = None
    return {
        "authorizations_removed": int(links or 0),
        "app_pairings_withdrawn": apps,
        "mt_removed": int(had_mt),
    }


def reopen(
    espace: Espace, actor: Actor, ins: str, *, source: Source, code: str | None = None
) -> SpaceState:
    """Reopen a closed space within the retention period: everything comes back.

    The person presents a one-time code (asked for again, as for a voluntary creation); the
    support desk needs none. A deceased person's space is not reopened.
    """
    require_patient_side_or_agent(actor)
    require_code_unless_agent(actor, code)
    with code_operation(
        espace, actor, ins, code, event_type="lifecycle.reopen", source=source
    ) as op:
        space = locked_space(op)
        require_status(space, SpaceStatus.CLOSED)
        if space.death_date is not None:
            raise Conflict("the space of a deceased person is not reopened", code="deceased")
        life = lifecycle_row(op.session, space)
        if life.purge_after is not None and as_utc(life.purge_after) <= op.now:
            raise Conflict("the retention period is over", code="retention_over")
        consume_code_unless_agent(op, actor, code)
        set_status(space, SpaceStatus.ACTIVE, op.now)
        space.closed_at = None
        life.reopened_at, life.purge_after, life.closure_reason = op.now, None, ""
        op.target = Target("PatientSpace", space.id)
        lifecycle_notice(
            op, "reopened", f"Votre profil Mon espace santé a été rouvert le {fmt_day(op.now)}."
        )
        return state_of(op.session, space, espace)


def record_death(
    espace: Espace, actor: Actor, ins: str, *, death_date: date, source: Source
) -> SpaceState:
    """Close the space of a deceased person: kept ten years from death, then purged."""
    if actor.kind not in (ActorKind.SUPPORT_AGENT, ActorKind.SYSTEM):
        raise InvalidInput(
            "a death is recorded by the insurer or the support desk", code="wrong_actor"
        )
    with space_operation(
        espace, actor, ins, event_type="lifecycle.death", source=source, action=action_of(actor)
    ) as op:
        space = locked_space(op)
        if death_date > op.now.date():
            raise InvalidInput("the death date is in the future", code="invalid_date")
        space.death_date = death_date
        start = datetime(death_date.year, death_date.month, death_date.day, tzinfo=op.now.tzinfo)
        if space.status == SpaceStatus.ACTIVE.value:
            close_space(op, "FERMETURE_DECES", start)
        else:
            life = lifecycle_row(op.session, space)
            life.purge_after = add_years(start, retention_years(espace))
            life.closure_reason = "FERMETURE_DECES"
            if space.status == SpaceStatus.PENDING.value:
                set_status(space, SpaceStatus.CLOSED, op.now)
                space.closed_at = op.now
            op.target = Target("PatientSpace", space.id)
        return state_of(op.session, space, espace)


def purge_space_rows(session: Session, space_id: str) -> int:
    """Delete every row of ``space_id`` in every table, its trace chain, then the space."""
    removed = 0
    existing = set(inspect(session.connection()).get_table_names())
    for table in reversed(Base.metadata.sorted_tables):
        if (
            table.name == PatientSpace.__tablename__
            or "space_id" not in table.c
            or table.name not in existing
        ):
            continue
        result = session.execute(table.delete().where(table.c.space_id == space_id))
        removed += int(result.rowcount or 0)  # type: ignore[attr-defined]
    for model in (TraceCheckpoint, TraceRecord, TraceHead):
        result = session.execute(delete(model).where(model.space_key == space_id))
        removed += int(result.rowcount or 0)  # type: ignore[attr-defined]
    session.execute(delete(PatientSpace).where(PatientSpace.id == space_id))
    return removed + 1


def delete_definitively(
    espace: Espace, actor: Actor, ins: str, *, source: Source, code: str | None = None
) -> list[str]:
    """Delete a space now with all its data (CSP R.1111-36 express request), and the spaces of
    the persons the caller represents. Traced in the service chain (the space's chain is gone).

    Returns the INS of every deleted space.
    """
    require_patient_side_or_agent(actor)
    with code_operation(
        espace, actor, ins, code, event_type="lifecycle.delete", source=source
    ) as op:
        space = locked_space(op)
        require_status(
            space, SpaceStatus.ACTIVE, SpaceStatus.CLOSED, SpaceStatus.OPPOSED, SpaceStatus.PENDING
        )
        consume_code_unless_agent(op, actor, code)
        represented = list(
            op.session.execute(
                select(PatientSpace)
                .join(SpaceRepresentative, SpaceRepresentative.space_id == PatientSpace.id)
                .where(
                    SpaceRepresentative.representative_id == space.ins,
                    SpaceRepresentative.status == "active",
                    SpaceRepresentative.kind.in_(sorted(REPRESENTATIVE_KINDS)),
                )
            ).scalars()
        )
        deleted = [space.ins] + [p.ins for p in represented]
        ids = [space.id] + [p.id for p in represented]
        rows = 0
        for space_id in ids:
            rows += purge_space_rows(op.session, space_id)
        op.space = op.space_id = None  # to the service chain: the space's chain is gone
        op.target = Target("PatientSpace", space.id)
        op.detail = {"deleted_spaces": ids, "rows": rows, "reason": "demande_suppression"}
        return deleted
