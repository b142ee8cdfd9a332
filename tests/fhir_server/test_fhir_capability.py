"""The CapabilityStatement tells the truth: every declared interaction and search parameter
is accepted (never 400/404/405), and undeclared ones are refused."""

from __future__ import annotations

import pytest
from fhir_helpers import World
from flask.testing import FlaskClient

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
