"""Time-based lifecycle jobs: automatic creation after the six-week window (décret 2021-1048),
majority, purge after ten years of retention (CSP R.1111-36), plus the other jobs that
``mes serve`` runs every minute: building the requested exports, their expiry, forgetting idle
throttling counters, and the daily prevention campaigns.

Each space is handled in its own operation, so that several nodes may run the jobs at once:
the one that loses a race skips the space (``UnknownSpace``, ``IntegrityError``).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from contextlib import suppress
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from espace.errors import DomainError, UnknownSpace
from espace.lifecycle.activation import create_space
from espace.lifecycle.closure import purge_space_rows
from espace.lifecycle.common import job_operation, locked_space, opposition_period
from espace.lifecycle.majority import run_majority
from espace.lifecycle.model import JobReport, SpaceLifecycle
from espace.models import PatientSpace
from espace.service import Espace
from espace.trace import Source, Target
from habilitation.model import SpaceStatus


def run_automatic_creation(espace: Espace, *, source: Source | None = None) -> int:
    """Create the spaces whose six-week window ended without opposition (not when bounced)."""
    src = source or Source(face="job")
    cutoff = espace.clock.now() - opposition_period(espace)
    with espace.session_factory() as session:
        due = list(
            session.execute(
                select(PatientSpace.id).where(
                    PatientSpace.status == SpaceStatus.PENDING.value,
                    PatientSpace.enrolment_bounced.is_(False),
                    PatientSpace.enrolment_sent_at <= cutoff,
                )
            ).scalars()
        )
    count = 0
    for space_id in due:
        with (
            suppress(UnknownSpace, IntegrityError),  # another node did it
            job_operation(
                espace, "automatic_creation", space_id, event_type="lifecycle.create", source=src
            ) as op,
        ):
            if locked_space(op).status != SpaceStatus.PENDING.value:
                continue  # raced with an opposition: nothing to do (an empty success is traced)
            create_space(op, "automatic")
            count += 1
    return count


def run_purge(espace: Espace, *, source: Source | None = None, progress: bool = False) -> int:
    """Purge the spaces closed (or of persons deceased) more than ten years ago.

    The purge is traced in the service chain (the space's own chain is deleted with it).
    """
    from tqdm import tqdm

    src = source or Source(face="job")
    now = espace.clock.now()
    with espace.session_factory() as session:
        due = list(
            session.execute(
                select(PatientSpace.id)
                .join(SpaceLifecycle, SpaceLifecycle.space_id == PatientSpace.id)
                .where(
                    PatientSpace.status.in_((SpaceStatus.CLOSED.value, SpaceStatus.DELETED.value)),
                    SpaceLifecycle.purge_after.is_not(None),
                    SpaceLifecycle.purge_after <= now,
                )
                .order_by(PatientSpace.id)
            ).scalars()
        )
    count = 0
    for space_id in tqdm(due, desc="purge", unit="space", disable=not progress):
        with (
            suppress(UnknownSpace, IntegrityError),  # another node did it
            job_operation(
                espace, "purge", space_id, event_type="lifecycle.purge", source=src
            ) as op,
        ):
            rows = purge_space_rows(op.session, space_id)
            op.space = op.space_id = None
            op.target = Target("PatientSpace", space_id)
            op.detail = {"rows": rows, "reason": "retention_over"}
            count += 1
    return count


_DAILY: dict[tuple[int, str], tuple[weakref.ref[Espace], date]] = {}


def _first_run_today(espace: Espace, job: str) -> bool:
    """Daily jobs (prevention scans every space) run once a day per process; the scheduler
    calls :func:`run_due_jobs` every minute. Several nodes may each run it once: the campaign
    table's unique key keeps one message per rule and period."""
    today = espace.clock.now().date()
    key = (id(espace), job)
    seen = _DAILY.get(key)
    if seen is not None and seen[0]() is espace and seen[1] == today:
        return False
    _DAILY[key] = (weakref.ref(espace), today)
    return True


def run_due_jobs(
    espace: Espace,
    *,
    progress: bool = False,
    extra: Iterable[tuple[str, Callable[[Espace], int]]] = (),
    force_daily: bool = False,
) -> dict[str, Any]:
    """Run every time-based job once (``mes serve`` calls this every minute; ``mes jobs run``).

    Jobs: automatic creation, majority, purge, prevention campaigns (once a day unless
    ``force_daily``), building of the requested exports, expiry of exports, forgetting idle
    throttling counters, plus
    ``extra`` (name, callable) pairs such as the notification digest of ``mes.notifier``.
    One failing job does not stop the others; its error is reported.
    """
    report = JobReport()
    source = Source(face="job")

    def step(name: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except DomainError as exc:  # report and continue with the other jobs
            report.errors.append(f"{name}: {exc.code}")
        except Exception as exc:  # noqa: BLE001 - a scheduler must survive one job's crash
            report.errors.append(f"{name}: {type(exc).__name__}: {exc}")
        return None

    report.created = (
        step("automatic_creation", lambda: run_automatic_creation(espace, source=source)) or 0
    )
    majority = step("majority", lambda: run_majority(espace, source=source)) or (0, 0)
    report.majority, report.reenrolled = majority
    report.purged = step("purge", lambda: run_purge(espace, source=source, progress=progress)) or 0

    from espace import prevention
    from espace.lifecycle import export_jobs, throttle

    if force_daily or _first_run_today(espace, "prevention"):
        report.prevention = (
            step("prevention", lambda: prevention.run_campaigns(espace, source=source)) or 0
        )
    report.exports_built = (
        step("export_build", lambda: export_jobs.build_pending_exports(espace, source=source)) or 0
    )
    report.exports_expired = step("exports", lambda: export_jobs.expire_exports(espace)) or 0
    step("throttle_counters", lambda: throttle.forget_idle_counters(espace))
    result = report.as_dict()
    for name, fn in extra:
        result[name] = step(name, lambda fn=fn: fn(espace))  # type: ignore[misc]
    result["errors"] = list(report.errors)
    return result
