"""Personalised prevention: rules as data (``espace/data/prevention_rules.json``) -> campaigns.

A matching space (age, sex, profile facts, DMP facts) receives a prevention message in its
mailbox (no reply possible) and a proposed appointment in its agenda; nothing is sent to a
person who opposed prevention (CSP R.1111-31, décret 2021-1048: the holder may object to
personalised prevention messages) — the PDP denies ``DELIVER_MESSAGE`` by the system then.
The mailbox is never an input. Every campaign is recorded in ``prevention_campaign`` (dedup
and the patient's view); when ``espace.mailbox`` / ``espace.agenda`` expose a delivery function
it is called too (``espace.mailbox.add_system_message``, ``espace.fhir_store.create`` of a proposed
Appointment in the agenda brick). The person is
told by a ``new_message`` notification.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from importlib.resources import files
from typing import Any

from sqlalchemy import DateTime, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from espace.clock import as_utc
from espace.errors import InvalidInput, UnknownSpace
from espace.lifecycle import PreventionCampaign
from espace.models import DocumentEntryRow, PatientSpace
from espace.service import Espace, Operation
from espace.trace import Source, Target
from habilitation.model import Action, Actor, ActorKind, AuthenticationMode, SpaceStatus

RULES_FILE = "prevention_rules.json"

Timestamp = DateTime(timezone=True)


@dataclass(frozen=True, slots=True)
class Condition:
    min_age: int | None = None
    max_age: int | None = None
    min_age_months: int | None = None
    max_age_months: int | None = None
    conditions: frozenset[str] = frozenset()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Condition:
        return cls(
            min_age=data.get("min_age"),
            max_age=data.get("max_age"),
            min_age_months=data.get("min_age_months"),
            max_age_months=data.get("max_age_months"),
            conditions=frozenset(data.get("conditions") or ()),
        )

    def holds(self, months: int, conditions: frozenset[str]) -> bool:
        years = months // 12
        if self.min_age is not None and years < self.min_age:
            return False
        if self.max_age is not None and years > self.max_age:
            return False
        if self.min_age_months is not None and months < self.min_age_months:
            return False
        if self.max_age_months is not None and months > self.max_age_months:
            return False
        return not self.conditions or bool(self.conditions & conditions)


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    title: str
    message: str
    sex: str | None
    when: tuple[Condition, ...]  # any of
    interval_months: int | None
    satisfied_by_type_codes: frozenset[str]
    season_months: frozenset[int]
    appointment: Mapping[str, Any]
    source: str
    raw: Mapping[str, Any] = field(default_factory=dict)

    def matches(self, sex: str, months: int, conditions: frozenset[str], month: int) -> bool:
        if self.sex is not None and sex != self.sex:
            return False
        if self.season_months and month not in self.season_months:
            return False
        return any(c.holds(months, conditions) for c in self.when)

    def period_key(self, now: datetime, months: int) -> str:
        """One message per period: the interval window of the person's age, or once."""
        if self.interval_months is None:
            return "once"
        if self.season_months:  # one per season: the season's year
            return f"season-{now.year if now.month >= 7 else now.year - 1}"
        return f"p{months // self.interval_months}"


def parse_rules(data: Mapping[str, Any]) -> tuple[Rule, ...]:
    """Validate and load the rules file (raises InvalidInput on a malformed rule)."""
    rules = []
    seen: set[str] = set()
    for raw in data.get("rules", []):
        try:
            rule_id = str(raw["id"])
            when = (
                tuple(Condition.from_json(c) for c in raw["any_of"])
                if raw.get("any_of")
                else (Condition.from_json(raw),)
            )
            rule = Rule(
                id=rule_id,
                title=str(raw["title"]),
                message=str(raw["message"]),
                sex=raw.get("sex"),
                when=when,
                interval_months=raw.get("interval_months"),
                satisfied_by_type_codes=frozenset(raw.get("satisfied_by_type_codes") or ()),
                season_months=frozenset(raw.get("season_months") or ()),
                appointment=dict(raw.get("appointment") or {}),
                source=str(raw.get("source", "")),
                raw=raw,
            )
        except (KeyError, TypeError) as exc:
            raise InvalidInput(f"malformed prevention rule: {exc}", code="invalid_rule") from exc
        if rule.sex not in (None, "M", "F") or rule_id in seen:
            raise InvalidInput(f"invalid prevention rule {rule_id}", code="invalid_rule")
        seen.add(rule_id)
        rules.append(rule)
    return tuple(rules)


@cache
def shipped_rules_document() -> Mapping[str, Any]:
    data: Mapping[str, Any] = json.loads(
        files("espace").joinpath("data", RULES_FILE).read_text(encoding="utf-8")
    )
    return data


def load_rules(espace: Espace | None = None) -> tuple[Rule, ...]:
    """The shipped rules, or the file named by the ``PREVENTION_RULES_FILE`` setting."""
    path = espace.settings.get("PREVENTION_RULES_FILE") if espace is not None else None
    if path:
        with open(str(path), encoding="utf-8") as handle:
            return parse_rules(json.load(handle))
    return parse_rules(shipped_rules_document())


def rules_for_patient(espace: Espace) -> list[dict[str, Any]]:
    """The rules as the patient reads them (public information, no personal data)."""
    return [
        {
            "id": r.id,
            "title": r.title,
            "message": r.message,
            "sex": r.sex,
            "criteria": [
                {k: v for k, v in vars_of(c).items() if v not in (None, frozenset())}
                for c in r.when
            ],
            "interval_months": r.interval_months,
            "source": r.source,
        }
        for r in load_rules(espace)
    ]


def vars_of(condition: Condition) -> dict[str, Any]:
    return {
        "min_age": condition.min_age,
        "max_age": condition.max_age,
        "min_age_months": condition.min_age_months,
        "max_age_months": condition.max_age_months,
        "conditions": sorted(condition.conditions) or None,
    }


def age_in_months(birth: date, day: date) -> int:
    months = (day.year - birth.year) * 12 + day.month - birth.month
    return months - 1 if day.day < birth.day else months


def _conditions(session: Session, space_id: str) -> frozenset[str]:
    """Profile facts (chronic conditions...) from ``espace.profile`` when it exposes them."""
    try:
        profile = importlib.import_module("espace.profile")
    except ModuleNotFoundError:
        return frozenset()
    fn = getattr(profile, "prevention_conditions", None)
    return frozenset(fn(session, space_id)) if callable(fn) else frozenset()


def _satisfied(session: Session, space_id: str, rule: Rule, now: datetime) -> bool:
    if not rule.satisfied_by_type_codes:
        return False
    since = now - timedelta(days=30 * (rule.interval_months or 1200))
    found = session.execute(
        select(DocumentEntryRow.entry_uuid)
        .where(
            DocumentEntryRow.space_id == space_id,
            DocumentEntryRow.status == "Approved",
            DocumentEntryRow.type_code.in_(sorted(rule.satisfied_by_type_codes)),
            DocumentEntryRow.submission_time >= since,
        )
        .limit(1)
    ).first()
    return found is not None


def prevention_actor() -> Actor:
    return Actor(
        kind=ActorKind.SYSTEM,
        id="job:prevention",
        name="Mon espace santé - prévention",
        authentication_mode=AuthenticationMode.SYSTEM,
    )


def due_rules(
    session: Session, space: PatientSpace, rules: Sequence[Rule], now: datetime
) -> list[tuple[Rule, str]]:
    """The rules this space matches now and has not been messaged for in this period."""
    if space.birth_date is None:
        return []
    months = age_in_months(space.birth_date, now.date())
    conditions = _conditions(session, space.id)
    sent = set(
        session.execute(
            select(PreventionCampaign.rule_id, PreventionCampaign.period_key).where(
                PreventionCampaign.space_id == space.id
            )
        ).all()
    )
    due = []
    for rule in rules:
        if not rule.matches(space.sex, months, conditions, now.month):
            continue
        key = rule.period_key(now, months)
        if (rule.id, key) in sent or _satisfied(session, space.id, rule, now):
            continue
        due.append((rule, key))
    return due


def _deliver(op: Operation, rule: Rule, key: str) -> None:
    space = op.space
    assert space is not None
    appointment = rule.appointment
    proposed = op.now + timedelta(days=int(appointment.get("delay_days", 30)))
    row = PreventionCampaign(
        space_id=space.id,
        rule_id=rule.id,
        period_key=key,
        title=rule.title,
        message=rule.message,
        sent_at=op.now,
        appointment_kind=str(appointment.get("kind", "")),
        appointment_with=str(appointment.get("with", "")),
        appointment_proposed_for=proposed,
    )
    if _deliver_to_mailbox(op, rule):
        row.delivered_to = "mailbox"
    _propose_appointment(op, rule, proposed)
    op.session.add(row)
    op.notify(
        "new_message",
        f"Vous avez reçu un message de prévention : {rule.title}.",
        dedup_key=f"prevention:{space.id}:{rule.id}:{key}",
    )


def _propose_appointment(op: Operation, rule: Rule, proposed: datetime) -> bool:
    """A proposed FHIR Appointment in the agenda brick (``espace.fhir_store``), when present."""
    try:
        store = importlib.import_module("espace.fhir_store")
    except ModuleNotFoundError:
        return False
    create, writer = getattr(store, "create", None), getattr(store, "Writer", None)
    if not callable(create) or writer is None:
        return False
    space = op.space
    assert space is not None
    appointment = {
        "resourceType": "Appointment",
        "status": "proposed",
        "description": rule.title,
        "comment": rule.message,
        "serviceType": [{"text": str(rule.appointment.get("kind", "prevention"))}],
        "requestedPeriod": [
            {
                "start": as_utc(proposed).isoformat(),
                "end": as_utc(proposed + timedelta(days=60)).isoformat(),
            }
        ],
        "participant": [
            {
                "actor": {
                    "identifier": {"system": f"urn:oid:{space.ins_oid}", "value": space.ins},
                    "display": f"{space.given_names} {space.family_name}".strip(),
                },
                "status": "needs-action",
            },
            {
                "actor": {"display": str(rule.appointment.get("with", ""))},
                "status": "needs-action",
            },
        ],
    }
    create(
        op.session,
        space.id,
        appointment,
        brick="agenda",
        writer=writer(author="job:prevention", author_kind="system", source="prevention"),
        now=op.now,
    )
    return True


def _deliver_to_mailbox(op: Operation, rule: Rule) -> bool:
    """Put the message in the secure mailbox as a no-reply system message (espace.mailbox)."""
    try:
        mailbox = importlib.import_module("espace.mailbox")
    except ModuleNotFoundError:
        return False
    add = getattr(mailbox, "add_system_message", None)
    settings_type = getattr(mailbox, "MailSettings", None)
    if not callable(add) or settings_type is None:
        return False
    add(
        op.session,
        op.space,
        subject=f"Prévention : {rule.title}",
        body=rule.message,
        cipher=op.espace.cipher,
        settings=settings_type.from_mapping(op.espace.settings),
        now=op.now,
        reason="prevention",
    )
    return True


def run_campaigns(espace: Espace, *, source: Source | None = None, limit: int = 10000) -> int:
    """Send the due prevention messages (one traced operation per space)."""
    rules = load_rules(espace)
    src = source or Source(face="job")
    now = espace.clock.now()
    with espace.session_factory() as session:
        candidates = list(
            session.execute(
                select(PatientSpace.id)
                .where(
                    PatientSpace.status == SpaceStatus.ACTIVE.value,
                    PatientSpace.prevention_opposed.is_(False),
                    PatientSpace.birth_date.is_not(None),
                )
                .order_by(PatientSpace.id)
                .limit(limit)
            ).scalars()
        )
        todo = []
        for space_id in candidates:
            space = session.get(PatientSpace, space_id)
            if space is not None and due_rules(session, space, rules, now):
                todo.append(space_id)
    sent = 0
    for space_id in todo:
        with suppress(UnknownSpace, IntegrityError):  # another node did it
            with espace.operation(
                prevention_actor(),
                Action.DELIVER_MESSAGE,
                event_type="prevention.campaign",
                source=src,
                space_id=space_id,
            ) as op:
                assert op.space is not None
                due = due_rules(op.session, op.space, rules, op.now)
                for rule, key in due:
                    _deliver(op, rule, key)
                op.target = Target("PreventionCampaign", ",".join(r.id for r, _ in due))
                op.detail = {"rules": [r.id for r, _ in due]}
                sent += len(due)
    return sent


def campaigns_of(session: Session, space_id: str) -> list[dict[str, Any]]:
    rows = session.execute(
        select(PreventionCampaign)
        .where(PreventionCampaign.space_id == space_id)
        .order_by(PreventionCampaign.sent_at.desc(), PreventionCampaign.id.desc())
    ).scalars()
    return [
        {
            "rule_id": r.rule_id,
            "title": r.title,
            "message": r.message,
            "sent_at": as_utc(r.sent_at).isoformat(),
            "reply_possible": False,
            "proposed_appointment": {
                "kind": r.appointment_kind,
                "with": r.appointment_with,
                "date": as_utc(r.appointment_proposed_for).isoformat()
                if r.appointment_proposed_for
                else None,
            },
        }
        for r in rows
    ]
