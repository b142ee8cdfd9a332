"""Coverage-guided fuzzing with atheris (issue 7, "Fuzzing": "and atheris where it fits"):
``security/atheris_fuzz.py`` run as a subprocess (libFuzzer exits the process) on the SOAP/MTOM
parser and the VIHF reader. Skipped when atheris is not installed (``pip install -e
'.[fuzz]'``). ``MES_ATHERIS_RUNS`` inputs per target (2,000); a crash, an unexpected exception
or an input over 2 s makes libFuzzer exit non-zero with the input saved.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNS = int(os.environ.get("MES_ATHERIS_RUNS", "") or 2000)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["soap", "vihf"])
def test_atheris_target(target: str) -> None:
    pytest.importorskip("atheris")
    done = subprocess.run(
        [sys.executable, "-m", "security.atheris_fuzz", target, f"-atheris_runs={RUNS}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=max(600, RUNS // 5),
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"\natheris {json.dumps(summary)}")
    assert summary["runs"] >= RUNS - 1  # libFuzzer's count includes the seed's first run
    assert summary["accepted"] >= 1  # the seed itself goes through: the harness is not vacuous
    assert summary["refused"] >= 1
