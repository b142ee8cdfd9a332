"""The patient's agenda: appointment and reminder notifications, prevention recommendations.

Appointments (FHIR Appointment, ANS GAP 3.0.0 flows) and reminders (CommunicationRequest with
``occurrenceDateTime``) are stored by the FHIR face in ``espace.fhir_store`` (brick
``agenda``). :func:`due_agenda_notifications` is the scheduler's job: the day before an
appointment (within the 24 hours before its start) and at a reminder's time, it queues one
notification per event (idempotent: the outbox deduplicates on the event and its time).
Prevention campaigns belong to ``espace.prevention``; :func:`recommendations` only lists the
recommended appointments and vaccinations for an age and sex, from
``agenda_prevention_rules.json`` (sources in the file).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from importlib.resources import files
from typing import Any

from sqlalchemy import select

from espace.clock import as_utc
from espace.fhir_store import FhirResourceRow, resource_of
from espace.models import PatientSpace
from espace.notifications import notify
from espace.service import Espace
from espace.spaces import age_on
from espace.trace import Source
from habilitation.model import Action, Actor, ActorKind, AuthenticationMode

SYSTEM = Actor(kind=ActorKind.SYSTEM, id="agenda-notifier", name="agenda",
               authentication_mode=AuthenticationMode.SYSTEM)
DAY_BEFORE = timedelta(days=1)
REMINDER_GRACE = timedelta(days=1)  # a reminder older than this when the job runs is skipped
CLOSED_APPOINTMENT = frozenset({"cancelled", "noshow", "fulfilled", "entered-in-error"})


def due_agenda_notifications(espace: Espace) -> int:
    """Queue the notifications due now; return how many were queued."""
    queued = 0
    with espace.operation(SYSTEM, Action.SYSTEM_JOB, event_type="agenda.notify",
                          source=Source("job"), require_space=False) as op:
        now = op.now
        rows = op.session.execute(
            select(FhirResourceRow).where(
                FhirResourceRow.brick == "agenda",
                FhirResourceRow.deleted.is_(False),
                FhirResourceRow.resource_type.in_(("Appointment", "CommunicationRequest")),
                FhirResourceRow.sort_date >= now - REMINDER_GRACE,
                FhirResourceRow.sort_date <= now + DAY_BEFORE,
            )
        ).scalars().all()
        for row in rows:
            event = _due(row, now)
            if event is None:
                continue
            space = op.session.get(PatientSpace, row.space_id)
            if space is None or space.status != "active":
                continue
            key, body, subject = event
            queued_row = notify(op.session, space, "agenda", body, dedup_key=key, now=now,
                                subject=subject)
            if queued_row is not None:
                queued_row.immediate = True  # sent at once: it is due now
                queued += 1
        op.detail["queued"] = queued
    return queued


def _due(row: FhirResourceRow, now: datetime) -> tuple[str, str, str] | None:
    if row.sort_date is None:
        return None
    when = as_utc(row.sort_date)
    resource = resource_of(row)
    if row.resource_type == "Appointment":
        if resource.get("status") in CLOSED_APPOINTMENT or not (when - DAY_BEFORE <= now < when):
            return None
        title = resource.get("description") or "rendez-vous"
        return (f"agenda:appointment:{row.id}:{when.isoformat()}",
                f"Rappel : {title} le {when:%d/%m/%Y à %H:%M} (UTC).",
                "Mon espace santé : rappel de rendez-vous")
    if resource.get("status", "active") != "active" or not (when <= now):
        return None
    texts = [p.get("contentString", "") for p in resource.get("payload") or []]
    title = next((t for t in texts if t), "rappel")
    return (f"agenda:reminder:{row.id}:{when.isoformat()}", f"Rappel : {title}.",
            "Mon espace santé : rappel")


# ----------------------------------------------------------------------------- prevention
@dataclass(frozen=True, slots=True)
class Recommendation:
    id: str
    kind: str  # appointment | vaccination
    title: str
    source: str


@lru_cache(maxsize=1)
def _rules() -> tuple[dict[str, Any], ...]:
    text = files("espace").joinpath("agenda_prevention_rules.json").read_text(encoding="utf-8")
    return tuple(json.loads(text)["rules"])


def recommendations(birth_date: date, sex: str, on: date) -> list[Recommendation]:
    """The recommended prevention appointments and vaccinations for this age and sex on ``on``.

    A rule with ``every_years`` > 0 recurs inside its age range: it applies in the years
    ``min_age + k * every_years``; a rule with 0 applies over the whole range (once).
    """
    age = age_on(birth_date, on)
    found = []
    for rule in _rules():
        if rule["sex"] not in ("any", sex) or not rule["min_age"] <= age <= rule["max_age"]:
            continue
        every = int(rule["every_years"])
        if every > 1 and (age - int(rule["min_age"])) % every:
            continue
        found.append(Recommendation(rule["id"], rule["kind"], rule["title"], rule["source"]))
    return found
