"""``mes serve``: every face of the server in one process.

- HTTP on ``HTTP_HOST:HTTP_PORT`` (default 127.0.0.1:8080) and HTTPS on ``HTTPS_PORT`` (TLS 1.2+,
  ECDHE + AEAD suites, optional or required client certificates) — the same WSGI app;
- the MSSanté SMTP relay (``mssante.smtp_server.start_smtp``) on ``SMTP_PORT`` (2525);
- background workers: notification outbox, mail delivery queue, time-based jobs (scheduler).

For production behind a load balancer run ``gunicorn 'mes.wsgi:app'`` for HTTP and
``mes worker`` for the background jobs (see the Dockerfile).
"""

from __future__ import annotations

import importlib
import logging
import signal
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from espace.service import Espace
from mes.app import get_espace

log = logging.getLogger("mes.serve")

TLS_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"  # forward secrecy + AEAD only (TLS 1.2)


def server_tls_context(pki_dir: Path, client_cert: str = "optional") -> ssl.SSLContext:
    """TLS 1.2+ with ECDHE + AEAD suites (ANSSI / MSSanté), client certificates per setting."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS_CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    from mes.pki import generate_test_pki

    pki = generate_test_pki(pki_dir)
    ctx.load_cert_chain(str(pki.tls_server_cert), str(pki.tls_server_key))
    ctx.load_verify_locations(str(pki.ca_cert))
    ctx.verify_mode = {
        "none": ssl.CERT_NONE,
        "optional": ssl.CERT_OPTIONAL,
        "required": ssl.CERT_REQUIRED,
    }[client_cert]
    return ctx


class Background:
    """A loop calling ``step`` every ``interval`` seconds until stopped (exceptions logged)."""

    def __init__(self, name: str, step: Callable[[], Any], interval: float) -> None:
        self.name, self.step, self.interval = name, step, interval
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.step()
            except Exception:
                log.exception("background job %s failed", self.name)
            self.stopped.wait(self.interval)

    def start(self) -> Background:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()


def background_jobs(espace: Espace) -> list[Background]:
    """The workers every node runs: notifications, mail delivery, time-based jobs."""
    from mes.notifier import NotificationWorker

    jobs = [Background("notifications", NotificationWorker(espace).run_once, 5.0)]
    for module_name, function_name, interval in (
        ("mssante.outbound", "run_outbound_once", 5.0),
        ("espace.lifecycle", "run_due_jobs", 60.0),
        ("espace.agenda", "due_agenda_notifications", 60.0),
    ):
        step = _optional(module_name, function_name)
        if step is not None:
            jobs.append(Background(function_name, _bind(step, espace), interval))
    return jobs


def _bind(step: Callable[[Espace], Any], espace: Espace) -> Callable[[], Any]:
    return lambda: step(espace)


def _optional(module_name: str, attribute: str) -> Any:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            return None
        raise
    return getattr(module, attribute, None)


def serve(app: Flask, *, with_https: bool = True, with_smtp: bool = True) -> None:
    """Run until SIGINT/SIGTERM."""
    settings = app.config
    espace = get_espace(app)
    host = str(settings["HTTP_HOST"])
    servers: list[BaseWSGIServer] = [
        make_server(host, int(settings["HTTP_PORT"]), app, threaded=True)
    ]
    if with_https and settings.get("HTTPS_PORT"):
        ctx = server_tls_context(
            Path(str(settings["PKI_DIR"])), str(settings.get("HTTPS_CLIENT_CERT", "optional"))
        )
        servers.append(
            make_server(host, int(settings["HTTPS_PORT"]), app, threaded=True, ssl_context=ctx)
        )
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    smtp = None
    start_smtp = _optional("mssante.smtp_server", "start_smtp") if with_smtp else None
    if start_smtp is not None:
        smtp = start_smtp(espace, settings)
    jobs = [job.start() for job in background_jobs(espace)]
    log.info(
        "serving HTTP on %s:%s, HTTPS on %s, SMTP on %s",
        host,
        settings["HTTP_PORT"],
        settings.get("HTTPS_PORT") if with_https else "off",
        settings.get("SMTP_PORT") if smtp else "off",
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    for job in jobs:
        job.stop()
    if smtp is not None:
        smtp.stop()
    for server in servers:
        server.shutdown()
