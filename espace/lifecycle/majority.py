"""Coming of age (Code civil art. 414: majority at 18; CSP L.1111-14): the legal
representatives' access ends and they are told; a new adult whose space was never created
(pending, or opposed by the representatives) gets the six-week notice of their own.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import date

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from espace.errors import UnknownSpace
from espace.lifecycle.common import (
    fmt_day,
    job_operation,
    lifecycle_notice,
    lifecycle_row,
    locked_space,
    opposition_period,
    set_status,
)
from espace.lifecycle.model import SpaceLifecycle
from espace.models import PatientSpace, SpaceRepresentative
from espace.service import Espace, Operation
from espace.spaces import MAJORITY_AGE
from espace.trace import Source, Target
from habilitation.model import SpaceStatus


def _due_spaces(espace: Espace, cutoff: date) -> tuple[set[str], set[str]]:
    """(spaces whose legal representatives' access must end, spaces never created)."""
    with espace.session_factory() as session:
        ending = set(
            session.execute(
                select(PatientSpace.id)
                .join(SpaceRepresentative, SpaceRepresentative.space_id == PatientSpace.id)
                .where(
                    PatientSpace.birth_date <= cutoff,
                    SpaceRepresentative.kind == "legal_representative",
                    SpaceRepresentative.status.in_(("active", "invited")),
                )
            ).scalars()
        )
        never_created = set(
            session.execute(
                select(PatientSpace.id)
                .join(SpaceLifecycle, SpaceLifecycle.space_id == PatientSpace.id)
                .where(
                    PatientSpace.birth_date <= cutoff,
                    PatientSpace.status.in_((SpaceStatus.PENDING.value, SpaceStatus.OPPOSED.value)),
                    SpaceLifecycle.enrolled_as_minor.is_(True),
                    SpaceLifecycle.majority_processed_at.is_(None),
                )
            ).scalars()
        )
    return ending, never_created


def run_majority(espace: Espace, *, source: Source | None = None) -> tuple[int, int]:
    """At 18 the legal representatives' access ends and they are told; a new adult whose space
    was never created (pending or opposed by the representatives) gets the six-week notice.

    Returns (representatives' accesses ended, spaces re-enrolled).
    """
    src = source or Source(face="job")
    now = espace.clock.now()
    ending, never_created = _due_spaces(espace, _years_before(now.date(), MAJORITY_AGE))
    ended = reenrolled = 0
    for space_id in sorted(ending | never_created):
        with (
            suppress(UnknownSpace, IntegrityError),  # another node did it
            job_operation(
                espace, "majority", space_id, event_type="lifecycle.majority", source=src
            ) as op,
        ):
            space = locked_space(op)
            op.target = Target("PatientSpace", space.id)
            reps = list(
                op.session.execute(
                    select(SpaceRepresentative).where(
                        SpaceRepresentative.space_id == space.id,
                        SpaceRepresentative.kind == "legal_representative",
                        SpaceRepresentative.status.in_(("active", "invited")),
                    )
                ).scalars()
            )
            if reps:
                emails = [r.email for r in reps if r.email and r.status == "active"]
                _notify_representatives(
                    op,
                    emails,
                    f"{space.given_names} {space.family_name} a 18 ans depuis le "
                    f"{fmt_day(_years_after(space.birth_date, MAJORITY_AGE))} : votre accès à "
                    "son profil Mon espace santé a pris fin.",
                )
                for rep in reps:
                    rep.status, rep.ended_at = "ended", op.now
                ended += len(reps)
            life = lifecycle_row(op.session, space)
            if space.id in never_created:
                space.enrolment_sent_at = op.now
                space.enrolment_bounced = False
                set_status(space, SpaceStatus.PENDING, op.now)
                life.opposed_at, life.opposed_by_kind, life.opposed_by_id = None, "", ""
                deadline = op.now + opposition_period(espace)
                lifecycle_notice(
                    op,
                    "majority-enrolment",
                    "Vous avez 18 ans : votre profil Mon espace santé va être créé. Vous "
                    f"pouvez vous y opposer jusqu'au {fmt_day(deadline)} (demandez votre code "
                    "provisoire en ligne ou au 3422).",
                )
                reenrolled += 1
            elif space.status == SpaceStatus.ACTIVE.value:
                lifecycle_notice(
                    op,
                    "majority",
                    "Vous avez 18 ans : vous gérez désormais seul(e) votre profil Mon espace "
                    "santé ; l'accès de vos représentants légaux a pris fin.",
                )
            life.majority_processed_at = op.now
            op.detail = {"representatives_ended": [r.representative_id for r in reps]}
    return ended, reenrolled


def _notify_representatives(op: Operation, emails: list[str], body: str) -> None:
    """Queue the majority notice to the representatives themselves (not the new adult)."""
    from espace.notifications import notify

    assert op.space is not None
    row = notify(
        op.session,
        op.space,
        "lifecycle",
        body,
        dedup_key=f"majority-reps:{op.space.id}",
        now=op.now,
    )
    if row is not None:
        row.recipients = "\n".join(emails)


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def _years_after(day: date | None, years: int) -> date:
    assert day is not None
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, month=3, day=1)
