"""The ratchet: the pass rate per suite recorded in ``conformance/baseline.json``.

CI fails when a suite's pass rate falls below its recorded value. Raise the numbers in the same
commit that makes more cases pass; never lower them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from conformance.model import SuiteSummary

BASELINE_FILE: Final = Path(__file__).resolve().parent / "baseline.json"
#: Rounding slack (the file keeps four decimals).
_EPSILON: Final = 1e-4


def load_baseline(path: Path = BASELINE_FILE) -> dict[str, float]:
    data = json.loads(path.read_text())
    return {suite: float(entry["pass_rate"]) for suite, entry in data["suites"].items()}


def below_baseline(
    summaries: Mapping[str, SuiteSummary], baseline: Mapping[str, float]
) -> list[str]:
    """Suites whose pass rate is below the baseline (a suite that did not run is skipped)."""
    problems: list[str] = []
    for suite, floor in baseline.items():
        summary = summaries.get(suite)
        if summary is None or summary.applicable == 0:
            continue  # not run, or nothing applicable (e.g. reference material absent)
        if summary.pass_rate + _EPSILON < floor:
            problems.append(f"{suite}: {summary.pass_rate:.4f} < baseline {floor:.4f}")
    return problems
