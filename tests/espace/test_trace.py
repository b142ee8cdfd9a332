"""The trace: hash chain per space, checkpoints, and tamper detection (ISSUE spine §5)."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import delete, select, update

from espace import trace
from espace.clock import FrozenClock
from espace.models import TraceCheckpoint, TraceRecord
from espace.service import Espace
from espace.trace import Source, Target, TraceEntry
from habilitation.model import Actor, ActorKind, Decision


def _entry(space: str | None, n: int) -> TraceEntry:
    return TraceEntry(
        actor=Actor(ActorKind.PROFESSIONAL, f"8{n:011d}", name=f"Dr {n}", profession="10"),
        action="TD3.2",
        event_type="ITI-43",
        decision=Decision.permit("care_team", "declared authorization"),
        outcome="success",
        source=Source(face="xds", address="127.0.0.1", request_id=f"r{n}"),
        space_id=space,
        target=Target("DocumentEntry", f"urn:uuid:{n}", "11490-0"),
    )


def _fill(espace: Espace, clock: FrozenClock, count: int, spaces: list[str | None]) -> None:
    with espace.session_factory() as session:
        for n in range(count):
            clock.advance(timedelta(seconds=1))
            trace.append(
                session, _entry(spaces[n % len(spaces)], n), now=clock.now(), signer=espace.signer
            )
        session.commit()


def test_chains_are_intact_and_sequenced(espace: Espace, clock: FrozenClock) -> None:
    _fill(espace, clock, 30, ["space-a", "space-b", None])
    with espace.session_factory() as session:
        assert trace.verify_chains(session, espace.signer) == []
        seqs = (
            session.execute(
                select(TraceRecord.seq)
                .where(TraceRecord.space_key == "space-a")
                .order_by(TraceRecord.seq)
            )
            .scalars()
            .all()
        )
    assert seqs == list(range(1, 11))


@pytest.mark.parametrize(
    "field,value",
    [
        ("actor_id", "899999999999"),
        ("outcome", "failure"),
        ("rule_id", "forged"),
        ("target_id", "x"),
    ],
)
def test_changing_any_field_is_detected_and_named(
    espace: Espace, clock: FrozenClock, field: str, value: str
) -> None:
    _fill(espace, clock, 20, ["space-a"])
    with espace.session_factory() as session:
        victim = session.execute(
            select(TraceRecord).where(TraceRecord.space_key == "space-a", TraceRecord.seq == 7)
        ).scalar_one()
        session.execute(
            update(TraceRecord).where(TraceRecord.id == victim.id).values({field: value})
        )
        session.commit()
        breaks = trace.verify_chains(session, espace.signer)
    assert len(breaks) == 1
    assert breaks[0].record_id == victim.id and breaks[0].seq == 7


def test_deleting_a_middle_record_is_detected(espace: Espace, clock: FrozenClock) -> None:
    _fill(espace, clock, 20, ["space-a"])
    with espace.session_factory() as session:
        session.execute(
            delete(TraceRecord).where(TraceRecord.space_key == "space-a", TraceRecord.seq == 5)
        )
        session.commit()
        breaks = trace.verify_chains(session, espace.signer)
    assert [b.seq for b in breaks] == [6]


def test_truncating_the_tail_is_detected(espace: Espace, clock: FrozenClock) -> None:
    _fill(espace, clock, 20, ["space-a"])
    with espace.session_factory() as session:
        session.execute(
            delete(TraceRecord).where(TraceRecord.space_key == "space-a", TraceRecord.seq > 17)
        )
        session.commit()
        breaks = trace.verify_chains(session, espace.signer)
    assert len(breaks) == 1 and "head" in breaks[0].problem


def test_reordering_records_is_detected(espace: Espace, clock: FrozenClock) -> None:
    _fill(espace, clock, 10, ["space-a"])
    with espace.session_factory() as session:
        rows = {
            r.seq: r.id
            for r in session.execute(
                select(TraceRecord).where(TraceRecord.space_key == "space-a")
            ).scalars()
        }
        # swap the sequence numbers of records 3 and 4 (through a temporary value)
        session.execute(update(TraceRecord).where(TraceRecord.id == rows[3]).values(seq=-1))
        session.execute(update(TraceRecord).where(TraceRecord.id == rows[4]).values(seq=3))
        session.execute(update(TraceRecord).where(TraceRecord.id == rows[3]).values(seq=4))
        session.commit()
        breaks = trace.verify_chains(session, espace.signer)
    assert [b.seq for b in breaks] == [3]


def test_forged_checkpoint_signature_is_detected(espace: Espace, clock: FrozenClock) -> None:
    _fill(espace, clock, 5, ["space-a"])
    with espace.session_factory() as session:
        trace.checkpoint_all(session, now=clock.now(), signer=espace.signer)
        session.commit()
        assert trace.verify_chains(session, espace.signer) == []
        session.execute(update(TraceCheckpoint).values(signature="AAAA" + "A" * 84))
        session.commit()
        breaks = trace.verify_chains(session, espace.signer)
    assert breaks and "signature" in breaks[0].problem


def test_random_tampering_of_many_records_is_always_detected(
    espace: Espace, clock: FrozenClock
) -> None:
    _fill(espace, clock, 300, ["space-a", "space-b", "space-c"])
    rng = random.Random(7)
    with espace.session_factory() as session:
        ids = session.execute(select(TraceRecord.id)).scalars().all()
        for record_id in rng.sample(list(ids), 10):
            original = session.get(TraceRecord, record_id)
            assert original is not None
            old_reason = original.reason
            original.reason = old_reason + "!"
            session.commit()
            breaks = trace.verify_chains(session, espace.signer)
            assert [b.record_id for b in breaks] == [record_id]
            original.reason = old_reason
            session.commit()
        assert trace.verify_chains(session, espace.signer) == []
