"""The generator's shapes and the loader (issue 8: realistic data, bulk load)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bench import datagen, loader
from bench.db import BenchDb
from espace.fhir_store import index_values
from espace.models import DocumentEntryRow, PatientSpace
from espace.registry.model import document_from_json
from espace.spaces import nir_key_is_valid
from espace.store import document_facts, visibility_clause
from habilitation.model import (
    INVISIBLE_TO_PATIENT,
    MASKED_TO_PROFESSIONALS,
    DocumentStatus,
    DocumentVisibility,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_mix_shares_sum_to_one_and_biology_is_forty_percent() -> None:
    assert sum(d.share for d in datagen.MIX) == pytest.approx(1.0)
    biology = next(d for d in datagen.MIX if d.type_code == "11502-2")
    assert biology.share == pytest.approx(0.40)


def test_generated_entries_follow_the_mix() -> None:
    pool = datagen.EntryPool(seed=11, size=4096)
    rng = random.Random(1)
    rows = [pool.row(rng, space_index=3, serial=i) for i in range(6000)]
    types = Counter(r["type_code"] for r in rows)
    assert types["11502-2"] / len(rows) == pytest.approx(0.40, abs=0.03)
    masked = sum(MASKED_TO_PROFESSIONALS in r["confidentiality_codes"] for r in rows)
    assert masked / len(rows) == pytest.approx(datagen.MASKED_SHARE, abs=0.012)
    invisible = sum(INVISIBLE_TO_PATIENT in r["confidentiality_codes"] for r in rows)
    assert invisible / len(rows) == pytest.approx(datagen.INVISIBLE_PATIENT_SHARE, abs=0.008)
    approved = sum(r["status"] == "Approved" for r in rows)
    assert approved / len(rows) == pytest.approx(0.95, abs=0.02)
    professions = {r["author_ids"][5:7] for r in rows}
    assert len(professions) >= 4  # several professions author documents
    assert len({r["unique_id"] for r in rows}) == len(rows)
    assert len({r["entry_uuid"] for r in rows}) == len(rows)


def test_metadata_json_is_what_the_registry_reads_back() -> None:
    pool = datagen.EntryPool(seed=3, size=16)
    row = pool.row(random.Random(2), space_index=42, serial=9)
    import json

    entry = document_from_json(json.loads(row["metadata_json"]))
    assert entry.unique_id == row["unique_id"]
    assert entry.id == row["entry_uuid"]
    assert entry.patient_id.startswith(datagen.ins_for(42))
    assert entry.type_code is not None and entry.type_code.code == row["type_code"]
    assert entry.hash == row["hash"]


def test_ins_are_valid_matricules() -> None:
    for index in (0, 1, 17, 999_999, 1_234_567):
        assert nir_key_is_valid(datagen.ins_for(index)), index
    assert len({datagen.ins_for(i) for i in range(5000)}) == 5000


def test_targets_hold_exactly_two_hundred_entries_and_the_rest_is_heavy_tailed() -> None:
    sizes = list(datagen.space_sizes(datagen.Plan(entries=50_000, targets=3)))
    assert sizes[:3] == [200, 200, 200]
    assert sum(sizes) == 50_000
    rest = sizes[3:-1]
    assert max(rest) > 5 * (sum(rest) / len(rest))  # a long tail of chronic patients
    assert sorted(rest)[len(rest) // 2] < sum(rest) / len(rest)  # median below mean


def test_observation_index_matches_the_fhir_store_extraction() -> None:
    rng = random.Random(5)
    for serial in range(50):
        obs = datagen.observation(rng, space_index=serial, serial=serial)
        assert datagen.observation_index(obs) == index_values(obs)


@pytest.fixture
def sqlite_db(tmp_path: Path) -> BenchDb:
    db = BenchDb("", sqlite_path=tmp_path / "bench.db")
    db.reset()
    return db


def test_loader_fills_the_application_tables(sqlite_db: BenchDb) -> None:
    stats = loader.load_registry(sqlite_db, datagen.Plan(entries=1500, targets=2), NOW)
    assert stats.entries == 1500
    obs = loader.load_observations(sqlite_db, 300, stats.space_indexes, NOW, probe_spaces=2,
                                   probe_count=50)
    assert obs.index_rows == 5 * 300
    with sqlite_db.raw() as conn:
        assert conn.execute("SELECT count(*) FROM document_entry").fetchone()[0] == 1500
        assert conn.execute("SELECT count(*) FROM patient_space").fetchone()[0] == stats.spaces
        assert conn.execute(
            "SELECT count(*) FROM document_entry WHERE space_id = ?",
            (datagen.space_id_for(0),),
        ).fetchone()[0] == 200
        assert conn.execute(
            "SELECT count(*) FROM fhir_resource WHERE space_id = ?", (datagen.space_id_for(1),)
        ).fetchone()[0] == 50


def test_loaded_rows_agree_with_the_visibility_predicate(sqlite_db: BenchDb) -> None:
    """The SQL predicate and DocumentVisibility.matches select the same loaded entries."""
    loader.load_registry(sqlite_db, datagen.Plan(entries=600, targets=1), NOW)
    vis = DocumentVisibility(
        statuses=frozenset({DocumentStatus.APPROVED}),
        hidden_confidentiality_codes=frozenset({MASKED_TO_PROFESSIONALS}),
    )
    engine = sqlite_db.engine()
    with Session(engine) as session:
        space = session.get(PatientSpace, datagen.space_id_for(0))
        assert space is not None and space.status == "active"
        rows = session.execute(
            select(DocumentEntryRow).where(DocumentEntryRow.space_id == space.id)
        ).scalars().all()
        in_sql = set(session.execute(
            select(DocumentEntryRow.entry_uuid).where(
                DocumentEntryRow.space_id == space.id, visibility_clause(vis)
            )
        ).scalars())
    engine.dispose()
    in_python = {r.entry_uuid for r in rows if vis.matches(document_facts(r))}
    assert in_sql == in_python
    assert 0 < len(in_sql) < len(rows)  # something is hidden: masked or not Approved
