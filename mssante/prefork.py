"""The relay on every core: pre-forked processes sharing the listening sockets.

One relay process runs Python under one interpreter lock, so it uses about one core whatever
its thread pool (issue #8: at ~17 messages/s of 1 MB XDM the process was at ~0.9 core). As
Postfix runs one ``smtpd`` per connection and gunicorn pre-forks its workers, the parent binds
the SMTP sockets once, forks ``MAIL_PROCESSES`` children that each build their own database
engine and run ``start_smtp`` on the inherited sockets (the kernel hands each new connection to
one of the processes blocked in ``accept``), and supervises them: a child that dies is
replaced; SIGTERM or SIGINT stops them all (each finishes the message it holds: the 250 is only
sent after the commit, so an interrupted one is retried by the sending MTA).

Used by ``python -m mssante.smtp_server`` when ``MAIL_PROCESSES`` > 1.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger("mssante.prefork")


def bind_listeners(settings: Mapping[str, Any]) -> list[socket.socket]:
    """The STARTTLS socket (``SMTP_PORT``) and, when configured, the implicit-TLS one."""
    host = str(settings.get("SMTP_HOST") or "127.0.0.1")
    configured = settings.get("SMTP_PORT")
    ports = [int(configured) if configured is not None else 2525]
    implicit = settings.get("SMTP_IMPLICIT_TLS_PORT")
    if implicit is not None:
        ports.append(int(implicit))
    listeners = []
    for port in ports:
        sock = socket.create_server((host, port), backlog=128, reuse_port=False)
        sock.set_inheritable(True)
        listeners.append(sock)
    return listeners


def _child(settings: Mapping[str, Any], listeners: list[socket.socket]) -> None:
    """One relay process: its own engine, the inherited sockets, until SIGTERM."""
    from mes.wiring import build_espace
    from mssante.smtp_server import start_smtp

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    handle = start_smtp(build_espace(settings), settings, sockets=listeners)
    try:
        stop.wait()
    finally:
        handle.stop()


def run_prefork(
    settings: Mapping[str, Any],
    processes: int,
    *,
    ready: Callable[[list[int]], None] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Bind, fork ``processes`` relays, keep them running until SIGTERM/SIGINT (or ``stop``).

    ``ready`` is called in the parent with the bound ports once the children are forked.
    The parent must not hold a database connection or run threads when it forks.
    """
    if processes < 1:
        raise ValueError("MAIL_PROCESSES must be at least 1")
    listeners = bind_listeners(settings)
    stopping = stop or threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stopping.set())
        for sig in (signal.SIGTERM, signal.SIGINT)
    }
    children: set[int] = set()

    def fork_one() -> None:
        pid = os.fork()
        if pid == 0:  # the child never returns into the parent's code
            code = 0
            try:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
                _child(settings, listeners)
            except BaseException:  # noqa: BLE001 - reported, then the child exits
                log.exception("relay process %s failed", os.getpid())
                code = 1
            finally:
                os._exit(code)
        children.add(pid)

    try:
        for _ in range(processes):
            fork_one()
        if ready is not None:
            ready([int(s.getsockname()[1]) for s in listeners])
        log.info("MSSante relay: %d processes on %s", processes,
                 [s.getsockname() for s in listeners])
        while not stopping.is_set():
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                pid, status = 0, 0
            if pid in children:
                children.discard(pid)
                log.warning("relay process %s exited (status %s): replaced", pid, status)
                fork_one()
            stopping.wait(0.2)
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 30
        while children and time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid:
                children.discard(pid)
            else:
                time.sleep(0.05)
        for pid in children:  # did not stop in time
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        for sock in listeners:
            sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
