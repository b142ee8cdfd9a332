"""Run NIST XDS Toolkit tests (``tests/<id>/index.idx`` + ``<section>/testplan.xml``).

One :class:`~conformance.model.CaseResult` per test section (``11897/approved``). Steps run
in order; each leaves a :class:`StepLog` (``AssignedUids``, ``AssignedUuids``,
``AssignedPatientId``, reports, the input metadata and the result) that later steps, sections
and tests read through ``UseId`` and ``UseReport``, as the toolkit's log cache does.

Transactions: ProvideAndRegister (ITI-41), Register (ITI-42), StoredQuery (ITI-18), Retrieve
(ITI-43), Mu (ITI-57), RemoveMetadata (ITI-62), Http (a literal MTOM body, VIHF added),
PatientIdentityFeed (a new patient space, registered through the kit's patient source),
Null (assertions on the previous step's result).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final, Protocol

from lxml import etree

from conformance.model import CaseResult, Outcome
from conformance.xds.nist.metadata import (
    PATIENT_ID_SCHEMES,
    Prepared,
    add_author,
    parse_file,
    prepare_submission,
    substitute,
    unresolved_symbols,
)
from conformance.xds.nist.verdicts import (
    assert_on_previous,
    check_documents,
    judge,
    record_reports,
)
from conformance.xds.soap import TRANSACTIONS, SoapReply, XdsClient
from xds import ns
from xds.xml import parse_xml

_TRANSACTION_TAGS: Final = {
    "ProvideAndRegisterTransaction": "ITI-41",
    "RegisterTransaction": "ITI-42",
    "StoredQueryTransaction": "ITI-18",
    "RetrieveTransaction": "ITI-43",
    "MuTransaction": "ITI-57",
    "RemoveMetadataTransaction": "ITI-62",
}
_OTHER_TAGS: Final = frozenset(
    {"HttpTransaction", "PatientIdentityFeedTransaction", "NullTransaction"}
)
#: Seconds to wait before each submission of a test whose checks compare DTM timestamps
#: (second precision): the toolkit is driven by hand, the kit is faster than a second.
PAUSE_BEFORE_SUBMISSIONS: Final = {"12323": 1.1}
_XDS_SPEC: Final = {
    "ITI-41": "IHE ITI TF-2 3.41",
    "ITI-42": "IHE ITI TF-2 3.42",
    "ITI-18": "IHE ITI TF-2 3.18",
    "ITI-43": "IHE ITI TF-2 3.43",
    "ITI-57": "IHE ITI TF-2 3.57 (XDS Metadata Update)",
    "ITI-62": "IHE ITI TF-2 3.62 (Remove Metadata)",
}


class PatientSource(Protocol):
    """Where test patients come from: a registered space, or an id the target does not know."""

    oid: str

    def new_patient(self) -> str: ...

    def unknown_patient(self) -> str: ...


def cx(ins: str, oid: str) -> str:
    """An HL7 v2 CX patient id: ``INS^^^&OID&ISO`` (ITI TF-3 4.2.3.1.7)."""
    return f"{ins}^^^&{oid}&ISO"


def ins_of(patient_cx: str) -> str:
    return patient_cx.split("^", 1)[0]


@dataclass
class StepLog:
    """What a step leaves for the steps after it (the toolkit's ``log.xml``)."""

    assigned_uids: dict[str, str] = field(default_factory=dict)
    assigned_uuids: dict[str, str] = field(default_factory=dict)
    assigned_patient: dict[str, str] = field(default_factory=dict)
    reports: dict[str, str] = field(default_factory=dict)
    input_metadata: etree._Element | None = None
    result: etree._Element | None = None
    patient: str | None = None  # the patient the step's objects belong to

    def section(self, name: str) -> dict[str, str]:
        return {
            "AssignedUids": self.assigned_uids,
            "AssignedUuids": self.assigned_uuids,
            "AssignedPatientId": self.assigned_patient,
        }.get(name, {})


class MissingDependency(Exception):
    """A ``UseId``/``UseReport`` names a log that does not exist (the other test failed)."""


class KitMaterialError(Exception):
    """The test material cannot be used as is (missing file, unsupported construct)."""


def _text(element: etree._Element | None) -> str:
    return (element.text or "").strip() if element is not None else ""


class NistRunner:
    """Interpret testplans against a target through an :class:`XdsClient`."""

    def __init__(
        self,
        tests_root: Path,
        client: XdsClient,
        patients: PatientSource,
        *,
        suite: str = "xds",
    ) -> None:
        self.root = tests_root
        self.client = client
        self.patients = patients
        self.suite = suite
        me = client.professional
        self.author_xcn = (
            f"{me.professional_id}^KIT^CONFORMITE^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS"
        )
        self.logs: dict[str, dict[str, StepLog]] = {}
        self.test_patients: dict[str, str] = {}
        self.last_patient: dict[str, str] = {}
        self.foreign_patients: dict[str, str] = {}
        self._context_patient: str | None = None
        self._current_test = ""
        self._section_values: dict[str, str] = {}
        self.sent_documents: dict[str, tuple[bytes, str]] = {}

    # ------------------------------------------------------------------ structure

    def sections(self, test: str) -> list[str]:
        index = self.root / test / "index.idx"
        if not index.exists():
            return []
        names = [line.strip() for line in index.read_text().splitlines() if line.strip()]
        return [n for n in names if (self.root / test / n / "testplan.xml").exists()]

    def run_tests(self, tests: Iterable[str]) -> list[CaseResult]:
        results: list[CaseResult] = []
        for test in tests:
            for section in self.sections(test):
                results.append(self.run_section(test, section))
        return results

    def _key(self, directory: Path) -> str:
        return directory.resolve().relative_to(self.root.resolve()).as_posix()

    def _patient(self, test: str) -> str:
        if test not in self.test_patients:
            self.test_patients[test] = cx(self.patients.new_patient(), self.patients.oid)
        return self.test_patients[test]

    # ------------------------------------------------------------------ sections

    def run_section(self, test: str, section: str) -> CaseResult:
        directory = self.root / test / section
        plan = parse_xml((directory / "testplan.xml").read_bytes())
        readme = directory / "readme.txt"
        title = _text(plan.find("Rule")) or (
            readme.read_text(errors="replace").strip().splitlines()[0]
            if readme.exists() and readme.read_text(errors="replace").strip()
            else f"NIST test {test} section {section}"
        )
        case = CaseResult(suite=self.suite, case_id=f"nist/{test}/{section}", title=title)
        started = time.perf_counter()
        key = self._key(directory)
        self.logs[key] = {}
        self._current_test = test
        self._section_values = {}
        transactions: set[str] = set()
        for step in plan.findall("TestStep"):
            try:
                name = self._run_step(case, test, directory, step)
                if name:
                    transactions.add(name)
            except MissingDependency as exc:
                case.error(f"step {step.get('id')}: missing dependency: {exc}")
            except KitMaterialError as exc:
                case.error(f"step {step.get('id')}: test material: {exc}")
            except Exception as exc:  # the kit reports, it does not crash
                case.error(f"step {step.get('id')}: {type(exc).__name__}: {exc}")
        case.spec = ", ".join(_XDS_SPEC[t] for t in sorted(transactions) if t in _XDS_SPEC)
        case.duration_s = time.perf_counter() - started
        return case

    # ------------------------------------------------------------------ substitutions

    def _resolve_dir(self, current: Path, relative: str | None, test: str | None) -> Path:
        if test:
            return self.root / test / (relative or "")
        if not relative:
            return current
        for base in (current, current.parent):
            candidate = (base / relative).resolve()
            if candidate.exists():
                return candidate
        return (current / relative).resolve()

    def _log(self, directory: Path, step: str) -> StepLog | None:
        try:
            key = self._key(directory)
        except ValueError:
            return None
        return self.logs.get(key, {}).get(step)

    def _values(self, directory: Path, holder: etree._Element) -> tuple[dict[str, str], list[str]]:
        """Symbols declared by ``UseId``/``UseReport`` in ``holder``; also plain ``useAs``."""
        values: dict[str, str] = {}
        notes: list[str] = []
        for use in holder.findall("UseId"):
            symbol = use.get("symbol", "")
            if use.get("value") is not None:
                values[symbol] = use.get("value", "")
                continue
            target = self._resolve_dir(directory, use.get("testdir"), use.get("test"))
            log = self._log(target, use.get("step", ""))
            if log is None:
                raise MissingDependency(f"{target.name}/{use.get('step')} has no log")
            section = log.section(use.get("section", ""))
            ident = use.get("id", "")
            if ident not in section:
                raise MissingDependency(
                    f"{ident} not in {use.get('section')} of {target.name}/{use.get('step')}"
                )
            values[symbol] = section[ident]
            self._context_patient = self._context_patient or log.patient
        for use in holder.findall("UseReport"):
            name = use.get("reportName", "")
            if use.get("test"):
                target = self.root / use.get("test", "") / use.get("section", "")
            elif use.get("section") and use.get("section") != "THIS":
                target = directory.parent / use.get("section", "")
            else:
                target = directory
            log = self._log(target, use.get("step", ""))
            if log is None and name == "$patientid$":
                log = self._feed_log(target, use.get("step", ""))
                notes.append(f"{target.name}: no such patient feed in the kit, a new patient used")
            if log is None or name not in log.reports:
                raise MissingDependency(f"report {name} of {target.name}/{use.get('step')}")
            if name == "$patientid$" and use.get("test"):
                # a fed patient becomes the test's patient, as the toolkit's session id does
                self.test_patients.setdefault(self._current_test, log.reports[name])
            values[use.get("useAs", name)] = log.reports[name]
            if name != "$patientid$":
                self._context_patient = self._context_patient or log.patient
        return values, notes

    def _foreign_patient(self, value: str) -> str:
        """A registered INS standing for a toolkit patient id written in the test file."""
        if value not in self.foreign_patients:
            self.foreign_patients[value] = cx(self.patients.new_patient(), self.patients.oid)
        return self.foreign_patients[value]

    def _feed_log(self, directory: Path, step: str) -> StepLog:
        """A patient-feed log for a referenced feed test absent from the kit (e.g. 15817b)."""
        log = StepLog(reports={"$patientid$": cx(self.patients.new_patient(), self.patients.oid)})
        self.logs.setdefault(self._key(directory), {})[step] = log
        return log

    # ------------------------------------------------------------------ steps

    def _run_step(
        self, case: CaseResult, test: str, directory: Path, step: etree._Element
    ) -> str | None:
        step_id = step.get("id", "")
        log = StepLog()
        self.logs[self._key(directory)][step_id] = log
        if step.find("NewPatientId") is not None:
            self.test_patients[test] = cx(self.patients.new_patient(), self.patients.oid)
        element = next(
            (
                child
                for child in step
                if isinstance(child.tag, str)
                and (child.tag in _TRANSACTION_TAGS or child.tag in _OTHER_TAGS)
            ),
            None,
        )
        if element is None:
            return None
        expected_status = _text(step.find("ExpectedStatus")) or "Success"
        expected_codes = [
            _text(e) for e in step if e.tag in ("ExpectedErrorCode", "ExpectedErrorMessage")
        ]
        expectation = f"step {step_id}: status {expected_status}"
        if expected_codes:
            expectation += f" with error {', '.join(expected_codes)}"
        case.expectation = "\n".join(filter(None, [case.expectation, expectation]))
        self._context_patient = None
        declared, notes = self._values(directory, element)
        case.reasons.extend(notes)
        self._section_values.update(declared)
        values = {**_builtin_symbols(), **self._section_values}
        if element.tag == "PatientIdentityFeedTransaction":
            patient = cx(self.patients.new_patient(), self.patients.oid)
            log.reports["$patientid$"] = patient
            return None
        if element.tag == "NullTransaction":
            steps = list(self.logs[self._key(directory)].values())
            assert_on_previous(case, steps, step_id, element, values)
            return None
        patient = values.get("$patientid$") or self._patient(test)
        context = self._context_patient or self.last_patient.get(test) or patient
        if step.find("AltPatientId") is not None or element.find("AltPatientId") is not None:
            patient = cx(self.patients.unknown_patient(), self.patients.oid)
        values.setdefault("$patientid$", patient)
        values.setdefault("$patient_id$", patient)
        if element.tag == "HttpTransaction":
            reply = self._http(case, directory, step_id, element, patient, log)
            name = "ITI-41"
        else:
            name = _TRANSACTION_TAGS[element.tag]
            if name in ("ITI-41", "ITI-42", "ITI-57") and test in PAUSE_BEFORE_SUBMISSIONS:
                time.sleep(PAUSE_BEFORE_SUBMISSIONS[test])
            reply = self._transaction(
                case, directory, step_id, element, values, patient, context, log
            )
        if log.patient and name in ("ITI-41", "ITI-42", "ITI-57"):
            self.last_patient[test] = log.patient
        log.reports.setdefault("$patientid$", log.patient or patient)
        judge(case, step_id, name, reply, expected_status, expected_codes, element, log)
        if reply.body_child is not None:
            log.result = reply.body_child
            record_reports(element, log)
            if name == "ITI-43":
                check_documents(
                    case, step_id, directory, element, values, reply, self.sent_documents
                )
        return name

    def _metadata_file(self, directory: Path, element: etree._Element) -> Path:
        name = _text(element.find("MetadataFile"))
        if not name:
            raise KitMaterialError("no MetadataFile")
        path = directory / name
        if not path.exists():
            raise KitMaterialError(f"missing file {name}")
        return path

    def _transaction(
        self,
        case: CaseResult,
        directory: Path,
        step_id: str,
        element: etree._Element,
        values: dict[str, str],
        patient: str,
        context: str,
        log: StepLog,
    ) -> SoapReply:
        name = _TRANSACTION_TAGS[element.tag]
        path = self._metadata_file(directory, element)
        raw = path.read_bytes()
        leftover = unresolved_symbols(substitute(raw.decode("utf-8"), values))
        if leftover:
            note = f"step {step_id}: {path.name} has no value for {', '.join(leftover)}; sent as is"
            case.reasons.append(note)
        body = parse_file(raw, values)
        attachments: dict[str, tuple[bytes, str]] = {}
        vihf_patient = patient
        if name in ("ITI-41", "ITI-42", "ITI-57"):
            no_uids = element.findall("NoAssignUids")
            prepared = prepare_submission(
                body,
                patient_id=None if element.find("NoPatientId") is not None else patient,
                assign_uids=not any(n.get("id") is None for n in no_uids),
                no_assign_uid_ids=frozenset(n.get("id", "") for n in no_uids if n.get("id")),
                assign_uuids=element.find("AssignUuids") is not None,
                foreign_patient=self._foreign_patient,
            )
            add_author(prepared.element, self.author_xcn)  # ITI-57 restates the entry whole
            self._log_prepared(log, prepared)
            log.input_metadata = prepared.element
            vihf_patient = _submission_patient(prepared.element) or context
            log.patient = vihf_patient
            if name == "ITI-41":
                body, attachments = self._provide(directory, element, prepared)
        else:
            log.input_metadata = body
            vihf_patient = _query_patient(body) or context
            log.patient = vihf_patient
        ins = ins_of(vihf_patient)
        return self.client.call(
            case,
            f"{step_id}: {name}",
            TRANSACTIONS[name],
            body,
            patient_ins=ins,
            patient_oid=self.patients.oid,
            attachments=attachments,
        )

    def _log_prepared(self, log: StepLog, prepared: Prepared) -> None:
        log.assigned_uids.update(prepared.assigned_uids)
        log.assigned_uuids.update(prepared.assigned_uuids)
        log.assigned_patient.update(prepared.assigned_patient)
        for symbol, uid in prepared.assigned_uids.items():
            log.reports[f"{symbol}_uid"] = uid
        for symbol, object_uuid in prepared.assigned_uuids.items():
            log.reports[f"{symbol}_uuid"] = object_uuid

    def _provide(
        self, directory: Path, element: etree._Element, prepared: Prepared
    ) -> tuple[etree._Element, dict[str, tuple[bytes, str]]]:
        """Wrap the submission in ProvideAndRegisterDocumentSetRequest with XOP documents."""
        request = etree.Element(
            f"{{{ns.XDS}}}ProvideAndRegisterDocumentSetRequest", nsmap={"xdsb": ns.XDS}
        )
        request.append(prepared.element)
        mime_of = {
            e.get("id", ""): e.get("mimeType", "application/octet-stream")
            for e in prepared.element.iter(f"{{{ns.RIM}}}ExtrinsicObject")
        }
        attachments: dict[str, tuple[bytes, str]] = {}
        for number, document in enumerate(element.findall("Document"), 1):
            symbolic = document.get("id", "")
            object_id = prepared.mapping.get(symbolic, symbolic)
            path = directory / _text(document)
            if not path.exists():
                raise KitMaterialError(f"missing document file {_text(document)}")
            cid = f"doc{number}.{abs(hash(object_id)) % 10**8}@conformance.mes"
            holder = etree.SubElement(request, f"{{{ns.XDS}}}Document", id=object_id)
            include = etree.SubElement(holder, f"{{{ns.XOP}}}Include", nsmap={"xop": ns.XOP})
            include.set("href", f"cid:{cid}")
            data = path.read_bytes()
            mime = mime_of.get(object_id, "text/plain")
            attachments[cid] = (data, mime)
            uid = prepared.assigned_uids.get(object_id) or prepared.assigned_uids.get(symbolic)
            if uid:
                self.sent_documents[uid] = (data, mime)
        return request, attachments

    def _http(
        self,
        case: CaseResult,
        directory: Path,
        step_id: str,
        element: etree._Element,
        patient: str,
        log: StepLog,
    ) -> SoapReply:
        """Send a literal MTOM body; only the root part changes (VIHF, patient id, uniqueIds)."""
        headers_text = _text(element.find("Headers"))
        content_type = ""
        for line in headers_text.splitlines():
            header, _, value = line.partition(":")
            if header.strip().lower() == "content-type":
                content_type = value.strip()
        body_file = directory / _text(element.find("BodyFile"))
        if not content_type or not body_file.exists():
            raise KitMaterialError("HttpTransaction without Content-Type or BodyFile")
        from conformance.xds.nist.rawmtom import resign_root_part

        payload, prepared = resign_root_part(
            body_file.read_bytes(),
            content_type,
            self.client,
            patient_cx=patient,
            patient_oid=self.patients.oid,
        )
        if prepared is not None:
            self._log_prepared(log, prepared)
            log.input_metadata = prepared.element
        log.patient = patient
        return self.client.post_raw(
            case,
            f"{step_id}: ITI-41 (literal MTOM body)",
            self.client.endpoints.repository,
            payload,
            content_type,
        )


def _builtin_symbols() -> dict[str, str]:
    """Toolkit built-ins: ``$now$``, ``$lastyear$`` (XDS DTM, ITI TF-3 Table 4.2.3.1.7-2) and
    ``$DATE$`` (today, yyyyMMdd, UTC)."""
    now = datetime.now(UTC)
    return {
        "$DATE$": now.strftime("%Y%m%d"),
        "$now$": now.strftime("%Y%m%d%H%M%S"),
        "$lastyear$": (now - timedelta(days=365)).strftime("%Y%m%d%H%M%S"),
    }


def _submission_patient(root: etree._Element) -> str | None:
    for identifier in root.iter(f"{{{ns.RIM}}}ExternalIdentifier"):
        if identifier.get("identificationScheme") in PATIENT_ID_SCHEMES:
            value = identifier.get("value")
            return str(value) if value is not None else None
    return None


def _query_patient(root: etree._Element) -> str | None:
    for slot in root.iter(f"{{{ns.RIM}}}Slot"):
        if slot.get("name", "").endswith("PatientId"):
            for value in slot.iter(f"{{{ns.RIM}}}Value"):
                text = (value.text or "").strip().strip("()").strip("'")
                if text:
                    return text
    return None


def run_outcome(results: list[CaseResult]) -> dict[str, int]:
    """Counts by outcome (for logs)."""
    counts: dict[str, int] = {}
    for result in results:
        counts[result.outcome.value] = counts.get(result.outcome.value, 0) + 1
    return counts


__all__ = ["NistRunner", "PatientSource", "StepLog", "cx", "Outcome"]
