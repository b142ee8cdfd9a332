"""Notification outbox and worker, with a real SMTP smarthost on loopback (aiosmtpd)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import date, timedelta
from email import message_from_bytes, policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from espace.admin import add_representative, register_space
from espace.clock import FrozenClock, as_utc
from espace.models import NotificationOutbox, PatientSpace
from espace.notifications import SCRUBBED_BODY, notify
from espace.service import Espace
from mes.notifier import MAX_ATTEMPTS, NotificationWorker, SmtpSender


class Sink:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append((list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


@pytest.fixture
def smarthost() -> Iterator[tuple[Sink, str]]:
    sink = Sink()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, f"127.0.0.1:{port}"
    finally:
        controller.stop()


def _space(espace: Espace, **kw: Any) -> str:
    with espace.session_factory() as session:
        space = register_space(session, now=espace.clock.now(), **kw)
        session.commit()
        return space.id


def _notify(
    espace: Espace, space_id: str, category: str, key: str, body: str | None = None
) -> None:
    with espace.session_factory() as session:
        space = session.get(PatientSpace, space_id)
        assert space is not None
        notify(session, space, category, body or f"corps {key}", dedup_key=key,
               now=espace.clock.now())
        session.commit()


def test_immediate_notification_is_sent_once(espace: Espace, smarthost: tuple[Sink, str]) -> None:
    sink, hostport = smarthost
    space_id = _space(espace, ins="207058575627097", email="patient@example.org")
    _notify(espace, space_id, "new_document", "doc-1")
    _notify(espace, space_id, "new_document", "doc-1")  # same event twice: one row
    worker = NotificationWorker(espace, SmtpSender(hostport))
    assert worker.run_once() == 1
    assert worker.run_once() == 0
    assert len(sink.messages) == 1
    rcpt, raw = sink.messages[0]
    assert rcpt == ["patient@example.org"]
    msg = message_from_bytes(raw, policy=policy.default)
    assert "nouveau document" in str(msg["Subject"])
    assert msg["Message-ID"]


def test_minor_notifications_go_to_the_representatives(
    espace: Espace, smarthost: tuple[Sink, str]
) -> None:
    sink, hostport = smarthost
    with espace.session_factory() as session:
        minor = register_space(
            session, ins="215057512345658", birth_date=date(2015, 5, 20), now=espace.clock.now()
        )
        for rep, email in (
            ("286037512345639", "mere@example.org"),
            ("184027512345674", "pere@example.org"),
        ):
            add_representative(session, minor, rep, now=espace.clock.now(), email=email)
        session.commit()
        minor_id = minor.id
    _notify(espace, minor_id, "new_document", "doc-minor")
    NotificationWorker(espace, SmtpSender(hostport)).run_once()
    assert sorted(sink.messages[0][0]) == ["mere@example.org", "pere@example.org"]


def test_unreachable_smarthost_retries_with_backoff(espace: Espace, clock: FrozenClock) -> None:
    space_id = _space(espace, ins="207058575627097", email="patient@example.org")
    _notify(espace, space_id, "emergency_access", "bg-1")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{probe.getsockname()[1]}"  # closed port: connection refused
    worker = NotificationWorker(espace, SmtpSender(dead))
    assert worker.run_once() == 0
    with espace.session_factory() as session:
        row = session.execute(select(NotificationOutbox)).scalar_one()
        assert (row.status, row.attempts) == ("pending", 1)
        assert row.last_error
        retry_at = row.next_attempt_at
    assert worker.run_once() == 0  # not due yet: no new attempt
    with espace.session_factory() as session:
        assert session.execute(select(NotificationOutbox.attempts)).scalar_one() == 1
    assert retry_at is not None


def test_other_categories_wait_for_one_daily_digest(
    espace: Espace, clock: FrozenClock, smarthost: tuple[Sink, str]
) -> None:
    sink, hostport = smarthost
    space_id = _space(espace, ins="207058575627097", email="patient@example.org")
    for n in range(3):
        _notify(espace, space_id, "profile_changed", f"p-{n}")
    worker = NotificationWorker(espace, SmtpSender(hostport))
    clock.set(clock.now().replace(hour=10))
    assert worker.run_once() == 0
    clock.advance(timedelta(hours=9))  # past DIGEST_HOUR (18h)
    assert worker.run_once() == 1
    assert len(sink.messages) == 1
    body = message_from_bytes(sink.messages[0][1]).get_payload(decode=True)
    assert isinstance(body, bytes) and body.decode().count("corps p-") == 3


def test_a_sent_one_time_code_is_scrubbed_from_the_outbox(
    espace: Espace, smarthost: tuple[Sink, str]
) -> None:
    """The outbox is the mail spool: once the code has left, the database keeps no usable copy
    (the e-mail had it); an ordinary notice keeps its body."""
    sink, hostport = smarthost
    space_id = _space(espace, ins="207058575627097", email="patient@example.org")
    _notify(espace, space_id, "enrolment_code", "code-1",
            "Voici votre nouveau code : ABCD-EFGH-JKLM")
    _notify(espace, space_id, "new_document", "doc-2")
    assert NotificationWorker(espace, SmtpSender(hostport)).run_once() == 2
    sent = b"".join(raw for _, raw in sink.messages)
    assert b"ABCD-EFGH-JKLM" in sent
    with espace.session_factory() as session:
        bodies = dict(
            session.execute(select(NotificationOutbox.dedup_key, NotificationOutbox.body)).all()
        )
    assert "ABCD" not in bodies["code-1"]
    assert bodies["code-1"] == SCRUBBED_BODY
    assert bodies["doc-2"] == "corps doc-2"


def test_a_code_that_cannot_be_delivered_is_scrubbed_when_given_up(
    espace: Espace, clock: FrozenClock
) -> None:
    space_id = _space(espace, ins="207058575627097", email="patient@example.org")
    _notify(espace, space_id, "enrolment_code", "code-2", "code : ABCD-EFGH-JKLM")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{probe.getsockname()[1]}"
    worker = NotificationWorker(espace, SmtpSender(dead))
    for _ in range(MAX_ATTEMPTS):
        worker.run_once()
        with espace.session_factory() as session:
            row = session.execute(select(NotificationOutbox)).scalar_one()
        if row.status == "failed":
            break
        assert "ABCD-EFGH-JKLM" in row.body  # still to be sent: kept
        clock.advance(as_utc(row.next_attempt_at) - clock.now() + timedelta(seconds=1))
    assert row.status == "failed"
    assert row.body == SCRUBBED_BODY
