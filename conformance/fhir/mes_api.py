"""The MES API Mesures v1.5.2 error catalogue (§2.2.8, §2.3.3), code for code."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from conformance.fhir.client import FhirClient
from conformance.fhir.kit import (
    EXAMPLES,
    KIT_APP_OID,
    SPEC_MES,
    FhirKit,
    feeding_bundle,
    load_json,
    new_case,
    why,
)
from conformance.model import CaseResult

# ---------------------------------------------------------------------------- MES errors


def _weight(kit: FhirKit) -> dict[str, Any]:
    return load_json(
        EXAMPLES / "mesures" / "Observation-example-mes-fr-observation-body-weight-001.json"
    )


ErrorBuilder = Callable[[FhirKit], tuple[str, str, dict[str, Any] | None, dict[str, str]]]


def _bundle_with(change: Callable[[dict[str, Any]], None]) -> ErrorBuilder:
    def build(kit: FhirKit) -> tuple[str, str, dict[str, Any] | None, dict[str, str]]:
        bundle = feeding_bundle(kit, _weight(kit))
        change(bundle)
        return "POST", "", bundle, {}

    return build


def _obs(bundle: dict[str, Any]) -> dict[str, Any]:
    resource: dict[str, Any] = bundle["entry"][1]["resource"]
    return resource


def _set_code(bundle: dict[str, Any], code: str, unit: str) -> None:
    observation = _obs(bundle)
    observation["code"] = {"coding": [{"system": "http://loinc.org", "code": code}]}
    observation["valueQuantity"] = {
        "value": 5,
        "unit": unit,
        "system": "http://unitsofmeasure.org",
        "code": unit,
    }


def _ext(name: str, code: str) -> dict[str, Any]:
    return {
        "url": f"https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition/mesures-{name}",
        "valueCodeableConcept": {
            "coding": [{"system": "urn:oid:1.2.250.1.213.1.1.5.0", "code": code}]
        },
    }


def _glucose(moment: bool, days: bool, code: str = "2345-7", unit: str = "mg/dL") -> ErrorBuilder:
    def change(bundle: dict[str, Any]) -> None:
        _set_code(bundle, code, unit)
        observation = _obs(bundle)
        observation["meta"] = {
            "profile": [
                "https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition/"
                "mesures-observation-glucose"
            ]
        }
        observation["extension"] = (
            [_ext("moment-of-measurement", "AVANT_REPAS")] if moment else []
        ) + ([_ext("number-of-days", "14")] if days else [])

    return _bundle_with(change)


def _search(params: dict[str, str]) -> ErrorBuilder:
    def build(kit: FhirKit) -> tuple[str, str, dict[str, Any] | None, dict[str, str]]:
        full = {"code": "29463-7", "subject.identifier": f"urn:oid:{kit.oid}|{kit.ins}", **params}
        return "GET", "Observation", None, full

    return build


#: (row id, HTTP status, issue type, diagnostics, request builder, actor) — §2.2.8 / §2.3.3.
CATALOGUE: Final[list[tuple[str, int, str, str, ErrorBuilder, str]]] = [
    ("write-401-invalid-token", 401, "", "", _bundle_with(lambda b: None), "bad-token"),
    (
        "write-403-idpe-mismatch",
        403,
        "forbidden",
        "idPe requested do not match authorized idPe.",
        _bundle_with(lambda b: _obs(b)["subject"]["identifier"].update(value="123456789012345")),
        "app",
    ),
    (
        "write-403-consent",
        403,
        "forbidden",
        "Consent not given, access refused.",
        _bundle_with(lambda b: None),
        "app-without-consent",
    ),
    (
        "write-400-no-bundle",
        400,
        "",
        "No bundle provided.",
        lambda kit: ("POST", "", None, {}),
        "app",
    ),
    (
        "write-422-resource-type",
        422,
        "not-supported",
        "Resource of type Patient is not acceptable with method POST.",
        _bundle_with(
            lambda b: b["entry"].append(
                {
                    "resource": {"resourceType": "Patient"},
                    "request": {"method": "POST", "url": "Patient"},
                }
            )
        ),
        "app",
    ),
    (
        "write-422-if-none-exist",
        422,
        "invalid",
        "Device request must have a valid IfNoneExist attribute : identifier=urn:oid:<OID>|"
        "<DEVICE ID>",
        _bundle_with(lambda b: b["entry"][0]["request"].update(ifNoneExist="identifier=bad")),
        "app",
    ),
    (
        "write-422-no-observation",
        422,
        "invalid",
        "Bundle must contains one observation creation (POST)",
        _bundle_with(lambda b: b["entry"].pop(1)),
        "app",
    ),
    (
        "write-422-device-reference",
        422,
        "invalid",
        "Observation.device.reference is mandatory.",
        _bundle_with(lambda b: _obs(b).pop("device")),
        "app",
    ),
    (
        "write-422-device-link",
        422,
        "invalid",
        "Observation and device not linked by id (Observation.device.reference <-> Device.id)",
        _bundle_with(lambda b: _obs(b).update(device={"reference": "Device/other"})),
        "app",
    ),
    (
        "write-422-meta-profile",
        422,
        "invalid",
        "Observation must provide meta.profile value.",
        _bundle_with(lambda b: _obs(b).pop("meta")),
        "app",
    ),
    (
        "write-422-meta-source",
        422,
        "value",
        f"Solution oid contains in Observation.meta.source don't belong to root editor oid "
        f"({KIT_APP_OID}).",
        _bundle_with(lambda b: _obs(b)["meta"].update(source="urn:oid:1.2.3.4")),
        "app",
    ),
    (
        "write-422-no-value",
        422,
        "value",
        "Observation value quantity not provided.",
        _bundle_with(lambda b: _obs(b).pop("valueQuantity")),
        "app",
    ),
    (
        "write-422-bmi",
        422,
        "not-supported",
        "Bmi observation cannot be created.",
        _bundle_with(lambda b: _set_code(b, "39156-5", "kg/m2")),
        "app",
    ),
    (
        "write-422-subject-identifier",
        422,
        "invalid",
        "Observation.subject.identifier is mandatory.",
        _bundle_with(lambda b: _obs(b).update(subject={"display": "x"})),
        "app",
    ),
    (
        "write-422-moment-mandatory",
        422,
        "incomplete",
        "Observation.extension.moment is mandatory.",
        _glucose(moment=False, days=False),
        "app",
    ),
    (
        "write-422-days-forbidden",
        422,
        "invalid",
        "Observation.extension.numberOfDays cannot be added.",
        _glucose(moment=True, days=True),
        "app",
    ),
    (
        "write-422-moment-forbidden",
        422,
        "invalid",
        "Observation.extension.moment cannot be added.",
        _glucose(moment=True, days=True, code="MED-969"),
        "app",
    ),
    (
        "write-422-days-mandatory",
        422,
        "incomplete",
        "Observation.extension.numberOfDays is mandatory.",
        _glucose(moment=False, days=False, code="MED-969"),
        "app",
    ),
    (
        "write-422-device-profile",
        422,
        "invalid",
        "Device must provide meta.profile value.",
        _bundle_with(lambda b: b["entry"][0]["resource"].pop("meta")),
        "app",
    ),
    (
        "read-401-invalid-token",
        401,
        "",
        "",
        _search({"_sort": "-date", "_count": "1"}),
        "bad-token",
    ),
    (
        "read-403-idpe-mismatch",
        403,
        "forbidden",
        "idPe requested do not match authorized idPe.",
        _search(
            {
                "subject.identifier": "urn:oid:1.2.250.1.213.1.4.10|123456789012345",
                "_sort": "-date",
                "_count": "1",
            }
        ),
        "app",
    ),
    (
        "read-403-consent",
        403,
        "forbidden",
        "Consent not given, access refused.",
        _search({"_sort": "-date", "_count": "1"}),
        "app-without-consent",
    ),
    (
        "read-400-page-size",
        400,
        "invalid",
        "Maximum page size allowed is 100. Actual : 101",
        _search({"date": "ge2020-01-01", "_count": "101"}),
        "app",
    ),
    (
        "read-400-last-sort",
        400,
        "invalid",
        "Sort parameter must be equals to -date (date DESC) with _count equals to 1 to retrieve "
        "last observation",
        _search({"_sort": "date", "_count": "1"}),
        "app",
    ),
    (
        "read-400-paged-and-last",
        400,
        "invalid",
        "Paged search and search last cannot be requested concurrently",
        _search({"_sort": "-date", "_count": "1", "date": "ge2020-01-01"}),
        "app",
    ),
    ("read-400-no-mode", 400, "invalid", "No search mode detected", _search({}), "app"),
]
NOT_APPLICABLE: Final = {
    "write-400-id-token": "HTTP 400 'The ID_TOKEN value is not valid (invalid JWT)': MES apps "
    "send an OAuth2 access token only (RFC 6750), there is no separate ID_TOKEN header here; "
    "an invalid token is the 401 case.",
    "write-409-oid-conflict": "HTTP 409 'OID conflict between the one from id_token and the "
    "one in the system': without an ID_TOKEN there is no second OID to conflict with.",
    "read-400-id-token": "as write-400-id-token (search flow).",
    "read-409-oid-conflict": "as write-409-oid-conflict (search flow).",
}


def catalogue_case(
    kit: FhirKit,
    row: tuple[str, int, str, str, ErrorBuilder, str],
    stranger: FhirClient,
) -> CaseResult:
    name, status, issue_type, diagnostics, build, actor = row
    case = new_case(f"mes-api/{name}", f"MES API error {name}", f"{SPEC_MES} §2.2.8, §2.3.3")
    case.expectation = f"HTTP {status}" + (
        f", OperationOutcome issue code '{issue_type}', diagnostics '{diagnostics}'"
        if issue_type or diagnostics
        else ""
    )
    client = {
        "app": kit.app,
        "bad-token": kit.app.with_token("not-a-jwt"),
        "app-without-consent": stranger,
    }[actor]
    method, path, body, params = build(kit)
    reply = client.request(
        case,
        name,
        method,
        path,
        body=body,
        params=params or None,
        raw=b"" if method == "POST" and body is None else None,
    )
    case.check(reply.status == status, f"HTTP {reply.status}, expected {status} {why(reply)}")
    issue = reply.issue()
    if issue_type:
        case.check(
            issue.get("code") == issue_type,
            f"issue code {issue.get('code')!r}, expected {issue_type!r}",
        )
    if diagnostics:
        texts = [str(issue.get("diagnostics", "")), str((issue.get("details") or {}).get("text"))]
        case.check(diagnostics in texts, f"diagnostics {texts[0]!r}, expected {diagnostics!r}")
    return case
