"""Cross-patient access (BOLA, OWASP API1:2023) on every face (issue 7, "Cross-patient access").

Three patients with data on every face; every caller kind (patient, paired app, legal
representative, professional with a valid VIHF for their own patient) tries every FHIR
interaction (read, vread, search, _include, _revinclude, _history, transaction, batch,
conditional create/update/delete), every XDS stored query and retrieve, every mailbox call and
every patient-API call on another patient's objects. Zero successes, and the victim's data is
unchanged afterwards. The exhaustive table runs once; a hypothesis property test then mixes
callers, victims, interactions and identifiers at random (``MES_BOLA_EXAMPLES``, default 150).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from sec_world import FHIR, PATIENTS, PatientData, World, build_world
from soap_kit import signed_vihf
from sqlalchemy import select
from xds_support import (
    ITI18,
    ITI43,
    ITI57,
    PATIENT_OID,
    REGISTRY,
    REPOSITORY,
    find_documents,
    post,
    retrieve_request,
    unique_ids,
)

from espace.admin import (
    add_representative,
    grant_app_consent,
    link_professional,
    register_app,
    upsert_professional,
)
from espace.clock import FrozenClock
from espace.models import PatientSpace, TraceRecord
from espace.service import Espace
from habilitation.model import ActorKind
from xds import ns

APP_ID = "bola-app"
PURPOSES = [
    "measurements.read",
    "measurements.write",
    "profile.read",
    "profile.write",
    "agenda.read",
    "agenda.write",
    "documents.read",
    "documents.write",
]
HTTP_KINDS = ("patient", "app", "representative")
EXAMPLES = int(os.environ.get("MES_BOLA_EXAMPLES", "150"))


def own_pro(ins: str) -> str:
    """A médecin authorized on this one patient only."""
    return f"8100000009{PATIENTS.index(ins):02d}"


def rep_of(ins: str) -> str:
    return f"2{ins[1:]}"[:13] + "00"


@pytest.fixture
def bola(
    espace: Espace, settings: dict[str, Any], clock: FrozenClock, pki: Any, client: FlaskClient
) -> World:
    world = build_world(espace, settings, clock, pki, client)
    with espace.session_factory() as session:
        register_app(
            session,
            APP_ID,
            name="BOLA",
            allowed_purposes=PURPOSES,
            now=clock.now(),
            oid="1.2.250.1.999.77",
            redirect_uris=["https://bola.example/cb"],
        )
        for data in world.patients.values():
            space = session.get(PatientSpace, data.space_id)
            assert space is not None
            grant_app_consent(
                session, space, APP_ID, PURPOSES, granted_by=data.ins, now=clock.now()
            )
            add_representative(
                session,
                space,
                rep_of(data.ins),
                now=clock.now(),
                kind="protected_adult_representative",
            )
            upsert_professional(
                session,
                own_pro(data.ins),
                name="Dr Own",
                profession="10",
                specialty="SM26",
                structure_id="499900063480001",
            )
            link_professional(
                session,
                space,
                own_pro(data.ins),
                "authorized",
                declared_by=own_pro(data.ins),
                now=clock.now(),
            )
        session.commit()
    return world


def headers(world: World, kind: str, ins: str) -> dict[str, str]:
    if kind == "patient":
        token = world.token(ActorKind.PATIENT, ins)
    elif kind == "app":
        token = world.token(ActorKind.APP, ins, app_id=APP_ID)
    else:
        from mes.tokens import issue_token

        token = issue_token(
            world.settings,
            subject=rep_of(ins),
            kind=ActorKind.PROTECTED_ADULT_REPRESENTATIVE,
            patient=ins,
        )
    return {"Authorization": f"Bearer {token}", "Content-Type": FHIR}


@dataclass
class Outcome:
    status: int
    leaked: bool
    detail: str


def _payload_text(body: bytes) -> str:
    """The data a response carries: a FHIR Bundle's entries (its paging links echo the
    query), anything else whole."""
    text = body.decode("utf-8", "replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        return text
    if isinstance(parsed, dict) and parsed.get("resourceType") == "Bundle":
        return json.dumps(parsed.get("entry", []))
    if isinstance(parsed, dict) and parsed.get("resourceType") == "OperationOutcome":
        return ""
    return text


def _leak(status: int, body: bytes, victim: PatientData, *, any_2xx: bool) -> Outcome:
    text = _payload_text(body)
    content = [victim.secrets[0], victim.space_id, victim.ins]
    leaked = 200 <= status < 300 and (any_2xx or any(s in text for s in content))
    return Outcome(status, leaked, text[:300])


# ----------------------------------------------------------------------------- FHIR probes
def _condition_body(rid: str, text: str) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": rid,
        "code": {"text": text},
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
    }


FhirProbe = Callable[[FlaskClient, dict[str, str], PatientData, str], Any]
FHIR_PROBES: dict[str, tuple[FhirProbe, bool]] = {
    # name -> (request, "any 2xx is a success" i.e. the request names the victim's object)
    "read": (lambda c, h, v, rid: c.get(f"/fhir/Condition/{rid}", headers=h), True),
    "vread": (lambda c, h, v, rid: c.get(f"/fhir/Condition/{rid}/_history/1", headers=h), True),
    "history_instance": (
        lambda c, h, v, rid: c.get(f"/fhir/Condition/{rid}/_history", headers=h),
        False,
    ),
    "history_type": (lambda c, h, v, rid: c.get("/fhir/Condition/_history", headers=h), False),
    "search_id": (lambda c, h, v, rid: c.get(f"/fhir/Condition?_id={rid}", headers=h), False),
    "search_subject": (
        lambda c, h, v, rid: c.get(f"/fhir/Condition?subject=Patient/{v.space_id}", headers=h),
        False,
    ),
    "search_patient_identifier": (
        lambda c, h, v, rid: c.get(
            f"/fhir/Patient?identifier=urn:oid:1.2.250.1.213.1.4.8|{v.ins}", headers=h
        ),
        False,
    ),
    "search_post": (
        lambda c, h, v, rid: c.post(
            "/fhir/Condition/_search",
            data={"_id": rid},
            headers={**h, "Content-Type": "application/x-www-form-urlencoded"},
        ),
        False,
    ),
    "include": (
        lambda c, h, v, rid: c.get(
            f"/fhir/Condition?_id={rid}&_include=Condition:subject", headers=h
        ),
        False,
    ),
    "revinclude": (
        lambda c, h, v, rid: c.get(
            f"/fhir/Patient?_id={v.space_id}&_revinclude=Condition:subject", headers=h
        ),
        False,
    ),
    "read_patient": (lambda c, h, v, rid: c.get(f"/fhir/Patient/{v.space_id}", headers=h), True),
    "update": (
        lambda c, h, v, rid: c.put(
            f"/fhir/Condition/{rid}", json=_condition_body(rid, "forged"), headers=h
        ),
        True,
    ),
    "update_if_match": (
        lambda c, h, v, rid: c.put(
            f"/fhir/Condition/{rid}",
            json=_condition_body(rid, "forged"),
            headers={**h, "If-Match": 'W/"1"'},
        ),
        True,
    ),
    "delete": (lambda c, h, v, rid: c.delete(f"/fhir/Condition/{rid}", headers=h), True),
    "conditional_update": (
        lambda c, h, v, rid: c.put(
            f"/fhir/Condition?_id={rid}", json=_condition_body(rid, "forged"), headers=h
        ),
        True,
    ),
    "conditional_delete": (
        lambda c, h, v, rid: c.delete(f"/fhir/Condition?_id={rid}", headers=h),
        False,  # 204 "nothing matched" is no success; the victim's resource must survive
    ),
    "conditional_create": (
        lambda c, h, v, rid: c.post(
            "/fhir/Condition",
            json=_condition_body(rid, "x"),
            headers={**h, "If-None-Exist": f"_id={rid}"},
        ),
        False,
    ),
    "transaction": (
        lambda c, h, v, rid: c.post(
            "/fhir",
            json={
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [
                    {"request": {"method": "GET", "url": f"Condition/{rid}"}},
                    {
                        "resource": _condition_body(rid, "forged"),
                        "request": {"method": "PUT", "url": f"Condition/{rid}"},
                    },
                ],
            },
            headers=h,
        ),
        False,
    ),
    "transaction_delete": (
        lambda c, h, v, rid: c.post(
            "/fhir",
            json={
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [{"request": {"method": "DELETE", "url": f"Condition/{rid}"}}],
            },
            headers=h,
        ),
        False,
    ),
    "batch": (
        lambda c, h, v, rid: c.post(
            "/fhir",
            json={
                "resourceType": "Bundle",
                "type": "batch",
                "entry": [
                    {"request": {"method": "GET", "url": f"Condition/{rid}"}},
                    {"request": {"method": "GET", "url": f"Condition/{rid}/_history/1"}},
                    {"request": {"method": "GET", "url": f"Condition?_id={rid}"}},
                ],
            },
            headers=h,
        ),
        False,
    ),
    "create_for_victim": (
        lambda c, h, v, rid: c.post(
            "/fhir/Condition",
            json={
                **_condition_body("x", v.secrets[0]),
                "subject": {"reference": f"Patient/{v.space_id}"},
            },
            headers=h,
        ),
        False,
    ),
    "document_reference": (
        lambda c, h, v, rid: c.get(
            f"/fhir/DocumentReference?patient=Patient/{v.space_id}", headers=h
        ),
        False,
    ),
    "audit_event": (
        lambda c, h, v, rid: c.get(f"/fhir/AuditEvent?patient=Patient/{v.space_id}", headers=h),
        False,
    ),
}


BY_ID_ENTRIES = {"batch": (0, 1), "transaction": (0, 1), "transaction_delete": (0,)}


def fhir_probe(
    client: FlaskClient,
    world: World,
    name: str,
    kind: str,
    caller: str,
    victim: PatientData,
    rid: str,
) -> Outcome:
    request, any_2xx = FHIR_PROBES[name]
    response = request(client, headers(world, kind, caller), victim, rid)
    body = response.data
    if name in BY_ID_ENTRIES and response.status_code < 300:
        # a 200 Bundle answers per entry: a 2xx on an entry naming the victim's object by id
        # is a success; the search entry's content is checked below like any search
        entries = (response.get_json() or {}).get("entry", [])
        statuses = [str(e.get("response", {}).get("status", "")) for e in entries]
        if any(statuses[i][:1] == "2" for i in BY_ID_ENTRIES[name] if i < len(statuses)):
            return Outcome(response.status_code, True, json.dumps(statuses))
    if name == "audit_event" and response.status_code < 300:
        # the caller's own trace may quote the ids they typed; a leak is a record of the
        # victim's chain
        returned = {str(e["resource"]["id"]) for e in (response.get_json() or {}).get("entry", [])}
        with world.espace.session_factory() as session:
            theirs = {
                str(i)
                for i in session.execute(
                    select(TraceRecord.id).where(TraceRecord.space_key == victim.space_id)
                ).scalars()
            }
        return Outcome(response.status_code, bool(returned & theirs), str(returned & theirs))
    if name == "create_for_victim" and response.status_code == 201:
        created = response.get_json() or {}
        subject = json.dumps(created.get("subject", {}))
        return Outcome(201, victim.space_id in subject, subject)
    if name == "conditional_delete" and response.status_code < 300:
        # R4 conditional delete: matches only what the caller may read; nothing else may go
        survivor = client.get(
            f"/fhir/Condition/{rid}", headers=headers(world, "patient", victim.ins)
        )
        return Outcome(response.status_code, survivor.status_code != 200, str(survivor.status_code))
    if name == "conditional_create" and response.status_code in (200, 201):
        # 200 = "matched an existing resource": it must be the caller's, never the victim's
        return Outcome(response.status_code, rid in body.decode(), body.decode()[:200])
    return _leak(response.status_code, body, victim, any_2xx=any_2xx)


# ----------------------------------------------------------------------------- mailbox probes
MAIL_PROBES: dict[str, Callable[[FlaskClient, dict[str, str], PatientData], Any]] = {
    "get_conversation": lambda c, h, v: c.get(
        f"/api/mailbox/conversations/{v.conversations[0]}", headers=h
    ),
    "delete_conversation": lambda c, h, v: c.delete(
        f"/api/mailbox/conversations/{v.conversations[0]}", headers=h
    ),
    "reply": lambda c, h, v: c.post(
        f"/api/mailbox/conversations/{v.conversations[0]}/messages", json={"body": "hi"}, headers=h
    ),
    "get_message": lambda c, h, v: c.get(f"/api/mailbox/messages/{v.messages[0]}", headers=h),
    "get_attachment": lambda c, h, v: c.get(
        f"/api/mailbox/messages/{v.attachments[0][0]}/attachments/{v.attachments[0][1]}", headers=h
    ),
    "attachment_to_dmp": lambda c, h, v: c.post(
        f"/api/mailbox/messages/{v.attachments[0][0]}/attachments/{v.attachments[0][1]}/dmp",
        json={},
        headers=h,
    ),
    "get_draft": lambda c, h, v: c.get(f"/api/mailbox/drafts/{v.drafts[0]}", headers=h),
    "update_draft": lambda c, h, v: c.put(
        f"/api/mailbox/drafts/{v.drafts[0]}", json={"subject": "forged", "body": "x"}, headers=h
    ),
    "delete_draft": lambda c, h, v: c.delete(f"/api/mailbox/drafts/{v.drafts[0]}", headers=h),
    "list_conversations": lambda c, h, v: c.get("/api/mailbox/conversations", headers=h),
    "list_drafts": lambda c, h, v: c.get("/api/mailbox/drafts", headers=h),
    "draft_in_victim_conversation": lambda c, h, v: c.post(
        "/api/mailbox/drafts", json={"conversation_id": v.conversations[0], "body": "x"}, headers=h
    ),
}
MAIL_LISTS = {"list_conversations", "list_drafts"}


def mail_probe(
    client: FlaskClient, world: World, name: str, kind: str, caller: str, victim: PatientData
) -> Outcome:
    response = MAIL_PROBES[name](client, headers(world, kind, caller), victim)
    body = response.data
    if name in MAIL_LISTS:
        ids = [victim.conversations[0], victim.drafts[0], victim.secrets[0]]
        leaked = response.status_code < 300 and any(i.encode() in body for i in ids)
        return Outcome(response.status_code, leaked, body[:200].decode("utf-8", "replace"))
    return _leak(response.status_code, body, victim, any_2xx=True)


# ----------------------------------------------------------------------------- patient API
PATIENT_API: dict[str, tuple[str, str, Any]] = {
    "space": ("GET", "", None),
    "settings": ("GET", "/settings", None),
    "set_settings": ("PUT", "/settings", {"break_glass_allowed": False}),
    "documents": ("GET", "/documents", None),
    "trace": ("GET", "/trace", None),
    "representatives": ("GET", "/representatives", None),
    "contact": ("PUT", "/contact", {"email": "evil@example.org"}),
    "mask": ("POST", "/documents/{entry}/mask", {}),
    "exports": ("POST", "/exports", {}),
    "close": ("POST", "/close", {"delete_now": True}),
}


def api_probe(
    client: FlaskClient, world: World, name: str, kind: str, caller: str, victim: PatientData
) -> Outcome:
    method, suffix, payload = PATIENT_API[name]
    url = f"/api/patient/spaces/{victim.ins}" + suffix.format(entry=victim.doc_entry_uuids[0])
    response = client.open(url, method=method, json=payload, headers=headers(world, kind, caller))
    return _leak(response.status_code, response.data, victim, any_2xx=True)


# ----------------------------------------------------------------------------- XDS probes
def _stored_query(query_id: str, **slots: str) -> etree._Element:
    inner = "".join(
        f'<Slot name="{k}"><ValueList><Value>{v}</Value></ValueList></Slot>'
        for k, v in slots.items()
    )
    return etree.fromstring(
        f'<query:AdhocQueryRequest xmlns:query="{ns.QUERY}" xmlns="{ns.RIM}">'
        '<query:ResponseOption returnComposedObjects="true" returnType="LeafClass"/>'
        f'<AdhocQuery id="{query_id}">{inner}</AdhocQuery></query:AdhocQueryRequest>'.encode()
    )


def _pid(ins: str) -> str:
    return f"'{ins}^^^&amp;{PATIENT_OID}&amp;ISO^NH'"


XDS_PROBES: dict[str, Callable[[PatientData], tuple[str, str, etree._Element]]] = {
    "find_documents": lambda v: (REGISTRY, ITI18, find_documents(v.ins)),
    "get_documents_uuid": lambda v: (
        REGISTRY,
        ITI18,
        _stored_query(
            "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4",
            **{"$XDSDocumentEntryEntryUUID": f"('{v.doc_entry_uuids[0]}')"},
        ),
    ),
    "get_documents_unique_id": lambda v: (
        REGISTRY,
        ITI18,
        _stored_query(
            "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4",
            **{"$XDSDocumentEntryUniqueId": f"('{v.doc_unique_ids[0]}')"},
        ),
    ),
    "get_associations": lambda v: (
        REGISTRY,
        ITI18,
        _stored_query(
            "urn:uuid:a7ae438b-4bc2-4642-93e9-be891f7bb155",
            **{"$uuid": f"('{v.doc_entry_uuids[0]}')"},
        ),
    ),
    "get_documents_and_associations": lambda v: (
        REGISTRY,
        ITI18,
        _stored_query(
            "urn:uuid:bab9529a-4a10-40b3-a01f-f68a615d247a",
            **{"$XDSDocumentEntryEntryUUID": f"('{v.doc_entry_uuids[0]}')"},
        ),
    ),
    "get_all": lambda v: (
        REGISTRY,
        ITI18,
        etree.fromstring(
            etree.tostring(_stored_query("urn:uuid:10b545ea-725c-446d-9b95-8aeb444eddf3")).replace(
                b"</AdhocQuery>",
                (
                    f'<Slot name="$patientId"><ValueList><Value>{_pid(v.ins)}</Value>'
                    "</ValueList></Slot>"
                    '<Slot name="$XDSDocumentEntryStatus"><ValueList><Value>(\'urn:oasis:names:tc:'
                    "ebxml-regrep:StatusType:Approved')</Value></ValueList></Slot>"
                    '<Slot name="$XDSSubmissionSetStatus"><ValueList><Value>(\'urn:oasis:names:tc:'
                    "ebxml-regrep:StatusType:Approved')</Value></ValueList></Slot>"
                    '<Slot name="$XDSFolderStatus"><ValueList><Value>(\'urn:oasis:names:tc:'
                    "ebxml-regrep:StatusType:Approved')</Value></ValueList></Slot></AdhocQuery>"
                ).encode(),
            )
        ),
    ),
    "retrieve": lambda v: (REPOSITORY, ITI43, retrieve_request(v.doc_unique_ids[0])),
}


def xds_probe(
    client: FlaskClient,
    world: World,
    name: str,
    caller: str,
    victim: PatientData,
    vihf_patient: str,
) -> Outcome:
    path, action, body = XDS_PROBES[name](victim)
    pro = own_pro(caller)
    assertion = signed_vihf(world.pki, world.clock, pro, vihf_patient)
    response = post(client, path, action, body, assertion)
    text = etree.tostring(response.envelope).decode()
    attachments = b"".join(response.attachments.values()).decode("utf-8", "replace")
    leaked = (
        bool(unique_ids(response) & set(victim.doc_unique_ids))
        or any(s in attachments or f">{s}<" in text for s in (victim.secrets[0],))
        or (name == "retrieve" and bool(response.attachments))
    )
    if name in ("get_associations", "get_documents_and_associations"):
        leaked = leaked or victim.doc_entry_uuids[0] in "".join(
            a.get("targetObject", "") + a.get("sourceObject", "")
            for a in response.body.iter(f"{{{ns.RIM}}}Association")
        )
    return Outcome(response.status, leaked, text[:300])


def xds_update_probe(
    client: FlaskClient, world: World, caller: str, victim: PatientData
) -> Outcome:
    """ITI-57: a professional of patient A deprecates patient B's document."""
    body = etree.fromstring(
        f'<lcm:SubmitObjectsRequest xmlns:lcm="{ns.LCM}" xmlns="{ns.RIM}"><RegistryObjectList>'
        f'<Association associationType="urn:ihe:iti:2010:AssociationType:UpdateAvailabilityStatus"'
        f' id="as1" sourceObject="SubmissionSet01" targetObject="{victim.doc_entry_uuids[0]}">'
        '<Slot name="OriginalStatus"><ValueList><Value>urn:oasis:names:tc:ebxml-regrep:'
        'StatusType:Approved</Value></ValueList></Slot><Slot name="NewStatus"><ValueList>'
        "<Value>urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated</Value></ValueList>"
        "</Slot></Association></RegistryObjectList></lcm:SubmitObjectsRequest>".encode()
    )
    response = post(
        client, REGISTRY, ITI57, body, signed_vihf(world.pki, world.clock, own_pro(caller), caller)
    )
    return Outcome(response.status, response.status_value() == "Success", str(response.errors()))


# ----------------------------------------------------------------------------- invariants
def victim_snapshot(client: FlaskClient, world: World, victim: PatientData) -> Any:
    h = headers(world, "patient", victim.ins)
    condition = client.get(f"/fhir/Condition/{victim.fhir['Condition'][0]}", headers=h)
    conversation = client.get(f"/api/mailbox/conversations/{victim.conversations[0]}", headers=h)
    draft = client.get(f"/api/mailbox/drafts/{victim.drafts[0]}", headers=h)
    docs = post(
        client,
        REGISTRY,
        ITI18,
        find_documents(victim.ins),
        signed_vihf(world.pki, world.clock, own_pro(victim.ins), victim.ins),
    )
    return (
        condition.status_code,
        condition.get_json(),
        conversation.status_code,
        draft.status_code,
        draft.get_json(),
        sorted(unique_ids(docs)),
    )


def _pairs() -> list[tuple[str, str]]:
    """Every ordered pair with MES_BOLA_ALL_PAIRS=1 (slow run); else a cycle A->B->C->A in
    which each patient is once the caller and once the victim."""
    if os.environ.get("MES_BOLA_ALL_PAIRS") == "1":
        return [(a, b) for a in PATIENTS for b in PATIENTS if a != b]
    return [(PATIENTS[i], PATIENTS[(i + 1) % 3]) for i in range(3)]


def test_owner_controls_succeed(client: FlaskClient, bola: World) -> None:
    """Positive controls: each probe family works for the data's owner (the test can fail)."""
    for data in bola.patients.values():
        outcome = fhir_probe(
            client, bola, "read", "patient", data.ins, data, data.fhir["Condition"][0]
        )
        assert outcome.status == 200 and outcome.leaked, outcome
        assert mail_probe(client, bola, "get_message", "patient", data.ins, data).leaked
        assert api_probe(client, bola, "documents", "patient", data.ins, data).status == 200
        for kind in HTTP_KINDS:  # every caller kind really reaches its own patient's data
            own = fhir_probe(client, bola, "read", kind, data.ins, data, data.fhir["Condition"][0])
            assert own.status == 200 and own.leaked, (kind, own)
        for name in ("find_documents", "get_documents_uuid", "retrieve"):
            own = xds_probe(client, bola, name, data.ins, data, data.ins)
            assert own.leaked, (name, own)


def test_every_interaction_on_another_patient_fails(client: FlaskClient, bola: World) -> None:
    before = {ins: victim_snapshot(client, bola, d) for ins, d in bola.patients.items()}
    successes: list[tuple[str, ...]] = []
    tried = 0
    for caller, victim_ins in _pairs():
        victim = bola.patients[victim_ins]
        rid = victim.fhir["Condition"][0]
        for kind in HTTP_KINDS:
            for name in FHIR_PROBES:
                tried += 1
                outcome = fhir_probe(client, bola, name, kind, caller, victim, rid)
                if outcome.leaked:
                    successes.append(("fhir", name, kind, caller, victim_ins, outcome.detail))
            for name in MAIL_PROBES:
                tried += 1
                if mail_probe(client, bola, name, kind, caller, victim).leaked:
                    successes.append(("mailbox", name, kind, caller, victim_ins))
            for name in PATIENT_API:
                tried += 1
                outcome = api_probe(client, bola, name, kind, caller, victim)
                if outcome.leaked:
                    successes.append(
                        ("patient_api", name, kind, caller, victim_ins, outcome.detail)
                    )
        for name in XDS_PROBES:
            tried += 1
            outcome = xds_probe(client, bola, name, caller, victim, caller)
            if outcome.leaked:
                successes.append(("xds", name, "professional", caller, victim_ins))
        tried += 1
        if xds_update_probe(client, bola, caller, victim).leaked:
            successes.append(("xds", "iti57", "professional", caller, victim_ins))
    assert successes == [], "\n".join(map(str, successes))
    assert tried == len(_pairs()) * (
        len(HTTP_KINDS) * (len(FHIR_PROBES) + len(MAIL_PROBES) + len(PATIENT_API))
        + len(XDS_PROBES)
        + 1
    )
    after = {ins: victim_snapshot(client, bola, d) for ins, d in bola.patients.items()}
    assert after == before
    print(f"BOLA exhaustive: {tried} cross-patient requests, 0 successes")


FACES = st.sampled_from(["fhir", "mail", "api", "xds"])


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    face=FACES,
    caller_index=st.integers(0, 2),
    shift=st.integers(1, 2),
    kind=st.sampled_from(HTTP_KINDS),
    fhir_name=st.sampled_from(sorted(FHIR_PROBES)),
    mail_name=st.sampled_from(sorted(MAIL_PROBES)),
    api_name=st.sampled_from(sorted(PATIENT_API)),
    xds_name=st.sampled_from(sorted(XDS_PROBES)),
    vihf_is_victim=st.booleans(),
)
def test_property_no_cross_patient_success(
    client: FlaskClient,
    bola: World,
    face: str,
    caller_index: int,
    shift: int,
    kind: str,
    fhir_name: str,
    mail_name: str,
    api_name: str,
    xds_name: str,
    vihf_is_victim: bool,
) -> None:
    """For any caller, any other patient, any interaction: never a success on their data.

    On XDS the VIHF names either the caller's own patient (then asks for another one's
    objects) or the victim (the caller's médecin is not in the victim's care team)."""
    caller = PATIENTS[caller_index]
    victim = bola.patients[PATIENTS[(caller_index + shift) % 3]]
    if face == "fhir":
        outcome = fhir_probe(
            client, bola, fhir_name, kind, caller, victim, victim.fhir["Condition"][0]
        )
    elif face == "mail":
        outcome = mail_probe(client, bola, mail_name, kind, caller, victim)
    elif face == "api":
        outcome = api_probe(client, bola, api_name, kind, caller, victim)
    else:
        outcome = xds_probe(
            client, bola, xds_name, caller, victim, victim.ins if vihf_is_victim else caller
        )
    assert not outcome.leaked, (face, kind, caller, victim.ins, outcome)
    assert outcome.status < 500, outcome
