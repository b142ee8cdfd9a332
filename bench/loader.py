"""Bulk loading of generated rows into the application's tables (``espace.models`` and
``espace.fhir_store``).

PostgreSQL: server-side generation (:mod:`bench.pgload`: templates COPYed once, rows made by
``INSERT ... SELECT`` over ``generate_series``, indexes rebuilt after the load, ``VACUUM
ANALYZE``). SQLite: rows generated in Python, ``executemany`` in large transactions.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bench import datagen
from bench.db import BenchDb

BATCH = 5_000
# Bytes on disk per loaded item, tables and indexes (measured at 1 M on PostgreSQL 15); used to
# refuse a step that would leave less than MIN_FREE_BYTES on the database's disk.
BYTES_PER_ENTRY = 4_300  # document_entry + submission_set + association
BYTES_PER_OBSERVATION = 3_000  # fhir_resource + fhir_resource_version + 5 fhir_search_index
MIN_FREE_BYTES = 20 * 10**9


def disk_room(db: BenchDb, need: int) -> str | None:
    """None when ``need`` more bytes leave MIN_FREE_BYTES free where the database lives (a local
    PostgreSQL data directory or the SQLite file), else the reason (for "not run: ...")."""
    import shutil
    from pathlib import Path

    where: Path | None = db.sqlite_path.parent if db.sqlite_path is not None else None
    if where is None:
        try:
            with db.raw() as conn:
                where = Path(str(conn.execute("SHOW data_directory").fetchone()[0]))
        except Exception:  # not allowed to read it (not a superuser): cannot tell
            return None
    if not where.exists():
        return None  # a remote server
    free = shutil.disk_usage(where).free
    if free - need < MIN_FREE_BYTES:
        return (f"disk: {free / 1e9:.0f} GB free, the step needs ~{need / 1e9:.0f} GB and "
                f"{MIN_FREE_BYTES / 1e9:.0f} GB must stay free")
    return None


def columns(table_name: str) -> list[str]:
    from espace.db import Base
    from mes.wiring import import_all_models

    import_all_models()
    return [c.name for c in Base.metadata.tables[table_name].columns]


class TableWriter:
    """Append rows (dicts) to one table: COPY on PostgreSQL, executemany on SQLite."""

    def __init__(self, conn: Any, db: BenchDb, table: str, skip: Iterable[str] = ()) -> None:
        self.conn, self.db, self.table = conn, db, table
        self.cols = [c for c in columns(table) if c not in set(skip)]
        self.count = 0
        self._buffer: list[tuple[Any, ...]] = []
        self._copy: Any = None
        self._copy_cm: Any = None

    def __enter__(self) -> TableWriter:
        if self.db.kind == "postgresql":
            names = ", ".join(f'"{c}"' for c in self.cols)
            self._cur = self.conn.cursor()
            self._copy_cm = self._cur.copy(f'COPY "{self.table}" ({names}) FROM STDIN')
            self._copy = self._copy_cm.__enter__()
        return self

    def write(self, row: dict[str, Any]) -> None:
        values = tuple(row.get(c) for c in self.cols)
        self.count += 1
        if self._copy is not None:
            self._copy.write_row(values)
            return
        self._buffer.append(values)
        if len(self._buffer) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        names = ", ".join(f'"{c}"' for c in self.cols)
        marks = ", ".join("?" for _ in self.cols)
        self.conn.execute("BEGIN")
        self.conn.executemany(f'INSERT INTO "{self.table}" ({names}) VALUES ({marks})', [
            tuple(_sqlite_value(v) for v in row) for row in self._buffer
        ])
        self.conn.execute("COMMIT")
        self._buffer.clear()

    def __exit__(self, *exc: Any) -> None:
        if self._copy_cm is not None:
            self._copy_cm.__exit__(*exc)
            self._cur.close()
        elif exc[0] is None:
            self.flush()


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


@dataclass
class LoadStats:
    spaces: int = 0
    entries: int = 0
    observations: int = 0
    index_rows: int = 0
    seconds: float = 0.0
    rows_per_second: float = 0.0
    space_indexes: Sequence[int] = field(default_factory=list)  # generated space indexes
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase (PostgreSQL)
    method: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "spaces": self.spaces,
            "entries": self.entries,
            "observations": self.observations,
            "index_rows": self.index_rows,
            "seconds": round(self.seconds, 2),
            "rows_per_second": round(self.rows_per_second),
            "method": self.method,
            **self.timings,
        }


def load_registry(
    db: BenchDb,
    plan: datagen.Plan,
    now: datetime,
    *,
    first_space: int = 0,
    progress: bool = False,
) -> LoadStats:
    """Generate and load ``plan.entries`` document entries (and their spaces).

    On PostgreSQL an entry is its ``document_entry``, ``submission_set`` and ``association``
    rows (what ITI-41 writes); on SQLite only the ``document_entry`` row (small steps).
    """
    if db.kind == "postgresql":
        from bench import pgload

        bar = _bar(plan.entries, "registry entries", progress)
        done = pgload.load_registry(db, plan, now, first_space=first_space,
                                    progress=_updater(bar))
        if bar is not None:
            bar.close()
        return LoadStats(
            spaces=done.spaces, entries=done.entries, seconds=done.seconds,
            rows_per_second=done.entries / done.seconds, space_indexes=done.space_indexes,
            timings=done.timings or {}, method="server-side INSERT ... SELECT",
        )
    stats = LoadStats(method="executemany")
    indexes: list[int] = []
    stats.space_indexes = indexes
    start = time.perf_counter()
    rows: Iterator[tuple[dict[str, Any], list[dict[str, Any]]]] = datagen.fast_registry(
        plan, first_space=first_space
    )
    bar = _bar(plan.entries, "registry entries", progress)
    with indexes_deferred(db, ["patient_space", "document_entry"]), db.raw() as conn:
        pending_spaces: list[dict[str, Any]] = []
        pending_entries: list[dict[str, Any]] = []

        def flush() -> None:
            with TableWriter(conn, db, "patient_space") as spaces:
                for space in pending_spaces:
                    spaces.write(space)
            with TableWriter(conn, db, "document_entry") as entries:
                for entry in pending_entries:
                    entries.write(entry)
            pending_spaces.clear()
            pending_entries.clear()

        for offset, (space, entries) in enumerate(rows):
            indexes.append(first_space + offset)
            pending_spaces.append(space)
            pending_entries.extend(entries)
            stats.spaces += 1
            stats.entries += len(entries)
            if bar is not None:
                bar.update(len(entries))
            if len(pending_entries) >= 50_000:
                flush()
        flush()
    if bar is not None:
        bar.close()
    db.analyze()
    stats.seconds = time.perf_counter() - start
    stats.rows_per_second = (stats.entries + stats.spaces) / stats.seconds
    return stats


def load_observations(
    db: BenchDb,
    count: int,
    space_indexes: Sequence[int],
    now: datetime,
    *,
    first_serial: int = 0,
    probe_spaces: int = 8,
    probe_count: int = 1000,
    seed: int = 2025,
    progress: bool = False,
) -> LoadStats:
    """Load ``count`` measurement Observations into the FHIR store (resource + search index).

    The first ``probe_spaces`` spaces hold ``probe_count`` observations each (a connected scale
    used daily for three years); the rest are spread over the other spaces at random.
    Index rows are those ``espace.fhir_store.index_values`` extracts (code, category, date,
    status, subject.identifier). ``first_serial`` continues an earlier load (growth steps).
    On PostgreSQL the version row (``_history``) is written too, as the server does.
    """
    if db.kind == "postgresql":
        from bench import pgload

        spaces = range(min(space_indexes), max(space_indexes) + 1)
        if len(spaces) != len(space_indexes):
            raise ValueError("space indexes must be contiguous")
        bar = _bar(count, "observations", progress)
        done = pgload.load_observations(
            db, count, spaces, now, first_serial=first_serial, probe_spaces=probe_spaces,
            probe_count=probe_count, seed=seed, progress=_updater(bar),
        )
        if bar is not None:
            bar.close()
        return LoadStats(
            observations=done.observations, index_rows=done.index_rows, seconds=done.seconds,
            rows_per_second=(done.observations + done.index_rows) / done.seconds,
            space_indexes=spaces, timings=done.timings or {},
            method="server-side INSERT ... SELECT",
        )
    rng = random.Random(seed)
    stats = LoadStats(method="executemany")
    start = time.perf_counter()
    bar = _bar(count, "observations", progress)
    others = space_indexes[probe_spaces:] or space_indexes
    stamp = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    # two COPY streams at once need two connections (one COPY per connection at a time)
    deferred = indexes_deferred(db, ["fhir_resource", "fhir_search_index"])
    with deferred, db.raw() as conn, db.raw() as conn2:
        with TableWriter(conn, db, "fhir_resource") as res, TableWriter(
            conn2 if db.kind == "postgresql" else conn, db, "fhir_search_index", skip=("pk",)
        ) as idx:
            for serial in range(first_serial, first_serial + count):
                if serial < probe_spaces * probe_count and serial // probe_count < len(
                    space_indexes
                ):
                    space_index = space_indexes[serial // probe_count]
                else:
                    space_index = others[rng.randrange(len(others))]
                obs = datagen.observation(rng, space_index=space_index, serial=serial)
                obs["meta"] = {"versionId": "1", "lastUpdated": stamp}
                sid = datagen.space_id_for(space_index)
                index_rows = datagen.observation_index(obs)
                effective = index_rows[2][3]
                res.write({
                    "resource_type": "Observation",
                    "id": obs["id"],
                    "space_id": sid,
                    "brick": "measurements",
                    "version_id": 1,
                    "last_updated": now,
                    "deleted": False,
                    "source": "",
                    "source_app": "bench-app",
                    "author": datagen.ins_for(space_index),
                    "author_kind": "patient",
                    "sort_date": effective,
                    "json": json.dumps(obs, separators=(",", ":")),
                })
                for param, system, code, lo, hi in index_rows:
                    idx.write({
                        "space_id": sid,
                        "resource_type": "Observation",
                        "resource_id": obs["id"],
                        "param": param,
                        "system": system,
                        "code": code,
                        "date_lo": lo,
                        "date_hi": hi,
                    })
                    stats.index_rows += 1
                stats.observations += 1
                if bar is not None and serial % 1000 == 999:
                    bar.update(1000)
    if bar is not None:
        bar.close()
    db.analyze()
    stats.seconds = time.perf_counter() - start
    stats.rows_per_second = (stats.observations + stats.index_rows) / stats.seconds
    return stats


@contextmanager
def indexes_deferred(db: BenchDb, tables: Iterable[str]) -> Iterator[None]:
    """Drop the secondary (non-constraint) indexes of ``tables`` during a bulk load and build
    them again afterwards (PostgreSQL manual, 14.4.3 "Remove Indexes"). No-op on SQLite."""
    if db.kind != "postgresql":
        yield
        return
    with db.raw() as conn:
        rows = conn.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = %s "
            "AND i.tablename = ANY(%s) AND NOT EXISTS (SELECT 1 FROM pg_constraint c "
            "WHERE c.conname = i.indexname)",
            (db.schema, list(tables)),
        ).fetchall()
        for name, _ in rows:
            conn.execute(f'DROP INDEX "{db.schema}"."{name}"')
    try:
        yield
    finally:
        with db.raw() as conn:
            conn.execute("SET maintenance_work_mem = '256MB'")
            for _, definition in rows:
                conn.execute(definition)


def _updater(bar: Any) -> Any:
    """A progress callback (cumulative count) that moves a tqdm bar, or None."""
    if bar is None:
        return None
    last = [0]

    def update(done: int) -> None:
        bar.update(done - last[0])
        last[0] = done

    return update


def _bar(total: int, desc: str, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="row", mininterval=2.0)
