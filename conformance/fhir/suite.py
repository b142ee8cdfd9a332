"""The ``fhir`` suite: CapabilityStatement vs behaviour, round-trips, Mesures rules, MES errors.

- ``capability/*``: the CapabilityStatement (FHIR R4 capabilitystatement.html) parses as an
  R4 resource, and each declared interaction and search parameter is exercised: an interaction
  that is declared must work, a search parameter that is declared must be accepted and echoed
  in the ``self`` link (http.html#search: "the server SHALL ... return the parameters it
  actually used");
- ``roundtrip/*``: the HL7 ``fhir-test-cases`` R4 examples of the stored resource types are
  created, read back and compared (what was sent is what is served);
- ``mesures/*``: the ANS Mesures de santé 3.2.0 examples are fed through the MES API Mesures
  flow (transaction Bundle with a PhdDevice, as a paired app) and what the server then serves
  is checked against the profiles' hand-coded rules (:mod:`conformance.fhir.profiles`);
- ``mes-api/*``: the MES API Mesures v1.5.2 error catalogue (§2.2.8 and §2.3.3), code for
  code: HTTP status, OperationOutcome issue type and diagnostics text.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

from conformance.context import KitContext
from conformance.fhir.capability import (
    MINIMAL,
    ROUNDTRIP_FILES,
    check_resource_capability,
    check_statement,
    mhd_case,
    roundtrip,
)
from conformance.fhir.kit import EXAMPLES, SPEC_MES, FhirKit, load_json, new_case
from conformance.fhir.measurements import MESURES_EXAMPLES, mesures_case
from conformance.fhir.mes_api import CATALOGUE, NOT_APPLICABLE, catalogue_case
from conformance.model import CaseResult
from conformance.server import NO_CONSENT_PATIENT

# ---------------------------------------------------------------------------- entry point


def _guard(results: list[CaseResult], case_id: str, work: Callable[[], CaseResult]) -> None:
    started = time.perf_counter()
    try:
        case = work()
    except Exception as exc:  # the kit reports, it does not crash
        case = new_case(case_id, case_id, "")
        case.error(f"{type(exc).__name__}: {exc}")
    case.duration_s = time.perf_counter() - started
    results.append(case)


def run_fhir(context: KitContext) -> list[CaseResult]:
    kit = FhirKit(context)
    results: list[CaseResult] = []
    statement: dict[str, Any] = {}

    def statement_case() -> CaseResult:
        nonlocal statement
        case, statement = check_statement(kit)
        return case

    _guard(results, "capability/statement", statement_case)
    kit.find_patient_id(None)
    samples: dict[str, dict[str, Any]] = {
        rtype: load_json(EXAMPLES / "r4" / name) for rtype, name in ROUNDTRIP_FILES.items()
    }
    samples.update({k: v for k, v in MINIMAL.items()})
    for rtype, name in ROUNDTRIP_FILES.items():
        _guard(results, f"roundtrip/{name}", partial(roundtrip, kit, rtype, name))
    _guard(results, "mhd/iti65-pdsm4dmp-example", lambda: mhd_case(kit))
    for entry in ((statement.get("rest") or [{}])[0]).get("resource") or []:
        _guard(
            results,
            f"capability/{entry.get('type')}",
            partial(check_resource_capability, kit, entry, samples),
        )
    for name in MESURES_EXAMPLES:
        _guard(results, f"mesures/{name}", partial(mesures_case, kit, name))
    stranger_ins = (
        context.patients.new_patient()
        if context.extra.get("espace") is not None
        else NO_CONSENT_PATIENT  # registered without the app's consent by ``setup``
    )
    stranger = kit.patient.with_token(kit._app_token(stranger_ins))
    for row in CATALOGUE:
        _guard(results, f"mes-api/{row[0]}", partial(catalogue_case, kit, row, stranger))
    for name, reason in NOT_APPLICABLE.items():
        case = new_case(f"mes-api/{name}", f"MES API error {name}", SPEC_MES)
        case.not_applicable(reason)
        results.append(case)
    return results
