"""ANS Mesures de santé 3.2.0 examples fed through the MES API and checked as served."""

from __future__ import annotations

from typing import Final

from conformance.fhir.kit import (
    EXAMPLES,
    SPEC_MES,
    SPEC_MESURES,
    FhirKit,
    created_observation,
    feeding_bundle,
    load_json,
    new_case,
    why,
)
from conformance.fhir.profiles import check_measurement
from conformance.model import CaseResult

# ---------------------------------------------------------------------------- Mesures

MESURES_EXAMPLES: Final = (
    "body-weight",
    "body-height",
    "body-temperature",
    "bp",
    "heartrate",
    "head-circumference",
    "pain-severity",
    "steps-by-day",
    "hb1ac",
    "glucose",
)
#: IG examples that break the MES business rules (mesures-measurement-codes.json): rejected.
MES_REJECTS: Final = {
    "glucose": "code 4548-4 (HbA1c) in mg/dL with both moment and numberOfDays: the MES rules "
    "want % and neither extension for HbA1c (MES API §2.2.6)",
}


def mesures_case(kit: FhirKit, name: str) -> CaseResult:
    file_name = f"Observation-example-mes-fr-observation-{name}-001.json"
    case = new_case(
        f"mesures/{name}",
        f"Mesures example {name}: fed, served, profile-valid",
        f"{SPEC_MESURES}; {SPEC_MES} §2.2",
    )
    example = load_json(EXAMPLES / "mesures" / file_name)
    if name in MES_REJECTS:
        case.expectation = f"422 OperationOutcome: {MES_REJECTS[name]}"
        reply = kit.app.request(case, "feed", "POST", "", body=feeding_bundle(kit, example))
        case.check(reply.status == 422, f"HTTP {reply.status} {why(reply)}, expected 422")
        return case
    case.expectation = (
        "transaction answers 200 with the Observation created; the served Observation keeps "
        "the value and meets the Mesures 3.2.0 rules; a 'last' search by code finds it"
    )
    reply = kit.app.request(case, "feed", "POST", "", body=feeding_bundle(kit, example))
    if not case.check(reply.status == 200, f"feed: HTTP {reply.status} {why(reply)}"):
        return case
    rid = created_observation(reply)
    if not case.check(bool(rid), "transaction-response names no created Observation"):
        return case
    served = kit.app.request(case, "read", "GET", f"Observation/{rid}")
    if not case.check(served.status == 200, f"read: HTTP {served.status} {why(served)}"):
        return case
    body = served.body or {}
    for problem in check_measurement(body):
        case.fail(f"served resource: {problem}")
    case.check(
        body.get("valueQuantity") == example.get("valueQuantity")
        and body.get("component") == example.get("component"),
        "the served value differs from the one fed",
    )
    code = example["code"]["coding"][0]["code"]
    last = kit.app.request(
        case,
        "search last",
        "GET",
        "Observation",
        params={
            "code": code,
            "subject.identifier": f"urn:oid:{kit.oid}|{kit.ins}",
            "_sort": "-date",
            "_count": "1",
        },
    )
    entries = [
        e
        for e in (last.body or {}).get("entry") or []
        if (e.get("resource") or {}).get("resourceType") == "Observation"
    ]
    case.check(
        last.status == 200 and [e["resource"].get("id") for e in entries] == [rid],
        f"search last: HTTP {last.status}, {len(entries)} Observation(s)",
    )
    return case
