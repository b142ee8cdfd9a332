"""One-time code guesses: a soft lockout with an exponential back-off scoped to the requester,
an hourly ceiling per space, no hard lock on the person, lock events traced and notified
(OWASP ASVS 4.0.3 V2.2.1, NIST SP 800-63B 5.2.2)."""

from __future__ import annotations

import threading
from datetime import date, timedelta

import pytest
from lifecycle_helpers import agent, make_ins, outbox, patient
from sqlalchemy import select

from espace import lifecycle
from espace.clock import FrozenClock
from espace.errors import InvalidInput
from espace.lifecycle import AttemptCounter, Person, TooManyAttempts, throttle
from espace.models import TraceRecord
from espace.service import Espace
from espace.trace import Source

BIRTH = date(1972, 3, 14)
INS = make_ins(2, BIRTH, 601)
WRONG = "AAAA-AAAA-AAAA"
STRANGER = Source(face="patient_api", address="127.0.0.2")
OWNER = Source(face="patient_api", address="127.0.0.3")


def _enrol(espace: Espace) -> lifecycle.Enrolment:
    person = Person(INS, "ROUX", "Anne", BIRTH, "F", "anne@example.org")
    return lifecycle.enrol(espace, person, source=OWNER)


def _oppose(espace: Espace, code: str, source: Source) -> str:
    """Try an opposition; the error code, or "ok"."""
    try:
        lifecycle.oppose(espace, patient(INS), INS, code=code, source=source)
    except (InvalidInput, TooManyAttempts) as exc:
        return exc.code
    return "ok"


def _throttled(espace: Espace, code: str, source: Source) -> TooManyAttempts:
    with pytest.raises(TooManyAttempts) as caught:
        lifecycle.oppose(espace, patient(INS), INS, code=code, source=source)
    return caught.value


def test_backoff_doubles_after_the_free_attempts_and_is_capped() -> None:
    waits = [throttle.backoff(n) for n in range(0, 12)]
    assert waits[:3] == [timedelta(0)] * 3
    assert waits[3:7] == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert waits[10] == waits[11] == timedelta(hours=1)
    assert throttle.backoff(10**6) == timedelta(hours=1)


def test_a_stranger_is_slowed_down_and_the_person_is_not_locked_out(
    espace: Espace, clock: FrozenClock
) -> None:
    code = _enrol(espace).code
    assert [_oppose(espace, WRONG, STRANGER) for _ in range(3)] == ["invalid_code"] * 3
    refused = _throttled(espace, WRONG, STRANGER)
    assert (refused.code, refused.verdict.scope, refused.verdict.retry_after) == (
        "code_throttled",
        "requester",
        60,
    )
    clock.advance(timedelta(seconds=61))
    assert _oppose(espace, WRONG, STRANGER) == "invalid_code"
    assert _throttled(espace, WRONG, STRANGER).verdict.retry_after == 120
    # the stranger's guesses cost the person nothing: the code still works for them
    assert _oppose(espace, code, OWNER) == "ok"


def test_a_throttled_attempt_checks_no_code(espace: Espace, clock: FrozenClock) -> None:
    code = _enrol(espace).code
    for _ in range(3):
        _oppose(espace, WRONG, STRANGER)
    # even the right code is refused while the requester waits: nothing is learnt
    assert _throttled(espace, code, STRANGER).code == "code_throttled"
    clock.advance(timedelta(minutes=1))
    assert _oppose(espace, code, STRANGER) == "ok"


def test_the_lock_is_traced_and_notified_once_per_episode(
    espace: Espace, clock: FrozenClock
) -> None:
    enrolment = _enrol(espace)
    for _ in range(3):
        _oppose(espace, WRONG, STRANGER)
    for _ in range(4):
        _throttled(espace, WRONG, STRANGER)
    with espace.session_factory() as session:
        records = list(
            session.execute(
                select(TraceRecord).where(TraceRecord.space_key == enrolment.space_id)
            ).scalars()
        )
    refusals = [r for r in records if r.error_code == "code_throttled"]
    assert len(refusals) == 4 and {r.source_address for r in refusals} == {"127.0.0.2"}
    assert all(r.detail["throttled"] == "requester" for r in refusals)
    locks = [r for r in records if r.event_type == "lifecycle.code_lock"]
    assert len(locks) == 1 and locks[0].detail["scope"] == "requester"
    notices = [n for n in outbox(espace, enrolment.space_id) if n.category == "security"]
    assert len(notices) == 1 and "anne@example.org" in notices[0].recipients
    assert enrolment.code not in notices[0].body


def test_the_space_ceiling_stops_distributed_guessing_for_an_hour_only(
    espace: Espace, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(throttle, "CODE_SPACE_ATTEMPTS_PER_HOUR", 4)
    code = _enrol(espace).code
    addresses = [Source(face="patient_api", address=f"127.0.1.{n}") for n in range(1, 6)]
    assert [_oppose(espace, WRONG, s) for s in addresses[:4]] == ["invalid_code"] * 4
    refused = _throttled(espace, code, addresses[4])
    assert refused.verdict.scope == "space" and 0 < refused.verdict.retry_after <= 3600
    # the support desk needs no code and is never throttled
    clock.advance(timedelta(minutes=59, seconds=59))
    assert _throttled(espace, code, OWNER).verdict.scope == "space"
    clock.advance(timedelta(seconds=2))
    assert _oppose(espace, code, OWNER) == "ok"


def test_the_support_desk_is_never_throttled(
    espace: Espace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(throttle, "CODE_SPACE_ATTEMPTS_PER_HOUR", 2)
    _enrol(espace)
    for n in range(3):
        _oppose(espace, WRONG, Source(face="patient_api", address=f"127.0.2.{n}"))
    receipt = lifecycle.oppose(espace, agent(), INS, source=OWNER)
    assert receipt.agent_id == "AGENT-42"


def test_a_right_code_or_a_quiet_day_clears_the_requester(
    espace: Espace, clock: FrozenClock
) -> None:
    _enrol(espace)
    for _ in range(3):
        _oppose(espace, WRONG, STRANGER)
    clock.advance(timedelta(hours=24, seconds=1))
    assert [_oppose(espace, WRONG, STRANGER) for _ in range(3)] == ["invalid_code"] * 3
    fresh = lifecycle.issue_new_code(espace, INS, source=OWNER).code
    clock.advance(timedelta(minutes=1))
    assert _oppose(espace, fresh, STRANGER) == "ok"
    key = throttle.code_requester_key(INS, STRANGER)
    with espace.session_factory() as session:
        assert session.get(AttemptCounter, key) is None


def test_concurrent_guesses_from_one_requester_get_the_free_attempts_only(
    espace: Espace,
) -> None:
    _enrol(espace)
    outcomes: list[str] = []
    lock = threading.Lock()

    def guess() -> None:
        result = _oppose(espace, WRONG, STRANGER)
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=guess) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["code_throttled"] * 5 + ["invalid_code"] * 3


def test_idle_counters_are_forgotten_by_the_jobs(espace: Espace, clock: FrozenClock) -> None:
    _enrol(espace)
    _oppose(espace, WRONG, STRANGER)
    with espace.session_factory() as session:
        assert len(list(session.execute(select(AttemptCounter)).scalars())) == 2
    clock.advance(timedelta(days=2, seconds=1))
    lifecycle.run_due_jobs(espace)
    with espace.session_factory() as session:
        assert list(session.execute(select(AttemptCounter)).scalars()) == []
