"""Helpers shared by the lifecycle steps: actors of jobs and of the support desk, durations read
from the settings, the one ``Espace.operation`` shape every step uses, status checks, notices.

Internal to :mod:`espace.lifecycle` (the package re-exports the public names).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import date, datetime, timedelta

from sqlalchemy.orm import Session

from espace.clock import as_utc
from espace.errors import Conflict, InvalidInput, UnknownSpace
from espace.lifecycle.model import (
    OPPOSITION_PERIOD,
    PATIENT_SIDE,
    RETENTION_YEARS,
    SpaceLifecycle,
    SpaceState,
)
from espace.models import PatientSpace
from espace.service import Espace, Operation
from espace.spaces import age_on, find_space_by_ins, nir_key_is_valid
from espace.trace import Source
from habilitation.model import Action, Actor, ActorKind, AuthenticationMode, SpaceStatus


# --------------------------------------------------------------------------- actors
def system_actor(job: str) -> Actor:
    """The actor of a background job (CSP: the operator acting for the service)."""
    return Actor(
        kind=ActorKind.SYSTEM,
        id=f"job:{job}",
        name=job,
        authentication_mode=AuthenticationMode.SYSTEM,
    )


def support_actor(agent_id: str, name: str = "") -> Actor:
    """A support-desk / local-fund agent (traced with the agent's identity)."""
    if not agent_id.strip():
        raise InvalidInput("the agent identity is required", code="agent_required")
    return Actor(kind=ActorKind.SUPPORT_AGENT, id=agent_id.strip(), name=name)


def action_of(actor: Actor) -> Action:
    """A background job runs as ``SYSTEM_JOB``; a person or an agent manages the lifecycle."""
    return Action.SYSTEM_JOB if actor.kind is ActorKind.SYSTEM else Action.MANAGE_LIFECYCLE


def require_patient_side_or_agent(actor: Actor) -> None:
    if actor.kind not in PATIENT_SIDE and actor.kind is not ActorKind.SUPPORT_AGENT:
        raise InvalidInput(
            "only the person, a representative or the support desk", code="wrong_actor"
        )


# --------------------------------------------------------------------------- durations
def add_years(when: datetime, years: int) -> datetime:
    try:
        return when.replace(year=when.year + years)
    except ValueError:  # 29 February
        return when.replace(year=when.year + years, day=28)


def settings_duration(espace: Espace, key: str, default: timedelta) -> timedelta:
    value = espace.settings.get(key)
    return timedelta(days=int(value)) if value else default


def opposition_period(espace: Espace) -> timedelta:
    return settings_duration(espace, "LIFECYCLE_OPPOSITION_DAYS", OPPOSITION_PERIOD)


def retention_years(espace: Espace) -> int:
    return int(espace.settings.get("LIFECYCLE_RETENTION_YEARS") or RETENTION_YEARS)


# --------------------------------------------------------------------------- operations
def check_ins(ins: str) -> str:
    ins = ins.strip().upper()
    if not nir_key_is_valid(ins):
        raise InvalidInput(f"not a valid matricule INS (NIR + key): {ins!r}", code="invalid_ins")
    return ins


def space_operation(
    espace: Espace,
    actor: Actor,
    ins: str,
    *,
    event_type: str,
    source: Source,
    action: Action = Action.MANAGE_LIFECYCLE,
) -> AbstractContextManager[Operation]:
    """The one transaction of a lifecycle step on the space of ``ins`` (checked first)."""
    return espace.operation(
        actor, action, event_type=event_type, source=source, space_ins=check_ins(ins)
    )


def job_operation(
    espace: Espace, job: str, space_id: str, *, event_type: str, source: Source
) -> AbstractContextManager[Operation]:
    """The transaction of a background job on one space (actor ``job:<job>``)."""
    return espace.operation(
        system_actor(job),
        Action.SYSTEM_JOB,
        event_type=event_type,
        source=source,
        space_id=space_id,
    )


def locked_space(op: Operation) -> PatientSpace:
    """Re-read the space row under a row lock (SELECT ... FOR UPDATE on PostgreSQL), so that
    two transitions (an opposition and the automatic creation) never both apply."""
    assert op.space is not None
    op.session.refresh(op.space, with_for_update=True)
    return op.space


def lifecycle_row(session: Session, space: PatientSpace) -> SpaceLifecycle:
    row = session.get(SpaceLifecycle, space.id)
    if row is None:
        row = SpaceLifecycle(space_id=space.id)
        session.add(row)
        session.flush()
    return row


def set_status(space: PatientSpace, status: SpaceStatus, now: datetime) -> None:
    space.status = status.value
    space.status_changed_at = now


def require_status(space: PatientSpace, *allowed: SpaceStatus) -> None:
    if space.status not in {s.value for s in allowed}:
        raise Conflict(
            f"the space is {space.status}; expected {', '.join(s.value for s in allowed)}",
            code="wrong_status",
        )


def lifecycle_notice(op: Operation, key: str, body: str) -> None:
    assert op.space is not None
    op.notify("lifecycle", body, dedup_key=f"lifecycle:{op.space.id}:{key}:{op.now.isoformat()}")


def state_of(session: Session, space: PatientSpace, espace: Espace) -> SpaceState:
    life = session.get(SpaceLifecycle, space.id)
    deadline = (
        as_utc(space.enrolment_sent_at) + opposition_period(espace)
        if space.enrolment_sent_at is not None and space.status == SpaceStatus.PENDING.value
        else None
    )
    return SpaceState(
        space_id=space.id,
        ins=space.ins,
        status=space.status,
        activated=space.activated_at is not None,
        created_at=as_utc(space.created_at),
        closed_at=as_utc(space.closed_at) if space.closed_at else None,
        purge_after=as_utc(life.purge_after) if life and life.purge_after else None,
        opposition_deadline=deadline,
    )


def fmt_day(day: datetime | date) -> str:
    """A day as the notices write it (dd/mm/yyyy)."""
    return f"{day:%d/%m/%Y}"


def get_space_or_raise(session: Session, ins: str) -> PatientSpace:
    space = find_space_by_ins(session, ins)
    if space is None:
        raise UnknownSpace(f"no space for {ins}")
    return space


def age_of(space: PatientSpace, now: datetime) -> int | None:
    return age_on(space.birth_date, now.date()) if space.birth_date else None
