"""Medical profile and agenda bricks: the resource mapping, who may read and write,
notifications (vaccination added, appointment the day before, reminder at its time),
prevention recommendations."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fhir_helpers import World
from flask.testing import FlaskClient
from sqlalchemy import select

from espace.agenda import due_agenda_notifications, recommendations
from espace.models import NotificationOutbox

FHIR = "application/fhir+json"
LOINC = "http://loinc.org"

PROFILE = [
    {"resourceType": "Condition", "code": {"text": "Hypertension"},
     "onsetDateTime": "2020-01-01", "note": [{"text": "suivie"}]},
    {"resourceType": "MedicationStatement", "status": "active",
     "medicationCodeableConcept": {"text": "Amlodipine"},
     "effectivePeriod": {"start": "2020-02-01"},
     "dosage": [{"text": "5 mg le matin"}]},
    {"resourceType": "Procedure", "status": "completed", "code": {"text": "Appendicectomie"},
     "performedPeriod": {"start": "2010-06-01", "end": "2010-06-04"},
     "note": [{"text": "sans complication"}]},
    {"resourceType": "Observation", "status": "final",
     "code": {"coding": [{"system": LOINC, "code": "72166-2",
                          "display": "Tobacco smoking status"}]},
     "valueCodeableConcept": {"text": "Non fumeur"}},
    {"resourceType": "Observation", "status": "final",
     "code": {"coding": [{"system": LOINC, "code": "882-1", "display": "ABO and Rh group"}]},
     "valueCodeableConcept": {"text": "O+"}},
    {"resourceType": "AllergyIntolerance", "code": {"text": "Pénicilline"},
     "reaction": [{"manifestation": [{"text": "urticaire"}]}]},
    {"resourceType": "FamilyMemberHistory", "status": "completed",
     "relationship": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
                                  "code": "FTH"}]},
     "condition": [{"code": {"text": "Diabète de type 2"}}]},
    {"resourceType": "RelatedPerson",
     "relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0131",
                                   "code": "C"}]}],
     "name": [{"family": "Martin", "given": ["Paul"]}],
     "telecom": [{"system": "phone", "value": "0600000000"}]},
    {"resourceType": "Consent", "status": "active",
     "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                           "code": "adr"}]},
     "category": [{"coding": [{"system": LOINC, "code": "75320-2",
                               "display": "Advance directive"}]}],
     "sourceAttachment": {"title": "Directives anticipées"}},
    {"resourceType": "CareTeam", "status": "active",
     "participant": [{"member": {"display": "Dr Durand (médecin traitant)"}}]},
]


def test_profile_resources_by_patient_and_apps(client: FlaskClient, world: World) -> None:
    h = {**world.patient_headers(), "Content-Type": FHIR}
    for resource in PROFILE:
        created = client.post(f"/fhir/{resource['resourceType']}", json=resource, headers=h)
        assert created.status_code == 201, (resource["resourceType"], created.get_json())
    world.pair(world.alice, ["profile.read"])
    app = {**world.app_headers(), "Content-Type": FHIR}
    assert client.get("/fhir/Condition", headers=app).get_json()["total"] == 1
    smoking = client.get("/fhir/Observation?code=72166-2", headers=app)
    assert smoking.status_code == 200 and smoking.get_json()["total"] == 1
    refused = client.post("/fhir/Condition", json=PROFILE[0], headers=app)
    assert refused.status_code == 403
    assert refused.get_json()["issue"][0]["diagnostics"] == "Consent not given, access refused."
    assert client.get("/fhir/Observation?code=29463-7", headers=app).status_code == 403
    # the advance directive is a profile Consent: apps with profile.read see it, not pairings
    consents = client.get("/fhir/Consent", headers=app).get_json()
    assert consents["total"] == 1


def test_vaccination_is_notified(client: FlaskClient, world: World) -> None:
    h = {**world.patient_headers(), "Content-Type": FHIR}
    created = client.post("/fhir/Immunization", headers=h, json={
        "resourceType": "Immunization", "status": "completed",
        "vaccineCode": {"text": "Grippe"}, "occurrenceDateTime": "2025-10-15",
        "lotNumber": "AB123", "performer": [{"actor": {"display": "Pharmacie du centre"}}]})
    assert created.status_code == 201
    with world.espace.session_factory() as session:
        rows = session.execute(select(NotificationOutbox.category)).scalars().all()
    assert "vaccination_added" in rows
    found = client.get("/fhir/Immunization?lot-number=ab1", headers=h).get_json()
    assert found["total"] == 1


def test_agenda_notifications(client: FlaskClient, world: World) -> None:
    h = {**world.patient_headers(), "Content-Type": FHIR}
    now = world.clock.now()
    tomorrow = now + timedelta(hours=23)
    later = now + timedelta(days=3)
    for start in (tomorrow, later):
        response = client.post("/fhir/Appointment", headers=h, json={
            "resourceType": "Appointment", "status": "booked", "description": "Cardiologue",
            "start": start.isoformat(), "end": (start + timedelta(minutes=30)).isoformat(),
            "participant": [{"actor": {"display": "Dr Cœur, 1 rue de la Paix, Paris"},
                             "status": "accepted"}],
            "comment": "apporter l'ECG"})
        assert response.status_code == 201, response.get_json()
    reminder_at = now + timedelta(hours=2)
    assert client.post("/fhir/CommunicationRequest", headers=h, json={
        "resourceType": "CommunicationRequest", "status": "active",
        "payload": [{"contentString": "Prendre la tension"}],
        "occurrenceDateTime": reminder_at.isoformat()}).status_code == 201
    assert due_agenda_notifications(world.espace) == 1  # tomorrow's appointment only
    assert due_agenda_notifications(world.espace) == 0  # idempotent
    world.clock.advance(timedelta(hours=2))
    assert due_agenda_notifications(world.espace) == 1  # the reminder is due now
    with world.espace.session_factory() as session:
        bodies = session.execute(select(NotificationOutbox.body).where(
            NotificationOutbox.category == "agenda")).scalars().all()
    assert any("Cardiologue" in b for b in bodies)
    assert any("Prendre la tension" in b for b in bodies)
    found = client.get(f"/fhir/Appointment?date=ge{later.date().isoformat()}",
                       headers=h).get_json()
    assert found["total"] == 1


def test_prevention_recommendations_by_age_and_sex() -> None:
    woman_52 = {r.id for r in recommendations(date(1974, 3, 1), "F", date(2026, 6, 1))}
    assert {"depistage-cancer-sein", "depistage-cancer-colorectal"} <= woman_52
    assert "depistage-col-uterus-hpv" not in woman_52  # 52 - 30 is not a multiple of 5
    man_52 = {r.id for r in recommendations(date(1974, 3, 1), "M", date(2026, 6, 1))}
    assert "depistage-cancer-sein" not in man_52
    senior = {r.id for r in recommendations(date(1950, 1, 1), "M", date(2026, 6, 1))}
    assert {"vaccin-grippe", "vaccin-zona", "vaccin-vrs"} <= senior
    teen: list[Any] = recommendations(date(2013, 1, 1), "F", date(2026, 6, 1))
    assert {r.id for r in teen} == {"vaccin-hpv", "vaccin-meningocoques-acwy"}


def test_app_reads_and_deletes_profile_observation_by_id(client: FlaskClient,
                                                         world: World) -> None:
    world.pair(world.alice, ["profile.read", "profile.write"])
    app = {**world.app_headers(), "Content-Type": FHIR}
    created = client.post("/fhir/Observation", json=PROFILE[4], headers=app)
    assert created.status_code == 201, created.get_json()
    rid = created.get_json()["id"]
    assert client.get(f"/fhir/Observation/{rid}", headers=app).status_code == 200
    assert client.get(f"/fhir/Observation/{rid}/_history/1", headers=app).status_code == 200
    assert client.delete(f"/fhir/Observation/{rid}", headers=app).status_code == 204


def test_gap_conditional_update_of_an_appointment(client: FlaskClient, world: World) -> None:
    h = {**world.patient_headers(), "Content-Type": FHIR}
    body = {"resourceType": "Appointment", "status": "booked", "description": "Kiné",
            "identifier": [{"system": "urn:oid:1.2.250.1.999.60", "value": "RDV-1"}],
            "start": "2026-02-01T10:00:00Z", "end": "2026-02-01T10:30:00Z",
            "participant": [{"actor": {"display": "Cabinet de kinésithérapie"},
                             "status": "accepted"}]}
    url = "/fhir/Appointment?identifier=urn:oid:1.2.250.1.999.60|RDV-1"
    first = client.put(url, json=body, headers=h)
    assert first.status_code == 201, first.get_json()
    second = client.put(url, json={**body, "status": "cancelled"}, headers=h)
    assert second.status_code == 200
    assert second.get_json()["id"] == first.get_json()["id"]
    assert second.get_json()["meta"]["versionId"] == "2"
    assert client.get("/fhir/Appointment", headers=h).get_json()["total"] == 1
