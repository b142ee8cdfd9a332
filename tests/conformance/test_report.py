"""Report writers: per-case HTML, JSON summary, JUnit XML, pass rates."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from conformance.model import CaseResult, Exchange, Outcome, summarize
from conformance.report import case_file_name, pass_rate_lines, write_reports


def _cases() -> list[CaseResult]:
    passed = CaseResult("xds", "nist/1/a", "one", expectation="status Success")
    passed.exchanges.append(
        Exchange(
            "a: ITI-42",
            "POST",
            "http://t/xds/registry",
            request_body="<sent/>",
            status=200,
            response_body="<got status='Success'/>",
        )
    )
    failed = CaseResult("xds", "nist/1/b", "two")
    failed.check(False, "status Failure, expected Success")
    errored = CaseResult("fhir", "x", "three")
    errored.error("missing dependency")
    skipped = CaseResult("fhir", "y", "four")
    skipped.not_applicable("not a DMP feature")
    return [passed, failed, errored, skipped]


def test_pass_rate_counts_passed_over_applicable_cases() -> None:
    summaries = summarize(_cases())
    assert (summaries["xds"].passed, summaries["xds"].applicable) == (1, 2)
    assert summaries["xds"].pass_rate == 0.5
    assert summaries["fhir"].applicable == 1 and summaries["fhir"].pass_rate == 0.0
    assert summaries["fhir"].not_applicable == 1
    assert pass_rate_lines(summaries.values())[0].startswith("xds: 1/2 passed (50.0%)")


def test_check_keeps_a_failure_and_error_wins() -> None:
    case = CaseResult("s", "c", "t")
    outcomes: list[Outcome] = []
    assert case.check(True, "fine")
    outcomes.append(case.outcome)
    assert not case.check(False, "broken")
    outcomes.append(case.outcome)
    case.error("kit could not continue")
    case.fail("later failure")
    outcomes.append(case.outcome)
    assert outcomes == [Outcome.PASSED, Outcome.FAILED, Outcome.ERROR]
    assert case.reasons[-1] == "later failure"


def test_written_reports(tmp_path: Path) -> None:
    cases = _cases()
    paths = write_reports(cases, tmp_path, {"target": "in-process"})
    summary = json.loads(paths["json"].read_text())
    assert summary["suites"]["xds"]["passed"] == 1
    assert [c["outcome"] for c in summary["cases"]] == [
        "passed",
        "failed",
        "error",
        "not_applicable",
    ]
    junit = ET.parse(paths["junit"]).getroot()
    suites = {s.get("name"): s for s in junit.findall("testsuite")}
    assert suites["xds"].get("failures") == "1" and suites["fhir"].get("errors") == "1"
    assert suites["fhir"].get("skipped") == "1"
    assert junit.find(".//testcase[@name='nist/1/b']/failure") is not None
    page = (tmp_path / case_file_name(cases[0])).read_text()
    assert "&lt;sent/&gt;" in page and "status Success" in page and "HTTP 200" in page
    index = paths["html"].read_text()
    assert "not a DMP feature" in index and case_file_name(cases[1]) in index


def test_case_pages_escape_what_the_server_sent(tmp_path: Path) -> None:
    case = CaseResult("xds", "evil/<script>", "t")
    case.exchanges.append(Exchange("x", "POST", "u", response_body="<script>alert(1)</script>"))
    write_reports([case], tmp_path)
    page = (tmp_path / case_file_name(case)).read_text()
    assert "<script>" not in page and "/" not in case_file_name(case)
