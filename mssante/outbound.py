"""The outbound queue worker: the patient's replies, MDNs and DSNs to the MSSanté operators.

Delivery semantics (at-least-once with a stable Message-ID, so the receiving operator dedupes):

1. **claim** due rows in one committed transaction (``pending`` and due, or ``sending`` whose
   lease expired after a crash): status ``sending``, ``lease_until`` set, ``attempts`` + 1;
2. **send** over SMTP with STARTTLS (never in clear: a server without STARTTLS is a temporary
   failure) and our client certificate, verifying the operator's certificate;
3. **record** the result through one ``Espace.operation`` (system actor, traced): ``sent``; or a
   retry at ``now + base * 2^(attempts-1)`` (capped) after a 4xx or a network error; or, after a
   5xx or the last try, ``failed`` with a DSN-style record in the patient's conversation, the
   message marked failed, and the patient notified.

A crash between 1 and 3 re-sends after the lease expires with the same Message-ID: nothing is
lost, and the receiver's Message-ID dedupe keeps it from being doubled.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, or_, select

from espace.mailbox import (
    InboundMessage,
    MailConversation,
    MailMessage,
    MailOutbound,
    MailSettings,
    add_system_message,
    outbound_bytes,
    queue_outbound,
)
from espace.service import Espace
from espace.trace import Source, Target
from habilitation.model import Action, Actor, ActorKind, AuthenticationMode
from mssante.mime import render_dsn

log = logging.getLogger("mes.mssante.outbound")

WORKER_ACTOR = Actor(
    kind=ActorKind.SYSTEM,
    id="mssante-outbound",
    name="MSSanté outbound worker",
    authentication_mode=AuthenticationMode.SYSTEM,
)


@dataclass(frozen=True, slots=True)
class SendOutcome:
    status: str  # sent | retry | failed
    detail: str = ""


class OutboundError(Exception):
    def __init__(self, permanent: bool, detail: str) -> None:
        super().__init__(detail)
        self.permanent = permanent
        self.detail = detail


def client_tls_context(settings: Mapping[str, Any]) -> ssl.SSLContext:
    """TLS 1.2+ client context presenting our certificate, verifying the operator's."""
    from mssante.smtp_server import TLS_CIPHERS, tls_paths

    paths = tls_paths(settings)
    ctx = ssl.create_default_context(cafile=str(settings.get("MAIL_OUTBOUND_CA") or paths["ca"]))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS_CIPHERS)
    ctx.load_cert_chain(paths["client_cert"], paths["client_key"])
    return ctx


def route_for(settings: Mapping[str, Any], address: str) -> tuple[str, int]:
    """Where to hand a message for ``address``: a per-domain route, the relay, or the domain.

    ``MAIL_OUTBOUND_ROUTES``: ``domain=host:port`` pairs separated by commas;
    ``MAIL_OUTBOUND_RELAY``: ``host:port`` of the operator's relay for everything else.
    """
    domain = address.rpartition("@")[2].lower()
    for pair in str(settings.get("MAIL_OUTBOUND_ROUTES") or "").split(","):
        name, sep, target = pair.strip().partition("=")
        if sep and (domain == name.strip().lower() or domain.endswith("." + name.strip().lower())):
            host, _, port = target.strip().rpartition(":")
            return host, int(port)
    relay = str(settings.get("MAIL_OUTBOUND_RELAY") or "")
    if relay:
        host, _, port = relay.rpartition(":")
        return host, int(port)
    return domain, 25


def send_one(settings: Mapping[str, Any], mail_from: str, rcpt_to: str, raw: bytes) -> None:
    """Hand one message to the operator over STARTTLS with our client certificate."""
    host, port = route_for(settings, rcpt_to)
    timeout = float(settings.get("MAIL_OUTBOUND_TIMEOUT_SECONDS") or 30)
    helo = str(settings.get("MAIL_HOSTNAME") or settings.get("MAIL_DOMAIN") or "patient.mssante.fr")
    try:
        with smtplib.SMTP(host, port, local_hostname=helo, timeout=timeout) as client:
            client.ehlo()
            if not client.has_extn("starttls"):
                raise OutboundError(False, f"{host}:{port} does not offer STARTTLS")
            client.starttls(context=client_tls_context(settings))
            client.ehlo()
            client.sendmail(mail_from, [rcpt_to], raw)
    except OutboundError:
        raise
    except smtplib.SMTPRecipientsRefused as exc:
        code, text = next(iter(exc.recipients.values()))
        raise OutboundError(code >= 500, f"{code} {text!r}") from None
    except smtplib.SMTPResponseException as exc:
        raise OutboundError(exc.smtp_code >= 500, f"{exc.smtp_code} {exc.smtp_error!r}") from None
    except (TimeoutError, smtplib.SMTPException, OSError, ssl.SSLError) as exc:
        raise OutboundError(False, f"{type(exc).__name__}: {exc}") from None


class OutboundWorker:
    """Drains ``mail_outbound``. ``run_once()`` for tests and cron; ``start()`` for a thread."""

    def __init__(self, espace: Espace, settings: Mapping[str, Any]) -> None:
        self.espace = espace
        self.settings = settings
        self.mail = MailSettings.from_mapping(settings)
        self.max_attempts = int(settings.get("MAIL_OUTBOUND_MAX_ATTEMPTS") or 8)
        self.backoff = float(settings.get("MAIL_OUTBOUND_BACKOFF_SECONDS") or 60)
        self.backoff_cap = float(settings.get("MAIL_OUTBOUND_BACKOFF_CAP_SECONDS") or 6 * 3600)
        self.lease = float(settings.get("MAIL_OUTBOUND_LEASE_SECONDS") or 300)
        self.interval = float(settings.get("MAIL_OUTBOUND_POLL_SECONDS") or 5)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- steps
    def claim(self, limit: int = 50) -> list[tuple[str, str, str, str, bytes]]:
        """Lease due rows in one transaction; returns (id, space, from, to, raw) to send."""
        now = self.espace.clock.now()
        with self.espace.session_factory() as session:
            rows = list(
                session.execute(
                    select(MailOutbound)
                    .where(
                        or_(
                            and_(
                                MailOutbound.status == "pending",
                                MailOutbound.next_attempt_at <= now,
                            ),
                            and_(MailOutbound.status == "sending", MailOutbound.lease_until < now),
                        )
                    )
                    .order_by(MailOutbound.next_attempt_at)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                ).scalars()
            )
            claimed = []
            for row in rows:
                row.status = "sending"
                row.lease_until = now + timedelta(seconds=self.lease)
                row.attempts += 1
                claimed.append(
                    (
                        row.id,
                        row.space_id,
                        row.mail_from,
                        row.rcpt_to,
                        outbound_bytes(self.espace.cipher, row),
                    )
                )
            session.commit()
        return claimed

    def run_once(self) -> int:
        """Claim, send and record every due message; returns how many were attempted."""
        batch = self.claim()
        for row_id, space_id, mail_from, rcpt_to, raw in batch:
            try:
                if not self.mail.in_trust_space(rcpt_to):
                    raise OutboundError(True, "recipient outside the MSSanté trust space")
                send_one(self.settings, mail_from, rcpt_to, raw)
                outcome = SendOutcome("sent")
            except OutboundError as exc:
                outcome = SendOutcome("failed" if exc.permanent else "retry", exc.detail)
            self.record(row_id, space_id, outcome)
        return len(batch)

    def record(self, row_id: str, space_id: str, outcome: SendOutcome) -> None:
        """Write the result of one attempt: one traced operation on the patient's space."""
        source = Source(face="mssante", request_id=row_id, software="outbound-worker")
        with self.espace.operation(
            WORKER_ACTOR,
            Action.SYSTEM_JOB,
            event_type="smtp.send",
            source=source,
            space_id=space_id,
            target=Target(type="MailOutbound", id=row_id),
        ) as op:
            row = op.session.get(MailOutbound, row_id)
            if row is None:
                return
            now = op.now
            status = outcome.status
            if status == "retry" and row.attempts >= self.max_attempts:
                status = "failed"
            op.detail.update(
                kind=row.kind, attempts=row.attempts, result=status, error=outcome.detail[:300]
            )
            row.last_error = outcome.detail[:2000]
            row.lease_until = None
            message = (
                op.session.get(MailMessage, row.message_row_id) if row.message_row_id else None
            )
            if status == "sent":
                row.status, row.sent_at = "sent", now
                if message is not None and row.kind == "reply":
                    message.delivery_status = "sent"
            elif status == "retry":
                delay = min(self.backoff * 2 ** (row.attempts - 1), self.backoff_cap)
                row.status = "pending"
                row.next_attempt_at = now + timedelta(seconds=delay)
            else:
                row.status = "failed"
                if message is not None and row.kind == "reply" and op.space is not None:
                    message.delivery_status = "failed"
                    message.delivery_detail = outcome.detail[:2000]
                    conversation = op.session.get(MailConversation, message.conversation_id)
                    add_system_message(
                        op.session,
                        op.space,
                        subject="Message non distribué",
                        body=(
                            f"Votre message « {message.subject} » n'a pas pu être remis à "
                            f"{row.rcpt_to} après {row.attempts} tentatives.\n"
                            f"Action: failed\nFinal-Recipient: rfc822;{row.rcpt_to}\n"
                            f"Diagnostic-Code: smtp; {outcome.detail[:500]}"
                        ),
                        cipher=self.espace.cipher,
                        settings=self.mail,
                        now=now,
                        conversation=conversation,
                        reason="delivery_failure",
                    )
                    op.notify(
                        "new_message",
                        f"Votre message à {row.rcpt_to} n'a pas pu être distribué.",
                        dedup_key=f"mail_failed:{row.id}",
                    )

    # ---------------------------------------------------------------- thread
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="mes-mail-outbound", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # keep draining; the row stays leased and is retried
                log.exception("outbound worker iteration failed")
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)


def run_outbound_once(espace: Espace) -> int:
    """One pass of the outbound worker (``mes serve`` / ``mes worker`` background job)."""
    return OutboundWorker(espace, espace.settings).run_once()


def queue_dsn(
    espace: Espace,
    mail: MailSettings,
    *,
    message: InboundMessage,
    mail_from: str,
    recipient: str,
    reply: str,
) -> None:
    """Queue an RFC 3464 DSN to the sender for one recipient a multi-recipient message missed.

    Traced as a system job on the recipient's space (the DSN is about that mailbox).
    """
    ins = recipient.partition("@")[0]
    if not mail_from or not mail.in_trust_space(mail_from):
        return
    source = Source(face="mssante", software="dsn")
    try:
        with espace.operation(
            WORKER_ACTOR,
            Action.SYSTEM_JOB,
            event_type="smtp.dsn",
            source=source,
            space_ins=ins,
            target=Target("MailOutbound", message.message_id),
        ) as op:
            assert op.space is not None
            dsn_id = mail.new_message_id()
            status = f"{reply[:1]}.0.0" if reply[:1] in "45" else "5.0.0"
            raw = render_dsn(
                dsn_id=dsn_id,
                reporting=f"mailer-daemon@{mail.domain}",
                to=mail_from,
                original_id=message.message_id,
                recipient=recipient,
                status=status,
                diagnostic=reply,
            )
            queue_outbound(
                op.session,
                espace.cipher,
                op.space.id,
                kind="dsn",
                message_id=dsn_id,
                mail_from="",
                rcpt_to=mail_from,
                raw=raw,
                now=op.now,
                message_row_id=None,
            )
            op.detail["recipient_reply"] = reply[:200]
    except Exception:  # the sender still got its 250 for the delivered recipients
        log.exception("DSN for %s not queued", recipient)
