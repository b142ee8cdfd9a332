"""FHIR R4 conditional update and conditional delete (http.html#cond-update, #cdelete):
no match, one match, several matches (412), in the URL and in Bundles; scoped to the caller's
space and readable bricks; traced."""

from __future__ import annotations

from typing import Any

from fhir_helpers import World
from flask.testing import FlaskClient
from sqlalchemy import select

from espace.models import TraceRecord

FHIR = "application/fhir+json"
SNOMED = "http://snomed.info/sct"


def condition(code: str, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Condition",
            "code": {"coding": [{"system": SNOMED, "code": code}], "text": code}, **extra}


def create(client: FlaskClient, h: dict[str, str], resource: dict[str, Any]) -> str:
    response = client.post(f"/fhir/{resource['resourceType']}", json=resource,
                           headers={**h, "Content-Type": FHIR})
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["id"])


def total(client: FlaskClient, h: dict[str, str], query: str = "") -> int:
    return int(client.get(f"/fhir/Condition?_summary=count{query}", headers=h).get_json()["total"])


def test_conditional_delete_none_one_several(client: FlaskClient, world: World) -> None:
    h = world.patient_headers()
    one = create(client, h, condition("one"))
    create(client, h, condition("twin"))
    create(client, h, condition("twin"))
    none = client.delete(f"/fhir/Condition?code={SNOMED}|nothing", headers=h)
    assert none.status_code == 204 and none.get_data() == b""
    several = client.delete("/fhir/Condition?code=twin", headers=h)
    assert several.status_code == 412
    assert several.get_json()["issue"][0]["code"] == "multiple-matches"
    assert total(client, h) == 3
    deleted = client.delete(f"/fhir/Condition?code={SNOMED}|one", headers=h)
    assert deleted.status_code == 204
    assert client.get(f"/fhir/Condition/{one}", headers=h).status_code == 410
    assert total(client, h) == 2
    history = client.get(f"/fhir/Condition/{one}/_history", headers=h).get_json()
    assert history["entry"][0]["request"]["method"] == "DELETE"
    assert client.delete("/fhir/Condition", headers=h).status_code == 400  # no criteria
    assert client.delete("/fhir/Condition?bogus=1", headers=h).status_code == 400
    assert client.delete("/fhir/Condition?code=twin&_include=Condition:x",
                         headers=h).status_code == 400
    assert client.delete("/fhir/Patient?_id=x", headers=h).status_code == 405
    with world.espace.session_factory() as session:
        traced = session.execute(
            select(TraceRecord.outcome, TraceRecord.target_id)
            .where(TraceRecord.event_type == "rest.delete").order_by(TraceRecord.id)
        ).all()
    assert [tuple(t) for t in traced][:3] == [
        ("success", ""), ("failure", ""), ("success", one)]


def test_conditional_delete_never_reaches_another_patient(
    client: FlaskClient, world: World
) -> None:
    h_alice = world.patient_headers()
    rid = create(client, h_alice, condition("alice-only"))
    h_bob = world.patient_headers(world.bob)
    for query in ("code=alice-only", f"_id={rid}",
                  f"patient=Patient/{world.alice.space_id}&code=alice-only"):
        response = client.delete(f"/fhir/Condition?{query}", headers=h_bob)
        assert response.status_code == 204, query  # nothing matched in Bob's space
    assert client.get(f"/fhir/Condition/{rid}", headers=h_alice).status_code == 200


def test_conditional_delete_of_app_data(client: FlaskClient, world: World) -> None:
    world.pair(world.alice, ["profile.read", "profile.write"])
    app = world.app_headers()
    h = world.patient_headers()
    mine = create(client, app, condition("by-app"))
    create(client, h, condition("by-patient"))
    refused = client.delete("/fhir/Condition?code=by-patient", headers=app)
    assert refused.status_code == 403  # apps delete only the data they wrote
    assert client.delete("/fhir/Condition?code=by-app", headers=app).status_code == 204
    assert client.get(f"/fhir/Condition/{mine}", headers=h).status_code == 410
    assert total(client, h) == 1
    world.pair(world.alice, ["profile.write"])  # write without read: the search sees nothing
    create(client, app, condition("blind"))
    assert client.delete("/fhir/Condition?code=blind", headers=app).status_code == 204
    assert total(client, h, "&code=blind") == 1


def test_conditional_update_none_one_several(client: FlaskClient, world: World) -> None:
    h = {**world.patient_headers(), "Content-Type": FHIR}
    created = client.put("/fhir/Condition?code=new", json=condition("new"), headers=h)
    assert created.status_code == 201, created.get_json()
    rid = created.get_json()["id"]
    updated = client.put("/fhir/Condition?code=new", json=condition("new", note=[{"text": "2"}]),
                         headers={**h, "If-Match": 'W/"1"'})
    assert updated.status_code == 200, updated.get_json()
    assert updated.get_json()["id"] == rid and updated.headers["ETag"] == 'W/"2"'
    stale = client.put("/fhir/Condition?code=new", json=condition("new"),
                       headers={**h, "If-Match": 'W/"1"'})
    assert stale.status_code == 412
    create(client, h, condition("new"))
    several = client.put("/fhir/Condition?code=new", json=condition("new"), headers=h)
    assert several.status_code == 412
    assert total(client, h) == 2


def test_conditional_delete_and_update_in_a_transaction(client: FlaskClient,
                                                         world: World) -> None:
    h = {**world.patient_headers(), "Content-Type": FHIR}
    gone = create(client, h, condition("gone"))
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "DELETE", "url": "Condition?code=gone"}},
        {"resource": condition("kept"), "request": {"method": "PUT", "url": "Condition?code=kept"}},
    ]}
    response = client.post("/fhir", json=bundle, headers=h)
    assert response.status_code == 200, response.get_json()
    assert [e["response"]["status"] for e in response.get_json()["entry"]] == [
        "204 No Content", "201 Created"]
    assert client.get(f"/fhir/Condition/{gone}", headers=h).status_code == 410
    create(client, h, condition("twin"))
    create(client, h, condition("twin"))
    failing = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": condition("never"), "request": {"method": "POST", "url": "Condition"}},
        {"request": {"method": "DELETE", "url": "Condition?code=twin"}},
    ]}
    refused = client.post("/fhir", json=failing, headers=h)
    assert refused.status_code == 412
    assert total(client, h, "&code=never") == 0
    assert total(client, h, "&code=twin") == 2
