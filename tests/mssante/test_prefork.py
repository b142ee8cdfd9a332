"""The relay on every core (``MAIL_PROCESSES`` > 1, ``mssante.prefork``): the processes share
the port, a dead one is replaced, SIGTERM stops them all, nothing is lost."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from mailkit import build_message, free_port, send, start_relay_process
from sqlalchemy import func, select

from espace.mailbox import MailMessage
from espace.service import Espace


def _children(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(p) for p in path.read_text().split()} if path.exists() else set()


def _wait_for(predicate: Any, seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    return predicate()


def _stored(espace: Espace) -> int:
    with espace.session_factory() as session:
        return int(session.execute(select(func.count()).select_from(MailMessage)).scalar_one())


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_two_relay_processes_share_the_port_and_a_dead_one_is_replaced(
    espace: Espace, mail_settings: dict[str, Any], space: Any, pki: Any
) -> None:
    port = free_port()
    replaced: set[int] = set()
    proc = start_relay_process(mail_settings, port, MAIL_PROCESSES="2")
    try:
        first = _wait_for(lambda: len(_children(proc.pid)) == 2 and _children(proc.pid))
        assert len(first) == 2, first
        messages = [build_message(subject=f"Compte rendu {i}") for i in range(6)]
        with ThreadPoolExecutor(3) as pool:  # several connections at once
            assert list(pool.map(lambda raw: send(port, pki, raw), messages)) == [{}] * 6
        assert _stored(espace) == 6

        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        replaced = _wait_for(
            lambda: (kids := _children(proc.pid)) and victim not in kids and len(kids) == 2
            and kids
        )
        assert replaced and len(replaced) == 2 and victim not in replaced, replaced
        assert send(port, pki, build_message(subject="after the replacement")) == {}
        assert _stored(espace) == 7
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()
    assert code == 0
    for pid in first | replaced:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()
