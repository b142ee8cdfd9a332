"""kill -9 of the relay between accepting DATA and answering: nothing lost, nothing doubled.

The relay runs in a subprocess (``python -m mssante.smtp_server``) that pauses either before
the delivery transaction commits or after it committed but before the ``250``; the test kills
it with SIGKILL there, restarts it, and lets the "operator" retry as any MTA would.
"""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from mailkit import build_message, send, xdm_message
from sqlalchemy import func, select

from espace.mailbox import MailMessage
from espace.models import NotificationOutbox
from espace.service import Espace

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(settings: dict[str, Any], port: int, **extra: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MES_")}
    for key in (
        "DATABASE_URL",
        "DOCUMENT_KEY",
        "TRACE_SIGNING_KEY",
        "PKI_DIR",
        "VAR_DIR",
        "MAIL_TRUST_DOMAINS",
    ):
        env[f"MES_{key}"] = str(settings[key])
    env.update(MES_SMTP_PORT=str(port), MES_SMTP_HOST="127.0.0.1", MES_LOG_JSON="0")
    env.update({f"MES_{k}": v for k, v in extra.items()})
    proc = subprocess.Popen(
        [sys.executable, "-m", "mssante.smtp_server"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("listening"), line
    return proc


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
    port = _free_port()
    proc = _start(mail_settings, port, **{pause: "60"})
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

    restarted = _start(mail_settings, port)
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
