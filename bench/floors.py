"""The floors: what the hardware and the libraries allow for the same work, without our code.

- ITI-41: hardened XML parse of the same SOAP envelope + VIHF signature verification
  (``xds.vihf.verify_vihf``) + raw INSERTs of the same rows (submission set, entry, association,
  content, trace record, notification) in one committed transaction;
- ITI-18 / FHIR search: the raw SQL the store runs (same predicate, compiled once), fetched;
- ITI-43: a raw read of the stored bytes.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from bench.db import BenchDb


def _defaults(table: str) -> dict[str, Any]:
    """A value for every non-autoincrement column of ``table`` (by type)."""
    from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Integer, LargeBinary

    from espace.db import Base

    values: dict[str, Any] = {}
    for column in Base.metadata.tables[table].columns:
        if column.primary_key and isinstance(column.type, Integer | BigInteger):
            continue
        if isinstance(column.type, Boolean):
            values[column.name] = False
        elif isinstance(column.type, Integer | BigInteger):
            values[column.name] = 0
        elif isinstance(column.type, DateTime):
            values[column.name] = None if column.nullable else datetime.now().astimezone()
        elif isinstance(column.type, JSON):
            values[column.name] = "{}"
        elif isinstance(column.type, LargeBinary):
            values[column.name] = b""
        else:
            values[column.name] = None if column.nullable else ""
    return values


class RawSubmission:
    """Raw INSERTs of the rows one ITI-41 of one document writes, committed together."""

    def __init__(self, db: BenchDb, space_id: str) -> None:
        self.db, self.space_id = db, space_id
        self.seq = itertools.count(1)
        self.templates = {
            t: _defaults(t)
            for t in (
                "submission_set",
                "document_entry",
                "association",
                "document_content",
                "trace_record",
                "notification_outbox",
            )
        }
        mark = db.placeholder()
        self.sql = {
            t: f'INSERT INTO "{t}" ({", ".join(v)}) VALUES ({", ".join(mark for _ in v)})'
            for t, v in self.templates.items()
        }
        self.space_key = f"floor-{uuid.uuid4().hex[:8]}"

    def insert(self, conn: Any, content: bytes, metadata: dict[str, Any]) -> None:
        now = datetime.now().astimezone()
        doc_uuid, ss_uuid = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
        uid = f"1.2.250.1.999.9.{uuid.uuid4().int % 10**15}"
        meta = json.dumps(metadata)
        rows: dict[str, dict[str, Any]] = {
            "submission_set": {"entry_uuid": ss_uuid, "unique_id": uid + ".1",
                               "submission_time": now, "metadata_json": meta},
            "document_entry": {"entry_uuid": doc_uuid, "logical_id": doc_uuid, "version": 1,
                               "unique_id": uid, "submission_time": now, "updated_at": now,
                               "status": "Approved", "type_code": "11502-2",
                               "metadata_json": meta, "size": len(content),
                               "submission_set_uuid": ss_uuid},
            "association": {"entry_uuid": f"urn:uuid:{uuid.uuid4()}", "source_uuid": ss_uuid,
                            "target_uuid": doc_uuid, "association_type": "HasMember",
                            "status": "Approved", "metadata_json": "{}"},
            "document_content": {"repository_unique_id": "floor", "unique_id": uid,
                                 "mime_type": "text/xml", "hash": "0" * 40,
                                 "size": len(content), "encrypted": content, "stored_at": now},
            "trace_record": {"space_key": self.space_key, "seq": next(self.seq),
                             "recorded_at": now, "event_type": "ITI-41", "action": "TD2.1",
                             "actor_kind": "professional", "actor_id": "899900063480",
                             "decision": "permit", "rule_id": "care_team",
                             "outcome": "success", "prev_hash": "0" * 64, "hash": "1" * 64,
                             "detail": "{}"},
            "notification_outbox": {"dedup_key": f"floor:{uid}", "category": "new_document",
                                    "immediate": False, "recipients": "x@example.org",
                                    "subject": "Nouveau document", "body": "...",
                                    "created_at": now, "next_attempt_at": now},
        }
        if self.db.kind == "sqlite":
            conn.execute("BEGIN IMMEDIATE")
        else:
            conn.execute("BEGIN")
        for table, values in rows.items():
            row = dict(self.templates[table])
            row.update(values)
            if "space_id" in row:
                row["space_id"] = self.space_id
            if self.db.kind == "sqlite":
                row = {k: (v.isoformat(sep=" ") if isinstance(v, datetime) else v)
                       for k, v in row.items()}
            conn.execute(self.sql[table], tuple(row.values()))
        conn.execute("COMMIT")


def iti41_floor(
    db: BenchDb,
    envelopes: list[bytes],
    contents: bytes,
    *,
    trusted: list[bytes],
    space_id: str,
    now: datetime,
) -> list[float]:
    """Seconds per submission: parse + verify VIHF + raw INSERTs + commit (one per envelope)."""
    from xds.vihf import verify_vihf
    from xds.xml import parse_xml

    raw = RawSubmission(db, space_id)
    metadata = {"floor": True, "padding": "x" * 1500}  # the size of a real entry's metadata
    latencies: list[float] = []
    with db.raw() as conn:
        if db.kind == "postgresql":
            conn.autocommit = True
        for env in envelopes:
            start = time.perf_counter()
            root = parse_xml(env)
            verify_vihf(root, trusted_ca_pems=trusted, now=now)
            raw.insert(conn, contents, metadata)
            latencies.append(time.perf_counter() - start)
    return latencies


def compiled_query(db: BenchDb, statement: Any) -> str:
    """SQL text of a SQLAlchemy statement with its parameters inlined, for the raw driver."""
    if db.kind == "postgresql":
        from sqlalchemy.dialects import postgresql

        dialect: Any = postgresql.dialect()  # type: ignore[no-untyped-call]
    else:
        from sqlalchemy.dialects import sqlite

        dialect = sqlite.dialect()
    text = str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    return text.replace("%", "%%") if db.kind == "postgresql" else text


def timed_query(db: BenchDb, sql: str, count: int) -> tuple[list[float], int]:
    """Run ``sql`` ``count`` times, fetching every row; (latencies, rows of the last run)."""
    latencies: list[float] = []
    rows = 0
    with db.raw() as conn:
        for _ in range(count):
            start = time.perf_counter()
            result = conn.execute(sql).fetchall()
            latencies.append(time.perf_counter() - start)
            rows = len(result)
    return latencies, rows


def raw_read(db: BenchDb, repository: str, unique_id: str, count: int) -> tuple[list[float], int]:
    """Read the stored (encrypted) bytes of one document ``count`` times."""
    mark = db.placeholder()
    sql = (f"SELECT encrypted FROM document_content WHERE repository_unique_id = {mark} "
           f"AND unique_id = {mark}")
    latencies: list[float] = []
    size = 0
    with db.raw() as conn:
        for _ in range(count):
            start = time.perf_counter()
            row = conn.execute(sql, (repository, unique_id)).fetchone()
            data = bytes(row[0])
            latencies.append(time.perf_counter() - start)
            size = len(data)
    return latencies, size


def timed(call: Callable[[], Any], count: int) -> list[float]:
    latencies = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - start)
    return latencies
