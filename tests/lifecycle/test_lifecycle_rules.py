"""Death, protected adults, representatives' opposition, closure effects, prevention rules as
data, and the back-office CLI."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from lifecycle_helpers import DOCTOR, SRC, agent, feed_document, make_ins, outbox, patient
from sqlalchemy import select

from espace import lifecycle, prevention
from espace.admin import grant_app_consent, register_app
from espace.clock import FrozenClock
from espace.errors import AccessDenied, Conflict, InvalidInput
from espace.lifecycle import Person
from espace.models import AppConsent, PatientSpace
from espace.service import Espace
from habilitation.model import Action, Actor, ActorKind, AuthenticationMode

BIRTH = date(1950, 12, 24)
INS = make_ins(1, BIRTH, 501)


def _created(
    espace: Espace, clock: FrozenClock, ins: str = INS, birth: date = BIRTH, **kw: Any
) -> str:
    enrolment = lifecycle.enrol(espace, Person(ins, "LEROY", "Louis", birth, "M"), source=SRC, **kw)
    clock.advance(timedelta(weeks=6))
    lifecycle.run_due_jobs(espace)
    return enrolment.space_id


def _space(espace: Espace, space_id: str) -> PatientSpace | None:
    with espace.session_factory() as session:
        return session.get(PatientSpace, space_id)


def test_death_closes_and_purges_ten_years_after_death(espace: Espace, clock: FrozenClock) -> None:
    space_id = _created(espace, clock)
    death = (clock.now() - timedelta(days=20)).date()
    with pytest.raises(InvalidInput):
        lifecycle.record_death(espace, patient(INS), INS, death_date=death, source=SRC)
    state = lifecycle.record_death(espace, agent(), INS, death_date=death, source=SRC)
    assert state.status == "closed" and state.purge_after is not None
    assert state.purge_after.date() == death.replace(year=death.year + 10)
    with pytest.raises(Conflict) as exc:
        lifecycle.reopen(espace, agent(), INS, source=SRC)
    assert exc.value.code == "deceased"
    clock.set(datetime(death.year + 10, death.month, death.day, 12, tzinfo=UTC) - timedelta(days=2))
    assert lifecycle.run_due_jobs(espace)["purged"] == 0
    clock.advance(timedelta(days=3))
    assert lifecycle.run_due_jobs(espace)["purged"] == 1
    assert _space(espace, space_id) is None


def test_closure_withdraws_app_pairings_and_authorizations(
    espace: Espace, clock: FrozenClock
) -> None:
    space_id = _created(espace, clock)
    feed_document(espace, INS)
    with espace.session_factory() as session:
        space = session.get(PatientSpace, space_id)
        assert space is not None
        register_app(
            session, "app-1", name="App", allowed_purposes=["documents.read"], now=clock.now()
        )
        session.flush()
        grant_app_consent(
            session, space, "app-1", ["documents.read"], granted_by=INS, now=clock.now()
        )
        space.medecin_traitant_id = DOCTOR.id
        session.commit()
    state = lifecycle.close(espace, patient(INS), INS, source=SRC)
    assert state is not None and state.status == "closed"
    with espace.session_factory() as session:
        consent = session.execute(select(AppConsent)).scalar_one()
        assert consent.withdrawn_at is not None
        space = session.get(PatientSpace, space_id)
        assert space is not None and space.medecin_traitant_id is None
    # the support desk cannot read anything either
    with pytest.raises(AccessDenied):
        with espace.operation(
            agent(), Action.SEARCH_METADATA, event_type="x", source=SRC, space_ins=INS
        ):
            pass
    with pytest.raises(Conflict):
        lifecycle.close(espace, patient(INS), INS, source=SRC)
    with pytest.raises(InvalidInput) as bad:
        lifecycle.close(espace, patient(INS), INS, source=SRC, reason="WHATEVER")
    assert bad.value.code == "invalid_reason"


def test_protected_adult_representative_opposes_and_manages(
    espace: Espace, clock: FrozenClock
) -> None:
    rep_birth = date(1960, 6, 6)
    rep = make_ins(2, rep_birth, 502)
    enrolment = lifecycle.enrol(
        espace,
        Person(INS, "LEROY", "Louis", BIRTH, "M"),
        source=SRC,
        protected_adult_representative=Person(rep, email="tutrice@example.org"),
    )
    rep_actor = Actor(
        ActorKind.PROTECTED_ADULT_REPRESENTATIVE,
        rep,
        on_behalf_of=INS,
        authentication_mode=AuthenticationMode.PATIENT_LOGIN,
    )
    stranger = Actor(
        ActorKind.PROTECTED_ADULT_REPRESENTATIVE,
        make_ins(1, rep_birth, 503),
        on_behalf_of=INS,
        authentication_mode=AuthenticationMode.PATIENT_LOGIN,
    )
    with pytest.raises(AccessDenied):
        lifecycle.oppose(espace, stranger, INS, code=enrolment.code, source=SRC)
    receipt = lifecycle.oppose(espace, rep_actor, INS, code=enrolment.code, source=SRC)
    assert receipt.opposed_by_kind == "protected_adult_representative"
    notices = [n for n in outbox(espace) if "opposed" in n.dedup_key]
    assert notices and notices[0].recipients == "tutrice@example.org"


def test_legal_representative_opposes_for_a_minor(espace: Espace) -> None:
    child_birth, parent_birth = date(2020, 2, 2), date(1990, 3, 3)
    child, parent = make_ins(1, child_birth, 504), make_ins(2, parent_birth, 505)
    enrolment = lifecycle.enrol(
        espace,
        Person(child, "B", "Bébé", child_birth, "M"),
        source=SRC,
        representatives=[Person(parent, email="parent@example.org")],
    )
    rep = Actor(
        ActorKind.LEGAL_REPRESENTATIVE,
        parent,
        on_behalf_of=child,
        authentication_mode=AuthenticationMode.PATIENT_LOGIN,
    )
    assert lifecycle.oppose(espace, rep, child, code=enrolment.code, source=SRC).reference
    with pytest.raises(InvalidInput) as too_many:
        lifecycle.enrol(
            espace,
            Person(make_ins(1, child_birth, 506), "B", "C", child_birth, "M"),
            source=SRC,
            representatives=[Person(parent), Person(parent), Person(parent)],
        )
    assert too_many.value.code == "too_many_representatives"


def test_enrolment_rejects_bad_input_without_writing(espace: Espace) -> None:
    for bad in ("123", INS[:-2] + "00"):
        with pytest.raises(InvalidInput) as exc:
            lifecycle.enrol(espace, Person(bad), source=SRC)
        assert exc.value.code == "invalid_ins"
    with pytest.raises(InvalidInput):
        lifecycle.enrol(espace, Person(INS, sex="X"), source=SRC)
    with espace.session_factory() as session:
        assert session.execute(select(PatientSpace)).first() is None
    lifecycle.enrol(espace, Person(INS), source=SRC)
    with pytest.raises(Conflict):
        lifecycle.enrol(espace, Person(INS), source=SRC)


def test_prevention_rules_are_data_and_validated() -> None:
    rules = prevention.parse_rules(prevention.shipped_rules_document())
    by_id = {r.id: r for r in rules}
    colorectal, breast = by_id["colorectal_screening"], by_id["breast_screening"]
    assert colorectal.matches("M", 50 * 12, frozenset(), 3)
    assert not colorectal.matches("M", 75 * 12, frozenset(), 3)
    assert not breast.matches("M", 60 * 12, frozenset(), 3)
    flu = by_id["influenza_vaccination"]
    assert flu.matches("F", 66 * 12, frozenset(), 10)
    assert not flu.matches("F", 66 * 12, frozenset(), 5)  # out of season
    assert flu.matches("F", 40 * 12, frozenset({"chronic_condition"}), 11)
    assert not flu.matches("F", 40 * 12, frozenset(), 11)
    assert by_id["child_vaccination_2_months"].matches("M", 2, frozenset(), 1)
    assert not by_id["child_vaccination_2_months"].matches("M", 3, frozenset(), 1)
    with pytest.raises(InvalidInput) as exc:
        prevention.parse_rules({"rules": [{"id": "x"}]})
    assert exc.value.code == "invalid_rule"
    assert prevention.age_in_months(date(2025, 11, 5), date(2026, 1, 4)) == 1


def test_prevention_for_a_baby_goes_to_the_parents(espace: Espace, clock: FrozenClock) -> None:
    birth = (clock.now() - timedelta(days=20)).date()  # two months old after the six weeks
    baby, parent = make_ins(1, birth, 507), make_ins(2, date(1990, 3, 3), 508)
    space_id = _created(
        espace, clock, baby, birth, representatives=[Person(parent, email="parent@example.org")]
    )
    # the job run that created the space sent the campaign; a second run sends nothing
    assert lifecycle.run_due_jobs(espace)["prevention"] == 0
    with espace.session_factory() as session:
        rows = prevention.campaigns_of(session, space_id)
    assert [r["rule_id"] for r in rows] == ["child_vaccination_2_months"]
    notices = outbox(espace, space_id)
    assert all(n.recipients in ("", "parent@example.org") for n in notices)


def test_cli_enrol_and_jobs(
    espace: Espace, settings: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from patient_api.cli import commands

    for key in ("DATABASE_URL", "DOCUMENT_KEY", "TRACE_SIGNING_KEY", "PKI_DIR", "VAR_DIR"):
        monkeypatch.setenv(f"MES_{key}", str(settings[key]))
    space_cmd = next(c for c in commands if c.name == "space")
    jobs_cmd = next(c for c in commands if c.name == "jobs")
    runner = CliRunner()
    result = runner.invoke(
        space_cmd, ["enrol", "--ins", INS, "--birth", "1950-12-24", "--sex", "M"]
    )
    assert result.exit_code == 0, result.output
    assert '"code"' in result.output
    result = runner.invoke(
        space_cmd,
        ["oppose", "--ins", INS, "--agent", "AGENT-CLI", "--pdf", str(tmp_path / "o.pdf")],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "o.pdf").read_bytes().startswith(b"%PDF")
    result = runner.invoke(space_cmd, ["oppose", "--ins", INS, "--agent", "AGENT-CLI"])
    assert result.exit_code != 0 and "already_opposed" in result.output
    result = runner.invoke(space_cmd, ["oppose", "--ins", INS])
    assert result.exit_code != 0
    other = make_ins(2, date(1980, 5, 5), 509)
    out = runner.invoke(space_cmd, ["enrol", "--ins", other, "--email", "o@example.org"])
    first = json.loads(out.output)["code"]
    out = runner.invoke(space_cmd, ["create", "--ins", other, "--code", first])
    assert out.exit_code == 0 and json.loads(out.output)["status"] == "active", out.output
    out = runner.invoke(space_cmd, ["close", "--ins", other, "--code", first])
    assert out.exit_code != 0 and "invalid_code" in out.output  # single use
    second = json.loads(runner.invoke(space_cmd, ["code", "--ins", other]).output)["code"]
    out = runner.invoke(space_cmd, ["close", "--ins", other, "--code", second])
    assert out.exit_code == 0 and json.loads(out.output)["status"] == "closed", out.output
    out = runner.invoke(space_cmd, ["reopen", "--ins", other, "--agent", "AGENT-CLI"])
    assert out.exit_code == 0 and json.loads(out.output)["status"] == "active", out.output
    result = runner.invoke(jobs_cmd, ["run", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert '"purged": 0' in result.output
