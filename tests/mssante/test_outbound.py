"""The outbound queue: STARTTLS + client certificate to the operator, retries with exponential
backoff, failure reported to the patient, crash-safe claims, receipts (MDN/DSN) on return."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from mailkit import (
    MSSANTE_REF,
    PATIENT_ADDRESS,
    SENDER,
    build_message,
    send,
)
from reference_data import require
from sqlalchemy import select

from espace import mailbox as mb
from espace.clock import FrozenClock, as_utc
from espace.models import NotificationOutbox
from espace.service import Espace
from mssante.outbound import OutboundWorker


def _reply(relay: Any, pki: Any, api: Any, headers: dict[str, str]) -> str:
    send(relay.port, pki, build_message())
    conv = api.get("/api/mailbox/conversations", headers=headers).get_json()["conversations"][0]
    response = api.post(
        f"/api/mailbox/conversations/{conv['id']}/messages",
        headers=headers,
        json={"body": "Réponse du patient"},
    )
    assert response.status_code == 201
    return str(conv["id"])


def _worker(espace: Espace, settings: dict[str, Any], operator: Any) -> OutboundWorker:
    return OutboundWorker(espace, {**settings, "MAIL_OUTBOUND_RELAY": f"127.0.0.1:{operator.port}"})


def _row(espace: Espace) -> mb.MailOutbound:
    with espace.session_factory() as session:
        return session.execute(select(mb.MailOutbound)).scalar_one()


def test_temporary_failures_back_off_then_the_patient_is_told(
    relay: Any,
    pki: Any,
    api: Any,
    espace: Espace,
    patient_headers: dict[str, str],
    operator: Any,
    mail_settings: dict[str, Any],
    clock: FrozenClock,
) -> None:
    conversation_id = _reply(relay, pki, api, patient_headers)
    operator.reply = "451 4.3.0 try later"
    worker = _worker(espace, mail_settings, operator)
    start = clock.now()
    assert worker.run_once() == 1
    row = _row(espace)
    assert (row.status, row.attempts) == ("pending", 1)
    assert as_utc(row.next_attempt_at) == start + timedelta(seconds=60)
    assert worker.run_once() == 0  # not due yet
    clock.advance(timedelta(seconds=61))
    assert worker.run_once() == 1
    row = _row(espace)
    assert as_utc(row.next_attempt_at) == clock.now() + timedelta(seconds=120)  # doubled
    clock.advance(timedelta(seconds=121))
    assert worker.run_once() == 1  # third and last try (MAIL_OUTBOUND_MAX_ATTEMPTS=3)
    row = _row(espace)
    assert row.status == "failed" and "451" in row.last_error
    assert operator.received == []
    detail = api.get(
        f"/api/mailbox/conversations/{conversation_id}", headers=patient_headers
    ).get_json()
    outbound = [m for m in detail["messages"] if m["direction"] == "outbound"]
    notices = [m for m in detail["messages"] if m["direction"] == "system"]
    assert outbound[0]["delivery_status"] == "failed"
    assert notices and notices[0]["no_reply_reason"] == "delivery_failure"
    with espace.session_factory() as session:
        keys = set(session.execute(select(NotificationOutbox.dedup_key)).scalars())
    assert f"mail_failed:{row.id}" in keys


def test_permanent_failure_is_not_retried(
    relay: Any,
    pki: Any,
    api: Any,
    espace: Espace,
    patient_headers: dict[str, str],
    operator: Any,
    mail_settings: dict[str, Any],
) -> None:
    _reply(relay, pki, api, patient_headers)
    operator.reply = "550 5.1.1 no such user"
    assert _worker(espace, mail_settings, operator).run_once() == 1
    row = _row(espace)
    assert (row.status, row.attempts) == ("failed", 1)


def test_a_crashed_claim_is_resent_once_with_the_same_message_id(
    relay: Any,
    pki: Any,
    api: Any,
    espace: Espace,
    patient_headers: dict[str, str],
    operator: Any,
    mail_settings: dict[str, Any],
    clock: FrozenClock,
) -> None:
    _reply(relay, pki, api, patient_headers)
    worker = _worker(espace, mail_settings, operator)
    claimed = worker.claim()  # ...and the process dies before sending
    assert len(claimed) == 1 and _row(espace).status == "sending"
    assert worker.run_once() == 0  # leased: nobody else sends it meanwhile
    clock.advance(timedelta(seconds=301))  # the lease expires
    assert worker.run_once() == 1
    assert worker.run_once() == 0
    assert len(operator.received) == 1 and operator.seen_client_cert == [True]
    row = _row(espace)
    assert row.status == "sent"
    assert f"<{row.message_id}>".encode() in operator.received[0].original_content


def test_mdn_receipts_in_ans_and_ihe_wording(
    relay: Any, pki: Any, api: Any, espace: Espace, patient_headers: dict[str, str]
) -> None:
    conversation_id = _reply(relay, pki, api, patient_headers)
    row = _row(espace)
    for disposition, expected in (
        (
            "automatic-action/MDN-sent-automatically; processed/Error: "
            "902^Identifiant de patient inconnu^messageErrorCondition",
            "error",
        ),
        ("manual-action/MDN-sent-manually; displayed", "displayed"),
    ):
        report = (
            f"From: {SENDER}\r\nTo: {PATIENT_ADDRESS}\r\nSubject: MDN\r\n"
            f"Message-ID: <mdn-{expected}@operateur.test.mssante.fr>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/report; report-type=disposition-notification; "
            'boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nlu\r\n'
            "--b\r\nContent-Type: message/disposition-notification\r\n\r\n"
            f"Final-Recipient: rfc822;{SENDER}\r\n"
            f"Original-Message-ID: <{row.message_id}>\r\nDisposition: {disposition}\r\n"
            "--b--\r\n"
        ).encode()
        assert send(relay.port, pki, report) == {}
        detail = api.get(
            f"/api/mailbox/conversations/{conversation_id}", headers=patient_headers
        ).get_json()
        outbound = [m for m in detail["messages"] if m["direction"] == "outbound"][0]
        assert outbound["delivery_status"] == expected
        assert len(detail["messages"]) == 2  # a receipt is not a new message


def test_ans_mdn_example_wording_is_understood() -> None:
    """The ANS example's Disposition line, verbatim (the file itself lacks MIME separators, see
    the reference README: it is not a syntax oracle, and we refuse it as malformed)."""
    from mssante.mime import MimeError, disposition_status, parse_message

    raw = require(MSSANTE_REF / "ans_mdn_example_error.eml.txt").read_bytes()
    line = next(v for v in raw.decode().splitlines() if v.startswith("Disposition:"))
    status, detail = disposition_status(line.partition(":")[2])
    assert status == "error" and detail.startswith("902^Identifiant de patient inconnu")
    assert disposition_status("automatic-action/MDN-sent-automatically; processed") == (
        "processed",
        "",
    )
    assert disposition_status("manual-action/MDN-sent-manually; displayed") == ("displayed", "")
    with pytest.raises(MimeError) as refused:
        parse_message(raw, domain="patient.mssante.fr")
    assert refused.value.problem == "mime_malformed"


def test_relay_can_run_the_outbound_worker_itself(
    espace: Espace,
    mail_settings: dict[str, Any],
    space: Any,
    pki: Any,
    operator: Any,
    api: Any,
    patient_headers: dict[str, str],
) -> None:
    import time

    from mssante.smtp_server import start_smtp

    settings = {
        **mail_settings,
        "MAIL_OUTBOUND_WORKER": True,
        "MAIL_OUTBOUND_POLL_SECONDS": 0.1,
        "MAIL_OUTBOUND_RELAY": f"127.0.0.1:{operator.port}",
    }
    handle = start_smtp(espace, settings)
    try:
        send(handle.port, pki, build_message())
        conv = api.get("/api/mailbox/conversations", headers=patient_headers).get_json()[
            "conversations"
        ][0]
        assert (
            api.post(
                f"/api/mailbox/conversations/{conv['id']}/messages",
                headers=patient_headers,
                json={"body": "ok"},
            ).status_code
            == 201
        )
        deadline = time.monotonic() + 10
        while not operator.received and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        handle.stop()
    assert len(operator.received) == 1
    assert _row(espace).status == "sent"
