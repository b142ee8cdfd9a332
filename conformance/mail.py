"""The ``mail`` suite: the MSSanté relay seen from an operator's SMTP client.

Checks (RFC 5321, RFC 3207 STARTTLS, RFC 1870 SIZE, RFC 3463 enhanced codes; ANS Référentiel
socle MSSanté #1 "exigences de sécurité": TLS 1.2+, operator client certificate, trust-space
domains; MES: recipients are ``<matricule INS>@patient.mssante.fr``). In process the kit starts
the relay (:func:`mssante.smtp_server.start_smtp`) on a free port with the kit PKI, whose
MSSanté operator certificate it presents; against ``--target`` the suite needs
``--smtp host:port`` and is otherwise not applicable.
"""

from __future__ import annotations

import smtplib
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email import policy
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any, Final

from conformance.context import KitContext
from conformance.model import CaseResult, Exchange

SUITE: Final = "mail"
SPEC: Final = "RFC 5321, RFC 3207, RFC 1870; ANS Référentiel socle MSSanté #1"
SENDER_ID: Final = "810000999001"


@contextmanager
def _relay(context: KitContext) -> Iterator[tuple[str, int] | None]:
    espace = context.extra.get("espace")
    if espace is None:
        target = str(context.extra.get("smtp") or "")
        host, _, port = target.rpartition(":")
        yield (host, int(port)) if port.isdigit() else None
        return
    from espace.admin import upsert_professional
    from mssante.smtp_server import start_smtp

    settings: dict[str, Any] = {
        **espace.settings,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": 0,
        "MAIL_OUTBOUND_WORKER": False,
        "PKI_DIR": str(context.pki_dir),
    }
    espace.settings = settings
    with espace.session_factory() as session:
        upsert_professional(
            session,
            SENDER_ID,
            name="Dr Kit Conformité",
            profession="10",
            specialty="SM26",
            mssante_address=_sender(context),
        )
        session.commit()
    handle = start_smtp(espace, settings)
    try:
        yield ("127.0.0.1", handle.port)
    finally:
        handle.stop()


def _sender(context: KitContext) -> str:
    return f"dr.kit@{context.pki.mssante_operator_domain}"


def _tls(context: KitContext, *, client_cert: bool = True) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(context.pki.ca_cert))
    ctx.check_hostname = False
    if client_cert:
        ctx.load_cert_chain(context.pki.mssante_client_cert, context.pki.mssante_client_key)
    return ctx


def _message(sender: str, to: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Dr Kit <{sender}>"
    msg["To"] = to
    msg["Subject"] = "Conformance kit"
    msg["Message-ID"] = make_msgid(domain="operateur.test.mssante.fr")
    msg.set_content("Bonjour, message de test du kit de conformité.")
    return msg.as_bytes(policy=policy.SMTP)


class Dialog:
    """An SMTP session whose commands and replies go into the case report."""

    def __init__(self, case: CaseResult, host: str, port: int) -> None:
        self.case = case
        self.client = smtplib.SMTP(host, port, timeout=30)
        self.log = Exchange(label="SMTP dialog", method="SMTP", url=f"smtp://{host}:{port}")
        case.exchanges.append(self.log)

    def cmd(self, line: str) -> tuple[int, str]:
        code, text = self.client.docmd(line)
        reply = text.decode(errors="replace")
        self.log.request_body += f"C: {line}\n"
        self.log.response_body += f"C: {line}\nS: {code} {reply}\n"
        self.log.status = code
        return code, reply

    def ehlo(self) -> tuple[int, str]:
        code, text = self.client.ehlo("kit.operateur.test.mssante.fr")
        reply = text.decode(errors="replace")
        self.log.response_body += f"C: EHLO\nS: {code} {reply}\n"
        return code, reply

    def starttls(self, ctx: ssl.SSLContext) -> tuple[int, str]:
        code, text = self.client.starttls(context=ctx)
        self.log.response_body += f"C: STARTTLS\nS: {code} {text.decode(errors='replace')}\n"
        self.client.ehlo("kit.operateur.test.mssante.fr")
        return code, text.decode(errors="replace")

    def data(self, raw: bytes) -> tuple[int, str]:
        code, text = self.client.data(raw)
        self.log.response_body += f"C: DATA ({len(raw)} bytes)\nS: {code} {text.decode()}\n"
        return code, text.decode(errors="replace")

    def close(self) -> None:
        try:
            self.client.quit()
        except (smtplib.SMTPException, OSError):
            self.client.close()


def _run(
    case_id: str,
    title: str,
    expectation: str,
    relay: tuple[str, int],
    body: Callable[[CaseResult, Dialog], None],
) -> CaseResult:
    case = CaseResult(suite=SUITE, case_id=case_id, title=title, spec=SPEC)
    case.expectation = expectation
    started = time.perf_counter()
    dialog: Dialog | None = None
    try:
        dialog = Dialog(case, *relay)
        body(case, dialog)
    except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
        case.fail(f"{type(exc).__name__}: {exc}")
    finally:
        if dialog is not None:
            dialog.close()
    case.duration_s = time.perf_counter() - started
    return case


def run_mail(context: KitContext) -> list[CaseResult]:
    with _relay(context) as relay:
        if relay is None:
            case = CaseResult(suite=SUITE, case_id="smtp/all", title="MSSanté relay", spec=SPEC)
            case.not_applicable("no SMTP endpoint given (--target without --smtp host:port)")
            return [case]
        return _cases(context, relay)


def _cases(context: KitContext, relay: tuple[str, int]) -> list[CaseResult]:
    ins = context.patients.new_patient()
    domain = "patient.mssante.fr"
    patient = f"{ins}@{domain}"
    sender = _sender(context)
    results: list[CaseResult] = []

    def ehlo(case: CaseResult, d: Dialog) -> None:
        code, text = d.ehlo()
        case.check(code == 250, f"EHLO: {code}")
        case.check("STARTTLS" in text.upper(), "EHLO does not advertise STARTTLS (RFC 3207)")
        case.check("SIZE" in text.upper(), "EHLO does not advertise SIZE (RFC 1870)")

    results.append(
        _run(
            "smtp/ehlo",
            "EHLO advertises STARTTLS and SIZE",
            "250 with STARTTLS and SIZE",
            relay,
            ehlo,
        )
    )

    def plain_mail(case: CaseResult, d: Dialog) -> None:
        d.ehlo()
        code, _ = d.cmd(f"MAIL FROM:<{sender}>")
        case.check(code == 530, f"MAIL before STARTTLS: {code}, expected 530 (RFC 3207 §4)")

    results.append(
        _run(
            "smtp/starttls-required",
            "No mail before STARTTLS",
            "530 5.7.0 to MAIL FROM on a clear connection",
            relay,
            plain_mail,
        )
    )

    def no_cert(case: CaseResult, d: Dialog) -> None:
        d.ehlo()
        d.starttls(_tls(context, client_cert=False))
        code, _ = d.cmd(f"MAIL FROM:<{sender}>")
        case.check(code == 530, f"MAIL without a client certificate: {code}, expected 530")

    results.append(
        _run(
            "smtp/client-certificate-required",
            "An operator client certificate is required",
            "530 5.7.1 without a client certificate",
            relay,
            no_cert,
        )
    )

    def deliver(case: CaseResult, d: Dialog) -> None:
        d.ehlo()
        d.starttls(_tls(context))
        case.check(d.cmd(f"MAIL FROM:<{sender}>")[0] == 250, "MAIL FROM refused")
        case.check(d.cmd(f"RCPT TO:<{patient}>")[0] == 250, "RCPT TO the patient refused")
        code, _ = d.data(_message(sender, patient))
        case.check(code == 250, f"DATA: {code}, expected 250")

    results.append(
        _run(
            "smtp/deliver",
            "A message to a patient's mailbox is accepted",
            "250 to MAIL, RCPT <INS>@patient.mssante.fr and DATA",
            relay,
            deliver,
        )
    )

    def rcpt(address: str, want: int, label: str) -> Callable[[CaseResult, Dialog], None]:
        def body(case: CaseResult, d: Dialog) -> None:
            d.ehlo()
            d.starttls(_tls(context))
            d.cmd(f"MAIL FROM:<{sender}>")
            code, _ = d.cmd(f"RCPT TO:<{address}>")
            case.check(code == want, f"RCPT TO {label}: {code}, expected {want}")

        return body

    unknown = f"{context.patients.unknown_patient()}@{domain}"
    results.append(
        _run(
            "smtp/unknown-mailbox",
            "An unknown INS mailbox is refused",
            "550 5.1.1",
            relay,
            rcpt(unknown, 550, "unknown INS"),
        )
    )
    results.append(
        _run(
            "smtp/no-relay",
            "No relaying to other domains",
            "550 5.7.1",
            relay,
            rcpt("someone@example.org", 550, "another domain"),
        )
    )

    def outsider(case: CaseResult, d: Dialog) -> None:
        d.ehlo()
        d.starttls(_tls(context))
        code, _ = d.cmd("MAIL FROM:<someone@example.org>")
        case.check(code == 550, f"MAIL FROM outside the trust space: {code}, expected 550")

    results.append(
        _run(
            "smtp/sender-trust-space",
            "Senders outside the trust space refused",
            "550 5.7.1",
            relay,
            outsider,
        )
    )

    def too_big(case: CaseResult, d: Dialog) -> None:
        d.ehlo()
        d.starttls(_tls(context))
        code, _ = d.cmd(f"MAIL FROM:<{sender}> SIZE=999999999999")
        case.check(code == 552, f"MAIL FROM with SIZE over the limit: {code}, expected 552")

    results.append(
        _run(
            "smtp/size",
            "SIZE over the announced limit is refused at MAIL",
            "552 5.3.4 (RFC 1870 §6.1)",
            relay,
            too_big,
        )
    )
    return results
