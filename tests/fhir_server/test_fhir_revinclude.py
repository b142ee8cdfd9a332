"""``_revinclude`` (FHIR R4 search.html#revinclude): what it adds, and that it never adds
another patient's data nor a brick the caller may not read (BOLA)."""

from __future__ import annotations

from typing import Any

import pytest
from fhir_helpers import World, weight
from flask.testing import FlaskClient

FHIR = "application/fhir+json"
SECRET = "BOB-SECRET-91c2"
DEVICE = {"resourceType": "Device",
          "identifier": [{"system": "urn:oid:1.2.3.4", "value": "scale-1"}]}


def create(client: FlaskClient, h: dict[str, str], resource: dict[str, Any]) -> str:
    response = client.post(f"/fhir/{resource['resourceType']}", json=resource,
                           headers={**h, "Content-Type": FHIR})
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["id"])


def entries(bundle: dict[str, Any], mode: str) -> list[tuple[str, str]]:
    return sorted((e["resource"]["resourceType"], e["resource"]["id"])
                  for e in bundle.get("entry", []) if e["search"]["mode"] == mode)


@pytest.fixture
def seeded(client: FlaskClient, world: World) -> dict[str, str]:
    """Alice: a device, a weight measured with it, a profile Observation, a Condition, an
    Appointment. Bob: an Observation pointing at Alice's device id, a Condition."""
    h = world.patient_headers()
    ids = {
        "device": create(client, h, DEVICE),
        "condition": create(client, h, {"resourceType": "Condition", "code": {"text": "c"}}),
        "blood": create(client, h, {
            "resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "882-1"}]},
            "valueString": "A+"}),
        "appointment": create(client, h, {
            "resourceType": "Appointment", "status": "booked", "start": "2026-02-01T10:00:00Z",
            "end": "2026-02-01T10:30:00Z",
            "participant": [{"actor": {"display": "Dr X"}, "status": "accepted"}]}),
    }
    ids["weight"] = create(client, h, weight(64, "2026-01-02T08:00:00Z", world.alice.ins,
                                             device={"reference": f"Device/{ids['device']}"}))
    hb = world.patient_headers(world.bob)
    ids["bob_weight"] = create(client, hb, weight(
        90, "2026-01-02T08:00:00Z", world.bob.ins,
        device={"reference": f"Device/{ids['device']}"}, note=[{"text": SECRET}]))
    ids["bob_condition"] = create(client, hb, {"resourceType": "Condition",
                                               "code": {"text": SECRET}})
    return ids


def test_patient_revinclude(client: FlaskClient, world: World, seeded: dict[str, str]) -> None:
    h = world.patient_headers()
    bundle = client.get(
        f"/fhir/Patient?_id={world.alice.space_id}&_revinclude=Observation:subject"
        "&_revinclude=Condition:patient&_revinclude=Appointment:actor", headers=h).get_json()
    assert entries(bundle, "match") == [("Patient", world.alice.space_id)]
    assert entries(bundle, "include") == sorted([
        ("Observation", seeded["weight"]), ("Observation", seeded["blood"]),
        ("Condition", seeded["condition"]), ("Appointment", seeded["appointment"])])
    assert bundle["total"] == 1
    assert "_revinclude=Observation%3Asubject" in bundle["link"][0]["url"]
    assert SECRET not in str(bundle)


def test_device_revinclude_by_reference(client: FlaskClient, world: World,
                                        seeded: dict[str, str]) -> None:
    h = world.patient_headers()
    bundle = client.get("/fhir/Device?_revinclude=Observation:device", headers=h).get_json()
    assert entries(bundle, "match") == [("Device", seeded["device"])]
    # Bob's Observation names Alice's device id: it stays out (another space)
    assert entries(bundle, "include") == [("Observation", seeded["weight"])]
    none = client.get("/fhir/Device?identifier=nothing&_revinclude=Observation:device",
                      headers=h).get_json()
    assert "entry" not in none


def test_revinclude_never_shows_another_patients_data(
    client: FlaskClient, world: World, seeded: dict[str, str]
) -> None:
    world.pair(world.bob, ["measurements.read", "profile.read", "agenda.read"])
    callers = [world.patient_headers(world.bob), world.app_headers(world.bob)]
    # (Alice's device id is in Bob's own Observation, which Bob wrote: not a secret to him)
    secrets = {v for k, v in seeded.items() if not k.startswith("bob") and k != "device"}
    secrets |= {world.alice.space_id, world.alice.ins}
    urls = [
        f"/fhir/Patient?_id={world.alice.space_id}&_revinclude=Observation:subject",
        f"/fhir/Patient?identifier={world.alice.ins}&_revinclude=Condition:subject",
        f"/fhir/Device?_id={seeded['device']}&_revinclude=Observation:device",
        "/fhir/Device?_revinclude=Observation:device",
        "/fhir/Patient?_revinclude=Observation:subject&_revinclude=Condition:subject"
        "&_revinclude=Appointment:patient&_revinclude=Device:patient",
    ]
    for h in callers:
        for url in urls:
            response = client.get(url, headers=h)
            assert response.status_code == 200, (url, response.get_json())
            text = response.get_data(as_text=True)
            leaked = [i for i in secrets if i in text and i not in url]
            assert not leaked, (url, leaked)
            assert "search\":{\"mode\":\"include" not in text.replace(" ", "") or \
                "Patient?_revinclude" in url, url  # only Bob's own Patient search includes
    # Bob's own Patient search includes Bob's data only
    own = client.get("/fhir/Patient?_revinclude=Observation:subject"
                     "&_revinclude=Condition:subject", headers=callers[0]).get_json()
    assert entries(own, "include") == sorted([
        ("Observation", seeded["bob_weight"]), ("Condition", seeded["bob_condition"])])


def test_revinclude_respects_the_readable_bricks(client: FlaskClient, world: World,
                                                 seeded: dict[str, str]) -> None:
    world.pair(world.alice, ["profile.read"])  # not the measurements
    bundle = client.get("/fhir/Patient?_revinclude=Observation:subject",
                        headers=world.app_headers()).get_json()
    assert entries(bundle, "include") == [("Observation", seeded["blood"])]
    world.pair(world.alice, ["measurements.read"])  # Patient is profile data: refused
    assert client.get("/fhir/Patient?_revinclude=Observation:subject",
                      headers=world.app_headers()).status_code == 403
    world.pair(world.alice, ["measurements.read", "profile.read"])
    device = client.get("/fhir/Device?_revinclude=Consent:actor",
                        headers=world.app_headers()).get_json()
    assert entries(device, "include") == []  # pairings (consents brick) are the patient's


@pytest.mark.parametrize("query", [
    "Patient?_revinclude=AuditEvent:patient",
    "Patient?_revinclude=DocumentReference:subject",
    "Patient?_revinclude=Observation",
    "Patient?_revinclude=Observation:device",
    "Patient?_revinclude:iterate=Observation:subject",
    "Condition?_revinclude=Observation:subject",
    "AuditEvent?_revinclude=Observation:subject",
    "DocumentReference?_revinclude=Observation:subject",
    "Observation?code=39156-5&_revinclude=Consent:actor",
])
def test_unsupported_revincludes_are_400(client: FlaskClient, world: World, query: str) -> None:
    response = client.get(f"/fhir/{query}", headers=world.patient_headers())
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_revinclude_is_capped(client: FlaskClient, world: World,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    from fhir_server import repository

    monkeypatch.setattr(repository, "MAX_REVINCLUDE", 2)
    h = world.patient_headers()
    for n in range(3):
        create(client, h, {"resourceType": "Condition", "code": {"text": f"c{n}"}})
    bundle = client.get("/fhir/Patient?_revinclude=Condition:subject", headers=h).get_json()
    assert len(entries(bundle, "include")) == 2
    outcome = [e for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert outcome[0]["resource"]["issue"][0]["code"] == "too-costly"
