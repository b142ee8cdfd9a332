"""The ``xds`` suite: the NIST XDS testkit, then the replay of the official DMP examples.

Test order follows the toolkit's dependencies: the patient feeds (15817, 15818) and the
stored-query data loads (12346, 12374) first, then every other test of the kit (ITI-41, 42,
18, 43, 57, 62 and the raw MTOM tests) in name order.
"""

from __future__ import annotations

from typing import Final

from conformance.context import KitContext
from conformance.data import NIST_TESTS
from conformance.model import CaseResult, Outcome
from conformance.xds.nist.interpreter import NistRunner

FIRST: Final = ("15817", "15818", "12346", "12374")

_MU_SCOPE: Final = (
    "The DMP offers ITI-57 only for the visibility of a document (TD3.3a/b: a new version "
    "whose confidentialityCode changes) and for its DMP availability statuses (TD3.3c/d: "
    "UpdateAvailabilityStatus to urn:asip:ci-sis:2010:StatusType:Archived/Deleted; DMP "
    "integration guide, reference/dmp/messages TD3.3c/d, kit template_masquage.xml). "
)
_STATUS_SCOPE: Final = (
    "The DMP's UpdateAvailabilityStatus moves a document between Approved, Archived and "
    "Deleted (urn:asip:ci-sis:2010:StatusType:*); Deprecated is reached only through a "
    "replacement (RPLC), never set by ITI-57."
)

#: Tests (or ``test/section``) judged not applicable to a DMP, with the reason.
NOT_APPLICABLE: Final[dict[str, str]] = {
    **{
        test: _MU_SCOPE + "This test updates other DocumentEntry attributes (new version)."
        for test in ("15800", "15800b", "15800c", "15800d", "15800e")
    },
    **{
        f"15801/{section}": _MU_SCOPE + f"This section updates {section}, not visibility."
        for section in (
            "author",
            "extra_metadata",
            "class_code",
            "comments",
            "creationTime",
            "eventCode",
            "formatCode",
            "hash",
            "hcftc",
            "languageCode",
            "legalAuthenticator",
            "mimeType",
            "practiceSettingCode",
            "serviceStartTime",
            "serviceStopTime",
            "size",
            "sourcePatientInfo",
            "title",
            "typeCode",
            "uri",
            "referenceIdList",
        )
    },
    "15802": _STATUS_SCOPE,
    "15802b": _STATUS_SCOPE,
    **{
        test: _MU_SCOPE + "This test updates a Folder (the DMP has no folder updates)."
        for test in ("20000", "20000b", "20000c", "20000d", "20000e", "20000f", "20004", "21003")
    },
    **{
        test: _MU_SCOPE + "This test submits an association through ITI-57 (SubmitAssociation)."
        for test in ("20001", "20005", "20006", "20008", "21004")
    },
    "15801/confCode": _MU_SCOPE
    + "This section changes the HL7 confidentiality code V to U: in the DMP an ITI-57 "
    "confidentialityCode change must be a visibility action (TRE_A07: MASQUE_PS, "
    "INVISIBLE_PATIENT, INVISIBLE_REPRESENTANTS_LEGAUX), which V -> U is not.",
    "12368": "Every DMP request is about the one patient named in the VIHF (resource-id, ANS "
    "CI-SIS VIHF 3.0): another patient's objects are outside the request, so a multi-patient "
    "result (XDSResultNotSinglePatient, ITI TF-2 3.18.4.1.3.3) cannot arise; the DMP answers "
    "with that patient's objects only.",
    "20002b": _MU_SCOPE + "This test checks the syntax of DocumentEntry/Folder version updates.",
    "20003": _MU_SCOPE + "This test combines a DocumentEntry version update with a status change.",
    "20007": _MU_SCOPE + "This test sends several DocumentEntry version updates.",
    "21002": _MU_SCOPE + "This test changes the patient id of a DocumentEntry: a DMP document "
    "never changes patient (the space is the partition).",
}


def nist_order() -> list[str]:
    tests = sorted(p.name for p in NIST_TESTS.iterdir() if (p / "index.idx").exists())
    return [t for t in FIRST if t in tests] + [t for t in tests if t not in FIRST]


def not_applicable_reason(test: str, section: str) -> str | None:
    return NOT_APPLICABLE.get(f"{test}/{section}") or NOT_APPLICABLE.get(test)


def run_nist(context: KitContext, tests: list[str] | None = None) -> list[CaseResult]:
    """Run the NIST testkit (all tests, or ``tests``) and mark not-applicable sections."""
    runner = NistRunner(NIST_TESTS, context.xds_client(), context.patients)
    results: list[CaseResult] = []
    for test in tests or nist_order():
        for section in runner.sections(test):
            reason = not_applicable_reason(test, section)
            if reason:
                case = CaseResult(
                    suite="xds",
                    case_id=f"nist/{test}/{section}",
                    title=f"NIST test {test} section {section}",
                    outcome=Outcome.NOT_APPLICABLE,
                )
                case.not_applicable(reason)
                results.append(case)
                continue
            results.append(runner.run_section(test, section))
    return results
