"""Throttling of one-time code guesses and of new-code requests: soft lockouts with an
exponential back-off scoped to the requester, a per-space ceiling, and no hard lock.

Follows OWASP ASVS 4.0.3 V2.2.1 (anti-automation: soft lockouts, rate limiting, increasing
delays; at most 100 failed attempts per hour on one account), NIST SP 800-63B 5.2.2 (rate
limiting of a single account) and the ANSSI recommendations on authentication (2021:
temporisation rather than a definitive lock, which would hand a denial of service to whoever
knows the identifier). The arithmetic (code space against attempts allowed) is in
docs/lifecycle.md.

Counters live in ``attempt_counter`` and are taken in their own short transaction *before*
the lifecycle step's ``Espace.operation`` starts: an attempt is counted even if the step then
rolls back, and two concurrent guesses cannot both read the same count (the row is read
``FOR UPDATE``; SQLite's ``BEGIN IMMEDIATE`` serializes writers). The refusal itself is raised
inside the step's operation, so the trace records it like any other failure.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from espace.clock import as_utc
from espace.errors import DomainError
from espace.lifecycle.model import (
    CODE_BACKOFF_BASE,
    CODE_BACKOFF_MAX,
    CODE_FREE_ATTEMPTS,
    CODE_REQUESTER_MEMORY,
    CODE_SPACE_ATTEMPTS_PER_HOUR,
    AttemptCounter,
)
from espace.service import Espace
from espace.trace import Source

HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether one attempt may go on; when not, for how long and at which scope."""

    allowed: bool
    retry_after: int = 0  # seconds (HTTP Retry-After, RFC 9110 10.2.3)
    scope: str = ""  # requester | space | address
    first_refusal: bool = False  # the first refusal since the last counted attempt: notify

    @staticmethod
    def allow() -> Verdict:
        return Verdict(True)


class TooManyAttempts(DomainError):
    """Refused by a throttle (HTTP 429 Too Many Requests, RFC 6585 4, with Retry-After)."""

    code = "too_many_attempts"

    def __init__(self, message: str, verdict: Verdict, *, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.verdict = verdict


def requester_of(source: Source) -> str:
    """The requester a soft lockout applies to: the face and the caller's network address
    (OWASP: lock out the source of the attempts, not the account)."""
    return f"{source.face}:{source.address or '-'}"


def counter_key(*parts: str) -> str:
    """A counter's key; long parts (an IPv6 address with a zone...) are hashed to fit."""
    key = "|".join(parts)
    if len(key) <= 200:
        return key
    return f"{parts[0]}|sha256:{hashlib.sha256(key.encode()).hexdigest()}"


def code_requester_key(ins: str, source: Source) -> str:
    return counter_key("code", ins, requester_of(source))


def code_space_key(ins: str) -> str:
    return counter_key("code", ins)


def backoff(attempts: int) -> timedelta:
    """The wait after ``attempts`` consecutive attempts of one requester (exponential, capped)."""
    if attempts < CODE_FREE_ATTEMPTS:
        return timedelta(0)
    step = min(attempts - CODE_FREE_ATTEMPTS, 20)
    wait: timedelta = CODE_BACKOFF_BASE * (1 << step)
    return min(wait, CODE_BACKOFF_MAX)


def _seconds(delta: timedelta) -> int:
    return max(1, math.ceil(delta.total_seconds()))


def _locked_row(session: Session, key: str, now: datetime) -> AttemptCounter:
    """The counter ``key`` read FOR UPDATE (created first if missing, in one statement)."""
    dialect = session.get_bind().dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    table = AttemptCounter.__table__
    session.execute(
        module.insert(table)
        .values(key=key, window_start=now, count=0, last_at=now, notified_at=None)
        .on_conflict_do_nothing(index_elements=[table.c.key])
    )
    row = session.execute(
        select(AttemptCounter).where(AttemptCounter.key == key).with_for_update()
    ).scalar_one()
    return row


def _refusal(row: AttemptCounter, retry: timedelta, scope: str, now: datetime) -> Verdict:
    """A refusal; the first one since the last counted attempt is flagged (one notice)."""
    first = row.notified_at is None or as_utc(row.notified_at) < as_utc(row.last_at)
    if first:
        row.notified_at = now
    return Verdict(False, _seconds(retry), scope, first)


def check_code_attempt(espace: Espace, ins: str, source: Source) -> Verdict:
    """Count one attempt at a one-time code of ``ins`` by this requester, or refuse it.

    Requester scope: ``CODE_FREE_ATTEMPTS`` attempts, then ``backoff(n)`` between attempts;
    forgotten after ``CODE_REQUESTER_MEMORY`` without attempts, or at the first right code.
    Space scope: at most ``CODE_SPACE_ATTEMPTS_PER_HOUR`` attempts per hour window from every
    requester together. A refused attempt is not counted and checks no code.
    """
    now = espace.clock.now()
    with espace.session_factory() as session:
        mine = _locked_row(session, code_requester_key(ins, source), now)
        everyone = _locked_row(session, code_space_key(ins), now)
        if mine.count and as_utc(mine.last_at) <= now - CODE_REQUESTER_MEMORY:
            mine.count, mine.window_start = 0, now
        if as_utc(everyone.window_start) <= now - HOUR:
            everyone.count, everyone.window_start = 0, now
        wait = as_utc(mine.last_at) + backoff(mine.count) - now
        verdict = Verdict.allow()
        if mine.count >= CODE_FREE_ATTEMPTS and wait > timedelta(0):
            verdict = _refusal(mine, wait, "requester", now)
        elif everyone.count >= CODE_SPACE_ATTEMPTS_PER_HOUR:
            verdict = _refusal(everyone, as_utc(everyone.window_start) + HOUR - now, "space", now)
        else:
            for row in (mine, everyone):
                row.count += 1
                row.last_at = now
        session.commit()
    return verdict


def forget_requester(session: Session, ins: str, source: Source) -> None:
    """The requester gave the right code: its back-off starts afresh (in the caller's
    transaction, so only a committed success clears it)."""
    session.execute(
        delete(AttemptCounter).where(AttemptCounter.key == code_requester_key(ins, source))
    )


def hit_window(espace: Espace, key: str, *, window: timedelta, limit: int) -> Verdict:
    """Count one request in a fixed window of ``window``; refuse beyond ``limit``."""
    now = espace.clock.now()
    with espace.session_factory() as session:
        row = _locked_row(session, key, now)
        if as_utc(row.window_start) <= now - window:
            row.count, row.window_start = 0, now
        if row.count >= limit:
            verdict = _refusal(row, as_utc(row.window_start) + window - now, "address", now)
        else:
            row.count += 1
            row.last_at = now
            verdict = Verdict.allow()
        session.commit()
    return verdict


def forget_idle_counters(espace: Espace) -> int:
    """Delete the counters unused for two days (scheduled with the other jobs)."""
    cutoff = espace.clock.now() - timedelta(days=2)
    with espace.session_factory() as session:
        result = session.execute(delete(AttemptCounter).where(AttemptCounter.last_at < cutoff))
        session.commit()
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
