"""The floors write and read what the faces write and read, without our code in the way."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench import datagen, floors, loader
from bench.db import BenchDb

NOW = datetime(2026, 1, 1, tzinfo=UTC)
TABLES = ("submission_set", "document_entry", "association", "document_content",
          "trace_record", "notification_outbox")


@pytest.fixture
def db(tmp_path: Path) -> BenchDb:
    bench = BenchDb("", sqlite_path=tmp_path / "floor.db")
    bench.reset()
    loader.load_registry(bench, datagen.Plan(entries=300, targets=1), NOW)
    return bench


def test_raw_submission_inserts_the_rows_of_one_iti41(db: BenchDb) -> None:
    raw = floors.RawSubmission(db, datagen.space_id_for(0))
    with db.raw() as conn:
        before = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
        raw.insert(conn, b"x" * 50_000, {"k": "v"})
        raw.insert(conn, b"y" * 10, {"k": "w"})
        after = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
        sizes = [r[0] for r in conn.execute(
            "SELECT size FROM document_content ORDER BY id").fetchall()]
    assert {t: after[t] - before[t] for t in TABLES} == dict.fromkeys(TABLES, 2)
    assert sizes == [50_000, 10]


def test_raw_read_returns_the_stored_bytes(db: BenchDb) -> None:
    raw = floors.RawSubmission(db, datagen.space_id_for(0))
    with db.raw() as conn:
        raw.insert(conn, b"z" * 4096, {})
        uid = conn.execute("SELECT unique_id FROM document_content").fetchone()[0]
    latencies, size = floors.raw_read(db, "floor", uid, 3)
    assert size == 4096 and len(latencies) == 3


def test_the_bench_never_uses_a_test_schema(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        BenchDb.choose("", tmp_path, schema="mes_test_gw0")
    with pytest.raises(ValueError):
        BenchDb.choose("", tmp_path, schema="bench; DROP SCHEMA public")
