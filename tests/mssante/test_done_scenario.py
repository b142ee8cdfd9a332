"""The issue's "Done means": XDM report by mutual TLS -> notified -> read -> saved to the DMP
(visible to an authorized médecin through the registry's visibility predicate) -> reply
reaches the operator; FIN cannot be answered; a sender outside the trust space is refused."""

from __future__ import annotations

import smtplib
from email import message_from_bytes
from typing import Any

import pytest
from mailkit import (
    LDL_META,
    PATIENT_INS,
    SENDER,
    SENDER_ID,
    build_message,
    send,
    xdm_message,
)
from sqlalchemy import select

from espace.models import DocumentEntryRow, NotificationOutbox, TraceRecord
from espace.service import Espace
from espace.spaces import space_facts
from espace.store import visibility_clause
from habilitation.model import Actor, ActorKind, AuthenticationMode
from mssante.outbound import OutboundWorker


def test_done_scenario(
    relay: Any,
    pki: Any,
    espace: Espace,
    api: Any,
    patient_headers: dict[str, str],
    operator: Any,
    mail_settings: dict[str, Any],
) -> None:
    raw = xdm_message(headers={"Disposition-Notification-To": SENDER})
    assert send(relay.port, pki, raw) == {}

    with espace.session_factory() as session:
        notes = session.execute(select(NotificationOutbox.category)).scalars().all()
    assert "new_message" in notes

    listing = api.get("/api/mailbox/conversations", headers=patient_headers).get_json()
    assert listing["total"] == 1
    conversation = listing["conversations"][0]
    assert conversation["unread"] == 1 and conversation["can_reply"] is True

    detail = api.get(
        f"/api/mailbox/conversations/{conversation['id']}", headers=patient_headers
    ).get_json()
    message = detail["messages"][0]
    assert message["x_mss"]["X-MSS-CODECDA"] == "11490-0"
    attachment = message["attachments"][0]
    assert attachment["is_xdm"] and attachment["documents"][0]["unique_id"] == LDL_META["unique_id"]

    read = api.get(f"/api/mailbox/messages/{message['id']}", headers=patient_headers)
    assert read.status_code == 200 and read.get_json()["read"] is True
    assert "compte rendu" in read.get_json()["body"]

    saved = api.post(
        f"/api/mailbox/messages/{message['id']}/attachments/{attachment['id']}/dmp",
        headers=patient_headers,
        json={},
    )
    assert saved.status_code == 201, saved.get_json()
    assert saved.get_json()["documents"][0]["unique_id"] == LDL_META["unique_id"]

    # ITI-18's road: an authorized médecin's visibility predicate, pushed into SQL
    medecin = Actor(
        kind=ActorKind.PROFESSIONAL,
        id=SENDER_ID,
        profession="10",
        specialty="SM26",
        authentication_mode=AuthenticationMode.DIRECT,
    )
    with espace.session_factory() as session:
        from espace.admin import link_professional
        from espace.spaces import find_space_by_ins

        space = find_space_by_ins(session, PATIENT_INS)
        assert space is not None
        link_professional(
            session, space, SENDER_ID, "authorized", declared_by=PATIENT_INS, now=espace.clock.now()
        )
        session.commit()
        facts = space_facts(session, space, espace.clock.now())
        vis = espace.pdp.visible_documents(medecin, facts)
        found = (
            session.execute(
                select(DocumentEntryRow).where(
                    DocumentEntryRow.space_id == space.id, visibility_clause(vis)
                )
            )
            .scalars()
            .all()
        )
    assert [r.unique_id for r in found] == [LDL_META["unique_id"]]
    assert found[0].origin == "mail" and SENDER_ID in found[0].author_ids

    replied = api.post(
        f"/api/mailbox/conversations/{conversation['id']}/messages",
        headers=patient_headers,
        json={"body": "Merci docteur."},
    )
    assert replied.status_code == 201, replied.get_json()

    settings = {**mail_settings, "MAIL_OUTBOUND_RELAY": f"127.0.0.1:{operator.port}"}
    assert OutboundWorker(espace, settings).run_once() == 2  # the MDN and the reply
    kinds = sorted(
        message_from_bytes(e.original_content).get_content_type() for e in operator.received
    )
    assert kinds == ["multipart/report", "text/plain"]
    assert all(operator.seen_client_cert)
    reply_env = next(e for e in operator.received if b"Merci docteur" in e.original_content)
    assert reply_env.mail_from == f"{PATIENT_INS}@patient.mssante.fr"
    assert reply_env.rcpt_tos == ["dr.martin@operateur.test.mssante.fr"]
    with espace.session_factory() as session:
        from espace.trace import verify_chains

        assert verify_chains(session, espace.signer) == []  # every step traced, chain intact
        events = set(session.execute(select(TraceRecord.event_type)).scalars())
    assert {
        "smtp.deliver",
        "mailbox.read",
        "mailbox.save_to_dmp",
        "mailbox.reply",
        "smtp.send",
    } <= events
    reply_msg = message_from_bytes(reply_env.original_content)
    assert reply_msg["In-Reply-To"].strip() in raw.decode("latin-1")


def test_fin_message_cannot_be_answered(
    relay: Any, pki: Any, api: Any, patient_headers: dict[str, str]
) -> None:
    send(relay.port, pki, build_message(headers={"X-MSS-MES": "FIN"}))
    conversation = api.get("/api/mailbox/conversations", headers=patient_headers).get_json()[
        "conversations"
    ][0]
    assert conversation["can_reply"] is False and conversation["reply_refusal"] == "fin"
    refused = api.post(
        f"/api/mailbox/conversations/{conversation['id']}/messages",
        headers=patient_headers,
        json={"body": "Une question"},
    )
    assert refused.status_code == 403 and refused.get_json()["error"] == "fin"


def test_sender_outside_trust_space_is_refused(
    relay: Any, pki: Any, api: Any, patient_headers: dict[str, str]
) -> None:
    raw = build_message(sender="someone@gmail.com")
    with pytest.raises(smtplib.SMTPSenderRefused) as refused:
        send(relay.port, pki, raw, mail_from="someone@gmail.com")
    assert refused.value.smtp_code == 550
    assert b"5.7.1" in refused.value.smtp_error
    listing = api.get("/api/mailbox/conversations", headers=patient_headers).get_json()
    assert listing["total"] == 0
