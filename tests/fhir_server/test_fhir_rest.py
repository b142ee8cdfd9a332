"""FHIR R4 REST basics (http.html): read/vread/update/delete, ETag/If-Match, conditional
create, history, paging, errors as OperationOutcome."""

from __future__ import annotations

from typing import Any

from fhir_helpers import World, height, weight
from flask.testing import FlaskClient

from habilitation.model import ActorKind

FHIR = "application/fhir+json"


def post(client: FlaskClient, url: str, body: Any, headers: dict[str, str]) -> Any:
    return client.post(url, json=body, headers={**headers, "Content-Type": FHIR})


def condition(text: str = "Asthme") -> dict[str, Any]:
    return {"resourceType": "Condition", "code": {"text": text},
            "clinicalStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                "code": "active"}]},
            "onsetDateTime": "2015-03-01", "note": [{"text": "depuis l'enfance"}]}


def test_metadata_is_public_and_r4(client: FlaskClient) -> None:
    response = client.get("/fhir/metadata")
    assert response.status_code == 200
    assert response.mimetype == FHIR
    body = response.get_json()
    assert body["resourceType"] == "CapabilityStatement"
    assert body["fhirVersion"] == "4.0.1"
    types = {r["type"] for r in body["rest"][0]["resource"]}
    assert {"Observation", "Device", "Condition", "Consent", "AuditEvent"} <= types


def test_no_token_is_401_with_www_authenticate(client: FlaskClient, world: World) -> None:
    response = client.get("/fhir/Condition")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.get_json()["resourceType"] == "OperationOutcome"
    bad = client.get("/fhir/Condition", headers={"Authorization": "Bearer abc.def.ghi"})
    assert bad.status_code == 401


def test_crud_versions_etag_and_history(client: FlaskClient, world: World) -> None:
    h = world.patient_headers()
    created = post(client, "/fhir/Condition", condition(), h)
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    rid = body["id"]
    assert created.headers["ETag"] == 'W/"1"'
    assert created.headers["Location"].endswith(f"/fhir/Condition/{rid}/_history/1")
    assert body["subject"]["reference"] == f"Patient/{world.alice.space_id}"

    read = client.get(f"/fhir/Condition/{rid}", headers=h)
    assert read.status_code == 200 and read.headers["ETag"] == 'W/"1"'

    changed = {**read.get_json(), "code": {"text": "Asthme sévère"}}
    updated = client.put(f"/fhir/Condition/{rid}", json=changed,
                         headers={**h, "Content-Type": FHIR, "If-Match": 'W/"1"'})
    assert updated.status_code == 200
    assert updated.get_json()["meta"]["versionId"] == "2"
    stale = client.put(f"/fhir/Condition/{rid}", json=changed,
                       headers={**h, "Content-Type": FHIR, "If-Match": 'W/"1"'})
    assert stale.status_code == 412
    assert stale.get_json()["issue"][0]["code"] == "conflict"

    v1 = client.get(f"/fhir/Condition/{rid}/_history/1", headers=h)
    assert v1.get_json()["code"]["text"] == "Asthme"
    history = client.get(f"/fhir/Condition/{rid}/_history", headers=h).get_json()
    assert history["type"] == "history" and history["total"] == 2

    deleted = client.delete(f"/fhir/Condition/{rid}", headers=h)
    assert deleted.status_code == 204
    assert client.get(f"/fhir/Condition/{rid}", headers=h).status_code == 410
    assert client.get(f"/fhir/Condition/{rid}/_history", headers=h).get_json()["total"] == 3


def test_errors_are_operation_outcomes(client: FlaskClient, world: World) -> None:
    h = world.patient_headers()
    cases = [
        (client.post("/fhir/Condition", data="{not json",
                     headers={**h, "Content-Type": FHIR}), 400),
        (client.get("/fhir/Condition/unknown-id", headers=h), 404),
        (client.get("/fhir/Nope", headers=h), 404),
        (client.get("/fhir/Condition?bogus=1", headers=h), 400),
        (client.patch("/fhir/Patient/x", data="[]",
                      headers={**h, "Content-Type": "application/json-patch+json"}), 405),
        (client.patch("/fhir/Condition/x", headers=h), 415),
        (post(client, "/fhir/Condition", {"resourceType": "Condition", "subject": 5}, h), 422),
        (client.put("/fhir/Condition/new-one", json={**condition(), "id": "new-one"},
                    headers={**h, "Content-Type": FHIR}), 405),
        (client.post("/fhir/Condition", data="x", headers={**h, "Content-Type": "text/plain"}),
         415),
    ]
    for response, status in cases:
        assert response.status_code == status, (status, response.get_json())
        assert response.get_json()["resourceType"] == "OperationOutcome"


def test_bad_input_does_not_corrupt_stored_data(client: FlaskClient, world: World) -> None:
    h = world.patient_headers()
    rid = post(client, "/fhir/Condition", condition(), h).get_json()["id"]
    before = client.get(f"/fhir/Condition/{rid}", headers=h).get_json()
    broken = {**before, "clinicalStatus": "not-a-concept"}
    assert client.put(f"/fhir/Condition/{rid}", json=broken,
                      headers={**h, "Content-Type": FHIR}).status_code == 422
    assert client.get(f"/fhir/Condition/{rid}", headers=h).get_json() == before


def test_conditional_create_if_none_exist(client: FlaskClient, world: World) -> None:
    h = world.patient_headers()
    device = {"resourceType": "Device", "meta": {"profile": [
        "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdDevice"]},
        "identifier": [{"system": "urn:oid:1.2.3", "value": "SN-1"}]}
    hdr = {**h, "If-None-Exist": "identifier=urn:oid:1.2.3|SN-1"}
    first = post(client, "/fhir/Device", device, hdr)
    second = post(client, "/fhir/Device", device, hdr)
    assert first.status_code == 201
    assert second.status_code == 200
    assert first.get_json()["id"] == second.get_json()["id"]


def test_search_paging_sort_and_dates(client: FlaskClient, world: World) -> None:
    h = world.patient_headers()
    for day in range(1, 8):
        assert post(client, "/fhir/Observation",
                    weight(70 + day, f"2026-01-0{day}T08:00:00+01:00", world.alice.ins),
                    h).status_code == 201
    page = client.get("/fhir/Observation?code=http://loinc.org|29463-7&_sort=-date&_count=3",
                      headers=h).get_json()
    assert page["total"] == 7
    values = [e["resource"]["valueQuantity"]["value"] for e in page["entry"]]
    assert values == [77, 76, 75]
    nxt = next(link["url"] for link in page["link"] if link["relation"] == "next")
    second = client.get(nxt[nxt.index("/fhir/"):], headers=h).get_json()
    assert [e["resource"]["valueQuantity"]["value"] for e in second["entry"]] == [74, 73, 72]
    for query, expected in [
        ("date=ge2026-01-03&date=lt2026-01-05", 2),
        ("date=gt2026-01-06", 1),
        ("date=le2026-01-02", 2),
        ("date=eq2026-01-04", 1),
        ("date=ne2026-01-04", 6),
        ("date=sa2026-01-05", 2),
        ("date=eb2026-01-02", 1),
        ("date=2026-01", 7),
    ]:
        got = client.get(f"/fhir/Observation?code=29463-7&{query}", headers=h).get_json()
        assert got["total"] == expected, query
    assert client.get("/fhir/Observation?code=29463-7&_count=101", headers=h).status_code == 400
    assert client.get("/fhir/Observation?date=ap2026-01-01", headers=h).status_code == 400


def test_post_search_and_last_updated(client: FlaskClient, world: World) -> None:
    h = world.patient_headers()
    post(client, "/fhir/Observation", height(172, "2026-01-01", world.alice.ins), h)
    found = client.post("/fhir/Observation/_search", data={"code": "8302-2"}, headers=h)
    assert found.status_code == 200 and found.get_json()["total"] == 1
    none = client.get("/fhir/Observation?_lastUpdated=gt2027-01-01", headers=h).get_json()
    assert none["total"] == 0


def test_other_patients_data_is_not_found(client: FlaskClient, world: World) -> None:
    alice = world.patient_headers()
    rid = post(client, "/fhir/Condition", condition(), alice).get_json()["id"]
    bob = world.patient_headers(world.bob)
    assert client.get(f"/fhir/Condition/{rid}", headers=bob).status_code == 404
    assert client.get("/fhir/Condition", headers=bob).get_json()["total"] == 0
    assert client.delete(f"/fhir/Condition/{rid}", headers=bob).status_code == 404


def test_system_needs_a_patient(client: FlaskClient, world: World) -> None:
    from mes.tokens import issue_token

    token = issue_token(world.settings, subject="purge", kind=ActorKind.SYSTEM)
    response = client.get("/fhir/Condition", headers=world.headers(token))
    assert response.status_code == 403


def test_conditional_patient_reference_and_unencoded_plus(client: FlaskClient,
                                                          world: World) -> None:
    h = world.patient_headers()
    own = {**condition(), "subject": {
        "reference": f"Patient?identifier=urn:oid:1.2.250.1.213.1.4.8|{world.alice.ins}"}}
    created = post(client, "/fhir/Condition", own, h)
    assert created.status_code == 201
    assert created.get_json()["subject"]["reference"] == f"Patient/{world.alice.space_id}"
    other = {**condition(), "subject": {
        "reference": f"Patient?identifier=urn:oid:1.2.250.1.213.1.4.8|{world.bob.ins}"}}
    assert post(client, "/fhir/Condition", other, h).status_code == 422
    post(client, "/fhir/Observation", weight(70, "2026-01-01T10:00:00+01:00", world.alice.ins), h)
    found = client.get("/fhir/Observation?code=29463-7&date=ge2026-01-01T08:59:00+01:00",
                       headers=h).get_json()
    assert found["total"] == 1


def test_requests_refused_by_the_gate_are_traced(client: FlaskClient, world: World) -> None:
    h = world.patient_headers()
    assert client.post("/fhir/Condition", data="{oops",
                       headers={**h, "Content-Type": FHIR}).status_code == 400
    assert client.get("/fhir/Nope", headers=h).status_code == 404
    events = [e["resource"] for e in client.get("/fhir/AuditEvent", headers=h).get_json()["entry"]]
    failures = [e for e in events if e["outcome"] == "4"]
    assert len(failures) == 2
    assert all("fhir_gate" in e["outcomeDesc"] for e in failures)


def test_xml_in_and_out(client: FlaskClient, world: World) -> None:
    h = world.patient_headers()
    xml = (f'<Condition xmlns="http://hl7.org/fhir"><code><text value="Migraine"/></code>'
           f'<subject><reference value="Patient/{world.alice.space_id}"/></subject></Condition>')
    created = client.post("/fhir/Condition", data=xml, headers={
        **h, "Content-Type": "application/fhir+xml", "Accept": "application/fhir+xml"})
    assert created.status_code == 201
    assert created.mimetype == "application/fhir+xml"
    assert b"<text value=\"Migraine\"/>" in created.data
    found = client.get("/fhir/Condition?_format=xml", headers=h)
    assert found.mimetype == "application/fhir+xml" and found.data.count(b"<Condition>") == 1
    assert client.get("/fhir/Condition", headers=h).mimetype == FHIR
    hostile = ('<?xml version="1.0"?><!DOCTYPE c [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
               '<Condition xmlns="http://hl7.org/fhir"><code><text value="&x;"/></code>'
               '</Condition>')
    refused = client.post("/fhir/Condition", data=hostile,
                          headers={**h, "Content-Type": "application/fhir+xml"})
    assert refused.status_code == 400
    assert client.get("/fhir/Condition?_format=text/turtle", headers=h).status_code == 406


def test_patient_identifier_chains(client: FlaskClient, world: World) -> None:
    h = world.patient_headers()
    post(client, "/fhir/Condition", condition(), h)
    own = client.get(f"/fhir/Condition?patient.identifier=urn:oid:1.2.250.1.213.1.4.8|"
                     f"{world.alice.ins}", headers=h).get_json()
    assert own["total"] == 1
    other = client.get(f"/fhir/Condition?patient.identifier={world.bob.ins}", headers=h)
    assert other.get_json()["total"] == 0
