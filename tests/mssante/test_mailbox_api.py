"""The patient's mailbox API and the conversation rules (real PDP, real database)."""

from __future__ import annotations

import base64
from datetime import date, timedelta
from typing import Any

import pytest
from mailkit import OTHER_INS, PATIENT_INS, SENDER, build_message, send, xdm_message
from sqlalchemy import func, select, update

from espace import mailbox as mb
from espace.clock import FrozenClock
from espace.models import TraceRecord
from espace.service import Espace
from habilitation.model import ActorKind
from mes.tokens import issue_token
from mssante import cli

PHARMACY = "pharmacie.centrale@pharmacie.mssante.fr"


def conversations(api: Any, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = api.get("/api/mailbox/conversations", headers=headers)
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.get_json()["conversations"]
    return items


def count(espace: Espace, model: Any) -> int:
    with espace.session_factory() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def test_openapi_document(api: Any) -> None:
    doc = api.get("/api/mailbox/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    assert {"/conversations", "/messages/{message_id}", "/drafts"} <= set(doc["paths"])


def test_authentication_is_required(api: Any) -> None:
    response = api.get("/api/mailbox/conversations")
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_request"
    bad = api.get("/api/mailbox/conversations", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and bad.get_json()["error"] == "invalid_token"


def test_apps_never_read_the_mailbox(
    api: Any, mail_settings: dict[str, Any], space: Any, espace: Espace
) -> None:
    token = issue_token(
        mail_settings,
        subject="app-1",
        kind=ActorKind.APP,
        patient=PATIENT_INS,
        app_id="app-1",
        scope="patient/*.read",
    )
    response = api.get("/api/mailbox/conversations", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403 and response.get_json()["error"] == "access_denied"
    with espace.session_factory() as session:
        denied = session.execute(
            select(TraceRecord).where(TraceRecord.event_type == "mailbox.list")
        ).scalar_one()
    assert denied.decision == "deny" and denied.actor_kind == "app"


def test_another_patient_sees_nothing_of_this_mailbox(
    relay: Any, pki: Any, api: Any, espace: Espace, mail_settings: dict[str, Any]
) -> None:
    from espace.admin import register_space

    send(relay.port, pki, build_message())
    with espace.session_factory() as session:
        register_space(session, ins=OTHER_INS, now=espace.clock.now())
        session.commit()
    own = {
        "Authorization": "Bearer "
        + issue_token(mail_settings, subject=PATIENT_INS, kind=ActorKind.PATIENT)
    }
    other = {
        "Authorization": "Bearer "
        + issue_token(mail_settings, subject=OTHER_INS, kind=ActorKind.PATIENT)
    }
    conv = conversations(api, own)[0]
    assert conversations(api, other) == []
    assert api.get(f"/api/mailbox/conversations/{conv['id']}", headers=other).status_code == 404


def test_read_marks_read_and_queues_the_mdn_once(
    relay: Any, pki: Any, api: Any, patient_headers: dict[str, str], espace: Espace
) -> None:
    send(relay.port, pki, build_message(headers={"Disposition-Notification-To": SENDER}))
    conv = conversations(api, patient_headers)[0]
    assert conv["unread"] == 1
    message_id = api.get(
        f"/api/mailbox/conversations/{conv['id']}", headers=patient_headers
    ).get_json()["messages"][0]["id"]
    for _ in range(2):
        assert (
            api.get(f"/api/mailbox/messages/{message_id}", headers=patient_headers).status_code
            == 200
        )
    assert conversations(api, patient_headers)[0]["unread"] == 0
    with espace.session_factory() as session:
        queued = session.execute(select(mb.MailOutbound)).scalars().all()
        raw = mb.outbound_bytes(espace.cipher, queued[0])
    assert [q.kind for q in queued] == ["mdn"]
    assert b"disposition-notification" in raw and b"displayed" in raw


def test_download_attachment(
    relay: Any, pki: Any, api: Any, patient_headers: dict[str, str]
) -> None:
    pdf = b"%PDF-1.4 test document"
    send(relay.port, pki, build_message(attachments=[("cr.pdf", "application/pdf", pdf)]))
    conv = conversations(api, patient_headers)[0]
    message = api.get(
        f"/api/mailbox/conversations/{conv['id']}", headers=patient_headers
    ).get_json()["messages"][0]
    att = message["attachments"][0]
    response = api.get(
        f"/api/mailbox/messages/{message['id']}/attachments/{att['id']}", headers=patient_headers
    )
    assert response.status_code == 200 and response.data == pdf
    assert response.mimetype == "application/pdf"
    assert "cr.pdf" in response.headers["Content-Disposition"]


def test_save_a_plain_attachment_to_the_dmp_is_refused(
    relay: Any, pki: Any, api: Any, patient_headers: dict[str, str]
) -> None:
    send(relay.port, pki, build_message(attachments=[("a.pdf", "application/pdf", b"%PDF")]))
    conv = conversations(api, patient_headers)[0]
    message = api.get(
        f"/api/mailbox/conversations/{conv['id']}", headers=patient_headers
    ).get_json()["messages"][0]
    response = api.post(
        f"/api/mailbox/messages/{message['id']}/attachments/{message['attachments'][0]['id']}/dmp",
        headers=patient_headers,
        json={},
    )
    assert response.status_code == 400 and response.get_json()["error"] == "not_an_xdm_attachment"


def test_saving_twice_to_the_dmp_is_idempotent(
    relay: Any, pki: Any, api: Any, patient_headers: dict[str, str]
) -> None:
    send(relay.port, pki, xdm_message())
    conv = conversations(api, patient_headers)[0]
    message = api.get(
        f"/api/mailbox/conversations/{conv['id']}", headers=patient_headers
    ).get_json()["messages"][0]
    url = f"/api/mailbox/messages/{message['id']}/attachments/{message['attachments'][0]['id']}/dmp"
    first = api.post(url, headers=patient_headers, json={})
    second = api.post(url, headers=patient_headers, json={})
    assert first.status_code == 201 and second.status_code == 201
    assert second.get_json()["documents"][0]["already_present"] is True


def test_reply_with_uploaded_attachment(
    relay: Any, pki: Any, api: Any, espace: Espace, patient_headers: dict[str, str]
) -> None:
    send(relay.port, pki, build_message())
    conv = conversations(api, patient_headers)[0]
    content = base64.b64encode(b"my scan").decode()
    response = api.post(
        f"/api/mailbox/conversations/{conv['id']}/messages",
        headers=patient_headers,
        json={
            "body": "Voici",
            "attachments": [
                {"filename": "scan.txt", "content_type": "text/plain", "content_base64": content}
            ],
        },
    )
    assert response.status_code == 201
    assert response.get_json()["attachments"][0]["filename"] == "scan.txt"
    with espace.session_factory() as session:
        out = session.execute(select(mb.MailOutbound)).scalar_one()
        raw = mb.outbound_bytes(espace.cipher, out)
    assert out.rcpt_to == SENDER and b"scan.txt" in raw and b"bXkgc2Nhbg==" in raw


def test_bad_input_is_refused_and_nothing_is_stored(
    relay: Any, pki: Any, api: Any, espace: Espace, patient_headers: dict[str, str]
) -> None:
    send(relay.port, pki, build_message())
    conv = conversations(api, patient_headers)[0]
    url = f"/api/mailbox/conversations/{conv['id']}/messages"
    before = count(espace, mb.MailMessage)
    for payload in (
        {"body": ""},
        {"body": 3},
        {"body": "x", "attachments": [{"content_base64": "!!!not base64"}]},
        {"body": "x", "attachments": "nope"},
    ):
        response = api.post(url, headers=patient_headers, json=payload)
        assert response.status_code == 400, payload
        assert response.get_json()["error"] == "invalid_input"
    assert api.post(url, headers=patient_headers, data="not json").status_code == 400
    assert count(espace, mb.MailMessage) == before
    assert count(espace, mb.MailOutbound) == 0


def test_patient_cannot_start_a_conversation_except_with_a_recent_pharmacy(
    api: Any,
    espace: Espace,
    space: Any,
    patient_headers: dict[str, str],
    clock: FrozenClock,
) -> None:
    new = {"to": SENDER, "subject": "Question", "body": "Bonjour"}
    refused = api.post("/api/mailbox/conversations", headers=patient_headers, json=new)
    assert refused.status_code == 403
    assert refused.get_json()["error"] == "patient_cannot_start_conversation"

    cli.add_pharmacy(
        espace, PATIENT_INS, PHARMACY, "Pharmacie centrale", clock.now().date() - timedelta(days=40)
    )
    assert [
        p["address"]
        for p in api.get("/api/mailbox/pharmacies", headers=patient_headers).get_json()[
            "pharmacies"
        ]
    ] == [PHARMACY]
    ok = api.post(
        "/api/mailbox/conversations",
        headers=patient_headers,
        json={
            **new,
            "to": PHARMACY,
            "attachments": [
                {
                    "filename": "ordonnance.pdf",
                    "content_type": "application/pdf",
                    "content_base64": base64.b64encode(b"%PDF").decode(),
                }
            ],
        },
    )
    assert ok.status_code == 201, ok.get_json()
    assert conversations(api, patient_headers)[0]["counterpart"]["kind"] == "pharmacy"

    clock.advance(timedelta(days=330))  # the dispensation is now more than 12 months old
    late = api.post(
        "/api/mailbox/conversations", headers=patient_headers, json={**new, "to": PHARMACY}
    )
    assert late.status_code == 403
    assert late.get_json()["error"] == "patient_cannot_start_conversation"


def test_professional_ends_the_conversation(
    relay: Any, pki: Any, api: Any, espace: Espace, patient_headers: dict[str, str]
) -> None:
    send(relay.port, pki, build_message())
    conv = conversations(api, patient_headers)[0]
    with pytest.raises(mb.MailRefused):
        cli.close_conversation(espace, PATIENT_INS, conv["id"], "other@operateur.test.mssante.fr")
    cli.close_conversation(espace, PATIENT_INS, conv["id"], SENDER)
    closed = conversations(api, patient_headers)[0]
    assert closed["status"] == "closed" and closed["reply_refusal"] == "conversation_closed"
    response = api.post(
        f"/api/mailbox/conversations/{conv['id']}/messages",
        headers=patient_headers,
        json={"body": "?"},
    )
    assert response.status_code == 403 and response.get_json()["error"] == "conversation_closed"


def test_professional_blocks_an_abusive_patient(
    relay: Any, pki: Any, api: Any, espace: Espace, patient_headers: dict[str, str]
) -> None:
    send(relay.port, pki, build_message())
    conv = conversations(api, patient_headers)[0]
    cli.block_patient(espace, PATIENT_INS, SENDER, "abuse")
    items = conversations(api, patient_headers)
    notice = next(c for c in items if c["counterpart"]["kind"] == "system")
    assert notice["can_reply"] is False and notice["unread"] == 1  # the patient is told
    response = api.post(
        f"/api/mailbox/conversations/{conv['id']}/messages",
        headers=patient_headers,
        json={"body": "?"},
    )
    assert response.status_code == 403
    assert response.get_json()["error"] == "blocked_by_professional"


def test_application_mailbox_cannot_be_answered(
    relay: Any, pki: Any, api: Any, patient_headers: dict[str, str]
) -> None:
    send(
        relay.port,
        pki,
        build_message(
            sender="resultats_auto@labo.mssante.fr", headers={"Auto-Submitted": "auto-generated"}
        ),
        mail_from="resultats_auto@labo.mssante.fr",
    )
    conv = conversations(api, patient_headers)[0]
    assert conv["counterpart"]["kind"] == "application"
    assert conv["reply_refusal"] == "application_mailbox"


def test_reply_to_outside_trust_space_is_never_used(
    relay: Any, pki: Any, api: Any, patient_headers: dict[str, str]
) -> None:
    send(relay.port, pki, build_message(headers={"Reply-To": "doctor@gmail.com"}))
    conv = conversations(api, patient_headers)[0]
    assert conv["reply_refusal"] == "outside_trust_space"


def test_prevention_messages_appear_and_cannot_be_answered(
    api: Any, espace: Espace, space: Any, patient_headers: dict[str, str]
) -> None:
    cli.send_prevention(espace, PATIENT_INS, "Dépistage", "Pensez au dépistage.")
    conv = conversations(api, patient_headers)[0]
    assert conv["counterpart"]["kind"] == "system" and conv["can_reply"] is False
    response = api.post(
        f"/api/mailbox/conversations/{conv['id']}/messages",
        headers=patient_headers,
        json={"body": "?"},
    )
    assert response.status_code == 403 and response.get_json()["error"] == "system_message"


def test_prevention_respects_the_patients_opposition(espace: Espace, space: Any) -> None:
    from espace.errors import AccessDenied
    from espace.models import PatientSpace

    with espace.session_factory() as session:
        session.execute(update(PatientSpace).values(prevention_opposed=True))
        session.commit()
    with pytest.raises(AccessDenied):
        cli.send_prevention(espace, PATIENT_INS, "Dépistage", "Pensez au dépistage.")
    assert count(espace, mb.MailMessage) == 0


def test_drafts_save_resume_send(
    relay: Any, pki: Any, api: Any, espace: Espace, patient_headers: dict[str, str]
) -> None:
    send(relay.port, pki, build_message())
    conv = conversations(api, patient_headers)[0]
    created = api.post(
        "/api/mailbox/drafts",
        headers=patient_headers,
        json={
            "conversation_id": conv["id"],
            "body": "Brouillon",
            "attachments": [
                {
                    "filename": "a.txt",
                    "content_type": "text/plain",
                    "content_base64": base64.b64encode(b"A").decode(),
                }
            ],
        },
    )
    assert created.status_code == 201
    draft_id = created.get_json()["id"]
    updated = api.put(
        f"/api/mailbox/drafts/{draft_id}",
        headers=patient_headers,
        json={"conversation_id": conv["id"], "body": "Brouillon final"},
    )
    assert updated.status_code == 200
    resumed = api.get(f"/api/mailbox/drafts/{draft_id}", headers=patient_headers).get_json()
    assert resumed["body"] == "Brouillon final" and len(resumed["attachments"]) == 1
    sent = api.post(
        f"/api/mailbox/conversations/{conv['id']}/messages",
        headers=patient_headers,
        json={"body": resumed["body"], "draft_id": draft_id},
    )
    assert sent.status_code == 201
    assert [a["filename"] for a in sent.get_json()["attachments"]] == ["a.txt"]
    assert api.get(f"/api/mailbox/drafts/{draft_id}", headers=patient_headers).status_code == 404
    assert api.get("/api/mailbox/drafts", headers=patient_headers).get_json()["drafts"] == []


def test_delete_conversation_removes_it_from_the_back_office(
    relay: Any, pki: Any, api: Any, espace: Espace, patient_headers: dict[str, str]
) -> None:
    send(relay.port, pki, xdm_message())
    conv = conversations(api, patient_headers)[0]
    response = api.delete(f"/api/mailbox/conversations/{conv['id']}", headers=patient_headers)
    assert response.status_code == 204
    for model in (mb.MailConversation, mb.MailMessage, mb.MailAttachment):
        assert count(espace, model) == 0
    with espace.session_factory() as session:
        events = set(session.execute(select(TraceRecord.event_type)).scalars())
    assert {"smtp.deliver", "mailbox.delete"} <= events


def test_messages_are_kept_ten_years(
    relay: Any, pki: Any, espace: Espace, clock: FrozenClock
) -> None:
    send(relay.port, pki, build_message())
    clock.advance(timedelta(days=365 * 10 - 10))
    assert cli.purge(espace) == 0
    clock.set(clock.now().replace(year=clock.now().year + 1))
    assert cli.purge(espace) == 1
    assert count(espace, mb.MailMessage) == 0 and count(espace, mb.MailConversation) == 0


def test_pharmacy_history_needs_an_address(espace: Espace, space: Any) -> None:
    from espace.errors import InvalidInput

    with pytest.raises(InvalidInput):
        cli.add_pharmacy(espace, PATIENT_INS, "not-an-address", "x", date(2026, 1, 1))


def test_reply_with_a_document_taken_from_the_dmp(
    relay: Any, pki: Any, api: Any, espace: Espace, patient_headers: dict[str, str]
) -> None:
    from mailkit import LDL_META

    send(relay.port, pki, xdm_message())
    conv = conversations(api, patient_headers)[0]
    message = api.get(
        f"/api/mailbox/conversations/{conv['id']}", headers=patient_headers
    ).get_json()["messages"][0]
    att = message["attachments"][0]
    assert (
        api.post(
            f"/api/mailbox/messages/{message['id']}/attachments/{att['id']}/dmp",
            headers=patient_headers,
            json={},
        ).status_code
        == 201
    )
    url = f"/api/mailbox/conversations/{conv['id']}/messages"
    missing = api.post(
        url,
        headers=patient_headers,
        json={"body": "x", "attachments": [{"dmp_document": "1.2.3.4.404"}]},
    )
    assert missing.status_code == 404 and missing.get_json()["error"] == "document_not_found"
    ok = api.post(
        url,
        headers=patient_headers,
        json={"body": "Le document", "attachments": [{"dmp_document": LDL_META["unique_id"]}]},
    )
    assert ok.status_code == 201, ok.get_json()
    attachment = ok.get_json()["attachments"][0]
    assert attachment["content_type"] == "text/xml" and attachment["size"] > 1000
    profile = api.post(
        url, headers=patient_headers, json={"body": "x", "attachments": [{"profile_summary": True}]}
    )
    assert profile.status_code == 400
    assert profile.get_json()["error"] == "profile_summary_unavailable"


def test_mounted_on_the_real_application(client: Any) -> None:
    """``mes.app.create_app`` loads ``mssante.web`` and serves the mailbox API."""
    assert client.get("/api/mailbox/openapi.json").status_code == 200
    assert client.get("/api/mailbox/conversations").status_code == 401


def test_legal_representative_reads_a_minors_mailbox(
    relay: Any, pki: Any, api: Any, espace: Espace, mail_settings: dict[str, Any]
) -> None:
    from espace.admin import add_representative
    from espace.models import PatientSpace

    with espace.session_factory() as session:
        space = session.execute(select(PatientSpace)).scalar_one()
        space.birth_date = date(2015, 6, 1)  # a minor
        add_representative(
            session,
            space,
            OTHER_INS,
            now=espace.clock.now(),
            name="Parent",
            email="parent@example.org",
        )
        session.commit()
    send(relay.port, pki, build_message())
    rep = issue_token(
        mail_settings, subject=OTHER_INS, kind=ActorKind.LEGAL_REPRESENTATIVE, patient=PATIENT_INS
    )
    items = conversations(api, {"Authorization": f"Bearer {rep}"})
    assert len(items) == 1
    with espace.session_factory() as session:
        from espace.models import NotificationOutbox

        recipients = session.execute(
            select(NotificationOutbox.recipients).where(
                NotificationOutbox.category == "new_message"
            )
        ).scalar_one()
    assert recipients == "parent@example.org"  # a minor's notifications go to the parents


def test_save_one_named_document_of_a_two_document_archive(
    relay: Any, pki: Any, api: Any, espace: Espace, patient_headers: dict[str, str]
) -> None:
    from mailkit import LDL_META, SENDER_XCN, TEST_INS_OID, cda

    from mssante.xdm import build_archive

    second = {**LDL_META, "unique_id": "1.2.250.1.213.1.1.9.4712", "title": "Copie"}
    archive = build_archive(
        [("DOC0001.XML", cda(), LDL_META), ("DOC0002.XML", cda(), second)],
        patient_id=f"{PATIENT_INS}^^^&{TEST_INS_OID}&ISO^NH",
        author_person=SENDER_XCN,
        content_type_code=None,
    )
    send(relay.port, pki, xdm_message(archive=archive))
    conv = conversations(api, patient_headers)[0]
    message = api.get(
        f"/api/mailbox/conversations/{conv['id']}", headers=patient_headers
    ).get_json()["messages"][0]
    att = message["attachments"][0]
    assert [d["unique_id"] for d in att["documents"]] == [
        LDL_META["unique_id"],
        second["unique_id"],
    ]
    url = f"/api/mailbox/messages/{message['id']}/attachments/{att['id']}/dmp"
    unknown = api.post(url, headers=patient_headers, json={"document_unique_id": "9.9.9"})
    assert unknown.status_code == 400
    assert unknown.get_json()["error"] == "xdm_document_not_found"
    saved = api.post(url, headers=patient_headers, json={"document_unique_id": second["unique_id"]})
    assert saved.status_code == 201
    assert [d["unique_id"] for d in saved.get_json()["documents"]] == [second["unique_id"]]
    from espace.models import DocumentEntryRow

    with espace.session_factory() as session:
        stored = session.execute(select(DocumentEntryRow.unique_id)).scalars().all()
    assert stored == [second["unique_id"]]
