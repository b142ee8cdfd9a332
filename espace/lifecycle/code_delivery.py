"""New one-time codes sent to the contact channel on file (décret 2021-1048: "the person can
ask for a new code"), never handed to whoever asked.

- The person asks (``request_new_code``, the public HTTP route): the request names an INS
  and proves nothing, so the code goes only where the insurer or the person put it — the
  e-mail on file (a minor's or protected adult's: their representatives'), else a letter in
  the print queue. The answer is the same whether or not the INS has a space (OWASP
  Forgot Password Cheat Sheet: no account enumeration). Rate limits: per address and hour
  (refused with HTTP 429, which says nothing about the INS), per person and day (silently
  not sent, traced).
- The support desk sends one (``send_new_code``): same delivery, no limit, agent traced.

The e-mailed code sits in the notification outbox until the worker sends it (the outbox is the
mail spool), then its body is scrubbed (``notifications.SECRET_CATEGORIES``); a letter's code
is sealed with the document cipher until ``mes space letters`` prints it, then erased. The
trace records the channel, never the code.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from espace.clock import as_utc
from espace.errors import AccessDenied, Conflict, DomainError
from espace.lifecycle.codes import issue_code
from espace.lifecycle.common import (
    check_ins,
    fmt_day,
    job_operation,
    require_status,
    space_operation,
    system_actor,
)
from espace.lifecycle.model import (
    NEW_CODE_PER_ADDRESS_PER_HOUR,
    NEW_CODE_PER_SPACE_PER_DAY,
    CodeDelivery,
    CodeLetter,
    EnrolmentCode,
)
from espace.lifecycle.throttle import TooManyAttempts, counter_key, hit_window, requester_of
from espace.notifications import recipients_for
from espace.service import Espace, Operation
from espace.trace import Source, Target
from habilitation.model import Action, Actor, SpaceStatus

CODE_STATUSES = (SpaceStatus.PENDING, SpaceStatus.OPPOSED, SpaceStatus.CLOSED, SpaceStatus.ACTIVE)


def _deliver(op: Operation, code: str, row: EnrolmentCode) -> str:
    """Send ``code`` to the channel on file; returns the channel (email | letter)."""
    space = op.space
    assert space is not None
    op.session.flush()
    expires = as_utc(row.expires_at)
    if recipients_for(op.session, space, op.now):
        op.notify(
            "enrolment_code",
            f"Voici votre nouveau code Mon espace santé : {code}\n"
            f"Il est valable jusqu'au {fmt_day(expires)} et remplace les codes précédents. "
            "Ne le communiquez à personne : aucun conseiller ne vous le demandera.",
            dedup_key=f"code:{space.id}:{row.id}",
        )
        return "email"
    letter = CodeLetter(space_id=space.id, created_at=op.now, expires_at=expires)
    op.session.add(letter)
    op.session.flush()
    letter.sealed = op.espace.cipher.encrypt(
        code.encode(), space_id=space.id, object_id=f"code_letter:{letter.id}"
    )
    return "letter"


def _send(op: Operation) -> CodeDelivery:
    space = op.space
    assert space is not None
    require_status(space, *CODE_STATUSES)
    code, row = issue_code(op.session, space, op.now, "request")
    channel = _deliver(op, code, row)
    row.channel = channel
    op.target = Target("PatientSpace", space.id)
    op.detail = {"channel": channel}
    return CodeDelivery(space.id, channel, as_utc(row.expires_at))


def send_new_code(espace: Espace, actor: Actor, ins: str, *, source: Source) -> CodeDelivery:
    """Issue a new code and send it to the channel on file (support desk, back office)."""
    with space_operation(espace, actor, ins, event_type="lifecycle.code", source=source) as op:
        return _send(op)


class CodeRequestLimited(Conflict):
    code = "code_request_limited"


def request_new_code(espace: Espace, ins: str, *, source: Source) -> CodeDelivery | None:
    """The person asks for a new code (public route): returns the delivery, or None when
    nothing was sent (no such space, wrong status, daily limit) — the caller must answer
    the same either way. Raises ``TooManyAttempts`` (scope ``address``) past the address's
    hourly limit, and ``InvalidInput`` for a malformed INS.

    The request is run by the system actor ``job:code_request`` (the caller is not
    authenticated); the trace records the caller's address and the channel used.
    """
    ins = check_ins(ins)
    actor = system_actor("code_request")
    by_address = hit_window(
        espace,
        counter_key("new_code", requester_of(source)),
        window=timedelta(hours=1),
        limit=NEW_CODE_PER_ADDRESS_PER_HOUR,
    )
    if not by_address.allowed:
        with espace.operation(
            actor,
            Action.SYSTEM_JOB,
            event_type="lifecycle.code_request",
            source=source,
            require_space=False,
            target=Target("Endpoint", "new-code"),
        ) as op:
            op.detail = {"throttled": "address", "retry_after": by_address.retry_after}
            raise TooManyAttempts(
                f"too many requests: try again in {by_address.retry_after} s",
                by_address,
                code="too_many_requests",
            )
    by_person = hit_window(
        espace,
        counter_key("new_code", ins),
        window=timedelta(days=1),
        limit=NEW_CODE_PER_SPACE_PER_DAY,
    )
    with suppress(DomainError, AccessDenied):  # traced by the operation; answered alike
        with space_operation(
            espace,
            actor,
            ins,
            event_type="lifecycle.code_request",
            source=source,
            action=Action.SYSTEM_JOB,
        ) as op:
            if not by_person.allowed:
                raise CodeRequestLimited(
                    f"{NEW_CODE_PER_SPACE_PER_DAY} codes were sent in the last 24 hours"
                )
            return _send(op)
    return None


# --------------------------------------------------------------------------- print queue
@dataclass(frozen=True, slots=True)
class Letter:
    """One letter for the print run: whom it goes to and the code it carries."""

    ins: str
    family_name: str
    given_names: str
    code: str
    expires_at: datetime


def print_letters(espace: Espace, *, source: Source | None = None) -> Iterator[Letter]:
    """Take the waiting letters (one traced operation each): yield each one's content and
    erase its sealed code. An expired code is erased without being printed."""
    src = source or Source(face="job")
    with espace.session_factory() as session:
        waiting = list(
            session.execute(
                select(CodeLetter.id, CodeLetter.space_id)
                .where(CodeLetter.printed_at.is_(None))
                .order_by(CodeLetter.id)
            ).all()
        )
    for letter_id, space_id in waiting:
        with job_operation(
            espace, "letters", space_id, event_type="lifecycle.code_letter", source=src
        ) as op:
            row = op.session.get(CodeLetter, letter_id, with_for_update=True)
            space = op.space
            if row is None or space is None or row.printed_at is not None or row.sealed is None:
                continue
            sealed, row.sealed, row.printed_at = row.sealed, None, op.now
            op.target = Target("CodeLetter", str(letter_id))
            if as_utc(row.expires_at) <= op.now:
                op.detail = {"printed": False, "reason": "expired"}
                continue
            op.detail = {"printed": True}
            code = op.espace.cipher.decrypt(
                sealed, space_id=space.id, object_id=f"code_letter:{letter_id}"
            ).decode()
            letter = Letter(
                space.ins, space.family_name, space.given_names, code, as_utc(row.expires_at)
            )
        yield letter  # after the commit: a letter is printed at most once
