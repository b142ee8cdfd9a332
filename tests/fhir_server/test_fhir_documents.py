"""DMP documents over FHIR (MHD / PDSm): ITI-65 submission by the patient, ITI-67 search,
ITI-68 Binary, on the same store and through the same visibility predicate as XDS."""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import timedelta
from typing import Any

from fhir_helpers import World
from flask.testing import FlaskClient

from espace.models import DocumentEntryRow
from espace.registry import FIND_DOCUMENTS, RegistryConfig, StoredQueryRequest, run_stored_query
from espace.trace import Source
from habilitation.model import Action, Actor, ActorKind, AuthenticationMode

FHIR = "application/fhir+json"
TEXT = "Compte rendu de consultation déposé par le patient.".encode()
OID = "urn:oid:"


def provide_bundle(ins: str, data: bytes = TEXT) -> dict[str, Any]:
    doc_url, bin_url = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "request": {"method": "POST", "url": "List"},
         "resource": {
             "resourceType": "List", "status": "current", "mode": "working",
             "code": {"coding": [{"system": "https://profiles.ihe.net/ITI/MHD/CodeSystem/"
                                            "MHDlistTypes", "code": "submissionset"}]},
             "subject": {"reference": f"Patient?identifier=urn:oid:1.2.250.1.213.1.4.8|{ins}"},
             "date": "2026-01-05T09:00:00+01:00",
             "extension": [
                 {"url": "https://profiles.ihe.net/ITI/MHD/StructureDefinition/ihe-sourceId",
                  "valueIdentifier": {"value": "urn:oid:1.2.250.1.999.42"}},
                 {"url": "https://profiles.ihe.net/ITI/MHD/StructureDefinition/"
                         "ihe-designationType",
                  "valueCodeableConcept": {"coding": [{"system": OID + "1.2.250.1.213.1.1.4.6",
                                                       "code": "EXP_PATIENT"}]}}],
             "entry": [{"item": {"reference": doc_url}}]}},
        {"fullUrl": doc_url, "request": {"method": "POST", "url": "DocumentReference"},
         "resource": {
             "resourceType": "DocumentReference", "status": "current",
             "masterIdentifier": {"system": "urn:ietf:rfc:3986",
                                  "value": f"urn:oid:2.25.{uuid.uuid4().int}"},
             "type": {"coding": [{"system": OID + "1.2.250.1.213.1.1.4.12",
                                  "code": "DOCPAT03"}]},
             "category": [{"coding": [{"system": OID + "1.2.250.1.213.1.1.4.1", "code": "10"}]}],
             "subject": {"reference": f"Patient?identifier=urn:oid:1.2.250.1.213.1.4.8|{ins}"},
             "securityLabel": [{"coding": [{
                 "system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
                 "code": "N"}]}],
             "content": [{"attachment": {
                 "contentType": "text/plain", "language": "fr-FR", "url": bin_url,
                 "size": len(data),
                 "hash": base64.b64encode(hashlib.sha1(data).digest()).decode(),  # noqa: S324
                 "title": "CR déposé par le patient", "creation": "2026-01-04T10:00:00+01:00"},
                 "format": {"system": OID + "1.3.6.1.4.1.19376.1.2.3",
                            "code": "urn:ihe:iti:xds-sd:text:2008"}}],
             "context": {
                 "facilityType": {"coding": [{"system": OID + "1.2.250.1.213.1.1.4.6",
                                              "code": "EXP_PATIENT"}]},
                 "practiceSetting": {"coding": [{"system": OID + "1.2.250.1.213.1.1.4.6",
                                                 "code": "EXP_PATIENT"}]}}}},
        {"fullUrl": bin_url, "request": {"method": "POST", "url": "Binary"},
         "resource": {"resourceType": "Binary", "contentType": "text/plain",
                      "data": base64.b64encode(data).decode()}},
    ]}


def test_iti65_then_iti67_and_iti68(client: FlaskClient, world: World) -> None:
    h = {**world.patient_headers(), "Content-Type": FHIR}
    response = client.post("/fhir", json=provide_bundle(world.alice.ins), headers=h)
    assert response.status_code == 200, response.get_json()
    locations = [e["response"]["location"] for e in response.get_json()["entry"]]
    doc_id = next(loc.split("/")[1] for loc in locations if loc.startswith("DocumentReference"))
    found = client.get(f"/fhir/DocumentReference?patient.identifier={world.alice.ins}"
                       "&status=current", headers=h).get_json()
    assert found["total"] == 1
    reference = found["entry"][0]["resource"]
    assert reference["id"] == doc_id
    assert reference["type"]["coding"][0]["code"] == "DOCPAT03"
    binary = client.get(f"/fhir/Binary/{doc_id}", headers=h)
    assert binary.status_code == 200
    assert base64.b64decode(binary.get_json()["data"]) == TEXT
    raw = client.get(f"/fhir/Binary/{doc_id}", headers={**h, "Accept": "text/plain"})
    assert raw.data == TEXT
    bob = world.patient_headers(world.bob)
    assert client.get(f"/fhir/DocumentReference/{doc_id}", headers=bob).status_code == 404
    assert client.get(f"/fhir/Binary/{doc_id}", headers=bob).status_code == 404


def test_iti65_refusals_store_nothing(client: FlaskClient, world: World) -> None:
    h = {**world.patient_headers(), "Content-Type": FHIR}
    wrong_hash = provide_bundle(world.alice.ins)
    wrong_hash["entry"][1]["resource"]["content"][0]["attachment"]["size"] = 3
    assert client.post("/fhir", json=wrong_hash, headers=h).status_code == 422
    bad_code = provide_bundle(world.alice.ins)
    bad_code["entry"][1]["resource"]["type"]["coding"][0]["code"] = "NOT-A-TYPE"
    assert client.post("/fhir", json=bad_code, headers=h).status_code == 422
    world.pair(world.alice, ["documents.read"])
    app = {**world.app_headers(), "Content-Type": FHIR}
    denied = client.post("/fhir", json=provide_bundle(world.alice.ins), headers=app)
    assert denied.status_code == 403
    assert client.get("/fhir/DocumentReference", headers=h).get_json()["total"] == 0


def _cda(ins: str) -> bytes:
    """A minimal CDA R2 header whose recordTarget names ``ins`` (test INS OID)."""
    return (
        '<ClinicalDocument xmlns="urn:hl7-org:v3"><recordTarget><patientRole>'
        f'<id root="1.2.250.1.213.1.4.10" extension="{ins}"/>'
        "</patientRole></recordTarget></ClinicalDocument>"
    ).encode()


def _cda_bundle(ins: str, cda_of: str) -> dict[str, Any]:
    bundle = provide_bundle(ins, _cda(cda_of))
    bundle["entry"][1]["resource"]["content"][0]["attachment"]["contentType"] = "text/xml"
    bundle["entry"][2]["resource"]["contentType"] = "text/xml"
    return bundle


def test_iti65_cda_of_another_patient_is_refused(client: FlaskClient, world: World) -> None:
    """The recordTarget check of ITI-41 and of the mail intake applies to MHD too."""
    h = {**world.patient_headers(), "Content-Type": FHIR}
    other = world.bob.ins
    refused = client.post("/fhir", json=_cda_bundle(world.alice.ins, other), headers=h)
    assert refused.status_code == 422, refused.get_json()
    assert "recordTarget" in str(refused.get_json())
    assert client.get("/fhir/DocumentReference", headers=h).get_json()["total"] == 0
    accepted = client.post("/fhir", json=_cda_bundle(world.alice.ins, world.alice.ins), headers=h)
    assert accepted.status_code == 200, accepted.get_json()
    assert client.get("/fhir/DocumentReference", headers=h).get_json()["total"] == 1


def _row(space_id: str, now: Any, codes: str, type_code: str = "DOCPAT03") -> DocumentEntryRow:
    uid = f"2.25.{uuid.uuid4().int}"
    return DocumentEntryRow(
        entry_uuid=f"urn:uuid:{uuid.uuid4()}", space_id=space_id,
        logical_id=f"urn:uuid:{uuid.uuid4()}",
        unique_id=uid, status="Approved", type_code=type_code,
        type_code_system="1.2.250.1.213.1.1.4.12", class_code="10^1.2.250.1.213.1.1.4.1",
        confidentiality_codes=codes, author_ids="|899700218896|", submission_time=now,
        updated_at=now, mime_type="text/plain", title="t")


def test_same_documents_as_the_registry_query(client: FlaskClient, world: World) -> None:
    """FHIR search and the XDS FindDocuments use case agree for the same actor."""
    now = world.clock.now()
    with world.espace.session_factory() as session:
        session.add(_row(world.alice.space_id, now, "|N|"))
        session.add(_row(world.alice.space_id, now + timedelta(seconds=1),
                         "|N|INVISIBLE_PATIENT|"))
        session.add(_row(world.bob.space_id, now, "|N|"))
        session.commit()
    h = world.patient_headers()
    fhir_ids = {e["resource"]["id"] for e in client.get(
        "/fhir/DocumentReference", headers=h).get_json().get("entry", [])}
    patient = Actor(kind=ActorKind.PATIENT, id=world.alice.ins,
                    authentication_mode=AuthenticationMode.PATIENT_LOGIN,
                    on_behalf_of=world.alice.ins)
    with world.espace.operation(patient, Action.SEARCH_METADATA, event_type="ITI-18",
                                source=Source("test"), space_ins=world.alice.ins) as op:
        result = run_stored_query(op, StoredQueryRequest(FIND_DOCUMENTS, {
            "$XDSDocumentEntryPatientId": [[f"{world.alice.ins}^^^&1.2.250.1.213.1.4.8&ISO"]],
            "$XDSDocumentEntryStatus": [["urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"]],
        }), config=RegistryConfig())
    xds_ids = {d.id.removeprefix("urn:uuid:") for d in result.documents}
    assert len(fhir_ids) == 1
    assert fhir_ids == xds_ids


def test_paired_app_sees_documents_as_the_patient(client: FlaskClient, world: World) -> None:
    now = world.clock.now()
    with world.espace.session_factory() as session:
        session.add(_row(world.alice.space_id, now, "|N|"))
        session.add(_row(world.alice.space_id, now, "|N|INVISIBLE_PATIENT|"))
        session.commit()
    app = world.app_headers()
    assert client.get("/fhir/DocumentReference", headers=app).status_code == 403
    world.pair(world.alice, ["documents.read"])
    found = client.get("/fhir/DocumentReference?_summary=count", headers=app).get_json()
    assert found["total"] == 1 and "entry" not in found


def test_mhd_transactions_are_traced_as_such(client: FlaskClient, world: World) -> None:
    h = {**world.patient_headers(), "Content-Type": FHIR}
    assert client.post("/fhir", json=provide_bundle(world.alice.ins), headers=h).status_code \
        == 200
    client.get("/fhir/DocumentReference", headers=h)
    events = client.get("/fhir/AuditEvent", headers=h).get_json()["entry"]
    codes = [(e["resource"]["type"]["code"], e["resource"].get("subtype", [{}])[0].get("code"))
             for e in events]
    assert ("110107", "ITI-65") in codes and ("110112", "ITI-67") in codes
