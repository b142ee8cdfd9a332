"""The notification worker: drains the outbox and sends French e-mails.

Transport: the configured SMTP smarthost (``NOTIFY_SMARTHOST`` host:port), or, when unset
(development), ``.eml`` files under ``<VAR_DIR>/outbox``. Delivery is claimed in its own
transaction before sending (status ``sending``), marked ``sent`` after; a crash between the two
resends after the lease with the same ``Message-ID`` (derived from the dedup key), so a receiving
MTA or mail client can drop the duplicate. Failures retry with exponential backoff.
Non-immediate notifications are grouped into one daily digest per space.
"""

from __future__ import annotations

import hashlib
import logging
import smtplib
from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import case, or_, select, update

from espace.models import NotificationOutbox
from espace.notifications import SCRUBBED_BODY, SECRET_CATEGORIES, SUBJECTS
from espace.service import Espace

log = logging.getLogger("mes.notifier")

LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 8


class MailSender(Protocol):
    def send(self, message: EmailMessage) -> None: ...


class SmtpSender:
    def __init__(self, hostport: str) -> None:
        host, _, port = hostport.partition(":")
        self.host, self.port = host, int(port or 25)

    def send(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=30) as smtp:
            smtp.ehlo()
            if smtp.has_extn("starttls"):
                smtp.starttls()
                smtp.ehlo()
            smtp.send_message(message)


class DirectorySender:
    """Development transport: one .eml file per message (idempotent on Message-ID)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, message: EmailMessage) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(str(message["Message-ID"]).encode()).hexdigest()[:24]
        (self.directory / f"{name}.eml").write_bytes(bytes(message))


def sender_from_settings(settings: Mapping[str, Any]) -> MailSender:
    if settings.get("NOTIFY_SMARTHOST"):
        return SmtpSender(str(settings["NOTIFY_SMARTHOST"]))
    return DirectorySender(Path(str(settings.get("VAR_DIR", "var"))) / "outbox")


def _message(
    sender_address: str, recipients: list[str], subject: str, body: str, key: str, now: datetime
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender_address
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@mes.notifications>"
    msg["Content-Language"] = "fr"
    msg.set_content(
        body
        + "\n\nConnectez-vous à Mon espace santé pour en savoir plus.\n"
        + "Ce message est envoyé automatiquement, merci de ne pas y répondre.\n"
    )
    return msg


class NotificationWorker:
    def __init__(self, espace: Espace, sender: MailSender | None = None) -> None:
        self.espace = espace
        self.sender = sender or sender_from_settings(espace.settings)
        self.from_address = str(espace.settings.get("NOTIFY_FROM", "ne-pas-repondre@mes.local"))

    def run_once(self) -> int:
        """Send what is due now; return the number of e-mails sent."""
        sent = self._send_immediate()
        now = self.espace.clock.now()
        if now.hour >= int(self.espace.settings.get("DIGEST_HOUR", 18)):
            sent += self._send_digests(now)
        return sent

    def _claim(self, now: datetime, immediate: bool) -> list[NotificationOutbox]:
        with self.espace.session_factory() as session:
            rows = list(
                session.execute(
                    select(NotificationOutbox)
                    .where(
                        NotificationOutbox.immediate.is_(immediate),
                        or_(
                            NotificationOutbox.status == "pending",
                            # a claim whose worker died: take it over after the lease
                            NotificationOutbox.status == "sending",
                        ),
                        NotificationOutbox.next_attempt_at <= now,
                    )
                    .order_by(NotificationOutbox.id)
                    .limit(200)
                    .with_for_update(skip_locked=True)
                ).scalars()
            )
            for row in rows:
                row.status = "sending"
                row.attempts += 1
                row.next_attempt_at = now + LEASE
            session.commit()
            return rows

    def _send_immediate(self) -> int:
        now = self.espace.clock.now()
        count = 0
        for row in self._claim(now, immediate=True):
            recipients = [r for r in row.recipients.splitlines() if r]
            if not recipients:
                self._finish(row.id, "undeliverable", now, "no known e-mail address")
                continue
            try:
                self.sender.send(
                    _message(
                        self.from_address, recipients, row.subject, row.body, row.dedup_key, now
                    )
                )
            except Exception as exc:  # network errors: retry later with backoff
                self._retry(row, now, exc)
                continue
            self._finish(row.id, "sent", now)
            count += 1
        return count

    def _send_digests(self, now: datetime) -> int:
        rows = self._claim(now, immediate=False)
        by_space: dict[str, list[NotificationOutbox]] = defaultdict(list)
        for row in rows:
            by_space[row.space_id].append(row)
        count = 0
        for space_id, items in by_space.items():
            recipients = sorted({r for row in items for r in row.recipients.splitlines() if r})
            body = "Voici ce qui s'est passé aujourd'hui dans votre profil :\n\n" + "\n".join(
                f"- {row.body}" for row in items
            )
            key = f"digest:{space_id}:{now.date().isoformat()}:{items[0].id}"
            try:
                if recipients:
                    self.sender.send(
                        _message(self.from_address, recipients, SUBJECTS["digest"], body, key, now)
                    )
            except Exception as exc:
                for row in items:
                    self._retry(row, now, exc)
                continue
            for row in items:
                self._finish(row.id, "digested" if recipients else "undeliverable", now)
            count += 1
        return count

    def _finish(self, row_id: int, status: str, now: datetime, error: str = "") -> None:
        with self.espace.session_factory() as session:
            session.execute(
                update(NotificationOutbox)
                .where(NotificationOutbox.id == row_id)
                .values(status=status, sent_at=now, last_error=error, body=_body_after_leaving())
            )
            session.commit()

    def _retry(self, row: NotificationOutbox, now: datetime, exc: Exception) -> None:
        log.warning("notification %s failed: %s", row.id, exc)
        status = "failed" if row.attempts >= MAX_ATTEMPTS else "pending"
        delay = timedelta(seconds=30 * 2 ** min(row.attempts, 10))
        values: dict[str, Any] = {
            "status": status, "next_attempt_at": now + delay, "last_error": str(exc)[:500]
        }
        if status == "failed":  # given up: the secret will never be sent, so it goes too
            values["body"] = _body_after_leaving()
        with self.espace.session_factory() as session:
            session.execute(
                update(NotificationOutbox).where(NotificationOutbox.id == row.id).values(**values)
            )
            session.commit()


def _body_after_leaving() -> Any:
    """The stored body once a message has left the outbox: a secret (one-time code) is
    scrubbed (``espace.notifications.SECRET_CATEGORIES``), anything else is kept."""
    return case(
        (NotificationOutbox.category.in_(sorted(SECRET_CATEGORIES)), SCRUBBED_BODY),
        else_=NotificationOutbox.body,
    )


def pending_count(espace: Espace) -> int:
    with espace.session_factory() as session:
        return len(
            session.execute(
                select(NotificationOutbox.id).where(NotificationOutbox.status == "pending")
            ).all()
        )
