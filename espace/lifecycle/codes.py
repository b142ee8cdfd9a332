"""One-time enrolment codes (décret 2021-1048, CSP R.1111-28: the information letter or e-mail
carries a code that stands for a login until the space is activated).

Codes are stored as scrypt hashes only (RFC 7914); a new code revokes the previous ones.
Guessing is throttled per requester with an exponential back-off and per space with an hourly
ceiling (:mod:`espace.lifecycle.throttle`); nothing locks the code itself, so a stranger who
knows an INS cannot lock its person out. A refusal is traced and the person is told.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from espace.clock import as_utc
from espace.errors import AccessDenied, DomainError, InvalidInput
from espace.lifecycle.common import (
    action_of,
    check_ins,
    fmt_day,
    opposition_period,
    require_status,
    space_operation,
    system_actor,
)
from espace.lifecycle.model import (
    CODE_ALPHABET,
    CODE_LENGTH,
    CODE_VALIDITY,
    Enrolment,
    EnrolmentCode,
)
from espace.lifecycle.throttle import (
    TooManyAttempts,
    Verdict,
    check_code_attempt,
    forget_requester,
)
from espace.models import PatientSpace
from espace.service import Espace, Operation
from espace.trace import Source, Target
from habilitation.model import Action, Actor, ActorKind, SpaceStatus


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


def consume_code(op: Operation, code: str) -> None:
    """Check a one-time code of ``op.space`` and mark it used (raises InvalidInput).

    The step runs in :func:`code_operation`, which counted this attempt beforehand; a right
    code clears the requester's back-off in the step's own transaction.
    """
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
    if as_utc(current.expires_at) <= now:
        raise InvalidInput("the code has expired: ask for a new one", code="code_expired")
    if not hmac.compare_digest(_hash_code(code, current.salt), current.code_hash):
        raise InvalidInput("wrong code", code="invalid_code")
    current.used_at = now
    forget_requester(op.session, op.space.ins, op.source)


@contextmanager
def code_operation(
    espace: Espace,
    actor: Actor,
    ins: str,
    code: str | None,
    *,
    event_type: str,
    source: Source,
) -> Iterator[Operation]:
    """The operation of a lifecycle step that may check a one-time code.

    The attempt is counted before the operation starts (``throttle.check_code_attempt``, its
    own transaction); a throttled attempt is refused inside the operation (traced, HTTP 429)
    without checking any code, and the first refusal of a lock is notified to the person.
    A support agent presents no code and is never throttled.
    """
    ins = check_ins(ins)
    verdict = Verdict.allow()
    if code is not None and actor.kind is not ActorKind.SUPPORT_AGENT:
        verdict = check_code_attempt(espace, ins, source)
    try:
        with space_operation(espace, actor, ins, event_type=event_type, source=source) as op:
            if not verdict.allowed:
                op.detail = {"throttled": verdict.scope, "retry_after": verdict.retry_after}
                raise TooManyAttempts(
                    f"too many attempts: try again in {verdict.retry_after} s, or ask for a "
                    "new code",
                    verdict,
                    code="code_throttled",
                )
            yield op
    except TooManyAttempts as exc:
        if exc.verdict.first_refusal:
            _lock_notice(espace, ins, exc.verdict, source)
        raise


def _lock_notice(espace: Espace, ins: str, verdict: Verdict, source: Source) -> None:
    """Trace the lock (``lifecycle.code_lock``) and tell the person (category ``security``)."""
    with (
        suppress(DomainError, AccessDenied),
        space_operation(
            espace,
            system_actor("code_guard"),
            ins,
            event_type="lifecycle.code_lock",
            source=source,
            action=Action.SYSTEM_JOB,
        ) as op,
    ):
        assert op.space is not None
        op.target = Target("PatientSpace", op.space.id)
        op.detail = {"scope": verdict.scope, "retry_after": verdict.retry_after}
        op.notify(
            "security",
            "Plusieurs codes erronés ont été saisis pour votre profil Mon espace santé le "
            f"{fmt_day(op.now)}. Les essais sont suspendus un moment"
            f"{' pour tous' if verdict.scope == 'space' else ' pour leur auteur'}. Si ce "
            "n'était pas vous, aucune action n'est nécessaire : votre code reste valable et "
            "vous pouvez en demander un nouveau à tout moment.",
            dedup_key=f"code_lock:{op.space.id}:{verdict.scope}:{op.now:%Y-%m-%d}",
        )


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
