"""Hostile mail end to end over SMTP + STARTTLS with the operator's client certificate
(MSSanté Référentiel #1; IHE ITI TF-3 §4.3 XDM; RFC 5321 §4.2 reply codes): a refused message
gets a permanent 5xx with an enhanced status code from the intake, a trace record, and nothing
is stored."""

from __future__ import annotations

import smtplib
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "mssante"))

from mailkit import (  # noqa: E402
    PATIENT_ADDRESS,
    PATIENT_INS,
    SENDER,
    SENDER_ID,
    TEST_INS_OID,
    client_context,
    xdm_message,
    xdm_zip,
)
from sec_net import CANARY_SECRET  # noqa: E402

from espace.admin import register_space, upsert_professional  # noqa: E402
from espace.models import TraceRecord  # noqa: E402
from espace.service import Espace  # noqa: E402


@pytest.fixture
def relay_port(espace: Espace, settings: dict[str, Any]) -> Iterator[int]:
    smtp_server = pytest.importorskip("mssante.smtp_server")
    mail = {
        **settings,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": 0,
        "MAIL_OUTBOUND_WORKER": False,
        "MAIL_TRUST_DOMAINS": "operateur.test.mssante.fr,mssante.fr",
    }
    with espace.session_factory() as session:
        register_space(
            session,
            ins=PATIENT_INS,
            now=espace.clock.now(),
            family_name="PAT",
            given_names="M",
            birth_date=date(1979, 3, 15),
            sex="F",
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
    espace.settings = {**espace.settings, **mail}
    handle = smtp_server.start_smtp(espace, mail)
    try:
        yield handle.port
    finally:
        handle.stop()


def _send(port: int, pki: Any, raw: bytes) -> tuple[int, str]:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.ehlo("op.test")
        smtp.starttls(context=client_context(pki))
        smtp.ehlo("op.test")
        try:
            smtp.sendmail(SENDER, [PATIENT_ADDRESS], raw)
        except smtplib.SMTPDataError as exc:
            error = exc.smtp_error
            return exc.smtp_code, error.decode("utf-8", "replace") if isinstance(
                error, bytes
            ) else error
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            return code, text.decode("utf-8", "replace")
        return 250, ""


def _messages(espace: Espace) -> int:
    from espace.mailbox import MailMessage

    with espace.session_factory() as session:
        return int(session.execute(select(func.count()).select_from(MailMessage)).scalar_one())


def _refusals(espace: Espace) -> int:
    with espace.session_factory() as session:
        return int(
            session.execute(
                select(func.count(TraceRecord.id)).where(
                    TraceRecord.source_face == "mssante", TraceRecord.outcome != "success"
                )
            ).scalar_one()
        )


def test_control_valid_xdm_message_is_delivered(relay_port: int, pki: Any, espace: Espace) -> None:
    assert _send(relay_port, pki, xdm_message())[0] == 250
    assert _messages(espace) == 1


def _metadata_with_doctype(canary: Path) -> bytes:
    import io
    import zipfile

    source = zipfile.ZipFile(io.BytesIO(xdm_zip()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.upper().endswith("METADATA.XML"):
                data = data.replace(
                    b"?>", f'?><!DOCTYPE r [<!ENTITY x SYSTEM "file://{canary}">]>'.encode(), 1
                )
                data = data.replace(b"<rs:SubmitObjectsRequest", b"&x;<rs:SubmitObjectsRequest")
            target.writestr(info, data)
    return out.getvalue()


def test_xxe_in_xdm_metadata_refused(
    relay_port: int, pki: Any, espace: Espace, canary: Path
) -> None:
    before = _refusals(espace)
    code, text = _send(relay_port, pki, xdm_message(archive=_metadata_with_doctype(canary)))
    assert 550 <= code < 560, (code, text)
    assert CANARY_SECRET not in text
    assert _messages(espace) == 0
    assert _refusals(espace) == before + 1


def _bad_member_header() -> bytes:
    archive: bytes = xdm_zip()
    second = archive.index(b"PK\x03\x04", 10)
    return archive[:second] + b"PK\x03\x05" + archive[second + 4 :]


def test_corrupt_xdm_member_header_refused_cleanly(
    relay_port: int, pki: Any, espace: Espace
) -> None:
    before = _refusals(espace)
    code, text = _send(relay_port, pki, xdm_message(archive=_bad_member_header()))
    assert code == 554 and "5.6.0" in text, (code, text)
    assert "BadZipFile" not in text
    assert _messages(espace) == 0
    assert _refusals(espace) == before + 1


def _group_from_header() -> bytes:
    return (
        b"From: a:;dr.martin@operateur.test.mssante.fr\r\n"
        + f"To: {PATIENT_ADDRESS}\r\n".encode()
        + b"Subject: x\r\nMessage-ID: <group-from@operateur.test.mssante.fr>\r\n\r\nbody\r\n"
    )


def test_group_syntax_from_header_refused_cleanly(
    relay_port: int, pki: Any, espace: Espace
) -> None:
    before = _refusals(espace)
    code, text = _send(relay_port, pki, _group_from_header())
    assert code == 554 and "5.6.0" in text, (code, text)
    assert _messages(espace) == 0
    assert _refusals(espace) == before + 1
