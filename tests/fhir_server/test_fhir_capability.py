"""The CapabilityStatement tells the truth: every declared interaction and search parameter
is accepted (never 400/404/405), and undeclared ones are refused."""

from __future__ import annotations

from typing import Any

import pytest
from fhir_helpers import World
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from fhir_server.models import validate

SAMPLES = {"token": "x|y", "date": "ge2020-01-01", "reference": "Device/x", "string": "ab"}


def test_capability_statement_is_valid_r4(client: FlaskClient) -> None:
    body = client.get("/fhir/metadata").get_json()
    validate(body, "CapabilityStatement")


@pytest.mark.slow
def test_every_declared_search_parameter_works(client: FlaskClient, world: World) -> None:
    world.pair(world.alice, ["measurements.read", "profile.read", "agenda.read"])
    h = world.patient_headers()
    rest = client.get("/fhir/metadata").get_json()["rest"][0]
    for resource in rest["resource"]:
        rtype = resource["type"]
        codes = {i["code"] for i in resource["interaction"]}
        for param in resource.get("searchParam", []):
            value = SAMPLES.get(param["type"], "x")
            if param["name"] == "_id":
                value = "abc"
            if param["name"] in ("subject.identifier", "patient.identifier"):
                value = f"urn:oid:1.2.250.1.213.1.4.8|{world.alice.ins}"
            if param["name"] in ("patient", "subject"):
                value = f"Patient/{world.alice.space_id}"
            response = client.get(f"/fhir/{rtype}?{param['name']}={value}", headers=h)
            assert response.status_code == 200, (rtype, param, response.get_json())
        for include in resource.get("searchInclude", []):
            response = client.get(f"/fhir/{rtype}?_include={include}", headers=h)
            assert response.status_code == 200, (rtype, include)
        for revinclude in resource.get("searchRevInclude", []):
            response = client.get(f"/fhir/{rtype}?_revinclude={revinclude}", headers=h)
            assert response.status_code == 200, (rtype, revinclude, response.get_json())
        if "history-type" in codes:
            assert client.get(f"/fhir/{rtype}/_history", headers=h).status_code == 200
        if "create" not in codes and rtype != "Binary":
            response = client.post(f"/fhir/{rtype}", json={"resourceType": rtype},
                                   headers={**h, "Content-Type": "application/fhir+json"})
            assert response.status_code == 405, rtype
    assert {"transaction", "batch"} == {i["code"] for i in rest["interaction"]}


def test_batch_reports_each_entry(client: FlaskClient, world: World) -> None:
    h = {**world.patient_headers(), "Content-Type": "application/fhir+json"}
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": {"resourceType": "Condition", "code": {"text": "ok"}},
         "request": {"method": "POST", "url": "Condition"}},
        {"resource": {"resourceType": "Condition", "code": "bad"},
         "request": {"method": "POST", "url": "Condition"}},
        {"request": {"method": "GET", "url": "Condition/missing"}},
    ]}
    body = client.post("/fhir", json=batch, headers=h).get_json()
    assert body["type"] == "batch-response"
    assert [e["response"]["status"][:3] for e in body["entry"]] == ["201", "422", "404"]
    assert client.get("/fhir/Condition", headers=h).get_json()["total"] == 1


def test_transaction_is_atomic(client: FlaskClient, world: World) -> None:
    h = {**world.patient_headers(), "Content-Type": "application/fhir+json"}
    transaction = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:11111111-1111-4111-8111-111111111111",
         "resource": {"resourceType": "Condition", "code": {"text": "ok"}},
         "request": {"method": "POST", "url": "Condition"}},
        {"resource": {"resourceType": "Procedure", "status": "completed",
                      "reasonReference": [{"reference":
                                           "urn:uuid:11111111-1111-4111-8111-111111111111"}]},
         "request": {"method": "POST", "url": "Procedure"}},
    ]}
    ok = client.post("/fhir", json=transaction, headers=h)
    assert ok.status_code == 200, ok.get_json()
    procedure = client.get("/fhir/Procedure", headers=h).get_json()["entry"][0]["resource"]
    assert procedure["reasonReference"][0]["reference"].startswith("Condition/")
    broken = {**transaction, "entry": [*transaction["entry"], {
        "resource": {"resourceType": "Condition", "code": 5},
        "request": {"method": "POST", "url": "Condition"}}]}
    failed = client.post("/fhir", json=broken, headers=h)
    assert failed.status_code == 422
    assert client.get("/fhir/Condition", headers=h).get_json()["total"] == 1
    assert client.get("/fhir/Procedure", headers=h).get_json()["total"] == 1


# A minimal valid R4 resource of each stored type (the patient reference is filled in).
MINIMAL: dict[str, dict[str, Any]] = {
    "Observation": {"status": "final", "code": {"coding": [
        {"system": "http://loinc.org", "code": "882-1"}]}},
    "Device": {},
    "Condition": {"code": {"text": "x"}},
    "MedicationStatement": {"status": "active", "medicationCodeableConcept": {"text": "x"}},
    "Procedure": {"status": "completed"},
    "AllergyIntolerance": {"code": {"text": "x"}},
    "FamilyMemberHistory": {"status": "completed", "relationship": {"text": "mother"}},
    "Immunization": {"status": "completed", "vaccineCode": {"text": "x"},
                     "occurrenceDateTime": "2020-01-01"},
    "RelatedPerson": {"name": [{"family": "X"}]},
    "CareTeam": {"name": "x"},
    "Consent": {"status": "active", "scope": {"coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "adr"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "75320-2"}]}]},
    "Appointment": {"status": "booked", "start": "2026-02-01T10:00:00Z",
                    "end": "2026-02-01T10:30:00Z",
                    "participant": [{"actor": {"display": "Dr X"}, "status": "accepted"}]},
    "CommunicationRequest": {"status": "active"},
}


def exercise(client: FlaskClient, code: str, rtype: str, rid: str,
             h: dict[str, str]) -> TestResponse:
    """One interaction on ``rtype/rid`` (the conditional form for delete)."""
    if code == "update":
        current = client.get(f"/fhir/{rtype}/{rid}", headers=h).get_json()
        return client.put(f"/fhir/{rtype}/{rid}", json={**current, "language": "fr"},
                          headers={**h, "Content-Type": "application/fhir+json"})
    if code == "patch":
        return client.patch(f"/fhir/{rtype}/{rid}", headers={
            **h, "Content-Type": "application/json-patch+json"}, data=(
            '[{"op": "test", "path": "/language", "value": "fr"},'
            ' {"op": "replace", "path": "/language", "value": "fr-FR"}]'))
    if code == "delete":
        return client.delete(f"/fhir/{rtype}?_id={rid}", headers=h)
    url = {"read": f"/fhir/{rtype}/{rid}", "vread": f"/fhir/{rtype}/{rid}/_history/1",
           "search-type": f"/fhir/{rtype}?_id={rid}",
           "history-instance": f"/fhir/{rtype}/{rid}/_history",
           "history-type": f"/fhir/{rtype}/_history"}[code]
    return client.get(url, headers=h)


def test_every_declared_interaction_works(client: FlaskClient, world: World) -> None:
    """Each interaction the CapabilityStatement declares for a type is exercised on that type
    (create, read, vread, search, update, patch, both histories, conditional delete), and
    the writes are refused with 405 on the types that declare none."""
    h = world.patient_headers()
    rest = client.get("/fhir/metadata").get_json()["rest"][0]
    order = ["read", "vread", "search-type", "update", "patch", "history-instance",
             "history-type", "delete"]
    exercised: set[tuple[str, str]] = set()
    for resource in rest["resource"]:
        rtype = resource["type"]
        codes = {i["code"] for i in resource["interaction"]}
        if "create" not in codes:
            for method, ctype, data in (("PUT", "application/fhir+json", "{}"),
                                        ("PATCH", "application/json-patch+json", "[]"),
                                        ("DELETE", "application/fhir+json", "")):
                response = client.open(f"/fhir/{rtype}/x", method=method, data=data,
                                       headers={**h, "Content-Type": ctype})
                assert response.status_code == 405, (rtype, method, response.get_json())
            continue
        assert resource["conditionalDelete"] == "single"
        assert codes == {"create", *order}, rtype
        created = client.post(f"/fhir/{rtype}", json={"resourceType": rtype, **MINIMAL[rtype]},
                              headers={**h, "Content-Type": "application/fhir+json"})
        assert created.status_code == 201, (rtype, created.get_json())
        rid = created.get_json()["id"]
        for code in order:
            response = exercise(client, code, rtype, rid, h)
            assert response.status_code in (200, 204), (rtype, code, response.get_json())
            exercised.add((rtype, code))
        assert client.get(f"/fhir/{rtype}/{rid}", headers=h).status_code == 410, rtype
        versions = client.get(f"/fhir/{rtype}/{rid}/_history", headers=h).get_json()
        assert versions["total"] == 4, rtype  # create, update, patch, delete
    assert len(exercised) == len(order) * 13
