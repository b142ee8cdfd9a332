"""The kit's result model: one :class:`CaseResult` per case, each with its wire exchanges.

A case *passes*, *fails* (the server answered but not as the specification expects), is in
*error* (the kit could not run it: transport failure, broken test material) or is *not
applicable* (judged out of scope, with the reason). The pass rate counts passed cases over
applicable cases (passed + failed + error).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

#: Bodies kept in the report are truncated to this many characters.
MAX_BODY_CHARS = 20_000


class Outcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    NOT_APPLICABLE = "not_applicable"


def clip(text: str | bytes, limit: int = MAX_BODY_CHARS) -> str:
    """Return ``text`` as str, cut to ``limit`` characters with a marker."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n... [{len(text) - limit} more characters]"


@dataclass
class Exchange:
    """One request and its response, as sent and received on the wire."""

    label: str
    method: str
    url: str
    request_headers: dict[str, str] = field(default_factory=dict)
    request_body: str = ""
    status: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "method": self.method,
            "url": self.url,
            "request_headers": self.request_headers,
            "request_body": self.request_body,
            "status": self.status,
            "response_headers": self.response_headers,
            "response_body": self.response_body,
        }


@dataclass
class CaseResult:
    """The verdict on one case: what was expected, what happened, and why it passed or not."""

    suite: str
    case_id: str
    title: str
    outcome: Outcome = Outcome.PASSED
    expectation: str = ""
    reasons: list[str] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)
    spec: str = ""
    duration_s: float = 0.0

    def fail(self, reason: str) -> None:
        """Record a failed check (a case fails if any check fails)."""
        if self.outcome is not Outcome.ERROR:
            self.outcome = Outcome.FAILED
        self.reasons.append(reason)

    def check(self, condition: bool, reason: str) -> bool:
        """Fail with ``reason`` unless ``condition``; return ``condition``."""
        if not condition:
            self.fail(reason)
        return condition

    def error(self, reason: str) -> None:
        self.outcome = Outcome.ERROR
        self.reasons.append(reason)

    def not_applicable(self, reason: str) -> None:
        self.outcome = Outcome.NOT_APPLICABLE
        self.reasons = [reason]

    @property
    def applicable(self) -> bool:
        return self.outcome is not Outcome.NOT_APPLICABLE

    def to_json(self, *, with_exchanges: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "suite": self.suite,
            "id": self.case_id,
            "title": self.title,
            "outcome": self.outcome.value,
            "expectation": self.expectation,
            "reasons": self.reasons,
            "spec": self.spec,
            "duration_s": round(self.duration_s, 3),
        }
        if with_exchanges:
            data["exchanges"] = [exchange.to_json() for exchange in self.exchanges]
        return data


@dataclass(frozen=True)
class SuiteSummary:
    suite: str
    passed: int
    failed: int
    errors: int
    not_applicable: int

    @property
    def applicable(self) -> int:
        return self.passed + self.failed + self.errors

    @property
    def pass_rate(self) -> float:
        """Passed over applicable cases, in [0, 1]; 0 when nothing was applicable."""
        return self.passed / self.applicable if self.applicable else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "passed": self.passed,
            "failed": self.failed,
            "errors": self.errors,
            "not_applicable": self.not_applicable,
            "applicable": self.applicable,
            "pass_rate": round(self.pass_rate, 4),
        }


def summarize(results: list[CaseResult]) -> dict[str, SuiteSummary]:
    """Per-suite counts, in the order suites first appear."""
    order: list[str] = []
    for result in results:
        if result.suite not in order:
            order.append(result.suite)
    summaries: dict[str, SuiteSummary] = {}
    for suite in order:
        mine = [r for r in results if r.suite == suite]
        summaries[suite] = SuiteSummary(
            suite=suite,
            passed=sum(r.outcome is Outcome.PASSED for r in mine),
            failed=sum(r.outcome is Outcome.FAILED for r in mine),
            errors=sum(r.outcome is Outcome.ERROR for r in mine),
            not_applicable=sum(r.outcome is Outcome.NOT_APPLICABLE for r in mine),
        )
    return summaries
