"""``mes mail ...`` commands (click), against the test database."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from click.testing import CliRunner
from mailkit import PATIENT_INS

from espace.service import Espace
from mssante.cli import commands


def test_pharmacy_history_commands(espace: Espace, space: Any, settings: dict[str, Any]) -> None:
    env = {f"MES_{k}": str(v) for k, v in settings.items()}
    env["MES_LOG_JSON"] = "0"
    runner = CliRunner(env=env)
    group = commands[0]
    day = date.today().isoformat()  # the CLI runs on the system clock
    added = runner.invoke(
        group,
        [
            "pharmacy-history",
            "add",
            "--ins",
            PATIENT_INS,
            "--pharmacy",
            "officine@pharmacie.mssante.fr",
            "--name",
            "Officine",
            "--date",
            day,
        ],
    )
    assert added.exit_code == 0, added.output
    listed = runner.invoke(group, ["pharmacy-history", "list", "--ins", PATIENT_INS])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert [r["address"] for r in rows] == ["officine@pharmacie.mssante.fr"]
    bad = runner.invoke(
        group,
        [
            "pharmacy-history",
            "add",
            "--ins",
            PATIENT_INS,
            "--pharmacy",
            "x@y.fr",
            "--date",
            "not-a-date",
        ],
    )
    assert bad.exit_code != 0
