"""CapabilityStatement against behaviour, HL7 R4 example round-trips, ITI-65 (MHD)."""

from __future__ import annotations

import copy
from typing import Any, Final

from conformance.fhir.kit import EXAMPLES, SPEC_CAPABILITY, FhirKit, load_json, new_case, why
from conformance.model import CaseResult

# ---------------------------------------------------------------------------- capability


def check_statement(kit: FhirKit) -> tuple[CaseResult, dict[str, Any]]:
    case = new_case(
        "capability/statement", "CapabilityStatement is a valid R4 resource", SPEC_CAPABILITY
    )
    case.expectation = "GET [base]/metadata: 200, CapabilityStatement, fhirVersion 4.0.1, json"
    reply = kit.patient.with_token(None).request(case, "metadata", "GET", "metadata")
    statement = reply.body or {}
    case.check(reply.status == 200, f"HTTP {reply.status}")
    case.check(statement.get("resourceType") == "CapabilityStatement", "not a CapabilityStatement")
    case.check(
        statement.get("fhirVersion") == "4.0.1", f"fhirVersion {statement.get('fhirVersion')}"
    )
    case.check(any("json" in str(f) for f in statement.get("format") or []), "format lacks json")
    try:
        from fhir.resources.R4B.capabilitystatement import CapabilityStatement

        CapabilityStatement.model_validate(statement)
    except Exception as exc:  # pydantic ValidationError and friends
        case.fail(f"does not parse as an R4 CapabilityStatement: {str(exc)[:300]}")
    return case, statement


_SAMPLE_VALUES: Final = {
    "token": "http://loinc.org|29463-7",
    "date": "ge2000-01-01",
    "reference": "Patient/unknown",
    "string": "a",
    "uri": "http://example.org",
    "number": "1",
    "quantity": "1",
    "composite": "a$b",
    "special": "a",
}


def _search_value(rtype: str, name: str, ptype: str, kit: FhirKit) -> str:
    if name in ("patient", "subject") and ptype == "reference":
        return f"Patient/{kit.find_patient_id(None)}"
    if name.endswith(".identifier") or name == "identifier":
        return f"urn:oid:{kit.oid}|{kit.ins}"
    if name == "_id":
        return "unknown-id"
    return _SAMPLE_VALUES.get(ptype, "a")


def check_resource_capability(
    kit: FhirKit, entry: dict[str, Any], samples: dict[str, dict[str, Any]]
) -> CaseResult:
    rtype = str(entry.get("type"))
    interactions = [i.get("code") for i in entry.get("interaction") or []]
    params = [(p.get("name"), p.get("type")) for p in entry.get("searchParam") or []]
    case = new_case(
        f"capability/{rtype}",
        f"{rtype}: every declared interaction and search parameter works",
        SPEC_CAPABILITY,
    )
    case.expectation = (
        f"interactions {', '.join(map(str, interactions))} answer 2xx; search parameters "
        f"{', '.join(str(n) for n, _ in params)} answer 200 searchset and appear in the self link"
    )
    client = kit.patient
    rid = ""
    if "create" in interactions and rtype in samples:
        body = _bind_patient(copy.deepcopy(samples[rtype]), kit)
        created = client.request(case, "create", "POST", rtype, body=body)
        if case.check(created.status == 201, f"create: HTTP {created.status} {why(created)}"):
            rid = str((created.body or {}).get("id") or "")
    elif "create" in interactions:
        case.error(f"kit: no sample {rtype} to exercise create")
    if not rid and rtype in ("DocumentReference", "Binary"):
        rid = document_instance(kit, case, rtype)
    if not rid and "search-type" in interactions:
        found = client.request(case, "search to find an id", "GET", rtype)
        entries = (found.body or {}).get("entry") or []
        rid = str(entries[0]["resource"].get("id", "")) if entries else ""
    if rid:
        if "read" in interactions:
            read = client.request(case, "read", "GET", f"{rtype}/{rid}")
            case.check(read.status == 200, f"read: HTTP {read.status} {why(read)}")
        if "vread" in interactions:
            vread = client.request(case, "vread", "GET", f"{rtype}/{rid}/_history/1")
            case.check(vread.status == 200, f"vread: HTTP {vread.status} {why(vread)}")
        if "update" in interactions:
            current = client.request(case, "read before update", "GET", f"{rtype}/{rid}").body
            if current:
                updated = client.request(case, "update", "PUT", f"{rtype}/{rid}", body=current)
                case.check(
                    updated.status in (200, 201),
                    f"update: HTTP {updated.status} {why(updated)}",
                )
        if "history-instance" in interactions:
            history = client.request(case, "history-instance", "GET", f"{rtype}/{rid}/_history")
            case.check(
                history.status == 200 and (history.body or {}).get("type") == "history",
                f"history-instance: HTTP {history.status}, type {(history.body or {}).get('type')}",
            )
    elif any(i in interactions for i in ("read", "vread", "update", "history-instance")):
        case.error(f"kit: no {rtype} instance to exercise read/vread/update/history")
    if "history-type" in interactions:
        history = client.request(case, "history-type", "GET", f"{rtype}/_history")
        case.check(
            history.status == 200 and (history.body or {}).get("type") == "history",
            f"history-type: HTTP {history.status}, type {(history.body or {}).get('type')}",
        )
    if "search-type" in interactions:
        for name, ptype in params:
            value = _search_value(rtype, str(name), str(ptype), kit)
            reply = client.request(case, f"search {name}", "GET", rtype, params={str(name): value})
            body = reply.body or {}
            if not case.check(
                reply.status == 200 and body.get("type") == "searchset",
                f"search {name}={value}: HTTP {reply.status} {why(reply)}",
            ):
                continue
            links = [
                link.get("url", "")
                for link in body.get("link") or []
                if link.get("relation") == "self"
            ]
            case.check(
                any(f"{name}=" in link for link in links),
                f"search {name}: parameter not in the self link {links[:1]}",
            )
    if rid and "delete" in interactions:
        deleted = client.request(case, "delete", "DELETE", f"{rtype}/{rid}")
        case.check(deleted.status in (200, 204), f"delete: HTTP {deleted.status} {why(deleted)}")
        gone = client.request(case, "read after delete", "GET", f"{rtype}/{rid}")
        case.check(gone.status == 410, f"read after delete: HTTP {gone.status}, expected 410 Gone")
    return case


# ---------------------------------------------------------------------------- round-trips

#: HL7 fhir-test-cases r4/examples for the stored types (files copied to data/fhir/r4).
ROUNDTRIP_FILES: Final = {
    "AllergyIntolerance": "allergyintolerance-example.json",
    "Appointment": "appointment-example.json",
    "CareTeam": "careteam-example.json",
    "Condition": "condition-example.json",
    "Consent": "consent-example.json",
    "Device": "device-example.json",
    "FamilyMemberHistory": "familymemberhistory-example.json",
    "Immunization": "immunization-example.json",
    "MedicationStatement": "medicationstatementexample1.json",
}
#: Minimal resources for the stored types without an HL7 example in the kit.
MINIMAL: Final[dict[str, dict[str, Any]]] = {
    "Procedure": {
        "resourceType": "Procedure",
        "status": "completed",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "80146002"}]},
        "subject": {"reference": "Patient/PATIENT"},
        "performedDateTime": "2020-01-01",
    },
    "RelatedPerson": {
        "resourceType": "RelatedPerson",
        "patient": {"reference": "Patient/PATIENT"},
        "name": [{"family": "Durand", "given": ["Marie"]}],
        "relationship": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "MTH"}
                ]
            }
        ],
    },
    "CommunicationRequest": {
        "resourceType": "CommunicationRequest",
        "status": "active",
        "subject": {"reference": "Patient/PATIENT"},
        "occurrenceDateTime": "2030-01-01T10:00:00Z",
        "payload": [{"contentString": "Rappel : vaccin"}],
    },
    "Observation": {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "72166-2"}]},
        "subject": {"reference": "Patient/PATIENT"},
        "valueCodeableConcept": {
            "coding": [{"system": "http://snomed.info/sct", "code": "266919005"}]
        },
    },
}
_PATIENT_FIELDS: Final = ("subject", "patient", "beneficiary")
_VOLATILE: Final = ("id", "meta")


def _bind_patient(resource: dict[str, Any], kit: FhirKit) -> dict[str, Any]:
    """Point the resource at the kit's patient (the only patient the token may write for)."""
    reference = {"reference": f"Patient/{kit.find_patient_id(None)}"}
    resource.pop("id", None)
    for name in _PATIENT_FIELDS:
        if name in resource and isinstance(resource[name], dict):
            resource[name] = dict(reference)
    if resource.get("resourceType") == "Appointment":
        for participant in resource.get("participant") or []:
            actor = participant.get("actor") or {}
            if str(actor.get("reference", "")).startswith("Patient/"):
                participant["actor"] = {**actor, "reference": reference["reference"]}
    if resource.get("resourceType") == "Consent":
        resource["patient"] = dict(reference)
    return resource


def _normalize(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _normalize(v) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list):
        return [_normalize(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _differences(sent: Any, served: Any, path: str = "") -> list[str]:
    if isinstance(sent, dict) and isinstance(served, dict):
        out: list[str] = []
        for key in sent:
            if key not in served:
                out.append(f"{path}.{key} dropped")
            else:
                out += _differences(sent[key], served[key], f"{path}.{key}")
        return out
    if isinstance(sent, list) and isinstance(served, list):
        if len(sent) != len(served):
            return [f"{path}: {len(sent)} items sent, {len(served)} served"]
        out = []
        for index, (a, b) in enumerate(zip(sent, served, strict=True)):
            out += _differences(a, b, f"{path}[{index}]")
        return out
    return [] if sent == served else [f"{path}: sent {sent!r}, served {served!r}"]


def roundtrip(kit: FhirKit, rtype: str, file_name: str) -> CaseResult:
    case = new_case(
        f"roundtrip/{file_name}",
        f"HL7 R4 example {file_name} round-trips ({rtype})",
        "HL7 FHIR R4 http.html#create, #read; FHIR/fhir-test-cases r4/examples",
    )
    case.expectation = "POST answers 201; GET serves every element sent, unchanged"
    sent = _bind_patient(load_json(EXAMPLES / "r4" / file_name), kit)
    created = kit.patient.request(case, "create", "POST", rtype, body=sent)
    if not case.check(created.status == 201, f"create: HTTP {created.status} {why(created)}"):
        return case
    rid = str((created.body or {}).get("id", ""))
    served = kit.patient.request(case, "read", "GET", f"{rtype}/{rid}")
    if not case.check(served.status == 200, f"read: HTTP {served.status}"):
        return case
    for difference in _differences(_normalize(sent), _normalize(served.body or {}))[:10]:
        case.fail(f"round-trip: {difference}")
    try:
        from fhir.resources.R4B import get_fhir_model_class

        get_fhir_model_class(rtype).model_validate(served.body)
    except Exception as exc:
        case.fail(f"served {rtype} is not a valid R4 resource: {str(exc)[:300]}")
    return case


# ---------------------------------------------------------------------------- MHD


PDSM_EXAMPLE: Final = "pdsm4dmp-Bundle-example-td2-iti65-lot-soumission.json"
#: formatCode of the DMP's own text documents (JDV_J60), used when the PDSm example's
#: ``urn:ihe:iti:xds:2017:mimeTypeSufficient`` is refused (see the ``mhd`` case).
DMP_TEXT_FORMAT: Final = "urn:ihe:iti:xds-sd:text:2008"


def _coding(system_oid: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": f"urn:oid:{system_oid}", "code": code}]}


def _dmp_codes(document: dict[str, Any]) -> None:
    """Give the example DMP value-set codes (JDV_J57/J60/J61/J62, ASS_X16 type -> class)."""
    document["category"] = [_coding("1.2.250.1.213.1.1.4.1", "10")]  # classCode of 11488-4
    for content in document.get("content") or []:
        content["format"] = {
            "system": "urn:oid:1.3.6.1.4.1.19376.1.2.3",
            "code": DMP_TEXT_FORMAT,
        }
    context = document.setdefault("context", {})
    context["facilityType"] = _coding("1.2.250.1.71.4.2.4", "SA01")
    context["practiceSetting"] = _coding("1.2.250.1.213.1.1.4.9", "ETABLISSEMENT")


def _pdsm_bundle(kit: FhirKit, case: CaseResult | None, *, dmp_format: bool) -> dict[str, Any]:
    bundle = load_json(EXAMPLES / "pdsm" / PDSM_EXAMPLE)
    reference = f"Patient/{kit.find_patient_id(case)}"
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") or {}
        if "subject" in resource:
            resource["subject"] = {"reference": reference}
        if dmp_format and resource.get("resourceType") == "DocumentReference":
            _dmp_codes(resource)
    return bundle


def document_instance(kit: FhirKit, case: CaseResult, rtype: str) -> str:
    """Id of a DocumentReference (or its Binary) of the patient, feeding one if needed."""
    found = kit.patient.request(case, "search a DocumentReference", "GET", "DocumentReference")
    entries = (found.body or {}).get("entry") or []
    if not entries:
        case.reasons.append(
            "seeded through ITI-65 with the PDSm4DMP example given DMP codes (class 10, "
            f"format {DMP_TEXT_FORMAT}, facility SA01, practice ETABLISSEMENT)"
        )
        kit.patient.request(
            case, "seed ITI-65", "POST", "", body=_pdsm_bundle(kit, case, dmp_format=True)
        )
        found = kit.patient.request(case, "search again", "GET", "DocumentReference")
        entries = (found.body or {}).get("entry") or []
    if not entries:
        return ""
    document = entries[0]["resource"]
    if rtype == "DocumentReference":
        return str(document.get("id", ""))
    url = str(((document.get("content") or [{}])[0].get("attachment") or {}).get("url", ""))
    return url.rsplit("Binary/", 1)[-1] if "Binary/" in url else ""


def mhd_case(kit: FhirKit) -> CaseResult:
    """ITI-65 with the official ANS PDSm4DMP example (TD2 "lot de soumission")."""
    case = new_case(
        "mhd/iti65-pdsm4dmp-example",
        "ITI-65 Provide Document Bundle: the ANS PDSm4DMP TD2 example",
        "IHE MHD 4 ITI-65; ANS PDSm 3.1.1 / PDSm4DMP",
    )
    case.expectation = (
        "200 transaction-response with 201 per entry; the DocumentReference is then found by "
        "search and its Binary can be read"
    )
    bundle = _pdsm_bundle(kit, case, dmp_format=False)
    reply = kit.patient.request(case, "ITI-65", "POST", "", body=bundle)
    if not case.check(reply.status == 200, f"ITI-65: HTTP {reply.status} {why(reply)}"):
        return case
    found = kit.patient.request(case, "ITI-67 search", "GET", "DocumentReference")
    entries = (found.body or {}).get("entry") or []
    if not case.check(bool(entries), "the submitted DocumentReference is not found"):
        return case
    document = entries[0]["resource"]
    url = str(((document.get("content") or [{}])[0].get("attachment") or {}).get("url", ""))
    case.check(bool(url), "DocumentReference.content.attachment.url is empty")
    if url:
        binary = kit.patient.request(case, "ITI-68 retrieve", "GET", url)
        case.check(binary.status == 200, f"ITI-68: HTTP {binary.status} {why(binary)}")
    return case
