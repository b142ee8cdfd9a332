"""Verdicts of NIST test steps: status and error codes, schema, ExpectedContents, documents
retrieved, reports read from results, and the XPath assertions of ``NullTransaction``.

Status values: ebRS 3.0 / ITI TF-3 4.2.4.1; error codes: ITI TF-3 Table 4.2.4.1-2; schema:
nist-schema-v3 (:mod:`conformance.xds.schema`).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from lxml import etree

from conformance.model import CaseResult
from conformance.xds.nist import expectations
from conformance.xds.nist.metadata import substitute
from conformance.xds.schema import validate
from conformance.xds.soap import SoapReply
from xds import ns
from xds.xml import XmlSecurityError

if TYPE_CHECKING:
    from conformance.xds.nist.interpreter import StepLog


def _text(element: etree._Element | None) -> str:
    return (element.text or "").strip() if element is not None else ""


def judge(
    case: CaseResult,
    step_id: str,
    name: str,
    reply: SoapReply,
    expected_status: str,
    expected_codes: list[str],
    element: etree._Element,
    log: StepLog,
) -> None:
    where = f"step {step_id} ({name})"
    if reply.problem:
        case.fail(f"{where}: HTTP {reply.status}: {reply.problem}")
        return
    body = reply.body_child
    assert body is not None
    if reply.is_fault:
        case.fail(
            f"{where}: SOAP Fault {reply.fault_code} (HTTP {reply.status}); the transaction "
            f"expects a response with status {expected_status} (ITI TF-2 3.x.4.2, "
            "errors travel in RegistryResponse)"
        )
        return
    problems = validate(body, reply.resolved)
    case.check(
        not problems,
        f"{where}: response not valid against nist-schema-v3: " + "; ".join(problems[:3]),
    )
    status = expectations.response_status(body)
    word = expectations.status_word(status)
    errors = expectations.registry_errors(body)
    error_text = "; ".join(f"{code} ({context[:120]})" for code, _, context in errors[:4])
    if not case.check(
        word == expected_status,
        f"{where}: status {word or '(none)'}, expected {expected_status}"
        + (f"; errors: {error_text}" if error_text else ""),
    ):
        return
    for code in expected_codes:
        case.check(
            any(code == got or code in context for got, _, context in errors),
            f"{where}: expected error {code}, got {error_text or 'no RegistryError'}",
        )
    contents = element.find("ExpectedContents")
    if contents is not None and name == "ITI-18" and word == "Success":
        for problem in expectations.check_contents(contents, body):
            if problem.startswith("kit:"):
                case.error(f"{where}: {problem}")
            else:
                case.fail(f"{where}: {problem}")


def record_reports(element: etree._Element, log: StepLog) -> None:
    for report in element.findall("Report"):
        source = log.input_metadata if report.get("section") == "InputMetadata" else log.result
        if source is None:
            continue
        value = xpath_value(source, _text(report))
        if value is not None:
            log.reports[report.get("name", "")] = value


def check_documents(
    case: CaseResult,
    step_id: str,
    directory: Path,
    element: etree._Element,
    values: dict[str, str],
    reply: SoapReply,
    sent_documents: Mapping[str, tuple[bytes, str]],
) -> None:
    """Each requested document comes back with the bytes and mimeType that were sent.

    The kit remembers what it submitted (by uniqueId); the ``ReferenceDocument`` files
    are used only for documents it did not send itself (test 12029 names a PDF although
    it submits ``readme.txt``, so the toolkit cannot be comparing those files byte for
    byte).
    """
    body = reply.body_child
    if body is None:
        return
    returned: dict[str, tuple[bytes, str]] = {}
    for response in body.iter(f"{{{ns.XDS}}}DocumentResponse"):
        uid = _text(response.find(f"{{{ns.XDS}}}DocumentUniqueId"))
        mime = _text(response.find(f"{{{ns.XDS}}}mimeType"))
        holder = response.find(f"{{{ns.XDS}}}Document")
        if holder is None:
            continue
        if holder in reply.resolved:
            returned[uid] = (reply.resolved[holder], mime)
        else:
            data = base64.b64decode("".join((holder.text or "").split()))
            returned[uid] = (data, mime)
    for reference in element.findall("ReferenceDocument"):
        uid = substitute(reference.get("uid", ""), values, xml=False)
        expected = sent_documents.get(uid)
        if expected is None:
            relative = _text(reference)
            path = next(
                (p for p in (directory / relative, directory.parent / relative) if p.exists()),
                None,
            )
            if path is None:
                case.error(f"step {step_id}: reference document {relative} not in the kit")
                continue
            expected = (path.read_bytes(), "")
        got = returned.get(uid)
        where = f"step {step_id} (ITI-43): document {uid}"
        if not case.check(got is not None, f"{where} missing from the response"):
            continue
        assert got is not None
        case.check(got[0] == expected[0], f"{where}: bytes differ from those submitted")
        if expected[1]:
            case.check(
                got[1] == expected[1],
                f"{where}: mimeType {got[1]!r}, submitted as {expected[1]!r}",
            )


def assert_on_previous(
    case: CaseResult,
    steps: list[StepLog],
    step_id: str,
    element: etree._Element,
    values: dict[str, str],
) -> None:
    """Assertions (XPath 1.0) over the previous step's result of this section."""
    assertions = element.find("Assertions")
    if assertions is None:
        return
    previous = steps[-2] if len(steps) >= 2 else None
    if previous is None or previous.result is None:
        case.fail(f"step {step_id}: no previous result to assert on")
        return
    for assertion in assertions.findall("Assert"):
        expression = substitute(_text(assertion), values, xml=False)
        case.expectation += f"\nassert {assertion.get('id')}: {' '.join(expression.split())}"
        try:
            verdict = previous.result.xpath(expression)
        except etree.XPathError as exc:
            case.error(f"step {step_id}: assertion {assertion.get('id')}: bad XPath: {exc}")
            continue
        case.check(bool(verdict), f"step {step_id}: assertion {assertion.get('id')} is false")


def xpath_value(source: etree._Element, expression: str) -> str | None:
    try:
        found = source.xpath(expression)
    except (etree.XPathError, XmlSecurityError):
        return None
    if isinstance(found, list):
        if not found:
            return None
        first = found[0]
        if isinstance(first, etree._Element):
            return (first.text or "").strip()
        return str(first).strip()
    return str(found).strip()
