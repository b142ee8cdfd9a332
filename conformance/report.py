"""Report writers: an HTML page per case plus an index, a JSON summary, JUnit XML, a text line.

The HTML page of a case shows what was sent, what came back, the expectation, the verdict and
why. JUnit XML follows the de-facto schema read by CI servers (Jenkins/GitLab ``testsuites``):
failed cases are ``<failure>``, kit errors ``<error>``, not-applicable cases ``<skipped>``.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from conformance.model import CaseResult, Outcome, SuiteSummary, summarize

_COLORS = {
    Outcome.PASSED: "#1a7f37",
    Outcome.FAILED: "#cf222e",
    Outcome.ERROR: "#9a6700",
    Outcome.NOT_APPLICABLE: "#6e7781",
}
_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:80em}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}
pre{background:#f6f8fa;padding:.5em;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
.badge{color:#fff;padding:.1em .5em;border-radius:.3em}
"""


def case_file_name(result: CaseResult) -> str:
    """A file-system-safe, unique-per-case page name."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{result.suite}-{result.case_id}")
    return f"{slug}.html"


def _badge(outcome: Outcome) -> str:
    label = outcome.value.replace("_", " ")
    return f'<span class="badge" style="background:{_COLORS[outcome]}">{label}</span>'


def _page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}'
        f"</title><style>{_STYLE}</style></head><body>{body}</body></html>\n"
    )


def render_case(result: CaseResult) -> str:
    """The HTML page of one case."""
    esc = html.escape
    parts = [
        f"<p><a href='index.html'>&larr; all cases</a></p><h1>{esc(result.suite)} "
        f"{esc(result.case_id)}</h1><p>{esc(result.title)}</p>",
        f"<p>Verdict: {_badge(result.outcome)} ({result.duration_s:.2f} s)</p>",
    ]
    if result.spec:
        parts.append(f"<p>Specification: {esc(result.spec)}</p>")
    parts.append(f"<h2>Expectation</h2><pre>{esc(result.expectation or '-')}</pre>")
    parts.append("<h2>Why</h2><ul>")
    reasons = result.reasons or ["every check passed"]
    parts.extend(f"<li>{esc(reason)}</li>" for reason in reasons)
    parts.append("</ul>")
    for number, exchange in enumerate(result.exchanges, 1):
        request_headers = "\n".join(f"{k}: {v}" for k, v in exchange.request_headers.items())
        response_headers = "\n".join(f"{k}: {v}" for k, v in exchange.response_headers.items())
        parts.append(
            f"<h2>Exchange {number}: {esc(exchange.label)}</h2>"
            f"<h3>Sent</h3><pre>{esc(exchange.method)} {esc(exchange.url)}\n"
            f"{esc(request_headers)}\n\n{esc(exchange.request_body)}</pre>"
            f"<h3>Received</h3><pre>HTTP {exchange.status}\n{esc(response_headers)}\n\n"
            f"{esc(exchange.response_body)}</pre>"
        )
    return _page(f"{result.suite} {result.case_id}", "".join(parts))


def render_index(results: list[CaseResult], meta: Mapping[str, Any]) -> str:
    esc = html.escape
    summaries = summarize(results)
    rows = "".join(
        f"<tr><td>{esc(s.suite)}</td><td>{s.passed}</td><td>{s.failed}</td><td>{s.errors}</td>"
        f"<td>{s.not_applicable}</td><td>{s.pass_rate:.1%}</td></tr>"
        for s in summaries.values()
    )
    cases = "".join(
        f"<tr><td>{esc(r.suite)}</td><td><a href='{case_file_name(r)}'>{esc(r.case_id)}</a></td>"
        f"<td>{esc(r.title)}</td><td>{_badge(r.outcome)}</td>"
        f"<td>{esc('; '.join(r.reasons)[:300])}</td></tr>"
        for r in results
    )
    not_applicable = "".join(
        f"<li><b>{esc(r.suite)} {esc(r.case_id)}</b>: {esc(' '.join(r.reasons))}</li>"
        for r in results
        if r.outcome is Outcome.NOT_APPLICABLE
    )
    body = (
        f"<h1>Conformance report</h1><p>Target: {esc(str(meta.get('target', '')))}<br>"
        f"Run at: {esc(str(meta.get('started_at', '')))}</p>"
        "<h2>Summary</h2><table><tr><th>suite</th><th>passed</th><th>failed</th><th>errors</th>"
        f"<th>not applicable</th><th>pass rate</th></tr>{rows}</table>"
        "<h2>Cases</h2><table><tr><th>suite</th><th>case</th><th>title</th><th>verdict</th>"
        f"<th>why</th></tr>{cases}</table>"
        f"<h2>Not applicable</h2><ul>{not_applicable or '<li>none</li>'}</ul>"
    )
    return _page("Conformance report", body)


def junit_xml(results: list[CaseResult]) -> bytes:
    """JUnit XML: one ``testsuite`` per kit suite."""
    root = ET.Element("testsuites", name="mes-conformance")
    for suite, summary in summarize(results).items():
        mine = [r for r in results if r.suite == suite]
        element = ET.SubElement(
            root,
            "testsuite",
            name=suite,
            tests=str(len(mine)),
            failures=str(summary.failed),
            errors=str(summary.errors),
            skipped=str(summary.not_applicable),
            time=f"{sum(r.duration_s for r in mine):.3f}",
        )
        for result in mine:
            case = ET.SubElement(
                element,
                "testcase",
                classname=f"conformance.{suite}",
                name=result.case_id,
                time=f"{result.duration_s:.3f}",
            )
            message = "; ".join(result.reasons)
            if result.outcome is Outcome.FAILED:
                ET.SubElement(case, "failure", message=message[:1000]).text = (
                    f"expected: {result.expectation}\n" + "\n".join(result.reasons)
                )
            elif result.outcome is Outcome.ERROR:
                ET.SubElement(case, "error", message=message[:1000]).text = message
            elif result.outcome is Outcome.NOT_APPLICABLE:
                ET.SubElement(case, "skipped", message=message[:1000])
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


def summary_json(results: list[CaseResult], meta: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **meta,
        "suites": {name: s.to_json() for name, s in summarize(results).items()},
        "cases": [r.to_json(with_exchanges=False) for r in results],
    }


def pass_rate_lines(summaries: Iterable[SuiteSummary]) -> list[str]:
    """Human lines such as ``xds: 120/130 passed (92.3 %), 4 not applicable``."""
    return [
        f"{s.suite}: {s.passed}/{s.applicable} passed ({s.pass_rate:.1%}), "
        f"{s.failed} failed, {s.errors} errors, {s.not_applicable} not applicable"
        for s in summaries
    ]


def write_reports(
    results: list[CaseResult], directory: Path, meta: Mapping[str, Any] | None = None
) -> dict[str, Path]:
    """Write index.html, one page per case, summary.json, results.json and junit.xml."""
    meta = dict(meta or {})
    meta.setdefault("started_at", datetime.now(UTC).isoformat(timespec="seconds"))
    directory.mkdir(parents=True, exist_ok=True)
    for result in results:
        (directory / case_file_name(result)).write_text(render_case(result), encoding="utf-8")
    paths = {
        "html": directory / "index.html",
        "json": directory / "summary.json",
        "results": directory / "results.json",
        "junit": directory / "junit.xml",
    }
    paths["html"].write_text(render_index(results, meta), encoding="utf-8")
    paths["json"].write_text(
        json.dumps(summary_json(results, meta), indent=2, ensure_ascii=False), encoding="utf-8"
    )
    paths["results"].write_text(
        json.dumps([r.to_json() for r in results], indent=1, ensure_ascii=False),
        encoding="utf-8",
    )
    paths["junit"].write_bytes(junit_xml(results))
    return paths
