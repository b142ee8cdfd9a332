"""The values the mailbox exchanges with its faces: a parsed inbound message (RFC 5322, with
MDN RFC 8098 / DSN RFC 3464 receipts), the patient's outgoing mail to render as MIME, the
mailbox settings (MSSanté trust space) and the refusal of a mailbox rule.

No wire format here: the SMTP face turns MIME into :class:`InboundMessage`, and renders
:class:`OutgoingMail` through a :data:`Renderer` it passes in.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from espace.errors import DomainError
from espace.mailbox.model import DEFAULT_RETENTION_YEARS


@dataclass(frozen=True, slots=True)
class InboundAttachment:
    filename: str
    content_type: str
    content: bytes
    xdm: Mapping[str, Any] | None = None  # parsed, checked IHE XDM metadata (mssante.xdm)


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A parsed RFC 5322 message, as the SMTP face hands it to the use case."""

    message_id: str
    from_address: str
    from_name: str
    to_addresses: tuple[str, ...]
    subject: str
    body_text: str
    raw: bytes
    x_mss: Mapping[str, str] = field(default_factory=dict)
    in_reply_to: str = ""
    references: tuple[str, ...] = ()
    reply_to: str = ""
    disposition_notification_to: str = ""
    auto_submitted: bool = False
    attachments: tuple[InboundAttachment, ...] = ()
    # the INS the attachments identify (XDM patientId / CDA recordTarget), for the owner check
    identified_ins: frozenset[str] = frozenset()
    # receipts (RFC 8098 MDN / RFC 3464 DSN) about a message we sent
    report_type: str = ""  # "" | disposition-notification | delivery-status
    report_original_message_id: str = ""
    report_status: str = ""  # displayed | processed | error | failed | delivered
    report_detail: str = ""


@dataclass(frozen=True, slots=True)
class OutgoingMail:
    """What the face renders to MIME for the patient's reply / new message / MDN."""

    message_id: str
    from_address: str
    to_address: str
    subject: str
    body_text: str
    in_reply_to: str = ""
    references: tuple[str, ...] = ()
    attachments: tuple[tuple[str, str, bytes], ...] = ()  # filename, content type, bytes
    date: datetime | None = None


Renderer = Callable[[OutgoingMail], bytes]


@dataclass(frozen=True, slots=True)
class MailSettings:
    domain: str = "patient.mssante.fr"
    trust_domains: tuple[str, ...] = ("operateur.test.mssante.fr", "mssante.fr")
    retention_years: int = DEFAULT_RETENTION_YEARS

    @classmethod
    def from_mapping(cls, settings: Mapping[str, Any]) -> MailSettings:
        trust = str(settings.get("MAIL_TRUST_DOMAINS") or "operateur.test.mssante.fr,mssante.fr")
        return cls(
            domain=str(settings.get("MAIL_DOMAIN") or "patient.mssante.fr").lower(),
            trust_domains=tuple(d.strip().lower() for d in trust.split(",") if d.strip()),
            retention_years=int(settings.get("MAIL_RETENTION_YEARS") or DEFAULT_RETENTION_YEARS),
        )

    def in_trust_space(self, address: str) -> bool:
        """True when ``address``'s domain is a trust domain or one of its subdomains."""
        domain = address.rpartition("@")[2].strip().lower().rstrip(">")
        if not domain or "@" not in address:
            return False
        return any(domain == d or domain.endswith("." + d) for d in self.trust_domains)

    def patient_address(self, ins: str) -> str:
        return f"{ins}@{self.domain}"

    def new_message_id(self) -> str:
        return f"{uuid.uuid4().hex}@{self.domain}"


class MailRefused(DomainError):
    """A mailbox rule refused the request; ``code`` names the rule (tests assert on it)."""

    code = "mail_refused"


@dataclass(frozen=True, slots=True)
class Delivered:
    """The outcome of one delivery: the stored row, a duplicate, or a receipt applied."""

    message_row_id: str
    conversation_id: str
    duplicate: bool = False
    receipt: bool = False
