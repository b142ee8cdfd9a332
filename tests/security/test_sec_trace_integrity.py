"""Trace integrity at scale (issue 7, "Trace integrity"): 10,000 hash-chained records; changing,
deleting or reordering any one of them is detected by ``espace.trace.verify_chains`` and the
break names the record (ISO 27789 / ANS PGSSI-S traceability: tamper-evident audit trail).

The default run samples ``MES_TRACE_SAMPLES`` (200) random single tamperings; the slow run
tampers every one of the 10,000 records once (each kind in turn).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import String, Text, delete, select, update
from sqlalchemy.orm import Session

from espace import trace
from espace.clock import FrozenClock, as_utc
from espace.models import TraceCheckpoint, TraceHead, TraceRecord
from espace.service import Espace
from espace.trace import Source, Target, TraceEntry
from habilitation.model import Actor, ActorKind, Decision

RECORDS = 10_000
CHAINS = 100  # one chain per patient space, 100 records each
SAMPLES = int(os.environ.get("MES_TRACE_SAMPLES", "200"))
#: fields an insider would rewrite: every string column of ``trace_record`` (read from the
#: model, not from ``espace.trace``'s list of hashed fields, so a column added without being
#: hashed is tampered here and makes the test fail) except the chain's own key and links,
#: whose tampering the seq/link checks cover
CHANGEABLE = tuple(
    column.name
    for column in TraceRecord.__table__.columns
    if isinstance(column.type, String | Text)
    and column.name not in {"space_key", "prev_hash", "hash"}
)


def _entry(space: str, n: int) -> TraceEntry:
    return TraceEntry(
        actor=Actor(ActorKind.PROFESSIONAL, f"8{n % 997:011d}", name=f"Dr {n}", profession="10"),
        action="TD3.2",
        event_type="ITI-43",
        decision=Decision.permit("care_team", "declared authorization"),
        outcome="success",
        source=Source(face="xds", address="127.0.0.1", request_id=f"r{n}"),
        space_id=space,
        target=Target("DocumentEntry", f"urn:uuid:{n}", "11490-0"),
        detail={"n": n},
    )


@dataclass(frozen=True)
class Filled:
    keys: list[str]
    #: (space_key, seq) -> record id
    ids: dict[tuple[str, int], int]


@pytest.fixture
def filled(espace: Espace, clock: FrozenClock) -> Iterator[Filled]:
    """10,000 records appended through ``trace.append`` (100 chains), then checkpointed."""
    keys = [f"space-{i:03d}" for i in range(CHAINS)]
    with espace.session_factory() as session:
        for n in range(RECORDS):
            clock.advance(timedelta(milliseconds=10))
            if n < CHAINS:  # the first record of each chain creates its head: flush it
                trace.append(session, _entry(keys[n], n), now=clock.now(), signer=espace.signer)
                session.flush()
                continue
            with session.no_autoflush:  # heads stay in the identity map: one flush per 1,000
                trace.append(
                    session, _entry(keys[n % CHAINS], n), now=clock.now(), signer=espace.signer
                )
            if n % 1000 == 999:
                session.flush()
        trace.checkpoint_all(session, now=clock.now(), signer=espace.signer)
        session.commit()
        ids = {
            (key, seq): rid
            for key, seq, rid in session.execute(
                select(TraceRecord.space_key, TraceRecord.seq, TraceRecord.id)
            )
        }
        assert len(ids) == RECORDS
        assert trace.verify_chains(session, espace.signer) == []
    yield Filled(keys, ids)


def _tamper(
    session: Session,
    kind: str,
    key: str,
    seq: int,
    ids: dict[tuple[str, int], int],
    rng: random.Random,
) -> set[int | None]:
    """Apply one tampering (uncommitted); return the record ids a correct report may name."""
    rid = ids[(key, seq)]
    last = max(s for (k, s) in ids if k == key) if seq > CHAINS - 2 else CHAINS
    if kind == "change":
        field = rng.choice(CHANGEABLE)
        session.execute(
            update(TraceRecord)
            .where(TraceRecord.id == rid)
            .values({field: f"x{rng.randrange(10**6):06d}"})  # fits every VARCHAR
        )
        return {rid}
    if kind == "change_detail":
        session.execute(update(TraceRecord).where(TraceRecord.id == rid).values(detail={"n": -1}))
        return {rid}
    if kind == "backdate":
        session.execute(
            update(TraceRecord)
            .where(TraceRecord.id == rid)
            .values(
                recorded_at=as_utc(session.get_one(TraceRecord, rid).recorded_at)
                - timedelta(days=1)
            )
        )
        return {rid}
    if kind == "delete":
        session.execute(delete(TraceRecord).where(TraceRecord.id == rid))
        # a middle record: the next one is named; the last one: the head (no record id)
        return {ids[(key, seq + 1)]} if seq < last else {None}
    if kind == "reorder":
        other = seq + 1 if seq < last else seq - 1
        oid = ids[(key, other)]
        session.execute(update(TraceRecord).where(TraceRecord.id == rid).values(seq=-1))
        session.execute(update(TraceRecord).where(TraceRecord.id == oid).values(seq=seq))
        session.execute(update(TraceRecord).where(TraceRecord.id == rid).values(seq=other))
        return {oid if other > seq else rid}
    if kind == "rehash_tail":
        # an insider who also recomputes the hashes of the tail and moves the head: only the
        # signed checkpoint (Ed25519, key outside the database) can tell
        session.execute(update(TraceRecord).where(TraceRecord.id == rid).values(outcome="denied"))
        prev = session.get_one(TraceRecord, ids[(key, seq - 1)]).hash if seq > 1 else trace.GENESIS
        for s in range(seq, last + 1):
            row = session.get_one(TraceRecord, ids[(key, s)])
            session.refresh(row)
            row.prev_hash = prev
            row.hash = trace.record_hash(row)
            prev = row.hash
        head = session.get_one(TraceHead, key)
        head.hash = prev
        session.flush()
        return {None}
    raise AssertionError(kind)


KINDS = ("change", "change_detail", "backdate", "delete", "reorder", "rehash_tail")


def _run(espace: Espace, filled: Filled, targets: list[tuple[str, int, str]]) -> dict[str, int]:
    rng = random.Random(20261122)
    detected: dict[str, int] = {}
    with espace.session_factory() as session:
        for key, seq, kind in targets:
            expected = _tamper(session, kind, key, seq, filled.ids, rng)
            breaks = trace.verify_chains(session, espace.signer, space_keys=[key])
            assert len(breaks) == 1, (kind, key, seq, breaks)
            assert breaks[0].space_key == key
            assert breaks[0].record_id in expected, (kind, key, seq, breaks[0], expected)
            if kind == "rehash_tail":
                assert "checkpoint" in breaks[0].problem or "head" in breaks[0].problem
            detected[kind] = detected.get(kind, 0) + 1
            session.rollback()
        # nothing left behind: every chain verifies again
        assert trace.verify_chains(session, espace.signer) == []
    return detected


def test_any_single_tampering_among_10000_records_is_detected(
    espace: Espace, filled: Filled
) -> None:
    """One fill (about 20 s) serves three checks: a full verification over the 10,000 records
    names the one changed record; a forged checkpoint is caught; then ``SAMPLES`` random single
    tamperings of every kind are each detected and named."""
    key, seq = filled.keys[42], 57
    with espace.session_factory() as session:
        session.execute(
            update(TraceRecord)
            .where(TraceRecord.id == filled.ids[(key, seq)])
            .values(actor_id="899999999999")
        )
        breaks = trace.verify_chains(session, espace.signer)
        session.rollback()
        assert [(b.space_key, b.record_id, b.seq) for b in breaks] == [
            (key, filled.ids[(key, seq)], seq)
        ]
        forged = filled.keys[7]
        session.execute(
            update(TraceCheckpoint).where(TraceCheckpoint.space_key == forged).values(hash="f" * 64)
        )
        assert [b.space_key for b in trace.verify_chains(session, espace.signer)] == [forged]
        session.rollback()

    # every string column, one at a time (the random samples below may miss one of them)
    key, seq = filled.keys[3], 10
    with espace.session_factory() as session:
        for field in CHANGEABLE:
            session.execute(
                update(TraceRecord)
                .where(TraceRecord.id == filled.ids[(key, seq)])
                .values({field: "x999999"})  # 7 characters: fits every VARCHAR
            )
            breaks = trace.verify_chains(session, espace.signer, space_keys=[key])
            session.rollback()
            assert [b.record_id for b in breaks] == [filled.ids[(key, seq)]], field

    rng = random.Random(7)
    targets = []
    for i in range(SAMPLES):
        key = rng.choice(filled.keys)
        kind = KINDS[i % len(KINDS)]
        seq = rng.randint(2 if kind == "rehash_tail" else 1, CHAINS)
        targets.append((key, seq, kind))
    detected = _run(espace, filled, targets)
    assert sum(detected.values()) == SAMPLES
    assert set(detected) == set(KINDS)


@pytest.mark.slow
def test_every_one_of_10000_records_tampered_is_detected(espace: Espace, filled: Filled) -> None:
    targets = [
        (key, seq, ("change", "delete", "reorder", "change_detail", "backdate")[(i + seq) % 5])
        for i, key in enumerate(filled.keys)
        for seq in range(1, CHAINS + 1)
    ]
    detected = _run(espace, filled, targets)
    assert sum(detected.values()) == RECORDS
