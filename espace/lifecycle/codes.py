"""One-time enrolment codes (décret 2021-1048, CSP R.1111-28: the information letter or e-mail
carries a code that stands for a login until the space is activated).

Codes are stored as scrypt hashes only (RFC 7914); a new code revokes the previous ones; five
wrong codes lock the current one (failures are counted from the trace).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from espace.clock import as_utc
from espace.errors import InvalidInput
from espace.lifecycle.common import (
    action_of,
    opposition_period,
    require_status,
    space_operation,
    system_actor,
)
from espace.lifecycle.model import (
    CODE_ALPHABET,
    CODE_LENGTH,
    CODE_VALIDITY,
    MAX_CODE_FAILURES,
    Enrolment,
    EnrolmentCode,
)
from espace.models import PatientSpace, TraceRecord
from espace.service import Espace, Operation
from espace.trace import Source, Target
from habilitation.model import Actor, ActorKind, SpaceStatus


def normalize_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def _hash_code(code: str, salt: str) -> str:
    digest = hashlib.scrypt(
        normalize_code(code).encode(), salt=bytes.fromhex(salt), n=2**14, r=8, p=1, dklen=32
    )
    return digest.hex()


def _new_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, CODE_LENGTH, 4))


def issue_code(
    session: Session, space: PatientSpace, now: datetime, channel: str
) -> tuple[str, EnrolmentCode]:
    """Revoke the previous codes of the space and issue a new one."""
    for row in session.execute(
        select(EnrolmentCode).where(
            EnrolmentCode.space_id == space.id, EnrolmentCode.used_at.is_(None)
        )
    ).scalars():
        row.revoked = True
    code = _new_code()
    salt = secrets.token_hex(16)
    row = EnrolmentCode(
        space_id=space.id,
        salt=salt,
        code_hash=_hash_code(code, salt),
        issued_at=now,
        expires_at=now + CODE_VALIDITY,
        channel=channel,
    )
    session.add(row)
    space.enrolment_code_hash = row.code_hash
    return code, row


def _recent_failures(session: Session, space_id: str, since: datetime) -> int:
    """Wrong codes since ``since``: failures are traced, so the trace is the counter."""
    count = session.execute(
        select(func.count(TraceRecord.id)).where(
            TraceRecord.space_key == space_id,
            TraceRecord.error_code.in_(("invalid_code", "code_locked")),
            TraceRecord.recorded_at >= since,
        )
    ).scalar_one()
    return int(count)


def consume_code(op: Operation, code: str) -> None:
    """Check a one-time code of ``op.space`` and mark it used (raises InvalidInput)."""
    assert op.space is not None
    now = op.now
    rows = list(
        op.session.execute(
            select(EnrolmentCode)
            .where(
                EnrolmentCode.space_id == op.space.id,
                EnrolmentCode.used_at.is_(None),
                EnrolmentCode.revoked.is_(False),
            )
            .order_by(EnrolmentCode.issued_at.desc())
        ).scalars()
    )
    if not rows:
        raise InvalidInput("no valid code for this space: ask for a new one", code="invalid_code")
    current = rows[0]
    if _recent_failures(op.session, op.space.id, as_utc(current.issued_at)) >= MAX_CODE_FAILURES:
        raise InvalidInput("too many wrong codes: ask for a new one", code="code_locked")
    if as_utc(current.expires_at) <= now:
        raise InvalidInput("the code has expired: ask for a new one", code="code_expired")
    if not hmac.compare_digest(_hash_code(code, current.salt), current.code_hash):
        raise InvalidInput("wrong code", code="invalid_code")
    current.used_at = now


def require_code_unless_agent(actor: Actor, code: str | None) -> None:
    """The person presents a one-time code; the support desk needs none."""
    if actor.kind is not ActorKind.SUPPORT_AGENT and not code:
        raise InvalidInput("the one-time code is required", code="code_required")


def consume_code_unless_agent(op: Operation, actor: Actor, code: str | None) -> None:
    """Check the code a person presented (a support agent's call carries none to check)."""
    if code is not None and actor.kind is not ActorKind.SUPPORT_AGENT:
        consume_code(op, code)


def issue_new_code(
    espace: Espace, ins: str, *, source: Source, actor: Actor | None = None, channel: str = "letter"
) -> Enrolment:
    """Send a new one-time code (the person asked; the previous ones are revoked).

    For a PENDING space the opposition deadline does not move (it runs from the information).
    """
    who = actor or system_actor("enrolment")
    with space_operation(
        espace, who, ins, event_type="lifecycle.code", source=source, action=action_of(who)
    ) as op:
        assert op.space is not None
        require_status(
            op.space,
            SpaceStatus.PENDING,
            SpaceStatus.OPPOSED,
            SpaceStatus.CLOSED,
            SpaceStatus.ACTIVE,
        )
        code, row = issue_code(op.session, op.space, op.now, channel)
        op.target = Target("PatientSpace", op.space.id)
        op.detail = {"channel": channel}
        start = as_utc(op.space.enrolment_sent_at or op.space.created_at)
        return Enrolment(
            op.space.id,
            op.space.ins,
            code,
            as_utc(row.expires_at),
            start + opposition_period(espace),
        )
