"""Property: no caller ever reads another patient's data, over every interaction
(read, vread, search with _include and _revinclude, history at every level, AuditEvent,
Patient, Binary, DocumentReference) and every write attempt (update, patch, delete, their
conditional forms) leaves the other patient's data unchanged."""

from __future__ import annotations

from typing import Any

import pytest
from fhir_helpers import World, height, weight
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FHIR = "application/fhir+json"
SECRET = "SECRET-ALICE-7f3a"
TYPES = ["Observation", "Device", "Condition", "Consent", "Appointment", "AuditEvent",
         "Patient", "DocumentReference", "AllergyIntolerance", "Immunization",
         "CommunicationRequest"]


def seed_alice(client: FlaskClient, world: World) -> list[tuple[str, str]]:
    """Alice's data, written by Alice and by her paired app; returns (type, id) pairs."""
    world.pair(world.alice, ["measurements.read", "measurements.write", "profile.read"])
    h = {**world.patient_headers(), "Content-Type": FHIR}
    app = {**world.app_headers(), "Content-Type": FHIR}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Device", "id": "alice-scale",
                      "meta": {"profile": ["http://hl7.org/fhir/uv/phd/StructureDefinition/PhdDevice"]},
                      "identifier": [{"system": "urn:oid:1.2.3.4", "value": SECRET}]},
         "request": {"method": "POST", "url": "Device",
                     "ifNoneExist": f"identifier=urn:oid:1.2.3.4|{SECRET}"}},
        {"fullUrl": "urn:uuid:5f0c1c44-9d7e-4f35-9a6b-0b5c7b1d2e3f",
         "resource": weight(64, "2026-01-02T08:00:00Z", world.alice.ins,
                            device={"reference": "Device/alice-scale"}, note=[{"text": SECRET}]),
         "request": {"method": "POST", "url": "Observation"}}]}
    made = client.post("/fhir", json=bundle, headers=app).get_json()
    ids = [tuple(e["response"]["location"].split("/")[:2]) for e in made["entry"]]
    for resource in (
        height(165, "2026-01-01", world.alice.ins),
        {"resourceType": "Condition", "code": {"text": SECRET}},
        {"resourceType": "Immunization", "status": "completed", "vaccineCode": {"text": SECRET},
         "occurrenceDateTime": "2025-10-01"},
        {"resourceType": "Appointment", "status": "booked", "description": SECRET,
         "start": "2026-02-01T10:00:00Z", "end": "2026-02-01T10:30:00Z",
         "participant": [{"actor": {"display": "Dr X"}, "status": "accepted"}]},
    ):
        created = client.post(f"/fhir/{resource['resourceType']}", json=resource, headers=h)
        assert created.status_code == 201, created.get_json()
        ids.append((resource["resourceType"], created.get_json()["id"]))
    rid = ids[-1][1]
    client.put(f"/fhir/Appointment/{rid}", headers=h, json={
        **client.get(f"/fhir/Appointment/{rid}", headers=h).get_json(), "comment": SECRET})
    return [(str(t), str(i)) for t, i in ids]


def request_for(kind: str, rtype: str, target: tuple[str, str], world: World) -> tuple[str, str]:
    t, rid = target
    own_alice = world.alice
    return {
        "read": ("GET", f"/fhir/{t}/{rid}"),
        "vread": ("GET", f"/fhir/{t}/{rid}/_history/1"),
        "history-instance": ("GET", f"/fhir/{t}/{rid}/_history"),
        "history-type": ("GET", f"/fhir/{rtype}/_history"),
        "search": ("GET", f"/fhir/{rtype}?_count=100"),
        "include": ("GET", "/fhir/Observation?_include=Observation:device&_count=100"),
        "search-alice-patient": ("GET", f"/fhir/{rtype}?patient=Patient/{own_alice.space_id}"),
        "search-alice-idpe": ("GET", f"/fhir/Observation?subject.identifier=x|{own_alice.ins}"
                              "&code=29463-7&_sort=-date&_count=1&_include=Observation:device"),
        "patient": ("GET", f"/fhir/Patient/{own_alice.space_id}"),
        "patient-search": ("GET", f"/fhir/Patient?identifier={own_alice.ins}"),
        "bmi": ("GET", "/fhir/Observation?code=39156-5&_sort=-date&_count=1"),
        "binary": ("GET", f"/fhir/Binary/{rid}"),
        "delete": ("DELETE", f"/fhir/{t}/{rid}"),
        "update": ("PUT", f"/fhir/{t}/{rid}"),
        "patch": ("PATCH", f"/fhir/{t}/{rid}"),
        "conditional-patch": ("PATCH", f"/fhir/{t}?_id={rid}"),
        "conditional-delete": ("DELETE", f"/fhir/{t}?_id={rid}"),
        "revinclude": ("GET", f"/fhir/Patient?_id={own_alice.space_id}"
                       f"&_revinclude={t}:patient&_revinclude=Observation:subject"),
        "revinclude-all": ("GET", "/fhir/Patient?_revinclude=Observation:subject"
                           "&_revinclude=Condition:subject&_revinclude=Appointment:actor"
                           "&_revinclude=Device:patient&_revinclude=Immunization:patient"),
        "revinclude-device": ("GET", "/fhir/Device?_revinclude=Observation:device"
                              "&_revinclude=Consent:actor"),
    }[kind]


KINDS = ["read", "vread", "history-instance", "history-type", "search", "include",
         "search-alice-patient", "search-alice-idpe", "patient", "patient-search", "bmi",
         "binary", "delete", "update", "patch", "conditional-patch", "conditional-delete",
         "revinclude", "revinclude-all", "revinclude-device"]


@pytest.mark.slow
def test_no_caller_reads_another_patients_data(client: FlaskClient, world: World) -> None:
    targets = seed_alice(client, world)
    h_alice = world.patient_headers()
    before = {t: client.get(f"/fhir/{t[0]}/{t[1]}", headers=h_alice).get_json() for t in targets}
    world.pair(world.bob, ["measurements.read", "measurements.write", "profile.read",
                           "profile.write", "agenda.read", "agenda.write", "documents.read"])
    callers = {
        "bob": world.patient_headers(world.bob),
        "bob-app": world.app_headers(world.bob),
        "unpaired-app-for-bob": world.app_headers(world.bob, app_id="other-app"),
    }
    secrets = [SECRET, world.alice.ins, world.alice.space_id] + [rid for _, rid in targets]
    # values put in requests on Bob's space (by Bob or his apps) come back in Bob's trace
    echoed: set[str] = set()

    @settings(max_examples=80, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.sampled_from(sorted(callers)), st.sampled_from(KINDS), st.sampled_from(TYPES),
           st.sampled_from(targets))
    def check(caller: str, kind: str, rtype: str, target: tuple[str, str]) -> None:
        method, url = request_for(kind, rtype, target, world)
        echoed.update(s for s in secrets if s in url)
        headers = dict(callers[caller])
        body: Any = None
        if method == "PUT":
            body = {**before[target], "id": target[1]}
            headers["Content-Type"] = FHIR
        if method == "PATCH":
            body = [{"op": "add", "path": "/language", "value": "fr"}]
            headers["Content-Type"] = "application/json-patch+json"
        response = client.open(url, method=method, json=body, headers=headers)
        text = response.get_data(as_text=True)
        nothing_matched = "?" in url and response.status_code == 204  # conditional delete
        if response.status_code < 400 and method in ("PUT", "DELETE", "PATCH") and \
                not nothing_matched:
            raise AssertionError(f"{caller} changed alice's data with {method} {url}")
        for secret in secrets:
            if secret in url or (rtype == "AuditEvent" and secret in echoed):
                continue  # the caller's own request, echoed back to it, is no leak
            assert secret not in text, (caller, method, url, response.status_code)

    check()
    after = {t: client.get(f"/fhir/{t[0]}/{t[1]}", headers=h_alice).get_json() for t in targets}
    assert after == before
