"""The documented ``mes`` commands, run as a user would (click's runner, real database)."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from espace.admin import register_space
from espace.models import TraceRecord
from espace.service import Espace
from espace.trace import Source
from habilitation.model import Action, Actor, ActorKind, AuthenticationMode
from mes.cli import main


@pytest.fixture
def env(settings: dict[str, Any], espace: Espace, monkeypatch: pytest.MonkeyPatch) -> Espace:
    for key in ("VAR_DIR", "DATABASE_URL", "DOCUMENT_KEY", "TRACE_SIGNING_KEY", "PKI_DIR"):
        monkeypatch.setenv(f"MES_{key}", str(settings[key]))
    return espace


def _some_traffic(espace: Espace) -> None:
    with espace.session_factory() as session:
        register_space(session, ins="207058575627097", now=espace.clock.now())
        session.commit()
    patient = Actor(
        ActorKind.PATIENT,
        "207058575627097",
        on_behalf_of="207058575627097",
        authentication_mode=AuthenticationMode.PATIENT_LOGIN,
    )
    for _ in range(5):
        with espace.operation(
            patient,
            Action.READ_TRACE,
            event_type="rest.search",
            source=Source("test"),
            space_ins="207058575627097",
        ):
            pass


def test_trace_verify_passes_then_names_the_tampered_record(env: Espace) -> None:
    _some_traffic(env)
    runner = CliRunner()
    ok = runner.invoke(main, ["trace", "verify"])
    assert ok.exit_code == 0, ok.output
    assert "trace intact" in ok.output
    with env.session_factory() as session:
        victim = session.execute(select(TraceRecord).where(TraceRecord.seq == 3)).scalar_one()
        session.execute(
            update(TraceRecord).where(TraceRecord.id == victim.id).values(actor_id="someone-else")
        )
        session.commit()
    broken = runner.invoke(main, ["trace", "verify"])
    assert broken.exit_code == 1
    assert f"record id={victim.id} seq=3" in broken.output


def test_trace_show_lists_the_patients_records(env: Espace) -> None:
    _some_traffic(env)
    result = CliRunner().invoke(main, ["trace", "show", "--ins", "207058575627097"])
    assert result.exit_code == 0, result.output
    assert result.output.count('"action": "trace.read"') == 5


def test_demo_load_is_idempotent(env: Espace) -> None:
    runner = CliRunner()
    first = runner.invoke(main, ["demo", "load"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(main, ["demo", "load"])
    assert second.exit_code == 0
    assert '"created_spaces": []' in second.output
    assert "215057512345658" in first.output
