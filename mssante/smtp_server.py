"""The MSSanté relay: an SMTP server (aiosmtpd) delivering into patients' secure mailboxes.

Transport (ANS Référentiel socle MSSanté #1, "Exigences de sécurité"; RFC 3207; RFC 8314):

- STARTTLS is required before MAIL (``530 5.7.0``); an optional implicit-TLS port is offered;
- TLS 1.2 minimum, ECDHE key exchange with AEAD suites only (TLS 1.3 suites are all AEAD);
- the operator's client certificate is required and verified against the trust-space CAs
  (``530 5.7.1`` without one; a certificate from another CA fails the handshake);
- the sender's domain and the certificate's domain must belong to the trust space
  (``MAIL_TRUST_DOMAINS``), else ``550 5.7.1``;
- recipients are ``<matricule INS>@MAIL_DOMAIN``: an unknown INS gets ``550 5.1.1``, an
  opposed/closed space ``550 5.2.1``, another domain ``550 5.7.1`` (no relaying);
- SIZE (RFC 1870) is announced from ``MAIL_MAX_MESSAGE_BYTES``.

Delivery is the enforcement point of this face: it builds a PROFESSIONAL :class:`Actor` from the
sender and its certificate and runs ONE ``Espace.operation(DELIVER_MESSAGE)`` per recipient,
which stores the message and commits; ``250`` is sent only after that commit. A message whose
Message-ID is already stored is acknowledged without a second copy (a sender's retry after a
lost ``250``), so a crash at any point neither loses nor doubles a message. A transaction that
loses a race with a concurrent one (e.g. two first deliveries writing the same notification) is
retried, then answered ``451 4.3.0`` (the sender retries later).

Refusals: ``554 5.6.0 [code]`` for malformed MIME or XDM (codes of :class:`mssante.mime.
MimeProblem` / :class:`mssante.xdm.XdmProblem`), ``550 5.7.1 [904]`` when an attachment
identifies another patient (ANS applicationErrorCondition 904), ``550 5.7.1 (<rule>)`` when the
PDP refuses. Multi-recipient messages that fail for some recipients are accepted for the others
and an RFC 3464 DSN goes back to the sender for the failed ones.

Processes: ``mes serve`` runs the relay in a thread of its process; run alone
(``python -m mssante.smtp_server``) with ``MAIL_PROCESSES`` > 1 it pre-forks that many relay
processes sharing the listening sockets (``mssante.prefork``), so the relay uses every core.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session
from cryptography import x509
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.exc import OperationalError as DBAPIOperationalError

from espace.errors import AccessDenied, DomainError, UnknownSpace
from espace.mailbox import Delivered, InboundMessage, MailSettings, deliver
from espace.models import PatientSpace, Professional
from espace.service import Espace
from espace.spaces import find_space_by_ins
from espace.trace import Source, Target, TraceEntry
from habilitation.model import Action, Actor, ActorKind, AuthenticationMode, Decision
from mssante.mime import MimeError, parse_message, summarize
from mssante.xdm import XdmError

log = logging.getLogger("mes.mssante.smtp")

TLS_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!MD5:!SHA1"
EVENT_TYPE = "smtp.deliver"
MAX_RECIPIENTS = 100


@dataclass(frozen=True, slots=True)
class Reply:
    code: int
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.text}"


OK = Reply(250, "2.0.0 OK")


def tls_paths(settings: Mapping[str, Any]) -> dict[str, Path]:
    """Server certificate, key and trusted CAs (settings override the test PKI in PKI_DIR)."""
    pki = Path(str(settings.get("PKI_DIR") or "var/pki"))
    return {
        "cert": Path(str(settings.get("MAIL_TLS_CERT") or pki / "tls-server.cert.pem")),
        "key": Path(str(settings.get("MAIL_TLS_KEY") or pki / "tls-server.key.pem")),
        "ca": Path(str(settings.get("MAIL_TRUSTED_CA") or pki / "ca.cert.pem")),
        "client_cert": Path(
            str(settings.get("MAIL_CLIENT_CERT") or pki / "mssante-client.cert.pem")
        ),
        "client_key": Path(str(settings.get("MAIL_CLIENT_KEY") or pki / "mssante-client.key.pem")),
    }


def server_tls_context(settings: Mapping[str, Any]) -> ssl.SSLContext:
    """TLS 1.2+, ECDHE + AEAD only, client certificates verified against the trust CAs.

    ``CERT_OPTIONAL`` lets a client without a certificate finish the handshake so that it gets
    a clear ``530 5.7.1`` at MAIL; a certificate that does not verify fails the handshake.
    """
    paths = tls_paths(settings)
    if not settings.get("MAIL_TLS_CERT") and not paths["cert"].exists():
        from mes.pki import generate_test_pki  # development: the test PKI, as `mes serve` does

        generate_test_pki(paths["cert"].parent)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS_CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    ctx.options |= getattr(ssl, "OP_NO_RENEGOTIATION", 0)
    ctx.load_cert_chain(paths["cert"], paths["key"])
    ctx.load_verify_locations(cafile=str(paths["ca"]))
    ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def certificate_domains(der: bytes) -> set[str]:
    """DNS names of an operator certificate: SAN dNSName entries, else the subject CN."""
    cert = x509.load_der_x509_certificate(der)
    names: set[str] = set()
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names.update(n.lower() for n in san.value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        pass
    if not names:
        names.update(
            str(a.value).lower() for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        )
    return names


@dataclass
class MailIntake:
    """The synchronous half: recipient checks and delivery (run in worker threads)."""

    espace: Espace
    settings: Mapping[str, Any]
    mail: MailSettings = field(init=False)

    def __post_init__(self) -> None:
        self.mail = MailSettings.from_mapping(self.settings)

    # ---------------------------------------------------------------- envelope checks
    def check_sender(self, address: str, cert_domains: set[str]) -> Reply | None:
        if not address or not self.mail.in_trust_space(address):
            return Reply(550, "5.7.1 Sender is outside the MSSante trust space")
        if not any(self.mail.in_trust_space(f"x@{d}") for d in cert_domains):
            return Reply(550, "5.7.1 Client certificate does not belong to the trust space")
        return None

    def recipient_ins(self, address: str) -> str | None:
        local, _, domain = address.strip().strip("<>").rpartition("@")
        if domain.lower() != self.mail.domain or not (len(local) == 15 and local.isdigit()):
            return None
        return local

    def check_recipient(self, address: str, peer: str, mail_from: str = "") -> Reply | None:
        """Refuse at RCPT what can never be delivered (RFC 5321 §3.3, RFC 3463 codes)."""
        _, _, domain = address.rpartition("@")
        if domain.lower() != self.mail.domain:
            return Reply(550, "5.7.1 Relaying denied: not a patient mailbox of this service")
        ins = self.recipient_ins(address)
        if ins is None:
            return Reply(
                553, "5.1.3 Patient address must be <matricule INS, 15 digits>@" + self.mail.domain
            )
        with self.espace.session_factory() as session:
            space = find_space_by_ins(session, ins)
            status = space.status if space is not None else None
            space_id = space.id if space is not None else None
        if status is None:
            return Reply(550, "5.1.1 No such patient mailbox (unknown INS)")
        if status != "active":
            source = Source(face="mssante", address=peer, request_id=uuid.uuid4().hex)
            self._trace_refusal(
                space_id, mail_from, source, "space_not_active", f"mailbox of a {status} space"
            )
            return Reply(550, f"5.2.1 Patient mailbox unavailable (space {status})")
        return None

    # ---------------------------------------------------------------- delivery
    def actor_for(self, address: str, name: str, cert_domains: set[str], software: str) -> Actor:
        """The sender as a PROFESSIONAL actor, from the directory when it knows the address.

        A known professional keeps their profession (indirect mode: the operator certificate
        authenticates). An address the directory does not know (a secretary, an
        organisational or application mailbox) acts as a non-PS member (CPE column of
        PDT-INF-526), which the PDP lets deliver mail but nothing else.
        """
        with self.espace.session_factory() as session:
            prof = (
                session.execute(
                    select(Professional).where(
                        func.lower(Professional.mssante_address) == address.lower()
                    )
                )
                .scalars()
                .first()
            )
            if prof is not None and prof.profession:
                return Actor(
                    kind=ActorKind.PROFESSIONAL,
                    id=prof.id,
                    name=prof.name or name,
                    profession=prof.profession,
                    specialty=prof.specialty,
                    structure_id=prof.structure_id,
                    authentication_mode=AuthenticationMode.INDIRECT,
                    software=software or None,
                    declared_reason=f"MSSanté {address} via {','.join(sorted(cert_domains))}",
                )
        return Actor(
            kind=ActorKind.PROFESSIONAL,
            id=address.lower(),
            name=name or address,
            structure_id=prof.structure_id if prof is not None else None,
            authentication_mode=AuthenticationMode.CPE,
            software=software or None,
            declared_reason=f"MSSanté {address} via {','.join(sorted(cert_domains))}",
        )

    def deliver(
        self,
        raw: bytes,
        *,
        mail_from: str,
        recipients: list[str],
        peer: str,
        cert_domains: set[str],
        session_id: str,
    ) -> Reply:
        """Parse once, then one traced, policy-checked operation per recipient."""
        source = Source(face="mssante", address=peer, request_id=session_id)
        try:
            message = parse_message(
                raw,
                domain=self.mail.domain,
                max_attachment_bytes=int(
                    self.settings.get("MAX_ATTACHMENT_BYTES") or 50 * 1024 * 1024
                ),
            )
        except (MimeError, XdmError) as exc:
            code = exc.problem
            self._record_refusal(recipients, mail_from, source, str(code), exc.message)
            return Reply(554, f"5.6.0 [{code}] {exc.message}"[:400])
        if not self.mail.in_trust_space(message.from_address):
            self._record_refusal(
                recipients, mail_from, source, "from_outside_trust_space", message.from_address
            )
            return Reply(550, "5.7.1 From address is outside the MSSante trust space")
        software = message.x_mss.get("X-MSS-NIL", "")
        actor = self.actor_for(message.from_address, message.from_name, cert_domains, software)
        source = Source(face="mssante", address=peer, request_id=session_id, software=software)
        replies: list[tuple[str, Reply]] = []
        for rcpt in recipients:
            replies.append((rcpt, self._deliver_one(message, rcpt, actor, source)))
        failed = [(r, rep) for r, rep in replies if rep.code >= 400]
        if not failed:
            return OK
        if len(failed) == len(replies):
            worst = max((rep for _, rep in failed), key=lambda rep: rep.code >= 500)
            return worst
        self._queue_dsn(message, mail_from, failed)
        return Reply(250, "2.0.0 OK (some recipients failed; a DSN follows)")

    def _deliver_one(
        self, message: InboundMessage, rcpt: str, actor: Actor, source: Source
    ) -> Reply:
        """Deliver, retrying a transaction that lost a race with a concurrent one (the delivery
        is idempotent on Message-ID, so a retry never doubles the message)."""
        for attempt in range(3):
            try:
                return self._deliver_once(message, rcpt, actor, source)
            except (IntegrityError, DBAPIOperationalError):
                log.warning("delivery to %s lost a race (attempt %d)", rcpt, attempt + 1)
                time.sleep(0.05 * (attempt + 1))
            except Exception:
                log.exception("delivery to %s failed", rcpt)
                break
        return Reply(451, "4.3.0 Temporary failure, please retry")

    def _deliver_once(
        self, message: InboundMessage, rcpt: str, actor: Actor, source: Source
    ) -> Reply:
        ins = self.recipient_ins(rcpt)
        if ins is None:  # checked at RCPT; a race with a configuration change
            return Reply(553, "5.1.3 Not a patient address")
        pause = float(self.settings.get("MAIL_DEBUG_PAUSE_BEFORE_COMMIT_SECONDS") or 0)
        try:
            with self.espace.operation(
                actor,
                Action.DELIVER_MESSAGE,
                event_type=EVENT_TYPE,
                source=source,
                space_ins=ins,
                target=Target(type="MailMessage", id=message.message_id),
            ) as op:
                assert op.space is not None
                result: Delivered = deliver(
                    op.session,
                    op.space,
                    message,
                    cipher=self.espace.cipher,
                    settings=self.mail,
                    now=op.now,
                    notify=lambda category, body, key: op.notify(category, body, dedup_key=key),
                )
                op.detail.update(summarize(message))
                op.detail["duplicate"] = result.duplicate
                op.detail["receipt"] = result.receipt
                op.target = Target(type="MailMessage", id=result.message_row_id)
                if pause:
                    time.sleep(pause)
        except UnknownSpace:
            return Reply(550, "5.1.1 No such patient mailbox (unknown INS)")
        except AccessDenied as exc:
            if exc.decision.rule_id == "space_not_active":
                return Reply(550, "5.2.1 Patient mailbox unavailable (space not active)")
            return Reply(550, f"5.7.1 Delivery not authorized ({exc.decision.rule_id})")
        except DomainError as exc:
            if exc.code == "904":
                return Reply(
                    550, "5.7.1 [904] The INS in the attached documents is not the mailbox owner's"
                )
            return Reply(554, f"5.6.0 [{exc.code}] {exc.message}"[:400])
        after = float(self.settings.get("MAIL_DEBUG_PAUSE_AFTER_COMMIT_SECONDS") or 0)
        if after:
            time.sleep(after)
        return OK

    def _record_refusal(
        self, recipients: list[str], mail_from: str, source: Source, code: str, reason: str
    ) -> None:
        """Trace a message refused before any use case (malformed, outside the trust space)."""
        with self.espace.session_factory() as session:
            ids = set()
            for rcpt in recipients:
                ins = self.recipient_ins(rcpt)
                space = find_space_by_ins(session, ins) if ins else None
                ids.add(space.id if isinstance(space, PatientSpace) else None)
        for space_id in ids or {None}:
            self._trace_refusal(space_id, mail_from, source, code, reason)

    def _trace_refusal(
        self, space_id: str | None, mail_from: str, source: Source, code: str, reason: str
    ) -> None:
        actor = Actor(
            kind=ActorKind.PROFESSIONAL,
            id=mail_from.lower() or "unknown",
            authentication_mode=AuthenticationMode.CPE,
        )
        self.espace.record(
            TraceEntry(
                actor=actor,
                action=str(Action.DELIVER_MESSAGE),
                event_type=EVENT_TYPE,
                decision=Decision.deny("message_refused", reason[:400]),
                outcome="failure",
                source=source,
                space_id=space_id,
                error_code=code,
            )
        )

    def _queue_dsn(
        self, message: InboundMessage, mail_from: str, failed: list[tuple[str, Reply]]
    ) -> None:
        from mssante.outbound import queue_dsn

        for rcpt, reply in failed:
            queue_dsn(
                self.espace,
                self.mail,
                message=message,
                mail_from=mail_from,
                recipient=rcpt,
                reply=str(reply),
            )


DATA_LINE_LIMIT = 1001  # aiosmtpd's limit for a DATA line with its CRLF (RFC 5321 §4.5.3.1.6)
_END_OF_DATA = b"\r\n.\r\n"


def has_long_line(data: bytes, max_length: int = DATA_LINE_LIMIT - 2) -> bool:
    """Whether a CRLF-delimited line of ``data`` is longer than ``max_length`` bytes.

    Fast path without splitting (a 1.4 MB message is ~18,000 lines): if a CRLF starts in every
    aligned window of ``max_length // 2`` bytes, consecutive CRLFs are less than
    ``2 * (max_length // 2)`` bytes apart, so no line is too long; ``bytes.find`` checks each
    window in C. Only when a window has none does the exact split run.
    """
    width = max(1, max_length // 2)
    size = len(data)
    for start in range(0, size, width):
        if data.find(b"\r\n", start, min(start + width + 1, size)) < 0:
            return max(map(len, data.split(b"\r\n"))) > max_length
    return False


class DataTooLarge(Exception):
    """The DATA exceeded ``data_size_limit`` (read to its end, discarded: ``552``)."""


class MesSMTP(SMTP):
    """aiosmtpd's SMTP with our client-certificate and trust-space checks, and a DATA reader
    that takes the message in large chunks.

    aiosmtpd reads DATA one line at a time (about 19,000 awaits for a 1 MB base64 attachment)
    through a stream limited to one line, which pauses the TLS transport every 2 KB. Here the
    stream limit is 64 KiB (aiosmtpd still refuses command lines longer than
    ``command_size_limit`` itself) and :meth:`smtp_DATA` searches the end of data
    ``CRLF.CRLF`` (RFC 5321 §4.1.1.4) in the buffer; dot-unstuffing (§4.5.2), the size limit
    (``552``, RFC 1870) and the line-length limit (``500``) are those of aiosmtpd.
    """

    line_length_limit = 64 * 1024  # the StreamReader's buffer limit (not a line limit here)

    def __init__(self, handler: Any, *, implicit_tls: bool, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.implicit_tls = implicit_tls

    async def _read_line(self) -> bytes:
        """One CRLF-terminated line, however long."""
        chunks: list[bytes] = []
        while True:
            try:
                chunks.append(await self._reader.readuntil(b"\r\n"))
                return b"".join(chunks)
            except asyncio.LimitOverrunError as exc:
                chunks.append(await self._reader.readexactly(exc.consumed))

    async def _read_data(self, limit: int | None) -> bytes:
        """The DATA bytes up to (without) the final ``.CRLF``, still dot-stuffed.

        ``readuntil(CRLF.CRLF)`` cannot see an end whose leading CRLF was already consumed,
        which only happens right after a whole line was read: at the start, and after a line
        that begins with ``.`` or CR, which are read line by line.
        """
        reader = self._reader
        chunks: list[bytes] = []
        size = 0
        while True:  # at the start of a line
            first = await reader.readexactly(1)
            if first not in (b".", b"\r"):
                break
            line = first
            while line.endswith(b"\r"):  # a CRLF may straddle what was read
                line += await reader.readexactly(1)
                if line.endswith(b"\r\n"):
                    break
            else:
                line += await self._read_line()
            if line == b".\r\n":
                return b"".join(chunks)
            size += len(line)
            if limit and size > limit:
                chunks.clear()
            else:
                chunks.append(line)
        if not (limit and size > limit):
            chunks.append(first)
        size += 1
        while True:
            try:
                tail = await reader.readuntil(_END_OF_DATA)
            except asyncio.LimitOverrunError as exc:
                chunk, done = await reader.readexactly(exc.consumed), False
            else:
                chunk, done = tail[:-3], True  # the CRLF before the dot ends the last line
            size += len(chunk)
            if limit and size > limit:
                chunks.clear()  # read to the end, keep nothing (aiosmtpd's TOO_MUCH)
            else:
                chunks.append(chunk)
            if done:
                break
        if limit and size > limit:
            raise DataTooLarge
        return b"".join(chunks)

    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        try:
            data = await self._read_data(self.data_size_limit)
        except DataTooLarge:
            await self.push("552 Error: Too much mail data")
            self._set_post_data_state()  # type: ignore[no-untyped-call]
            return
        except asyncio.CancelledError:  # aiosmtpd cancels the session on EOF
            log.info("Connection lost during DATA")
            self._writer.close()
            raise
        except asyncio.IncompleteReadError:
            log.info("Connection closed during DATA")
            self._writer.close()
            return
        if has_long_line(data):
            await self.push("500 Line too long (see RFC5321 4.5.3.1.6)")
            self._set_post_data_state()  # type: ignore[no-untyped-call]
            return
        if data.startswith(b"."):
            data = data[1:]
        if b"\r\n." in data:
            data = data.replace(b"\r\n.", b"\r\n")
        assert not self._decode_data  # the relay takes bytes (decode_data=False)
        self.envelope.content = data
        self.envelope.original_content = data
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self.push("250 OK" if status is MISSING else status)


class RelayHandler:
    """aiosmtpd handler: envelope checks on the loop, storage in worker threads."""

    def __init__(self, intake: MailIntake, executor: ThreadPoolExecutor) -> None:
        self.intake = intake
        self.executor = executor

    @staticmethod
    def _peer(session: Session) -> str:
        peer = session.peer
        return str(peer[0]) if isinstance(peer, tuple) else str(peer or "")

    @staticmethod
    def _cert_domains(server: SMTP) -> set[str] | None:
        transport = server.transport
        ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
        if ssl_object is None:
            return None
        der = ssl_object.getpeercert(binary_form=True)
        if not der:
            return set()
        return certificate_domains(der)

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        domains = self._cert_domains(server)
        if domains is None:
            return "530 5.7.0 Must issue a STARTTLS command first"
        if not domains:
            return "530 5.7.1 A client certificate of the MSSante trust space is required"
        refusal = self.intake.check_sender(address, domains)
        if refusal is not None:
            return str(refusal)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"  # RFC 5321 §4.5.3.1.8
        loop = asyncio.get_running_loop()
        refusal = await loop.run_in_executor(
            self.executor,
            self.intake.check_recipient,
            address,
            self._peer(session),
            str(envelope.mail_from or ""),
        )
        if refusal is not None:
            return str(refusal)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        domains = self._cert_domains(server) or set()
        loop = asyncio.get_running_loop()
        reply = await loop.run_in_executor(
            self.executor,
            lambda: self.intake.deliver(
                raw,
                mail_from=str(envelope.mail_from or ""),
                recipients=list(envelope.rcpt_tos),
                peer=self._peer(session),
                cert_domains=domains,
                session_id=uuid.uuid4().hex,
            ),
        )
        return str(reply)


@dataclass
class SmtpHandle:
    """A running relay: ``port`` (and ``implicit_tls_port``), ``stop()``."""

    host: str
    port: int
    implicit_tls_port: int | None
    _loop: asyncio.AbstractEventLoop
    _thread: threading.Thread
    _servers: list[asyncio.Server]
    _executor: ThreadPoolExecutor
    worker: Any = None

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()

        async def _close() -> None:
            for server in self._servers:
                server.close()
            for server in self._servers:
                await server.wait_closed()

        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(_close(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._executor.shutdown(wait=True)


def start_smtp(
    espace: Espace,
    settings: Mapping[str, Any],
    *,
    sockets: Sequence[socket.socket] | None = None,
) -> SmtpHandle:
    """Start the relay in a background thread (``mes serve``); returns once it listens.

    ``sockets``: listening sockets bound beforehand (STARTTLS first, then implicit TLS), as
    the pre-forked relay processes share them (``mssante.prefork``); else the relay binds
    ``SMTP_HOST``/``SMTP_PORT`` itself.

    Settings: SMTP_HOST, SMTP_PORT (0 picks a free port), SMTP_IMPLICIT_TLS_PORT, PKI_DIR,
    MAIL_* (see the module docstring), MAIL_OUTBOUND_WORKER (also run the outbound queue worker
    in this process; off by default: ``mes serve`` runs ``mssante.outbound.run_outbound_once``
    among its background jobs).
    """
    host = str(settings.get("SMTP_HOST") or "127.0.0.1")
    configured_port = settings.get("SMTP_PORT")
    port = int(configured_port) if configured_port is not None else 2525
    implicit = settings.get("SMTP_IMPLICIT_TLS_PORT")
    limit = int(settings.get("MAIL_MAX_MESSAGE_BYTES") or 20 * 1024 * 1024)
    hostname = str(
        settings.get("MAIL_HOSTNAME") or settings.get("MAIL_DOMAIN") or "patient.mssante.fr"
    )
    tls = server_tls_context(settings)
    executor = ThreadPoolExecutor(
        max_workers=int(settings.get("MAIL_WORKER_THREADS") or 8), thread_name_prefix="mes-smtp"
    )
    handler = RelayHandler(MailIntake(espace, settings), executor)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    servers: list[asyncio.Server] = []
    errors: list[BaseException] = []

    def factory(implicit_tls: bool) -> MesSMTP:
        return MesSMTP(
            handler,
            implicit_tls=implicit_tls,
            hostname=hostname,
            data_size_limit=limit,
            tls_context=None if implicit_tls else tls,
            require_starttls=not implicit_tls,
            decode_data=False,
            timeout=float(settings.get("MAIL_SESSION_TIMEOUT_SECONDS") or 300),
            loop=loop,
        )

    async def _listen() -> None:
        if sockets:
            servers.append(await loop.create_server(lambda: factory(False), sock=sockets[0]))
            if len(sockets) > 1:
                servers.append(
                    await loop.create_server(lambda: factory(True), sock=sockets[1], ssl=tls)
                )
            return
        servers.append(await loop.create_server(lambda: factory(False), host, port))
        if implicit is not None:
            servers.append(
                await loop.create_server(lambda: factory(True), host, int(implicit), ssl=tls)
            )

    def _run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(_listen())
        except BaseException as exc:  # reported to the caller below
            errors.append(exc)
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    thread = threading.Thread(target=_run, name="mes-smtp", daemon=True)
    thread.start()
    ready.wait(timeout=30)
    if errors:
        thread.join(timeout=5)
        executor.shutdown(wait=False)
        raise errors[0]
    bound = [s.sockets[0].getsockname()[1] for s in servers]
    handle = SmtpHandle(
        host=host,
        port=int(bound[0]),
        implicit_tls_port=int(bound[1]) if len(bound) > 1 else None,
        _loop=loop,
        _thread=thread,
        _servers=servers,
        _executor=executor,
    )
    if _flag(settings.get("MAIL_OUTBOUND_WORKER", False)):
        from mssante.outbound import OutboundWorker

        handle.worker = OutboundWorker(espace, settings)
        handle.worker.start()
    log.info("MSSante relay listening on %s:%s", host, handle.port)
    return handle


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("0", "false", "no", "")
    return bool(value)


def main() -> None:  # pragma: no cover - exercised by the crash test in a subprocess
    """Run the relay alone (``python -m mssante.smtp_server``), settings from ``MES_*``."""
    import signal

    from mes.config import load_settings
    from mes.wiring import build_espace

    settings = load_settings()
    processes = int(settings.get("MAIL_PROCESSES") or 1)
    if processes > 1:  # one relay per core (mssante.prefork)
        from mssante.prefork import run_prefork

        run_prefork(settings, processes,
                    ready=lambda ports: print(f"listening {ports[0]}", flush=True))
        return
    espace = build_espace(settings)
    handle = start_smtp(espace, settings)
    print(f"listening {handle.port}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    handle.stop()


if __name__ == "__main__":  # pragma: no cover
    main()
