"""kill -9 of the relay between accepting DATA and answering: nothing lost, nothing doubled.

The relay runs in a subprocess (``python -m mssante.smtp_server``) that pauses either before
the delivery transaction commits or after it committed but before the ``250``; the test kills
it with SIGKILL there, restarts it, and lets the "operator" retry as any MTA would.
"""

from __future__ import annotations

import os
import signal
import smtplib
import threading
import time
from typing import Any

import pytest
from mailkit import build_message, free_port, send, start_relay_process, xdm_message
from sqlalchemy import func, select

from espace.mailbox import MailMessage
from espace.models import NotificationOutbox
from espace.service import Espace


def _count(espace: Espace, model: Any) -> int:
    with espace.session_factory() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def _send_in_background(port: int, pki: Any, raw: bytes) -> tuple[threading.Thread, list[Any]]:
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(send(port, pki, raw))
        except (smtplib.SMTPException, OSError) as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


@pytest.mark.slow
@pytest.mark.parametrize(
    "pause", ["MAIL_DEBUG_PAUSE_BEFORE_COMMIT_SECONDS", "MAIL_DEBUG_PAUSE_AFTER_COMMIT_SECONDS"]
)
def test_kill_9_between_accept_and_reply(
    espace: Espace, mail_settings: dict[str, Any], space: Any, pki: Any, pause: str
) -> None:
    raw = xdm_message() if pause.endswith("AFTER_COMMIT_SECONDS") else build_message()
    port = free_port()
    proc = start_relay_process(mail_settings, port, **{pause: "60"})
    try:
        thread, outcome = _send_in_background(port, pki, raw)
        deadline = time.monotonic() + 20
        if pause.endswith("AFTER_COMMIT_SECONDS"):
            while _count(espace, MailMessage) == 0 and time.monotonic() < deadline:
                time.sleep(0.05)  # committed, the 250 not sent yet
            assert _count(espace, MailMessage) == 1
        else:
            # DATA received, the delivery transaction open and paused (on SQLite it holds the
            # write lock: reading now would wait for it)
            time.sleep(1.5)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
    thread.join(10)
    assert outcome and isinstance(outcome[0], smtplib.SMTPException | OSError)  # no 250
    expected_before_retry = 1 if pause.endswith("AFTER_COMMIT_SECONDS") else 0
    assert _count(espace, MailMessage) == expected_before_retry

    restarted = start_relay_process(mail_settings, port)
    try:
        assert send(port, pki, raw) == {}  # the operator retries the same message
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(10)
        if restarted.stdout is not None:
            restarted.stdout.close()
    assert _count(espace, MailMessage) == 1
    assert _count(espace, NotificationOutbox) >= 1
    with espace.session_factory() as session:
        keys = session.execute(select(NotificationOutbox.dedup_key)).scalars().all()
    assert sum(k.startswith("new_message:") for k in keys) == 1
