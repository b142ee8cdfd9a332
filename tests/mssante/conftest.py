"""Fixtures of the secure-mail face: a patient space, the relay on loopback with mutual TLS,
a remote operator (a second aiosmtpd), patient bearer tokens."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP
from mailkit import PATIENT_INS, SENDER, SENDER_ID, TEST_INS_OID, RemoteOperator

from espace.admin import register_space, upsert_professional
from espace.service import Espace
from habilitation.model import ActorKind
from mes.tokens import issue_token
from mssante.smtp_server import SmtpHandle, start_smtp

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def mail_settings(settings: dict[str, Any]) -> dict[str, Any]:
    settings.update(
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=0,
        MAIL_OUTBOUND_WORKER=False,
        MAIL_TRUST_DOMAINS="operateur.test.mssante.fr,mssante.fr",
        MAIL_OUTBOUND_BACKOFF_SECONDS=60,
        MAIL_OUTBOUND_MAX_ATTEMPTS=3,
        # the patient submits the set (TRE_A00); see the report on JDV_J59's TRE_R209 OID cell
        MAIL_DMP_DEFAULT_CONTENT_TYPE="EXP_PATIENT|1.2.250.1.213.1.1.4.6",
    )
    return settings


@pytest.fixture
def space(espace: Espace) -> Any:
    with espace.session_factory() as session:
        row = register_space(
            session,
            ins=PATIENT_INS,
            now=espace.clock.now(),
            family_name="PAT-TROIS",
            given_names="Mireille",
            birth_date=date(1979, 3, 15),
            sex="F",
            email="mireille@example.org",
            ins_oid=TEST_INS_OID,
        )
        upsert_professional(
            session,
            SENDER_ID,
            name="Dr Jean Martin",
            profession="10",
            specialty="SM26",
            mssante_address=SENDER,
        )
        session.commit()
        return row


@pytest.fixture
def relay(espace: Espace, mail_settings: dict[str, Any], space: Any) -> Iterator[SmtpHandle]:
    espace.settings = {**espace.settings, **mail_settings}
    handle = start_smtp(espace, mail_settings)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def mail_app(mail_settings: dict[str, Any], espace: Espace) -> Any:
    """The mailbox face alone on a Flask app shaped like ``mes.app.create_app`` (the other
    faces are built concurrently and must not break these tests)."""
    import uuid

    from flask import Flask, g, request

    from mes.config import load_settings
    from mssante import web

    flask_app = Flask("mes_mailbox_test", root_path=str(ROOT))
    flask_app.config.from_mapping(load_settings(mail_settings))
    flask_app.config["TESTING"] = True
    flask_app.extensions["espace"] = espace

    @flask_app.before_request
    def _request_id() -> None:
        g.request_id = request.headers.get("X-Request-ID") or uuid.uuid4().hex

    web.init_app(flask_app)
    return flask_app


@pytest.fixture
def api(mail_app: Any) -> Any:
    return mail_app.test_client()


@pytest.fixture
def patient_headers(mail_settings: dict[str, Any]) -> dict[str, str]:
    token = issue_token(
        mail_settings,
        subject=PATIENT_INS,
        kind=ActorKind.PATIENT,
        patient=PATIENT_INS,
        name="Mireille PAT-TROIS",
    )
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def operator(pki: Any) -> Iterator[RemoteOperator]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.tls_server_cert, pki.tls_server_key)
    ctx.load_verify_locations(cafile=str(pki.ca_cert))
    ctx.verify_mode = ssl.CERT_OPTIONAL
    remote = RemoteOperator()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, Any] = {}

    async def listen() -> None:
        holder["server"] = await loop.create_server(
            lambda: SMTP(
                remote, tls_context=ctx, require_starttls=True, hostname="op.test", loop=loop
            ),
            "127.0.0.1",
            0,
        )

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(listen())
        started.set()
        loop.run_forever()
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait(10)
    remote.port = holder["server"].sockets[0].getsockname()[1]
    try:
        yield remote
    finally:

        async def close() -> None:
            holder["server"].close()
            await holder["server"].wait_closed()

        asyncio.run_coroutine_threadsafe(close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
