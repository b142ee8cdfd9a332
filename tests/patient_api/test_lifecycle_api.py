"""Lifecycle endpoints: opposition (code, support desk, PDF), activation, closure, reopening,
deletion, representatives, export, prevention, and the OpenAPI document."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import date, timedelta
from typing import Any

import pytest
from api_helpers import SRC, add_document, bearer, created_space, make_ins, space_row
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from espace import lifecycle
from espace.clock import FrozenClock
from espace.models import DocumentEntryRow, NotificationOutbox, PatientSpace, TraceRecord
from espace.service import Espace
from habilitation.model import INVISIBLE_TO_LEGAL_REPRESENTATIVES, ActorKind

BIRTH = date(1968, 9, 30)
INS = make_ins(1, BIRTH, 401)


def _enrol(espace: Espace, ins: str = INS, birth: date = BIRTH, **kw: Any) -> str:
    return lifecycle.enrol(
        espace,
        lifecycle.Person(ins, "DURAND", "Marc", birth, "M", "marc@example.org"),
        source=SRC,
        **kw,
    ).code


def _status(espace: Espace, ins: str = INS) -> str | None:
    with espace.session_factory() as session:
        row = session.execute(
            select(PatientSpace).where(PatientSpace.ins == ins)
        ).scalar_one_or_none()
        return row.status if row else None


def test_opposition_with_code_gives_pdf_and_blocks_creation(
    client: FlaskClient, espace: Espace, clock: FrozenClock
) -> None:
    code = _enrol(espace)
    r = client.post("/api/patient/enrolment/oppose", json={"ins": INS, "code": "WRONG-CODE-0000"})
    assert r.status_code == 400 and r.json["error"] == "invalid_code"
    assert _status(espace) == "pending"
    r = client.post("/api/patient/enrolment/oppose", json={"ins": INS, "code": code, "x": 1})
    assert r.status_code == 400 and r.json["error"] == "unknown_field"
    r = client.post("/api/patient/enrolment/oppose?format=pdf", json={"ins": INS, "code": code})
    assert r.status_code == 201 and r.mimetype == "application/pdf"
    assert r.data.startswith(b"%PDF")
    assert _status(espace) == "opposed"
    # the code is single-use
    r = client.post("/api/patient/enrolment/oppose", json={"ins": INS, "code": code})
    assert r.status_code == 409 and r.json["error"] == "already_opposed"
    clock.advance(timedelta(weeks=7))
    assert lifecycle.run_due_jobs(espace)["created"] == 0
    assert _status(espace) == "opposed"
    # later, a voluntary creation with a new code
    new = lifecycle.issue_new_code(espace, INS, source=SRC).code
    r = client.post("/api/patient/enrolment/create", json={"ins": INS, "code": new})
    assert r.status_code == 200 and r.json["status"] == "active"


def test_opposition_after_six_weeks_is_refused(
    client: FlaskClient, espace: Espace, clock: FrozenClock
) -> None:
    code = _enrol(espace)
    clock.advance(timedelta(weeks=6, seconds=1))
    r = client.post("/api/patient/enrolment/oppose", json={"ins": INS, "code": code})
    assert r.status_code == 409 and r.json["error"] == "opposition_period_over"


def test_wrong_codes_throttle_their_requester_not_the_person(
    client: FlaskClient, espace: Espace
) -> None:
    code = _enrol(espace)
    stranger = {"REMOTE_ADDR": "127.0.0.2"}
    for _ in range(5):
        client.post(
            "/api/patient/enrolment/oppose",
            json={"ins": INS, "code": "AAAA-AAAA-AAAA"},
            environ_base=stranger,
        )
    r = client.post(
        "/api/patient/enrolment/oppose", json={"ins": INS, "code": code}, environ_base=stranger
    )
    assert r.status_code == 429 and r.json["error"] == "code_throttled"
    assert int(r.headers["Retry-After"]) > 0
    assert _status(espace) == "pending"
    # the person, elsewhere, is not locked out by the stranger's guesses
    r = client.post(
        "/api/patient/enrolment/oppose",
        json={"ins": INS, "code": code},
        environ_base={"REMOTE_ADDR": "127.0.0.3"},
    )
    assert r.status_code == 201 and _status(espace) == "opposed"


def test_bounced_letter_means_no_automatic_creation(espace: Espace, clock: FrozenClock) -> None:
    _enrol(espace)
    lifecycle.report_bounce(espace, INS, source=SRC)
    clock.advance(timedelta(weeks=12))
    assert lifecycle.run_due_jobs(espace)["created"] == 0
    assert _status(espace) == "pending"


def test_support_desk_opposes_with_agent_traced(
    client: FlaskClient, espace: Espace, settings: dict[str, Any], clock: FrozenClock
) -> None:
    _enrol(espace)
    agent_h = bearer(settings, clock, "CPAM-13-099", kind=ActorKind.SUPPORT_AGENT)
    patient_h = bearer(settings, clock, INS)
    assert client.post(f"/api/admin/spaces/{INS}/opposition", headers=patient_h).status_code == 403
    r = client.post(f"/api/admin/spaces/{INS}/opposition", headers=agent_h)
    assert r.status_code == 201 and r.json["agent_id"] == "CPAM-13-099"
    pdf = client.get(f"/api/admin/spaces/{INS}/opposition.pdf", headers=agent_h)
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    with espace.session_factory() as session:
        record = session.execute(
            select(TraceRecord).where(TraceRecord.event_type == "lifecycle.oppose")
        ).scalar_one()
    assert (record.actor_kind, record.actor_id, record.outcome) == (
        "support_agent",
        "CPAM-13-099",
        "success",
    )


def test_activation_close_reopen_by_support(
    client: FlaskClient, espace: Espace, settings: dict[str, Any], clock: FrozenClock
) -> None:
    space_id = created_space(espace, clock, INS, BIRTH, sex="M")
    code = lifecycle.issue_new_code(espace, INS, source=SRC).code
    body = {"ins": INS, "code": code, "email": "m@example.org", "phone": "+33611223344"}
    r = client.post("/api/patient/enrolment/activate", json={**body, "accept_terms": False})
    assert r.status_code == 400 and r.json["error"] == "terms_not_accepted"
    r = client.post("/api/patient/enrolment/activate", json={**body, "accept_terms": True})
    assert r.status_code == 200 and r.json["activated"] is True
    h = bearer(settings, clock, INS)
    add_document(espace, space_id)
    r = client.post(f"/api/patient/spaces/{INS}/close", json={}, headers=h)
    assert r.status_code == 200 and r.json["status"] == "closed"
    # closed: nothing readable, even by the patient
    assert client.get(f"/api/patient/spaces/{INS}/documents", headers=h).status_code == 403
    agent_h = bearer(settings, clock, "AGENT-7", kind=ActorKind.SUPPORT_AGENT)
    r = client.post(f"/api/admin/spaces/{INS}/reopen", headers=agent_h)
    assert r.status_code == 200 and r.json["status"] == "active"
    assert client.get(f"/api/patient/spaces/{INS}/documents", headers=h).json["total"] == 1


def test_immediate_deletion_includes_represented_children(
    client: FlaskClient, espace: Espace, settings: dict[str, Any], clock: FrozenClock
) -> None:
    parent_birth = date(1985, 5, 5)
    parent = make_ins(2, parent_birth, 402)
    child_birth = date(2015, 3, 3)
    child = make_ins(1, child_birth, 403)
    lifecycle.enrol(espace, lifecycle.Person(parent, "P", "Mère", parent_birth, "F"), source=SRC)
    lifecycle.enrol(
        espace,
        lifecycle.Person(child, "P", "Fils", child_birth, "M"),
        source=SRC,
        representatives=[lifecycle.Person(parent, email="mere@example.org")],
    )
    clock.advance(timedelta(weeks=6))
    lifecycle.run_due_jobs(espace)
    other = make_ins(1, date(1990, 1, 1), 404)
    created_space(espace, clock, other, date(1990, 1, 1))
    h = bearer(settings, clock, parent)
    r = client.post(f"/api/patient/spaces/{parent}/close", json={"delete_now": "yes"}, headers=h)
    assert r.status_code == 400
    r = client.post(f"/api/patient/spaces/{parent}/close", json={"delete_now": True}, headers=h)
    assert r.status_code == 200 and r.json["status"] == "deleted"
    assert _status(espace, parent) is None and _status(espace, child) is None
    assert _status(espace, other) == "active"
    with espace.session_factory() as session:
        record = session.execute(
            select(TraceRecord).where(TraceRecord.event_type == "lifecycle.delete")
        ).scalar_one()
        assert record.space_key == "-" and len(record.detail["deleted_spaces"]) == 2
        left = session.execute(select(func.count()).select_from(NotificationOutbox)).scalar_one()
        assert left >= 1  # the other space's notices survive


def test_representatives_over_http_and_minor_secret(
    client: FlaskClient, espace: Espace, settings: dict[str, Any], clock: FrozenClock
) -> None:
    mother_birth, father_birth, child_birth = date(1982, 7, 7), date(1981, 1, 2), date(2012, 2, 2)
    mother, father = make_ins(2, mother_birth, 405), make_ins(1, father_birth, 406)
    child = make_ins(2, child_birth, 407)
    space_id = created_space(
        espace,
        clock,
        child,
        child_birth,
        reps=[lifecycle.Person(mother, email="mother@example.org")],
    )
    add_document(espace, space_id, "visible")
    add_document(espace, space_id, "secret", (INVISIBLE_TO_LEGAL_REPRESENTATIVES,))
    mh = bearer(settings, clock, mother, kind=ActorKind.LEGAL_REPRESENTATIVE, patient=child)
    fh = bearer(settings, clock, father, kind=ActorKind.LEGAL_REPRESENTATIVE, patient=child)
    base = f"/api/patient/spaces/{child}"
    invite = {"ins": father, "name": "Père", "birth_date": father_birth.isoformat()}
    assert (
        client.post(
            f"{base}/representatives/invitations", json={**invite, "birth_date": "x"}, headers=mh
        ).status_code
        == 400
    )
    assert (
        client.post(f"{base}/representatives/invitations", json=invite, headers=fh).status_code
        == 403
    )
    assert (
        client.post(f"{base}/representatives/invitations", json=invite, headers=mh).status_code
        == 201
    )
    assert client.get(f"{base}/documents", headers=fh).status_code == 403
    r = client.post(f"{base}/representatives/invitations/answer", json={"accept": True}, headers=fh)
    assert r.status_code == 200
    titles = {d["title"] for d in client.get(f"{base}/documents", headers=fh).json["documents"]}
    assert titles == {"visible"}
    reps = client.get(f"{base}/representatives", headers=mh).json["representatives"]
    assert {(r["ins"], r["status"]) for r in reps} == {(mother, "active"), (father, "active")}
    # the support desk attaches directly; a third is refused
    agent_h = bearer(settings, clock, "AGENT-9", kind=ActorKind.SUPPORT_AGENT)
    third = make_ins(1, date(1970, 1, 1), 408)
    r = client.post(
        f"/api/admin/spaces/{child}/representatives",
        json={"ins": third, "name": "X"},
        headers=agent_h,
    )
    assert r.status_code == 409


def test_export_encrypted_archive_with_expiring_link(
    client: FlaskClient, espace: Espace, settings: dict[str, Any], clock: FrozenClock
) -> None:
    space_id = created_space(espace, clock, INS, BIRTH, sex="M")
    add_document(espace, space_id, "compte rendu")
    assert lifecycle.run_due_jobs(espace)["prevention"] == 1  # colorectal screening, 57 years
    h = bearer(settings, clock, INS)
    other_h = bearer(settings, clock, make_ins(1, date(1991, 1, 1), 409))
    assert client.post(f"/api/patient/spaces/{INS}/exports", headers=other_h).status_code == 403
    r = client.post(f"/api/patient/spaces/{INS}/exports", headers=h)
    assert r.status_code == 202 and r.json["status"] == "pending"
    url = r.json["download_url"]
    assert client.get(url, headers=h).json["error"] == "export_not_ready"
    assert lifecycle.run_due_jobs(espace)["exports_built"] == 1
    assert client.get(r.json["status_url"], headers=h).json["status"] == "ready"
    from espace.lifecycle import ExportArchive

    with espace.session_factory() as session:
        stored = session.get(ExportArchive, r.json["id"])
        assert stored is not None and stored.blob is not None
        assert b"bundle.json" not in stored.blob and not stored.blob.startswith(b"PK")
    bad = url.rsplit("key=", 1)[0] + "key=AAAA"
    assert client.get(bad, headers=h).status_code == 404
    got = client.get(url, headers=h)
    assert got.status_code == 200 and got.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(got.data))
    bundle = json.loads(archive.read("bundle.json"))
    types = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert {"Patient", "DocumentReference", "Consent", "AuditEvent"} <= types
    assert {"Communication", "Appointment"} <= types  # mailbox and agenda bricks
    proposed = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Appointment"
    ]
    assert proposed[0]["status"] == "proposed"
    assert bundle["type"] == "collection"
    assert any(n.category == "export_ready" for n in _outbox(espace))
    clock.advance(timedelta(days=8))
    assert client.get(url, headers=h).status_code == 410
    assert lifecycle.run_due_jobs(espace)["exports_expired"] == 1


def _outbox(espace: Espace) -> list[NotificationOutbox]:
    with espace.session_factory() as session:
        return list(session.execute(select(NotificationOutbox)).scalars())


def test_prevention_rules_public_and_campaigns(
    client: FlaskClient, espace: Espace, settings: dict[str, Any], clock: FrozenClock
) -> None:
    rules = client.get("/api/patient/prevention/rules").json["rules"]
    assert {"colorectal_screening", "breast_screening", "influenza_vaccination"} <= {
        r["id"] for r in rules
    }
    woman_birth = date(1966, 1, 1)  # 60 on 2026-01-05
    woman = make_ins(2, woman_birth, 410)
    opposed_birth = date(1965, 1, 1)
    opposed = make_ins(2, opposed_birth, 411)
    created_space(espace, clock, woman, woman_birth)
    created_space(espace, clock, opposed, opposed_birth)
    oh = bearer(settings, clock, opposed)
    client.patch(
        f"/api/patient/spaces/{opposed}/settings", json={"prevention_opposed": True}, headers=oh
    )
    jobs = lifecycle.run_due_jobs(espace)
    # colorectal, breast and cervical (HPV) screening for the woman; nothing for the other
    assert jobs["prevention"] == 3
    wh = bearer(settings, clock, woman)
    campaigns = client.get(f"/api/patient/spaces/{woman}/prevention", headers=wh).json["campaigns"]
    assert {c["rule_id"] for c in campaigns} == {
        "colorectal_screening",
        "breast_screening",
        "cervical_screening_hpv",
    }
    assert all(
        c["reply_possible"] is False and c["proposed_appointment"]["date"] for c in campaigns
    )
    assert (
        client.get(f"/api/patient/spaces/{opposed}/prevention", headers=oh).json["campaigns"] == []
    )
    assert lifecycle.run_due_jobs(espace)["prevention"] == 0  # not twice in the period
    from espace.mailbox import MailMessage

    with espace.session_factory() as session:
        mails = session.execute(select(MailMessage)).scalars().all()
    assert len(mails) == 3 and all(m.no_reply for m in mails)


def test_openapi_document_lists_every_route(client: FlaskClient, app: Flask) -> None:
    doc = client.get("/api/patient/openapi.json").json
    assert doc["openapi"].startswith("3.")
    from patient_api.openapi import openapi_path

    routes = {
        (openapi_path(rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(("/api/patient", "/api/admin"))
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }
    described = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert routes == described
    for ops in doc["paths"].values():
        for op in ops.values():
            assert op["responses"] and op["summary"]
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(
    "path", ["/api/patient/enrolment/activate", "/api/patient/enrolment/reopen"]
)
def test_enrolment_endpoints_reject_missing_fields(client: FlaskClient, path: str) -> None:
    r = client.post(path, json={"ins": INS})
    assert r.status_code == 400 and r.json["error"] == "missing_field"


def test_space_row_untouched_by_bad_input(
    client: FlaskClient, espace: Espace, clock: FrozenClock
) -> None:
    space_id = created_space(espace, clock, INS, BIRTH, sex="M")
    before = space_row(espace, space_id)
    r = client.post(
        "/api/patient/enrolment/activate",
        data=b"\x00\xff",
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 400
    after = space_row(espace, space_id)
    assert (before.status, before.email, before.activated_at) == (
        after.status,
        after.email,
        after.activated_at,
    )
    with espace.session_factory() as session:
        assert session.execute(select(func.count()).select_from(DocumentEntryRow)).scalar_one() == 0


def test_representative_export_hides_the_minors_secret(
    client: FlaskClient, espace: Espace, settings: dict[str, Any], clock: FrozenClock
) -> None:
    from espace.models import DocumentContent

    child_birth, mother = date(2011, 4, 4), make_ins(2, date(1983, 3, 3), 412)
    child = make_ins(1, child_birth, 413)
    space_id = created_space(
        espace, clock, child, child_birth, reps=[lifecycle.Person(mother, email="m@example.org")]
    )
    visible = add_document(espace, space_id, "visible")
    secret = add_document(espace, space_id, "secret", (INVISIBLE_TO_LEGAL_REPRESENTATIVES,))
    with espace.session_factory() as session:
        for entry, text in ((visible, b"visible text"), (secret, b"secret text")):
            row = session.get(DocumentEntryRow, entry)
            assert row is not None
            session.add(
                DocumentContent(
                    space_id=space_id,
                    repository_unique_id="1.2.3",
                    unique_id=row.unique_id,
                    mime_type="text/plain",
                    hash="",
                    size=len(text),
                    stored_at=clock.now(),
                    encrypted=espace.cipher.encrypt(
                        text, space_id=space_id, object_id=row.unique_id
                    ),
                )
            )
        session.commit()
    mh = bearer(settings, clock, mother, kind=ActorKind.LEGAL_REPRESENTATIVE, patient=child)
    r = client.post(f"/api/patient/spaces/{child}/exports", headers=mh)
    assert r.status_code == 202 and lifecycle.run_due_jobs(espace)["exports_built"] == 1
    assert client.get(r.json["status_url"], headers=mh).json["documents"] == 1
    archive = zipfile.ZipFile(io.BytesIO(client.get(r.json["download_url"], headers=mh).data))
    everything = b"".join(archive.read(name) for name in archive.namelist())
    assert b"visible text" in everything
    assert b"secret text" not in everything and b'"secret"' not in everything
    # the minor sees both
    ch = bearer(settings, clock, child)
    r = client.post(f"/api/patient/spaces/{child}/exports", headers=ch)
    assert r.status_code == 202 and lifecycle.run_due_jobs(espace)["exports_built"] == 1
    assert client.get(r.json["status_url"], headers=ch).json["documents"] == 2


def test_trace_does_not_reveal_documents_hidden_from_the_reader(
    client: FlaskClient, espace: Espace, settings: dict[str, Any], clock: FrozenClock
) -> None:
    from espace.trace import Target, TraceEntry
    from habilitation.model import Actor, Decision

    child_birth, mother = date(2011, 4, 4), make_ins(2, date(1983, 3, 3), 414)
    child = make_ins(1, child_birth, 415)
    space_id = created_space(
        espace, clock, child, child_birth, reps=[lifecycle.Person(mother, email="m@example.org")]
    )
    secret = add_document(espace, space_id, "secret", (INVISIBLE_TO_LEGAL_REPRESENTATIVES,))
    espace.record(
        TraceEntry(
            actor=Actor(ActorKind.PROFESSIONAL, "810009999999", name="Dr Secret", profession="10"),
            action="TD2.1",
            event_type="ITI-41",
            decision=Decision.permit("care_team", "test"),
            outcome="success",
            source=SRC,
            space_id=space_id,
            target=Target("DocumentEntry", secret, "11490-0"),
        )
    )
    mh = bearer(settings, clock, mother, kind=ActorKind.LEGAL_REPRESENTATIVE, patient=child)
    ch = bearer(settings, clock, child)
    rep_view = client.get(f"/api/patient/spaces/{child}/trace", headers=mh).json["records"]
    own_view = client.get(f"/api/patient/spaces/{child}/trace", headers=ch).json["records"]
    assert secret not in {r["target"]["id"] for r in rep_view}
    assert secret in {r["target"]["id"] for r in own_view}
    assert any(r["event_type"] == "lifecycle.create" for r in rep_view)


def test_openapi_document_validates_against_the_3_1_schema(client: FlaskClient) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    doc = client.get("/api/patient/openapi.json").json
    validator.validate(doc)  # raises OpenAPIValidationError when invalid
