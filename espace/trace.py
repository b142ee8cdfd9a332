"""The trace: one append-only, tamper-evident record of every operation.

Each record is hashed (SHA-256 over its canonical JSON and the previous record's hash) into a
chain per patient space; Ed25519 checkpoints sign chain heads so that truncating a chain is
detected too. ``verify_chains`` recomputes everything and names the first broken record
(``mes trace verify``). The patient-readable trace and the ATNA/BALP AuditEvent export are two
projections of this one table.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from sqlalchemy import ColumnElement, and_, bindparam, not_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from espace.clock import as_utc
from espace.models import TraceCheckpoint, TraceHead, TraceRecord
from habilitation.model import Actor, Decision, DocumentVisibility

GENESIS = "0" * 64
NO_SPACE = "-"
CHECKPOINT_EVERY = 100

_HASHED_FIELDS = (
    "space_key",
    "seq",
    "recorded_at",
    "event_type",
    "action",
    "actor_kind",
    "actor_id",
    "actor_name",
    "actor_profession",
    "actor_specialty",
    "actor_structure",
    "authentication_mode",
    "on_behalf_of",
    "access_mode",
    "declared_reason",
    "target_type",
    "target_id",
    "document_type",
    "decision",
    "rule_id",
    "reason",
    "outcome",
    "error_code",
    "request_id",
    "source_face",
    "source_address",
    "software",
    "detail",
)


@dataclass(frozen=True, slots=True)
class Source:
    """Where a request came from: face, network address, request id, software."""

    face: str
    address: str = ""
    request_id: str = ""
    software: str = ""


@dataclass(slots=True)
class Target:
    type: str = ""
    id: str = ""
    document_type: str = ""


@dataclass(slots=True)
class TraceEntry:
    """What an enforcement point knows about one operation when it ends."""

    actor: Actor
    action: str
    event_type: str
    decision: Decision
    outcome: str  # success | failure | denied
    source: Source
    space_id: str | None = None
    target: Target = field(default_factory=Target)
    error_code: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)


def _canonical(record: TraceRecord) -> bytes:
    values: dict[str, Any] = {}
    for name in _HASHED_FIELDS:
        value = getattr(record, name)
        if isinstance(value, datetime):
            value = as_utc(value).isoformat(timespec="microseconds")
        values[name] = value
    return json.dumps(values, sort_keys=True, separators=(",", ":"), default=str).encode()


def record_hash(record: TraceRecord) -> str:
    return hashlib.sha256(record.prev_hash.encode() + _canonical(record)).hexdigest()


class TraceSigner:
    """Signs chain heads (Ed25519). The key comes from configuration."""

    def __init__(self, private_key: Ed25519PrivateKey, key_id: str = "trace-1") -> None:
        self._key = private_key
        self.key_id = key_id
        self.public_key: Ed25519PublicKey = private_key.public_key()

    @classmethod
    def from_config_value(cls, value: str, key_id: str = "trace-1") -> TraceSigner:
        return cls(Ed25519PrivateKey.from_private_bytes(base64.b64decode(value)), key_id)

    @staticmethod
    def generate_key() -> str:
        from cryptography.hazmat.primitives import serialization

        raw = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return base64.b64encode(raw).decode("ascii")

    @staticmethod
    def message(space_key: str, seq: int, head_hash: str) -> bytes:
        return f"mes-trace-checkpoint|{space_key}|{seq}|{head_hash}".encode()

    def sign(self, space_key: str, seq: int, head_hash: str) -> str:
        return base64.b64encode(self._key.sign(self.message(space_key, seq, head_hash))).decode()

    def verify(self, space_key: str, seq: int, head_hash: str, signature: str) -> bool:
        try:
            self.public_key.verify(
                base64.b64decode(signature), self.message(space_key, seq, head_hash)
            )
        except Exception:
            return False
        return True


@dataclass(frozen=True, slots=True)
class HeadSnapshot:
    """A chain head read earlier without a lock (``seq`` 0: the chain had no head row yet).

    ``append`` uses it as a compare-and-set guess: one conditional write instead of a locked
    read and a write; when another transaction moved the head meanwhile, the guess is refused
    and the locked path runs.
    """

    seq: int
    hash: str


def append(
    session: Session,
    entry: TraceEntry,
    *,
    now: datetime,
    signer: TraceSigner | None = None,
    head: HeadSnapshot | None = None,
) -> TraceRecord:
    """Append one record to its space's chain, in the caller's transaction.

    With a ``head`` snapshot, the head moves only if it is still that one (``UPDATE .. WHERE
    seq = :seen``, or ``INSERT .. ON CONFLICT DO NOTHING`` for a new chain): one statement
    instead of ``SELECT .. FOR UPDATE`` + ``UPDATE``. Otherwise, or when the snapshot is stale,
    the head is read ``FOR UPDATE``. Either way no two records get the same ``seq`` and every
    record links to its predecessor's hash; the unique ``(space_key, seq)`` guards it too.
    """
    space_key = entry.space_id or NO_SPACE
    if head is not None:
        record = _new_record(entry, space_key, head.seq + 1, head.hash, now)
        if _compare_and_set_head(session, space_key, head, record):
            return _add(session, record, now, signer)
    # populate_existing refreshes a head the compare-and-set found stale; pending changes to
    # it (a caller appending several records under no_autoflush) must reach the database first
    session.flush()
    locked = session.execute(
        select(TraceHead)
        .where(TraceHead.space_key == space_key)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if locked is None:
        locked = TraceHead(space_key=space_key, seq=0, hash=GENESIS)
        session.add(locked)
    record = _new_record(entry, space_key, locked.seq + 1, locked.hash, now)
    locked.seq = record.seq
    locked.hash = record.hash
    return _add(session, record, now, signer)


def _compare_and_set_head(
    session: Session, space_key: str, seen: HeadSnapshot, record: TraceRecord
) -> bool:
    """Move the head from ``seen`` to ``record`` if nobody moved it since; True when done.

    ``RETURNING`` says whether a row was written (a DBAPI ``rowcount`` is not reliable for
    every statement form on every driver).
    """
    table = TraceHead.metadata.tables[TraceHead.__tablename__]  # Core: no ORM bulk path
    if seen.seq == 0:
        dialect = session.get_bind().dialect.name
        if dialect not in ("postgresql", "sqlite"):  # pragma: no cover - the supported stores
            return False
        module: Any = postgresql if dialect == "postgresql" else sqlite
        statement: Any = (
            module.insert(table)
            .values(space_key=space_key, seq=record.seq, hash=record.hash)
            .on_conflict_do_nothing(index_elements=[table.c.space_key])
            .returning(table.c.seq)
        )
    else:
        return (
            session.execute(
                _move_head_statement(),
                {
                    "head_space": space_key,
                    "seen_seq": seen.seq,
                    "seen_hash": seen.hash,
                    "new_seq": record.seq,
                    "new_hash": record.hash,
                },
            ).first()
            is not None
        )
    return session.execute(statement).first() is not None


@functools.cache
def _move_head_statement() -> Any:
    """``UPDATE trace_head .. WHERE seq = :seen_seq AND hash = :seen_hash RETURNING seq``,
    built once (issue #8: a statement built per request costs its building and cache key)."""
    table = TraceHead.metadata.tables[TraceHead.__tablename__]
    return (
        update(table)
        .where(
            table.c.space_key == bindparam("head_space"),
            table.c.seq == bindparam("seen_seq"),
            table.c.hash == bindparam("seen_hash"),
        )
        .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
        .returning(table.c.seq)
    )


def _add(
    session: Session, record: TraceRecord, now: datetime, signer: TraceSigner | None
) -> TraceRecord:
    session.add(record)
    if signer is not None and record.seq % CHECKPOINT_EVERY == 0:
        session.add(_checkpoint(record.space_key, record.seq, record.hash, now, signer))
    return record


def _new_record(
    entry: TraceEntry, space_key: str, seq: int, prev_hash: str, now: datetime
) -> TraceRecord:
    actor = entry.actor
    record = TraceRecord(
        space_key=space_key,
        seq=seq,
        recorded_at=now,
        event_type=entry.event_type,
        action=entry.action,
        actor_kind=str(actor.kind),
        actor_id=actor.id,
        actor_name=actor.name,
        actor_profession=actor.profession or "",
        actor_specialty=actor.specialty or "",
        actor_structure=actor.structure_id or "",
        authentication_mode=str(actor.authentication_mode or ""),
        on_behalf_of=actor.on_behalf_of or "",
        access_mode=str(actor.access_mode),
        declared_reason=(actor.declared_reason or "")[:400],
        target_type=entry.target.type,
        target_id=entry.target.id[:200],
        document_type=entry.target.document_type,
        decision=str(entry.decision.effect),
        rule_id=entry.decision.rule_id,
        reason=entry.decision.reason[:400],
        outcome=entry.outcome,
        error_code=entry.error_code[:128],
        request_id=entry.source.request_id,
        source_face=entry.source.face,
        source_address=entry.source.address,
        software=entry.source.software[:200],
        detail=dict(entry.detail),
        prev_hash=prev_hash,
    )
    record.hash = record_hash(record)
    return record


def _checkpoint(
    space_key: str, seq: int, head_hash: str, now: datetime, signer: TraceSigner
) -> TraceCheckpoint:
    return TraceCheckpoint(
        space_key=space_key,
        seq=seq,
        hash=head_hash,
        signed_at=now,
        key_id=signer.key_id,
        signature=signer.sign(space_key, seq, head_hash),
    )


def checkpoint_all(session: Session, *, now: datetime, signer: TraceSigner) -> int:
    """Sign every chain head now (``mes trace checkpoint``, run by the scheduler)."""
    count = 0
    for head in session.execute(select(TraceHead)).scalars():
        session.add(_checkpoint(head.space_key, head.seq, head.hash, now, signer))
        count += 1
    return count


@dataclass(frozen=True, slots=True)
class Break:
    space_key: str
    record_id: int | None
    seq: int | None
    problem: str

    def __str__(self) -> str:
        where = f"record id={self.record_id} seq={self.seq}" if self.record_id else "chain"
        return f"space {self.space_key}: {where}: {self.problem}"


def verify_chains(
    session: Session, signer: TraceSigner | None = None, space_keys: Iterable[str] | None = None
) -> list[Break]:
    """Recompute every chain; return the first break of each broken chain (empty: intact)."""
    keys = (
        list(space_keys)
        if space_keys is not None
        else sorted(
            set(session.execute(select(TraceRecord.space_key).distinct()).scalars())
            | set(session.execute(select(TraceHead.space_key)).scalars())
        )
    )
    breaks: list[Break] = []
    for key in keys:
        problem = _verify_chain(session, key, signer)
        if problem is not None:
            breaks.append(problem)
    return breaks


def _verify_chain(session: Session, key: str, signer: TraceSigner | None) -> Break | None:
    expected_prev, expected_seq = GENESIS, 1
    hashes: dict[int, str] = {}
    rows: Iterator[TraceRecord] = (
        session.execute(
            select(TraceRecord).where(TraceRecord.space_key == key).order_by(TraceRecord.seq)
        )
        .scalars()
        .yield_per(1000)
    )
    for record in rows:
        if record.seq != expected_seq:
            return Break(key, record.id, record.seq, f"sequence gap: expected {expected_seq}")
        if record.prev_hash != expected_prev:
            return Break(key, record.id, record.seq, "previous-hash link broken")
        if record_hash(record) != record.hash:
            return Break(key, record.id, record.seq, "content does not match its hash")
        hashes[record.seq] = record.hash
        expected_prev, expected_seq = record.hash, expected_seq + 1
    head = session.get(TraceHead, key)
    last_seq = expected_seq - 1
    if head is not None and (head.seq != last_seq or head.hash != expected_prev):
        return Break(key, None, head.seq, f"chain ends at seq {last_seq}, head says {head.seq}")
    for cp in session.execute(
        select(TraceCheckpoint).where(TraceCheckpoint.space_key == key)
    ).scalars():
        if signer is not None and not signer.verify(cp.space_key, cp.seq, cp.hash, cp.signature):
            return Break(key, None, cp.seq, "checkpoint signature invalid")
        if hashes.get(cp.seq) != cp.hash:
            return Break(key, None, cp.seq, "signed checkpoint does not match the chain")
    return None


def trace_of_space(
    session: Session, space_id: str, *, offset: int = 0, limit: int = 100
) -> list[TraceRecord]:
    """The trace of one space as its patient (or a representative) reads it, newest first.

    Representatives see every record of the space, including the other representative's
    actions (the record names who acted: ``actor_id``, ``on_behalf_of``).
    """
    return list(
        session.execute(
            select(TraceRecord)
            .where(TraceRecord.space_key == space_id)
            .order_by(TraceRecord.seq.desc())
            .offset(offset)
            .limit(limit)
        ).scalars()
    )


def visible_records_clause(space_id: str, visibility: DocumentVisibility) -> ColumnElement[bool]:
    """The records of ``space_id`` a reader may see, as SQL (pushed in before paging).

    Records whose target is a document the reader cannot see (a minor's secret for the legal
    representatives, ``INVISIBLE_PATIENT`` before it is made visible) are left out: the trace
    must not reveal what the visibility predicate hides. Every face projecting the trace (patient
    API, FHIR AuditEvent, CLI) uses this one clause.
    """
    from espace.models import DocumentEntryRow
    from espace.store import visibility_clause

    hidden = not_(visibility_clause(visibility))
    hidden_uuids = select(DocumentEntryRow.entry_uuid).where(
        DocumentEntryRow.space_id == space_id, hidden
    )
    hidden_unique_ids = select(DocumentEntryRow.unique_id).where(
        DocumentEntryRow.space_id == space_id, hidden
    )
    return and_(
        TraceRecord.space_key == space_id,
        or_(
            TraceRecord.target_id == "",
            and_(
                not_(TraceRecord.target_id.in_(hidden_uuids)),
                not_(TraceRecord.target_id.in_(hidden_unique_ids)),
            ),
        ),
    )
