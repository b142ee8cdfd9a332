"""FHIR R4 patch interaction with JSON Patch (http.html#patch, RFC 6902): versions, If-Match,
validation as an update, error statuses, ownership and read rights, transaction/batch
entries, conditional patch; every call goes through the gate and is traced."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from fhir_helpers import World, weight
from flask.testing import FlaskClient
from sqlalchemy import select

from espace.models import TraceRecord
from fhir_server import jsonpatch

FHIR = "application/fhir+json"
PATCH = "application/json-patch+json"


def condition(text: str = "Asthme", **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Condition",
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": text}],
                     "text": text},
            "clinicalStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                "code": "active"}]},
            "onsetDateTime": "2015-03-01", **extra}


def create(client: FlaskClient, h: dict[str, str], resource: dict[str, Any]) -> str:
    response = client.post(f"/fhir/{resource['resourceType']}", json=resource,
                           headers={**h, "Content-Type": FHIR})
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["id"])


def patch(client: FlaskClient, url: str, ops: Any, h: dict[str, str],
          **headers: str) -> Any:
    return client.patch(url, data=json.dumps(ops),
                        headers={**h, "Content-Type": PATCH, **headers})


# ----------------------------------------------------------------------------- RFC 6902
def test_json_patch_operations_of_rfc_6902() -> None:
    doc = {"a": {"b": [1, 2, 3]}, "c": "x", "m~n": 1, "s/t": 2}
    ops = [
        {"op": "add", "path": "/a/b/1", "value": 9},
        {"op": "add", "path": "/a/b/-", "value": 4},
        {"op": "remove", "path": "/a/b/0"},
        {"op": "replace", "path": "/c", "value": {"d": True}},
        {"op": "copy", "from": "/c", "path": "/e"},
        {"op": "move", "from": "/m~0n", "path": "/moved"},
        {"op": "test", "path": "/s~1t", "value": 2.0},
        {"op": "test", "path": "/e", "value": {"d": True}},
    ]
    assert jsonpatch.apply(doc, ops) == {
        "a": {"b": [9, 2, 3, 4]}, "c": {"d": True}, "e": {"d": True}, "moved": 1, "s/t": 2}
    assert doc["a"]["b"] == [1, 2, 3]  # the input is never changed


@pytest.mark.parametrize(("ops", "kind"), [
    ({"op": "add"}, jsonpatch.PatchInvalid),
    ([{"op": "frobnicate", "path": "/a"}], jsonpatch.PatchInvalid),
    ([{"op": "add", "path": "/a"}], jsonpatch.PatchInvalid),
    ([{"op": "add", "path": "a", "value": 1}], jsonpatch.PatchInvalid),
    ([{"op": "move", "path": "/a"}], jsonpatch.PatchInvalid),
    ([{"op": "add", "path": "/a/~2", "value": 1}], jsonpatch.PatchInvalid),
    ([{"op": "remove", "path": "/nope"}], jsonpatch.PatchFailed),
    ([{"op": "replace", "path": "/nope", "value": 1}], jsonpatch.PatchFailed),
    ([{"op": "add", "path": "/l/5", "value": 1}], jsonpatch.PatchFailed),
    ([{"op": "add", "path": "/l/01", "value": 1}], jsonpatch.PatchFailed),
    ([{"op": "test", "path": "/t", "value": 1}], jsonpatch.PatchFailed),  # true is not 1
    ([{"op": "move", "from": "/o", "path": "/o/x"}], jsonpatch.PatchFailed),
])
def test_json_patch_errors(ops: Any, kind: type[jsonpatch.PatchError]) -> None:
    doc = {"a": 1, "l": [0], "t": True, "o": {}}
    with pytest.raises(kind):
        jsonpatch.apply(doc, ops)
    assert doc == {"a": 1, "l": [0], "t": True, "o": {}}


# ----------------------------------------------------------------------------- the interaction
def test_patch_makes_a_new_version_with_if_match(client: FlaskClient, world: World) -> None:
    h = world.patient_headers()
    rid = create(client, h, condition())
    ops = [{"op": "replace", "path": "/code/text", "value": "Asthme sévère"},
           {"op": "add", "path": "/note", "value": [{"text": "patched"}]}]
    response = patch(client, f"/fhir/Condition/{rid}", ops, h, **{"If-Match": 'W/"1"'})
    assert response.status_code == 200, response.get_json()
    assert response.headers["ETag"] == 'W/"2"'
    body = response.get_json()
    assert body["code"]["text"] == "Asthme sévère"
    assert body["note"] == [{"text": "patched"}]
    assert body["meta"]["versionId"] == "2"
    assert client.get(f"/fhir/Condition/{rid}", headers=h).get_json() == body
    history = client.get(f"/fhir/Condition/{rid}/_history", headers=h).get_json()
    assert history["total"] == 2
    assert history["entry"][0]["request"]["method"] == "PUT"
    # stale If-Match: 412 and nothing changes
    stale = patch(client, f"/fhir/Condition/{rid}", ops[:1], h, **{"If-Match": 'W/"1"'})
    assert stale.status_code == 412
    assert stale.get_json()["resourceType"] == "OperationOutcome"
    assert client.get(f"/fhir/Condition/{rid}", headers=h).get_json() == body
    minimal = patch(client, f"/fhir/Condition/{rid}",
                    [{"op": "remove", "path": "/note"}], h, Prefer="return=minimal")
    assert minimal.status_code == 200 and minimal.get_data() == b""
    assert minimal.headers["ETag"] == 'W/"3"'
    with world.espace.session_factory() as session:
        events = session.execute(
            select(TraceRecord.event_type, TraceRecord.outcome, TraceRecord.target_id).where(
                TraceRecord.event_type == "rest.patch").order_by(TraceRecord.id)
        ).all()
    assert [(e.outcome, e.target_id) for e in events] == [
        ("success", rid), ("failure", rid), ("success", rid)]


@pytest.mark.parametrize(("ops", "status", "code"), [
    ({"op": "add"}, 400, "invalid"),
    ([{"op": "copy", "path": "/x"}], 400, "invalid"),
    ([{"op": "remove", "path": "/nothing"}], 422, "processing"),
    ([{"op": "test", "path": "/code/text", "value": "Diabète"}], 422, "processing"),
    ([{"op": "replace", "path": "/clinicalStatus", "value": "not-a-concept"}], 422, "structure"),
    ([{"op": "remove", "path": "/id"}], 422, "processing"),
    ([{"op": "replace", "path": "/resourceType", "value": "Procedure"}], 422, "processing"),
    ([{"op": "replace", "path": "/subject", "value": {"reference": "Patient/someone-else"}}],
     422, "processing"),
    ([{"op": "replace", "path": "", "value": {"resourceType": "Condition"}}], 422, "processing"),
])
def test_bad_patches_are_refused_and_change_nothing(
    client: FlaskClient, world: World, ops: Any, status: int, code: str
) -> None:
    h = world.patient_headers()
    rid = create(client, h, condition())
    before = client.get(f"/fhir/Condition/{rid}", headers=h).get_json()
    response = patch(client, f"/fhir/Condition/{rid}", ops, h)
    assert response.status_code == status, response.get_json()
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == code
    assert client.get(f"/fhir/Condition/{rid}", headers=h).get_json() == before


def test_patch_errors_of_the_http_layer(client: FlaskClient, world: World) -> None:
    h = world.patient_headers()
    rid = create(client, h, condition())
    ops = [{"op": "add", "path": "/note", "value": [{"text": "x"}]}]
    cases = [
        (client.patch(f"/fhir/Condition/{rid}", json=ops, headers={**h, "Content-Type": FHIR}),
         415),
        (client.patch(f"/fhir/Condition/{rid}", data="", headers={**h, "Content-Type": PATCH}),
         400),
        (client.patch(f"/fhir/Condition/{rid}", data="[{", headers={**h, "Content-Type": PATCH}),
         400),
        (patch(client, "/fhir/Condition/unknown", ops, h), 404),
        (patch(client, f"/fhir/Condition/{rid}", ops, h, **{"If-Match": "v1"}), 400),
        (patch(client, f"/fhir/Patient/{world.alice.space_id}", ops, h), 405),
        (patch(client, "/fhir/Binary/x", ops, h), 405),
    ]
    for response, status in cases:
        assert response.status_code == status, (status, response.get_json())
        assert response.get_json()["resourceType"] == "OperationOutcome"
    assert client.delete(f"/fhir/Condition/{rid}", headers=h).status_code == 204
    assert patch(client, f"/fhir/Condition/{rid}", ops, h).status_code == 410


def test_patch_of_another_patients_resource_is_not_found(
    client: FlaskClient, world: World
) -> None:
    h_alice = world.patient_headers()
    rid = create(client, h_alice, condition("secret"))
    before = client.get(f"/fhir/Condition/{rid}", headers=h_alice).get_json()
    h_bob = world.patient_headers(world.bob)
    response = patch(client, f"/fhir/Condition/{rid}",
                     [{"op": "test", "path": "/code/text", "value": "secret"}], h_bob)
    assert response.status_code == 404
    assert "secret" not in response.get_data(as_text=True)
    assert client.get(f"/fhir/Condition/{rid}", headers=h_alice).get_json() == before


def test_apps_patch_only_their_own_data_and_need_read(client: FlaskClient, world: World) -> None:
    world.pair(world.alice, ["measurements.write"])
    app = world.app_headers()
    created = client.post("/fhir/Observation", json=weight(70, "2026-01-02T08:00:00Z",
                                                           world.alice.ins),
                          headers={**app, "Content-Type": FHIR})
    assert created.status_code == 201, created.get_json()
    oid = created.get_json()["id"]
    ops = [{"op": "test", "path": "/valueQuantity/value", "value": 70}]
    # write-only: a patch would read the resource (test ops, the returned body)
    assert patch(client, f"/fhir/Observation/{oid}", ops, app).status_code == 403
    world.pair(world.alice, ["measurements.read", "measurements.write", "profile.read",
                             "profile.write"])
    ops = [{"op": "replace", "path": "/valueQuantity/value", "value": 71}]
    ok = patch(client, f"/fhir/Observation/{oid}", ops, app)
    assert ok.status_code == 200, ok.get_json()
    assert ok.get_json()["valueQuantity"]["value"] == 71
    h = world.patient_headers()
    rid = create(client, h, condition())
    assert patch(client, f"/fhir/Condition/{rid}", [{"op": "remove", "path": "/onsetDateTime"}],
                 app).status_code == 403  # the patient's data, not the app's
    assert patch(client, f"/fhir/Observation/{oid}", ops, h).status_code == 403  # app data


def test_patch_entries_in_transactions_and_batches(client: FlaskClient, world: World) -> None:
    h = {**world.patient_headers(), "Content-Type": FHIR}
    rid = create(client, h, condition())

    def entry(ops: Any, url: str = f"Condition/{rid}", **request: str) -> dict[str, Any]:
        data = base64.b64encode(json.dumps(ops).encode()).decode()
        return {"resource": {"resourceType": "Binary", "contentType": PATCH, "data": data},
                "request": {"method": "PATCH", "url": url, **request}}

    good = entry([{"op": "replace", "path": "/code/text", "value": "v2"}], ifMatch='W/"1"')
    new = {"resource": condition("other"), "request": {"method": "POST", "url": "Condition"}}
    bad = entry([{"op": "remove", "path": "/nothing"}])
    failed = client.post("/fhir", json={"resourceType": "Bundle", "type": "transaction",
                                        "entry": [new, good, bad]}, headers=h)
    assert failed.status_code == 422, failed.get_json()
    assert failed.get_json()["issue"][0]["expression"] == ["Bundle.entry[2]"]
    assert client.get("/fhir/Condition", headers=h).get_json()["total"] == 1  # all or nothing
    assert client.get(f"/fhir/Condition/{rid}", headers=h).get_json()["code"]["text"] == "Asthme"
    done = client.post("/fhir", json={"resourceType": "Bundle", "type": "transaction",
                                      "entry": [new, good]}, headers=h)
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["entry"][1]["response"]["etag"] == 'W/"2"'
    assert client.get(f"/fhir/Condition/{rid}", headers=h).get_json()["code"]["text"] == "v2"
    fhirpath = {"resource": {"resourceType": "Parameters"},
                "request": {"method": "PATCH", "url": f"Condition/{rid}"}}
    garbage = {"resource": {"resourceType": "Binary", "contentType": PATCH, "data": "!!"},
               "request": {"method": "PATCH", "url": f"Condition/{rid}"}}
    conditional = entry([{"op": "replace", "path": "/code/text", "value": "v3"}],
                        url="Condition?code=http://snomed.info/sct|Asthme")
    batch = client.post("/fhir", json={"resourceType": "Bundle", "type": "batch",
                                       "entry": [fhirpath, garbage, bad, conditional]},
                        headers=h).get_json()
    assert [e["response"]["status"][:3] for e in batch["entry"]] == ["415", "400", "422", "200"]
    assert client.get(f"/fhir/Condition/{rid}", headers=h).get_json()["code"]["text"] == "v3"


def test_conditional_patch(client: FlaskClient, world: World) -> None:
    h = world.patient_headers()
    one = create(client, h, condition("one"))
    create(client, h, condition("twin"))
    create(client, h, condition("twin"))
    ops = [{"op": "add", "path": "/note", "value": [{"text": "found by search"}]}]
    assert patch(client, "/fhir/Condition?code=none", ops, h).status_code == 404
    assert patch(client, "/fhir/Condition?code=twin", ops, h).status_code == 412
    assert patch(client, "/fhir/Condition", ops, h).status_code == 400  # no criteria
    assert patch(client, "/fhir/Condition?code=one&_sort=date", ops, h).status_code == 400
    response = patch(client, "/fhir/Condition?code=one", ops, h)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["id"] == one
    assert response.headers["Location"].endswith(f"/Condition/{one}/_history/2")
    totals = client.get("/fhir/Condition?_count=0&_summary=count", headers=h).get_json()
    assert totals["total"] == 3
    other = patch(client, "/fhir/Condition?code=one", ops, world.patient_headers(world.bob))
    assert other.status_code == 404  # Bob's search finds none of Alice's


def test_conditional_patch_sees_only_readable_bricks(client: FlaskClient, world: World) -> None:
    h = world.patient_headers()
    create(client, h, condition("hidden"))
    world.pair(world.alice, ["measurements.read", "measurements.write", "profile.write"])
    ops = [{"op": "add", "path": "/note", "value": [{"text": "x"}]}]
    response = patch(client, "/fhir/Condition?code=hidden", ops, world.app_headers())
    assert response.status_code == 404
    assert "hidden" not in response.get_data(as_text=True)


def test_a_write_only_app_conditional_create_learns_the_id_never_the_content(
    client: FlaskClient, world: World
) -> None:
    """If-None-Exist is a search "as the user" (http.html#ccreate): a feeder without read
    rights finds its duplicate (200 + Location, so it can reference it) but gets no body."""
    world.pair(world.alice, ["measurements.write"])
    app = {**world.app_headers(), "Content-Type": FHIR}
    h = {**world.patient_headers(), "Content-Type": FHIR}
    body = weight(70, "2026-01-02T08:00:00Z", world.alice.ins)
    body["identifier"] = [{"system": "urn:oid:1.2.3", "value": "W-1"}]
    body["note"] = [{"text": "private note of the patient"}]
    first = client.post("/fhir/Observation", json=body, headers=h)
    assert first.status_code == 201
    oid = first.get_json()["id"]
    again = client.post("/fhir/Observation", json=body,
                        headers={**app, "If-None-Exist": "identifier=urn:oid:1.2.3|W-1"})
    assert again.status_code == 200, again.get_json()
    assert again.headers["Location"].endswith(f"/Observation/{oid}")
    text = again.get_data(as_text=True)
    assert "private note" not in text and "valueQuantity" not in text
    assert again.get_json()["resourceType"] == "OperationOutcome"
    # the patient (who may read) gets the representation
    mine = client.post("/fhir/Observation", json=body,
                       headers={**h, "If-None-Exist": "identifier=urn:oid:1.2.3|W-1"})
    assert mine.status_code == 200 and mine.get_json()["id"] == oid
    assert mine.get_json()["note"][0]["text"] == "private note of the patient"
    # in a batch: the location, no resource
    batch = client.post("/fhir", json={"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": body, "request": {"method": "POST", "url": "Observation",
                                       "ifNoneExist": "identifier=urn:oid:1.2.3|W-1"}}]},
        headers=app).get_json()
    (entry,) = batch["entry"]
    assert entry["response"]["status"].startswith("200")
    assert entry["response"]["location"] == f"Observation/{oid}"
    assert "resource" not in entry
