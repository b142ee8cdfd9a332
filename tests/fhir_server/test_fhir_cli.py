"""``mes token issue``, ``mes app register|list|dereference``, ``mes agenda notify``."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner
from fhir_helpers import World

from fhir_server.cli import commands
from habilitation.model import ActorKind
from mes.tokens import actor_from_bearer


@pytest.fixture
def env(settings: dict[str, Any], monkeypatch: pytest.MonkeyPatch, world: World) -> None:
    for key in ("VAR_DIR", "DATABASE_URL", "DOCUMENT_KEY", "TRACE_SIGNING_KEY", "PKI_DIR"):
        monkeypatch.setenv(f"MES_{key}", str(settings[key]))


def group(name: str) -> Any:
    return next(c for c in commands if c.name == name)


def test_token_issue_for_each_kind(env: None, settings: dict[str, Any], world: World) -> None:
    runner = CliRunner()
    result = runner.invoke(group("token"), ["issue", "--kind", "patient", "--subject",
                                            world.alice.ins])
    assert result.exit_code == 0, result.output
    actor = actor_from_bearer(settings, f"Bearer {result.output.strip()}")
    assert actor.kind is ActorKind.PATIENT and actor.on_behalf_of == world.alice.ins
    app = runner.invoke(group("token"), ["issue", "--kind", "app", "--subject", "diabeto-app",
                                         "--patient", world.alice.ins, "--scope",
                                         "measurements.read"])
    assert app.exit_code == 0, app.output
    actor = actor_from_bearer(settings, f"Bearer {app.output.strip()}")
    assert actor.kind is ActorKind.APP and actor.app_id == "diabeto-app"
    missing = runner.invoke(group("token"), ["issue", "--kind", "app", "--subject", "x"])
    assert missing.exit_code != 0
    unknown = runner.invoke(group("token"), ["issue", "--kind", "professional", "--subject", "x"])
    assert unknown.exit_code != 0


def test_app_catalogue_commands(env: None, world: World) -> None:
    runner = CliRunner()
    registered = runner.invoke(group("app"), [
        "register", "--id", "scale-app", "--name", "Balance", "--oid", "1.2.250.1.999.50",
        "--purpose", "measurements.write", "--redirect-uri", "https://scale.example/cb"])
    assert registered.exit_code == 0, registered.output
    listed = runner.invoke(group("app"), ["list"])
    assert "scale-app\treferenced\t1.2.250.1.999.50" in listed.output
    bad = runner.invoke(group("app"), ["register", "--id", "x", "--name", "X",
                                       "--purpose", "mailbox.read"])
    assert bad.exit_code != 0
    gone = runner.invoke(group("app"), ["dereference", "--id", "scale-app"])
    assert gone.exit_code == 0
    assert "scale-app\tdereferenced" in runner.invoke(group("app"), ["list"]).output
    assert runner.invoke(group("app"), ["dereference", "--id", "nope"]).exit_code != 0


def test_agenda_notify_command(env: None, world: World) -> None:
    result = CliRunner().invoke(group("agenda"), ["notify"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("queued 0")
