"""The kit against the server: a fast smoke run on the test database, and the ratchet."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from conformance.baseline import below_baseline, load_baseline
from conformance.model import Outcome
from conformance.runner import SUITES, run
from espace.clock import FrozenClock
from espace.service import Espace


def test_nist_subset_against_the_live_server(
    live_server: str, espace: Espace, pki: Any, clock: FrozenClock, tmp_path: Path
) -> None:
    """Register + stored query + retrieve of the NIST kit on the fixture database (SQLite or
    PostgreSQL): the kit signs with the PKI the server trusts and registers its patients."""
    clock.set(datetime.now(UTC))  # the kit's VIHF and the test PKI live in real time
    result = run(
        suites=["xds"],
        parts=["nist"],
        pki_dir=Path(pki.directory),
        target=live_server,
        report_dir=tmp_path / "report",
        options={"espace": espace, "nist_tests": ["PnrXop", "11996"]},
    )
    by_id = {case.case_id: case for case in result.results}
    for literal_mtom in ("Xop", "NoXop", "encodedURL"):
        case = by_id[f"nist/PnrXop/{literal_mtom}"]
        assert case.outcome is Outcome.PASSED, case.reasons
    assert by_id["nist/11996/submit"].outcome is Outcome.PASSED  # XDSUnknownPatientId
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["suites"]["xds"]["applicable"] == len(result.results)
    junit = ET.parse(tmp_path / "report" / "junit.xml").getroot()
    assert junit.find("testsuite").get("tests") == str(len(result.results))  # type: ignore[union-attr]
    page = (tmp_path / "report" / "xds-nist_11996_submit.html").read_text()
    assert "RegisterDocumentSet-b" in page and "XDSUnknownPatientId" in page


@pytest.mark.slow
def test_pass_rates_do_not_fall_below_the_baseline(tmp_path: Path) -> None:
    """The ratchet (conformance/baseline.json), on a fresh in-process server per part."""
    result = run(suites=list(SUITES), pki_dir=tmp_path / "pki", report_dir=tmp_path / "report")
    assert set(SUITES) <= set(result.summaries)
    assert below_baseline(result.summaries, load_baseline()) == []
