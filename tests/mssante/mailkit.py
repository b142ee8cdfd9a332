"""Helpers of the secure-mail tests: reference data, message builders, SMTP client and server."""

from __future__ import annotations

import os
import smtplib
import socket
import ssl
import subprocess
import sys
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from reference_data import SHARED

from mssante.smtp_server import SmtpHandle
from mssante.xdm import build_archive

MSSANTE_REF = SHARED / "reference" / "mssante"
CDA_DIR = SHARED / "reference" / "dmp" / "cda"
LDL_SES = "TestContenuCDA-3-0_LDL-SES_2022.01.xml"
CSE_MDE = "TestContenuCDA-3-0_CSE-MDE_2023.01.xml"  # recordTarget: another INS (production OID)

PATIENT_INS = "279035121518989"  # the CI-SIS examples' INS-NIR de test
TEST_INS_OID = "1.2.250.1.213.1.4.10"
OTHER_INS = "222127505611201"
SENDER = "dr.martin@operateur.test.mssante.fr"
SENDER_ID = "810000000001"
SENDER_XCN = f"{SENDER_ID}^MARTIN^Jean^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS"
PATIENT_ADDRESS = f"{PATIENT_INS}@patient.mssante.fr"


def cda(name: str = LDL_SES) -> bytes:
    path = CDA_DIR / name
    if not path.is_file():
        pytest.skip("shared reference data absent")
    return path.read_bytes()


LDL_META: dict[str, Any] = {
    "unique_id": "1.2.250.1.213.1.1.9.4711",
    "mime_type": "text/xml",
    "title": "Lettre de liaison à la sortie",
    "type_code": (
        "11490-0",
        "2.16.840.1.113883.6.1",
        "Lettre de liaison à la sortie d'un établissement de soins",
    ),
    "class_code": ("10", "1.2.250.1.213.1.1.4.1", "Compte rendu"),
    "format_code": (
        "urn:asip:ci-sis:ldl-ses:2017",
        "1.2.250.1.213.1.1.4.2.282",
        "Lettre de Liaison à la sortie de l'établissement de santé",
    ),
    "confidentiality": ("N", "2.16.840.1.113883.5.25", "Normal"),
    "practice_setting": ("AMBULATOIRE", "1.2.250.1.213.1.1.4.9", "Ambulatoire"),
    "facility_type": ("SA01", "1.2.250.1.71.4.2.4", "Etablissement public de santé"),
}


def xdm_zip(
    content: bytes | None = None,
    *,
    patient_ins: str = PATIENT_INS,
    meta: dict[str, Any] | None = None,
) -> bytes:
    document = content if content is not None else cda()
    return build_archive(
        [("DOC0001.XML", document, {**LDL_META, **(meta or {})})],
        patient_id=f"{patient_ins}^^^&{TEST_INS_OID}&ISO^NH",
        author_person=SENDER_XCN,
        author_institution="CH TEST^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^499900063480001",
        content_type_code=None,
    )


def build_message(
    *,
    sender: str = SENDER,
    to: str = PATIENT_ADDRESS,
    subject: str = "Compte rendu",
    body: str = "Bonjour, voici votre compte rendu.",
    attachments: list[tuple[str, str, bytes]] | None = None,
    headers: dict[str, str] | None = None,
    message_id: str | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Dr Jean Martin <{sender}>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = message_id or make_msgid(domain="operateur.test.mssante.fr")
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    for filename, ctype, content in attachments or []:
        maintype, _, subtype = ctype.partition("/")
        msg.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes(policy=policy.SMTP)


def xdm_message(**kwargs: Any) -> bytes:
    archive = kwargs.pop("archive", None) or xdm_zip()
    headers = {"X-MSS-CODECDA": "11490-0", "X-MSS-INS": "O", "X-MSS-NIL": "DEV935997"}
    headers.update(kwargs.pop("headers", {}))
    return build_message(
        attachments=[("IHE_XDM.ZIP", "application/zip", archive)], headers=headers, **kwargs
    )


def client_context(
    pki: Any, *, cert: bool = True, cert_path: Path | None = None, key_path: Path | None = None
) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    if cert:
        ctx.load_cert_chain(
            cert_path or pki.mssante_client_cert, key_path or pki.mssante_client_key
        )
    return ctx


def send(
    port: int,
    pki: Any,
    raw: bytes,
    *,
    mail_from: str = SENDER,
    rcpts: list[str] | None = None,
    ctx: ssl.SSLContext | None = None,
) -> dict[str, Any]:
    """Deliver over STARTTLS with the operator's client certificate (smtplib)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.starttls(context=ctx or client_context(pki))
        refused: dict[str, Any] = client.sendmail(mail_from, rcpts or [PATIENT_ADDRESS], raw)
        return refused


def relay_port(relay: SmtpHandle) -> int:
    return relay.port


@dataclass
class RemoteOperator:
    """A second aiosmtpd standing for the professional's MSSanté operator."""

    port: int = 0
    received: list[Envelope] = field(default_factory=list)
    reply: str = "250 OK"
    seen_client_cert: list[bool] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        ssl_object = server.transport.get_extra_info("ssl_object") if server.transport else None
        self.seen_client_cert.append(bool(ssl_object and ssl_object.getpeercert()))
        if self.reply.startswith("250"):
            self.received.append(envelope)
        return self.reply


ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_relay_process(
    settings: dict[str, Any], port: int, **extra: str
) -> subprocess.Popen[str]:
    """``python -m mssante.smtp_server`` on ``port`` with the test settings (``extra``: more
    ``MES_*`` settings); returns once it listens."""
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
