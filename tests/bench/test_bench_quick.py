"""Smoke test of the harness: a tiny quick run produces the report and the JSON results.

No thresholds (issue 8: CI runs ``make bench-quick`` without them); what is checked is that every
goal row is either measured or says "not run: <reason>", and that the figures are well formed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench import run

GOALS = 8


@pytest.mark.slow
def test_quick_run_writes_the_report(tmp_path: Path) -> None:
    database = os.environ.get("MES_TEST_DATABASE_URL", "")
    code = run.main([
        "--quick", "--out", str(tmp_path), "--database-url", database,
        "--schema", "bench_smoke", "--max-entries", "10000", "--observations", "2000",
        "--repeats", "1", "--skip", "smtp", "--skip", "profile", "--skip", "peers",
    ])
    assert code == 0
    assert not (tmp_path / "report.md").exists()  # the full run's report is left alone
    report = (tmp_path / "report-quick.md").read_text()
    table = report.split("## Goals", 1)[1].split("## Data loaded", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == GOALS + 1  # header + one row per goal of the issue
    for line in rows[1:]:
        measured = line.split(" | ")[2]
        assert "(min " in measured or measured.startswith(("not run", "failed")), line
    payload = json.loads((tmp_path / "results" / "quick.json").read_text())
    load = payload["results"]["load"]
    assert load["status"] == "ok"
    assert payload["meta"]["loads"][0]["entries"] == 10_000
    for result in payload["results"].values():
        for figure in result["figures"].values():
            assert figure["min"] <= figure["median"] <= figure["max"]
    assert payload["results"]["smtp"]["status"] == "not run"
