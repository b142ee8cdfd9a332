"""Figures, ratios and the report's goals table (no server needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.report import goal_rows, write_report
from bench.stats import Figure, percentile, ratio_figure
from bench.workloads import Result


def test_percentile_interpolates_like_numpy() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile([3.0], 99) == 3.0
    with pytest.raises(ValueError):
        percentile([], 50)


def test_figure_keeps_median_min_max() -> None:
    fig = Figure("x", "ms", [5.0, 1.0, 9.0, 2.0])
    assert (fig.median, fig.min, fig.max) == (3.5, 1.0, 9.0)
    assert fig.as_dict()["runs"] == [5.0, 1.0, 9.0, 2.0]


def test_ratios_pair_runs_of_the_same_round() -> None:
    face = Figure("face", "ms", [10.0, 30.0, 20.0])
    floor = Figure("floor", "ms", [5.0, 10.0, 4.0])
    ratio = ratio_figure("face/floor", face, floor)
    assert ratio.runs == [2.0, 3.0, 5.0]
    with pytest.raises(ValueError):
        ratio_figure("bad", face, Figure("f", "ms", [1.0]))


def test_missing_workloads_are_reported_as_not_run(tmp_path: Path) -> None:
    iti41 = Result("ITI-41")
    iti41.fig("throughput", "t", "/s").runs = [150.0, 250.0, 260.0]
    iti41.fig("ratio", "r", "x").runs = [2.0, 2.5, 4.0]
    fhir = Result("FHIR", status="not run", reason="/fhir/metadata answered 404")
    results = {"iti41": iti41, "fhir": fhir}
    rows = {r[0].split(",")[0]: r for r in goal_rows(results, {"cpus": 2})}
    assert rows["ITI-41"][3] == "throughput met; ratio met"
    assert rows["FHIR mixed read/write/search"][2].startswith("not run: /fhir/metadata")
    assert rows["ITI-43"][2].startswith("not run")
    write_report(tmp_path / "report.md", {"mode": "quick"}, results)
    text = (tmp_path / "report.md").read_text()
    assert "| workload | goal | measured | verdict |" in text
    assert "250.0 /s (min 150.0, max 260.0, n=3)" in text


def test_a_missed_goal_says_by_how_much() -> None:
    iti41 = Result("ITI-41")
    iti41.fig("throughput", "t", "/s").runs = [50.0]
    iti41.fig("ratio", "r", "x").runs = [6.0]
    (row,) = [r for r in goal_rows({"iti41": iti41}, {}) if r[0].startswith("ITI-41")]
    assert row[3] == "throughput NOT met (0.25x the goal); ratio NOT met (2.0x the goal)"


def test_a_full_report_carries_the_scale_runs_kept_beside_it(tmp_path: Path) -> None:
    (tmp_path / "scale-runs.md").write_text("## Scale runs kept beside this report\n\n| x |\n")
    write_report(tmp_path / "report.md", {"mode": "full"}, {})
    text = (tmp_path / "report.md").read_text()
    assert text.index("## Goals") < text.index("## Scale runs kept") < text.index("## Data loaded")
    write_report(tmp_path / "quick.md", {"mode": "quick"}, {})  # a quick run does not
    assert "Scale runs" not in (tmp_path / "quick.md").read_text()
