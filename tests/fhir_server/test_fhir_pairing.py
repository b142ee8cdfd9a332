"""App pairing (OAuth2 authorization code + PKCE), consent withdrawal, and the DONE scenario:
a paired app posts a weight and a height, reads a computed BMI in "last" mode, loses access
the moment the patient withdraws the consent, and every step is in the AuditEvent trace."""

from __future__ import annotations

import base64
import hashlib
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fhir_helpers import APP_ID, REDIRECT, World, height, weight
from flask.testing import FlaskClient

FHIR = "application/fhir+json"
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-and-some-more-entropy"


def challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(
        b"=").decode()


def pair_via_oauth(client: FlaskClient, world: World, scope: str) -> str:
    """Run the authorization-code flow; return the app's access token."""
    approved = client.post("/oauth/authorize", headers=world.patient_headers(), data={
        "response_type": "code", "client_id": APP_ID, "redirect_uri": REDIRECT,
        "scope": scope, "state": "xyz", "code_challenge": challenge(VERIFIER),
        "code_challenge_method": "S256"})
    assert approved.status_code == 302, approved.get_json()
    location = urlsplit(approved.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    query = parse_qs(location.query)
    assert query["state"] == ["xyz"]
    token = client.post("/oauth/token", data={
        "grant_type": "authorization_code", "code": query["code"][0],
        "redirect_uri": REDIRECT, "client_id": APP_ID, "code_verifier": VERIFIER})
    assert token.status_code == 200, token.get_json()
    body = token.get_json()
    assert body["token_type"] == "Bearer" and body["patient"] == world.alice.ins
    assert token.headers["Cache-Control"] == "no-store"
    reused = client.post("/oauth/token", data={
        "grant_type": "authorization_code", "code": query["code"][0],
        "redirect_uri": REDIRECT, "client_id": APP_ID, "code_verifier": VERIFIER})
    assert reused.status_code == 400 and reused.get_json()["error"] == "invalid_grant"
    return str(body["access_token"])


def bundle_of(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": f"urn:uuid:0000000{i}-0000-4000-8000-000000000000", "resource": r,
         "request": {"method": "POST", "url": "Observation"}} for i, r in enumerate(resources)]}


def test_done_scenario(client: FlaskClient, world: World) -> None:
    token = pair_via_oauth(client, world, "measurements.read measurements.write")
    app = {"Authorization": f"Bearer {token}", "Content-Type": FHIR}
    ins = world.alice.ins
    # 1. the paired app posts a weight and a height
    posted = client.post("/fhir", json=bundle_of(weight(72.9, "2026-01-04T07:30:00+01:00", ins),
                                                 height(175, "2026-01-03T07:30:00+01:00", ins)),
                         headers=app)
    assert posted.status_code == 200, posted.get_json()
    # 2. it reads back the computed BMI in "last" mode
    last = client.get(f"/fhir/Observation?subject.identifier=urn:oid:1.2.250.1.213.1.4.8|{ins}"
                      "&code=39156-5&_sort=-date&_count=1", headers=app)
    assert last.status_code == 200, last.get_json()
    bmi = last.get_json()["entry"][0]["resource"]
    assert bmi["valueQuantity"]["value"] == round(72.9 / 1.75 ** 2, 1)
    assert bmi["valueQuantity"]["code"] == "kg/m2"
    # 3. the patient withdraws the consent: the app's very next call is refused
    consents = client.get("/fhir/Consent?category=app-pairing",
                          headers=world.patient_headers()).get_json()
    assert consents["total"] == 1
    consent = consents["entry"][0]["resource"]
    withdrawn = client.put(f"/fhir/Consent/{consent['id']}",
                           json={**consent, "status": "inactive"},
                           headers={**world.patient_headers(), "Content-Type": FHIR})
    assert withdrawn.status_code == 200, withdrawn.get_json()
    refused = client.get("/fhir/Observation?code=39156-5&_sort=-date&_count=1", headers=app)
    assert refused.status_code == 403
    assert refused.get_json()["issue"][0]["diagnostics"] == "Consent not given, access refused."
    # 4. each step is in the patient's AuditEvent trace
    trace = client.get("/fhir/AuditEvent?_count=100", headers=world.patient_headers()).get_json()
    events = [e["resource"] for e in trace["entry"]]
    subtypes = [(e.get("subtype", [{}])[0].get("code"), e["outcome"],
                 e["agent"][0]["who"]["identifier"]["value"]) for e in events]
    assert ("search-type", "8", APP_ID) in subtypes  # the refused read, outcome 8 (denied)
    assert ("update", "0", ins) in subtypes  # the withdrawal by the patient
    assert ("search-type", "0", APP_ID) in subtypes  # the BMI read
    assert ("transaction", "0", APP_ID) in subtypes  # the feeding
    kinds = {e["type"]["code"] for e in events}
    assert "oauth.authorize" in kinds and "oauth.token" in kinds
    denied = next(e for e in events if e["outcome"] == "8")
    assert "app_purpose_not_consented" in denied["outcomeDesc"]
    from fhir_server.models import validate

    for event in events:
        validate(event, "AuditEvent")


def test_unpair_endpoint_and_delete_consent(client: FlaskClient, world: World) -> None:
    token = pair_via_oauth(client, world, "profile.read")
    app = {"Authorization": f"Bearer {token}"}
    assert client.get("/fhir/Condition", headers=app).status_code == 200
    assert client.delete(f"/oauth/pairings/{APP_ID}",
                         headers=world.patient_headers()).status_code == 204
    assert client.get("/fhir/Condition", headers=app).status_code == 403
    assert client.delete(f"/oauth/pairings/{APP_ID}",
                         headers=world.patient_headers()).status_code == 404


def test_delete_consent_withdraws(client: FlaskClient, world: World) -> None:
    token = pair_via_oauth(client, world, "agenda.read")
    app = {"Authorization": f"Bearer {token}"}
    assert client.get("/fhir/Appointment", headers=app).status_code == 200
    consent = client.get("/fhir/Consent", headers=world.patient_headers()).get_json()
    rid = consent["entry"][0]["resource"]["id"]
    assert client.delete(f"/fhir/Consent/{rid}", headers=world.patient_headers()).status_code \
        == 204
    assert client.get("/fhir/Appointment", headers=app).status_code == 403


def test_dereferenced_app_loses_access_at_once(client: FlaskClient, world: World) -> None:
    token = pair_via_oauth(client, world, "agenda.read")
    app = {"Authorization": f"Bearer {token}"}
    assert client.get("/fhir/Appointment", headers=app).status_code == 200
    from espace.models import ReferencedApp

    with world.espace.session_factory() as session:
        row = session.get(ReferencedApp, APP_ID)
        assert row is not None
        row.status = "dereferenced"
        session.commit()
    assert client.get("/fhir/Appointment", headers=app).status_code == 403


def test_authorize_refusals(client: FlaskClient, world: World) -> None:
    base = {"response_type": "code", "client_id": APP_ID, "redirect_uri": REDIRECT,
            "scope": "measurements.read", "code_challenge": challenge(VERIFIER),
            "code_challenge_method": "S256"}
    patient = world.patient_headers()
    assert client.post("/oauth/authorize", data=base).status_code == 401
    assert client.post("/oauth/authorize", headers=world.app_headers(),
                       data=base).status_code == 403
    bad_redirect = client.post("/oauth/authorize", headers=patient,
                               data={**base, "redirect_uri": "https://evil.example/cb"})
    assert bad_redirect.status_code == 400
    assert bad_redirect.get_json()["error"] == "invalid_request"
    mailbox = client.post("/oauth/authorize", headers=patient,
                          data={**base, "scope": "mailbox.read"})
    assert mailbox.status_code == 400
    no_pkce = client.post("/oauth/authorize", headers=patient,
                          data={**base, "code_challenge_method": "plain"})
    assert no_pkce.status_code == 302 and "error=invalid_request" in no_pkce.headers["Location"]
    # nothing was paired by the refused requests
    assert client.get("/fhir/Consent", headers=patient).get_json()["total"] == 0


def test_wrong_verifier_is_invalid_grant(client: FlaskClient, world: World) -> None:
    approved = client.post("/oauth/authorize", headers=world.patient_headers(), data={
        "response_type": "code", "client_id": APP_ID, "redirect_uri": REDIRECT,
        "scope": "measurements.read", "code_challenge": challenge(VERIFIER),
        "code_challenge_method": "S256"})
    code = parse_qs(urlsplit(approved.headers["Location"]).query)["code"][0]
    token = client.post("/oauth/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
        "client_id": APP_ID, "code_verifier": VERIFIER + "x"})
    assert token.status_code == 400 and token.get_json()["error"] == "invalid_grant"


def test_app_data_is_tagged_deletable_not_editable_by_patient(client: FlaskClient,
                                                              world: World) -> None:
    world.pair(world.alice, ["profile.read", "profile.write"])
    app = {**world.app_headers(), "Content-Type": FHIR}
    created = client.post("/fhir/AllergyIntolerance", headers=app, json={
        "resourceType": "AllergyIntolerance", "code": {"text": "Pénicilline"}})
    assert created.status_code == 201, created.get_json()
    resource = created.get_json()
    assert resource["meta"]["source"].endswith("1.2.250.1.999.42")
    patient = {**world.patient_headers(), "Content-Type": FHIR}
    edit = client.put(f"/fhir/AllergyIntolerance/{resource['id']}", headers=patient,
                      json={**resource, "code": {"text": "Amoxicilline"}})
    assert edit.status_code == 403
    other = {**world.app_headers(app_id="other-app"), "Content-Type": FHIR}
    world.pair(world.alice, ["profile.read", "profile.write"], app_id="other-app")
    assert client.delete(f"/fhir/AllergyIntolerance/{resource['id']}",
                         headers=other).status_code == 403
    assert client.delete(f"/fhir/AllergyIntolerance/{resource['id']}",
                         headers=patient).status_code == 204
