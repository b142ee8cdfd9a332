"""The server-side bulk loader (bench/pgload.py): rows in the shape the server writes, read back
by the server's own code; indexes and constraints rebuilt. PostgreSQL only
(``MES_TEST_DATABASE_URL``); the step and disk helpers run everywhere."""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from bench import datagen, loader, pgload
from bench.db import BenchDb, postgres_answers
from bench.run import observation_steps, registry_steps
from espace import fhir_store
from espace.models import DocumentEntryRow
from espace.registry.model import HAS_MEMBER
from espace.registry.store import entry_from_row, is_uuid, submission_set_from_row

NOW = datetime(2026, 1, 1, tzinfo=UTC)
PG_URL = os.environ.get("MES_TEST_DATABASE_URL", "")
needs_postgres = pytest.mark.skipif(
    not PG_URL or not postgres_answers(PG_URL), reason="PostgreSQL only (MES_TEST_DATABASE_URL)"
)


@pytest.fixture
def pg_db(tmp_path: Path) -> Iterator[BenchDb]:
    db = BenchDb.choose(PG_URL, tmp_path, schema=f"bench_pgload_{os.getpid()}")
    db.reset()
    try:
        yield db
    finally:
        db.drop()


def _indexes(db: BenchDb, table: str) -> set[str]:
    with db.raw() as conn:
        rows = conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = %s",
            (db.schema, table),
        ).fetchall()
    return {r[0] for r in rows}


@needs_postgres
def test_registry_entries_span_their_three_tables_and_read_back(pg_db: BenchDb) -> None:
    before = {t: _indexes(pg_db, t) for t in pgload.ENTRY_TABLES}
    stats = loader.load_registry(pg_db, datagen.Plan(entries=1200, targets=2), NOW)
    assert stats.entries == 1200 and stats.method.startswith("server-side")
    assert {t: _indexes(pg_db, t) for t in pgload.ENTRY_TABLES} == before  # rebuilt
    with pg_db.raw() as conn:
        counts = [conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
                  for t in pgload.ENTRY_TABLES]
        assert counts == [1200, 1200, 1200]
        linked = conn.execute(
            "SELECT count(*) FROM document_entry d JOIN submission_set s "
            "ON s.entry_uuid = d.submission_set_uuid JOIN association a "
            "ON a.source_uuid = s.entry_uuid AND a.target_uuid = d.entry_uuid "
            "AND a.association_type = %s AND a.space_id = d.space_id", (HAS_MEMBER,),
        ).fetchone()[0]
        assert linked == 1200
        fks = conn.execute(
            "SELECT count(*) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
            "WHERE n.nspname = %s AND c.contype = 'f' AND c.conrelid::regclass::text "
            "LIKE '%%document_entry'", (pg_db.schema,),
        ).fetchone()[0]
        assert fks == 1
    engine = pg_db.engine()
    with Session(engine) as session:
        rows = session.query(DocumentEntryRow).filter(
            DocumentEntryRow.space_id == datagen.space_id_for(1)).all()
        assert len(rows) == 200
        ins = datagen.ins_for(1)
        for row in rows:
            entry = entry_from_row(row)
            assert entry.id == row.entry_uuid and is_uuid(row.entry_uuid)
            assert entry.unique_id == row.unique_id and entry.patient_id.startswith(ins)
            assert re.fullmatch(r"[0-9a-f]{40}", row.hash) and entry.hash == row.hash
            assert "@@" not in json.dumps(row.metadata_json)
        from espace.models import SubmissionSetRow

        ss_row = session.get(SubmissionSetRow, rows[0].submission_set_uuid)
        assert ss_row is not None
        ss = submission_set_from_row(ss_row)
        assert ss.patient_id.startswith(ins) and ss.unique_id == ss_row.unique_id
    engine.dispose()
    kinds = {r.type_code for r in rows}
    assert len(kinds) >= 3  # the 2025 mix, not one template


@needs_postgres
def test_observations_are_found_by_the_fhir_search_and_grow(pg_db: BenchDb) -> None:
    stats = loader.load_registry(pg_db, datagen.Plan(entries=600, targets=2), NOW)
    loader.load_observations(pg_db, 300, stats.space_indexes, NOW, probe_spaces=2,
                             probe_count=50)
    loader.load_observations(pg_db, 200, stats.space_indexes, NOW, first_serial=300,
                             probe_spaces=2, probe_count=50)
    with pg_db.raw() as conn:
        assert conn.execute("SELECT count(*) FROM fhir_resource").fetchone()[0] == 500
        assert conn.execute("SELECT count(*) FROM fhir_resource_version").fetchone()[0] == 500
        assert conn.execute("SELECT count(*) FROM fhir_search_index").fetchone()[0] == 2500
        probe = conn.execute("SELECT count(*) FROM fhir_resource WHERE space_id = %s",
                             (datagen.space_id_for(0),)).fetchone()[0]
        assert probe == 50  # growth goes to the other spaces
    engine = pg_db.engine()
    with Session(engine) as session:
        query = fhir_store.SearchQuery(
            "Observation", datagen.space_id_for(1), frozenset({"measurements"}),
            [fhir_store.Criterion("date", ("ge2016-01-01",))], count=100)
        total, rows = fhir_store.search(session, query)
        assert total == 50 and len(rows) == 50
        for row in rows[:10]:
            resource = fhir_store.resource_of(row)
            assert resource["id"] == row.id
            assert resource["subject"]["identifier"]["value"] == datagen.ins_for(1)
            stored = session.query(
                fhir_store.FhirSearchIndex.param, fhir_store.FhirSearchIndex.system,
                fhir_store.FhirSearchIndex.code, fhir_store.FhirSearchIndex.date_lo,
                fhir_store.FhirSearchIndex.date_hi,
            ).filter(fhir_store.FhirSearchIndex.resource_id == row.id).all()
            assert sorted(map(tuple, stored), key=str) == sorted(
                fhir_store.index_values(resource), key=str)  # what the server would index
            assert row.sort_date == fhir_store.sort_date(resource)
    engine.dispose()


def test_steps_of_quick_and_full_runs() -> None:
    def ns(*argv: str) -> argparse.Namespace:
        from bench.run import parse_args

        return parse_args(list(argv))

    assert registry_steps(ns("--quick")) == [10_000, 100_000]
    assert registry_steps(ns("--full")) == [100_000, 1_000_000, 10_000_000]
    assert registry_steps(ns("--full", "--max-entries", "1000000")) == [100_000, 1_000_000]
    assert observation_steps(ns("--full")) == [100_000, 1_000_000, 10_000_000]
    assert observation_steps(ns("--quick", "--observations", "2000")) == [2000, 4000]
    assert observation_steps(ns("--full", "--max-observations", "1000000")) == [
        100_000, 1_000_000]


def test_disk_room_refuses_a_step_that_would_fill_the_disk(tmp_path: Path) -> None:
    db = BenchDb("", sqlite_path=tmp_path / "bench.db")
    assert loader.disk_room(db, 1) is None or "disk" in str(loader.disk_room(db, 1))
    reason = loader.disk_room(db, 10**18)
    assert reason is not None and reason.startswith("disk:")
