"""Server-side bulk generation on PostgreSQL: registry entries and Observations at 10 M scale.

Python generates the *shapes* once (a few thousand templates drawn from the 2025 mix of
:mod:`bench.datagen`, the heavy-tailed plan of documents per space) and COPYs them into two
small helper tables; PostgreSQL then multiplies them with ``INSERT ... SELECT`` over
``generate_series`` (no row crosses the client connection), each row getting its own ids:

- a registry entry is what ITI-41 writes for one document (``espace/registry/submit.py``):
  a ``document_entry`` row, its ``submission_set`` row and the ``HasMember`` ``association``
  between them, with the same column values and ``metadata_json`` (``to_json`` of the
  dataclasses) the server stores, so that the server reads them like its own;
- an Observation is what ``espace.fhir_store.create`` writes: the ``fhir_resource`` row, its
  ``fhir_resource_version`` row (``_history``) and its five ``fhir_search_index`` rows.

Every loaded table has its indexes and constraints dropped during the load and rebuilt after it
(PostgreSQL 15 manual, 14.4.3 "Remove Indexes", 14.4.4 "Remove Foreign Key Constraints"), then
``VACUUM (ANALYZE)`` (14.4.9 "Run ANALYZE Afterwards"; VACUUM also sets the visibility map
for index-only scans). Document bytes (``document_content``) are not generated: 10 M documents
of ~36 KB would be 360 GB; ITI-43 uses the documents the bench submits itself.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from bench import datagen
from bench.db import BenchDb

ENTRY_TABLES = ("document_entry", "submission_set", "association")
OBSERVATION_TABLES = ("fhir_resource", "fhir_resource_version", "fhir_search_index")
TEMPLATES = 4096
CHUNK_ENTRIES = 250_000
CHUNK_OBSERVATIONS = 200_000
HAS_MEMBER = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
SS_SOURCE_ID = "1.2.250.1.999.1.1.7898"
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"

# Markers in the template JSON, replaced per row by SQL (none can occur in generated data).
# ("%" would clash with the driver's parameter syntax.)
M_UUID, M_UID, M_INS, M_SPACE, M_HASH = "@@U@@", "@@I@@", "@@P@@", "@@S@@", "@@H@@"
M_SS_UUID, M_SS_UID, M_DATE = "@@Z@@", "@@J@@", "@@D@@"

SESSION_SETTINGS = (
    "SET synchronous_commit = off",
    "SET work_mem = '256MB'",
    "SET maintenance_work_mem = '1GB'",
    "SET max_parallel_maintenance_workers = 2",
)


@contextmanager
def _conn(db: BenchDb) -> Iterator[Any]:
    with db.raw() as conn:
        for statement in SESSION_SETTINGS:
            conn.execute(statement)
        yield conn


# ----------------------------------------------------------------------------- bulk mode
@dataclass(frozen=True, slots=True)
class _Ddl:
    table: str
    name: str
    definition: str
    kind: str  # p | u | f (constraints) | i (plain index)


def _ddl(conn: Any, schema: str, tables: Iterable[str]) -> list[_Ddl]:
    rows = conn.execute(
        "SELECT r.relname, c.conname, pg_get_constraintdef(c.oid), c.contype "
        "FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid "
        "JOIN pg_namespace n ON n.oid = r.relnamespace "
        "WHERE n.nspname = %s AND r.relname = ANY(%s) AND c.contype IN ('p', 'u', 'f') "
        "ORDER BY r.relname, c.conname",
        (schema, list(tables)),
    ).fetchall()
    found = [_Ddl(t, n, d, k) for t, n, d, k in rows]
    indexes = conn.execute(
        "SELECT i.tablename, i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = %s "
        "AND i.tablename = ANY(%s) AND NOT EXISTS (SELECT 1 FROM pg_constraint c "
        "JOIN pg_namespace n ON n.oid = c.connamespace "
        "WHERE n.nspname = %s AND c.conname = i.indexname) ORDER BY i.tablename, i.indexname",
        (schema, list(tables), schema),
    ).fetchall()
    found.extend(_Ddl(t, n, d, "i") for t, n, d in indexes)
    return found


@contextmanager
def bulk_mode(db: BenchDb, tables: Iterable[str], timings: dict[str, float]) -> Iterator[None]:
    """Drop the indexes and constraints of ``tables``, yield, rebuild them, VACUUM ANALYZE.

    The tables must not be referenced by foreign keys of other tables (true of the entry and
    FHIR tables: their only foreign key points to ``patient_space``).
    """
    tables = list(tables)
    with _conn(db) as conn:
        ddl = _ddl(conn, db.schema, tables)
        for item in [d for d in ddl if d.kind == "f"] + [d for d in ddl if d.kind in "pu"]:
            conn.execute(f'ALTER TABLE "{item.table}" DROP CONSTRAINT "{item.name}"')
        for item in (d for d in ddl if d.kind == "i"):
            conn.execute(f'DROP INDEX "{item.name}"')
        for table in tables:
            conn.execute(f'ALTER TABLE "{table}" SET (autovacuum_enabled = false)')
    try:
        yield
    finally:
        began = time.perf_counter()
        # one connection per table: index builds of different tables run side by side
        def rebuild(table: str) -> None:
            with _conn(db) as conn:
                for item in (d for d in ddl if d.table == table and d.kind in "pu"):
                    conn.execute(
                        f'ALTER TABLE "{table}" ADD CONSTRAINT "{item.name}" {item.definition}'
                    )
                for item in (d for d in ddl if d.table == table and d.kind == "i"):
                    conn.execute(item.definition)
                for item in (d for d in ddl if d.table == table and d.kind == "f"):
                    conn.execute(
                        f'ALTER TABLE "{table}" ADD CONSTRAINT "{item.name}" {item.definition}'
                    )
                conn.execute(f'ALTER TABLE "{table}" RESET (autovacuum_enabled)')

        _parallel([partial(rebuild, t) for t in tables], workers=2)
        timings["index_seconds"] = timings.get("index_seconds", 0.0) + time.perf_counter() - began
        began = time.perf_counter()
        _parallel([partial(_vacuum, db, t) for t in tables], workers=2)
        timings["vacuum_seconds"] = (
            timings.get("vacuum_seconds", 0.0) + time.perf_counter() - began
        )


def _vacuum(db: BenchDb, table: str) -> None:
    with _conn(db) as conn:
        conn.execute(f'VACUUM (ANALYZE) "{table}"')


def _parallel(jobs: list[Callable[[], None]], workers: int) -> None:
    """Run ``jobs`` on ``workers`` threads (one connection each); the first error is raised."""
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            job()
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(job) for job in jobs]:
            future.result()


def _bind(sql: str, lo: int, hi: int) -> str:
    """Inline the integer bounds (no driver parameters: ``%`` is SQL's modulo here)."""
    return sql.replace("%(lo)s", str(int(lo))).replace("%(hi)s", str(int(hi)))


# ----------------------------------------------------------------------------- helper tables
def _copy(conn: Any, table: str, columns: list[str], rows: Iterable[tuple[Any, ...]]) -> int:
    names = ", ".join(f'"{c}"' for c in columns)
    count = 0
    with conn.cursor() as cur, cur.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def ensure_space_table(db: BenchDb) -> None:
    """``_bench_space(idx, sid, ins)``: every generated space, joined by the generators."""
    with db.raw() as conn:
        conn.execute(
            "CREATE UNLOGGED TABLE IF NOT EXISTS _bench_space "
            "(idx bigint PRIMARY KEY, sid text NOT NULL, ins text NOT NULL, n integer NOT NULL)"
        )


def _markers(text: str, values: dict[str, str]) -> str:
    """Replace the template's own ids (longest first) by markers."""
    for value, marker in sorted(values.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(value, marker)
    return text


def entry_templates(seed: int, size: int = TEMPLATES) -> list[dict[str, Any]]:
    """``size`` document entries drawn from the 2025 mix, their submission set, with markers."""
    from espace.models import flat
    from espace.registry.model import Code, SubmissionSet, authors_from_json, to_json

    rng = random.Random(seed)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    own = {
        datagen.uuidish(0, 0): M_UUID,
        "1.2.250.1.999.2.0.0": M_UID,
        datagen.ins_for(0): M_INS,
        datagen.space_id_for(0): M_SPACE,
    }
    out = []
    for k in range(size):
        row = datagen.entry_row(rng, space_index=0, serial=0, now=now)
        meta = json.loads(row["metadata_json"])
        ss = SubmissionSet(
            id=f"urn:uuid:{M_SS_UUID}",
            unique_id=M_SS_UID,
            source_id=SS_SOURCE_ID,
            patient_id=meta["patient_id"],
            submission_time=row["submission_time"].strftime("%Y%m%d%H%M%S"),
            content_type_code=Code("04", "1.2.250.1.213.2.2", "Hospitalisation de jour"),
            authors=authors_from_json(meta["authors"]),
            title="Lot",
        )
        ss_json = json.dumps(to_json(ss), separators=(",", ":"), ensure_ascii=False)
        row["metadata_json"] = _markers(row["metadata_json"], {**own, row["hash"]: M_HASH})
        row["ss_metadata_json"] = _markers(ss_json, own)
        row["ss_author_ids"] = flat(a.person_id for a in ss.authors)
        row["k"] = k
        out.append(row)
    return out


def observation_templates(seed: int, now: datetime, size: int = TEMPLATES) -> list[
    dict[str, Any]
]:
    """``size`` measurement Observations (kinds and values of :func:`datagen.observation`)."""
    rng = random.Random(seed)
    stamp = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    out = []
    for k in range(size):
        obs = datagen.observation(rng, space_index=0, serial=0)
        obs["meta"] = {**obs["meta"], "versionId": "1", "lastUpdated": stamp}
        when = obs["effectiveDateTime"]
        obs["effectiveDateTime"] = M_DATE
        obs["id"] = M_UUID
        obs["subject"]["identifier"]["value"] = M_INS
        out.append({
            "k": k,
            "code": obs["code"]["coding"][0]["code"],
            "category": obs["category"][0]["coding"][0]["code"],
            "json": json.dumps(obs, separators=(",", ":")),
            "example_date": when,
        })
    return out


# ----------------------------------------------------------------------------- registry
def _entry_sql(templates: int) -> str:
    """One statement per chunk of spaces: the ids of each entry are computed once (a
    materialized CTE), then its three rows are written (writable CTEs). Ids are md5-derived
    UUIDs (``md5(...)::uuid``: PostgreSQL's own formatting, much faster than substrings);
    ``hash`` is 40 hex digits like the SHA-1 the server stores (PostgreSQL 15 has no sha1())."""
    meta = (
        f"replace(replace(replace(replace(replace(t.metadata_json::text, '{M_UUID}', src.doc), "
        f"'{M_UID}', src.uid), '{M_INS}', src.ins), '{M_SPACE}', src.sid), "
        f"'{M_HASH}', src.digest)::json"
    )
    ss_meta = (
        f"replace(replace(replace(t.ss_metadata_json, '{M_SS_UUID}', src.ss), "
        f"'{M_SS_UID}', src.ss_uid), '{M_INS}', src.ins)::json"
    )
    plain = (
        "version, repository_unique_id, status, type_code, type_code_system, class_code, "
        "format_code, practice_setting_code, healthcare_facility_type_code, "
        "confidentiality_codes, event_codes, author_ids, author_structure_ids, author_persons, "
        "creation_time, service_start_time, service_stop_time, submission_time, updated_at, "
        "mime_type, size, title, language_code, object_type, added_by_patient, origin"
    )
    plain_t = ", ".join(f"t.{c.strip()}" for c in plain.split(","))
    return f"""
WITH src AS MATERIALIZED (
  SELECT p.sid, p.ins, m.uid, m.h::uuid::text AS doc,
         md5('s' || m.key)::uuid::text AS ss, md5('a' || m.key)::uuid::text AS assoc,
         '1.2.250.1.999.1.' || p.idx || '.' || s.serial AS ss_uid,
         md5(m.uid) || left(m.h, 8) AS digest,
         abs(hashint8(p.idx * 1000003 + s.serial)::bigint) % {templates} AS k
  FROM _bench_space p
  CROSS JOIN LATERAL generate_series(0, p.n - 1) AS s(serial)
  CROSS JOIN LATERAL (SELECT p.idx::text || ':' || s.serial::text AS key) i
  CROSS JOIN LATERAL (SELECT i.key, md5(i.key) AS h,
                             '1.2.250.1.999.2.' || p.idx || '.' || s.serial AS uid) m
  WHERE p.idx >= %(lo)s AND p.idx < %(hi)s
), d AS (
  INSERT INTO document_entry (entry_uuid, space_id, logical_id, unique_id, hash,
      submission_set_uuid, metadata_json, {plain})
  SELECT 'urn:uuid:' || src.doc, src.sid, 'urn:uuid:' || src.doc, src.uid, src.digest,
      'urn:uuid:' || src.ss, {meta}, {plain_t}
  FROM src JOIN _bench_entry_tpl t ON t.k = src.k
), ss AS (
  INSERT INTO submission_set (entry_uuid, space_id, unique_id, source_id, submission_time,
      content_type_code, author_ids, status, metadata_json)
  SELECT 'urn:uuid:' || src.ss, src.sid, src.ss_uid, '{SS_SOURCE_ID}', t.submission_time, '04',
      t.ss_author_ids, 'Approved', {ss_meta}
  FROM src JOIN _bench_entry_tpl t ON t.k = src.k
)
INSERT INTO association (entry_uuid, space_id, association_type, source_uuid, target_uuid,
    status, metadata_json)
SELECT 'urn:uuid:' || src.assoc, src.sid, '{HAS_MEMBER}', 'urn:uuid:' || src.ss,
    'urn:uuid:' || src.doc, 'Approved',
    '{{"slots":{{"SubmissionSetStatus":["Original"]}}}}'::json
FROM src
"""


@dataclass
class PgLoad:
    """What one server-side load did (rows per table, seconds per phase)."""

    spaces: int = 0
    entries: int = 0
    observations: int = 0
    index_rows: int = 0
    seconds: float = 0.0
    timings: dict[str, float] | None = None
    space_indexes: range = range(0)


def _chunks(sizes: list[int], first_space: int, per_chunk: int) -> list[tuple[int, int]]:
    """[lo, hi) space ranges holding about ``per_chunk`` entries each."""
    out: list[tuple[int, int]] = []
    lo, acc = first_space, 0
    for offset, n in enumerate(sizes):
        acc += n
        if acc >= per_chunk:
            out.append((lo, first_space + offset + 1))
            lo, acc = first_space + offset + 1, 0
    if lo < first_space + len(sizes):
        out.append((lo, first_space + len(sizes)))
    return out


def load_registry(
    db: BenchDb,
    plan: datagen.Plan,
    now: datetime,
    *,
    first_space: int = 0,
    workers: int = 3,
    progress: Callable[[int], None] | None = None,
) -> PgLoad:
    """Generate ``plan.entries`` registry entries (and their spaces) inside PostgreSQL."""
    began = time.perf_counter()
    timings: dict[str, float] = {}
    sizes = list(datagen.space_sizes(plan))
    ensure_space_table(db)
    with _conn(db) as conn:
        from bench.loader import columns

        space_cols = columns("patient_space")
        _copy(conn, "patient_space", space_cols, (
            tuple(datagen.space_row(first_space + i, now)[c] for c in space_cols)
            for i in range(len(sizes))
        ))
        _copy(conn, "_bench_space", ["idx", "sid", "ins", "n"], (
            (first_space + i, datagen.space_id_for(first_space + i),
             datagen.ins_for(first_space + i), n)
            for i, n in enumerate(sizes)
        ))
        conn.execute("ANALYZE _bench_space")
        conn.execute("DROP TABLE IF EXISTS _bench_entry_tpl")
        conn.execute(
            "CREATE UNLOGGED TABLE _bench_entry_tpl AS SELECT * FROM document_entry WITH NO DATA"
        )
        conn.execute("ALTER TABLE _bench_entry_tpl ADD COLUMN k integer, "
                     "ADD COLUMN ss_metadata_json text, ADD COLUMN ss_author_ids text")
        templates = entry_templates(plan.seed)
        cols = [c for c in templates[0] if c in set(columns("document_entry")) | {
            "k", "ss_metadata_json", "ss_author_ids"}]
        _copy(conn, "_bench_entry_tpl", cols, (tuple(t[c] for c in cols) for t in templates))
        conn.execute("ANALYZE _bench_entry_tpl")
    timings["prepare_seconds"] = time.perf_counter() - began
    statement = _entry_sql(len(templates))
    ranges = _chunks(sizes, first_space, CHUNK_ENTRIES)
    base = first_space
    done = _Counter()

    def job(lo: int, hi: int) -> None:
        with _conn(db) as conn:
            cpu = backend_cpu(conn)
            conn.execute(_bind(statement, lo, hi))
            cpu = backend_cpu(conn) - cpu
        count = done.add(sum(sizes[lo - base:hi - base]), cpu)
        if progress is not None:
            progress(count)

    insert_began = time.perf_counter()
    with bulk_mode(db, ENTRY_TABLES, timings):
        _parallel([partial(job, lo, hi) for lo, hi in ranges], workers)
        timings["insert_seconds"] = time.perf_counter() - insert_began
        timings["insert_cpu_seconds"] = done.cpu
    with db.raw() as conn:
        conn.execute("DROP TABLE IF EXISTS _bench_entry_tpl")
        conn.execute("ANALYZE patient_space")
    return PgLoad(
        spaces=len(sizes), entries=sum(sizes), seconds=time.perf_counter() - began,
        timings={k: round(v, 1) for k, v in timings.items()},
        space_indexes=range(first_space, first_space + len(sizes)),
    )


class _Counter:
    def __init__(self) -> None:
        self.value = 0
        self.cpu = 0.0  # CPU seconds of the PostgreSQL backends that ran the jobs
        self._lock = threading.Lock()

    def add(self, n: int, cpu: float = 0.0) -> int:
        with self._lock:
            self.value += n
            self.cpu += cpu
            return self.value


def backend_cpu(conn: Any) -> float:
    """CPU seconds (user + system) used so far by the connection's backend process, when the
    server runs on this machine and /proc is readable (else 0): the load-independent cost of a
    bulk load on a shared machine."""
    try:
        stat = Path(f"/proc/{conn.info.backend_pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ----------------------------------------------------------------------------- observations
def _observation_sql(templates: int, probe_rows: int, probe_count: int, probe_lo: int,
                     others_lo: int, others_n: int, now: datetime) -> str:
    """One writable-CTE statement: resource, version and five index rows per Observation.

    Serials below ``probe_rows`` go to the probe spaces, ``probe_count`` each; the others to
    a space drawn uniformly from [``others_lo``, ``others_lo + others_n``).
    """
    obs_id = "m.h::uuid::text"
    stamp = now.isoformat()
    return f"""
WITH src AS MATERIALIZED (
  SELECT {obs_id} AS id, sp.sid, sp.ins, t.code, t.category, t.json AS tpl, d.at
  FROM generate_series(%(lo)s::bigint, %(hi)s::bigint - 1) AS s(serial)
  CROSS JOIN LATERAL (SELECT CASE WHEN s.serial < {probe_rows}
                                  THEN {probe_lo} + s.serial / {probe_count}
                                  ELSE {others_lo} + abs(hashint8(s.serial)::bigint) % {others_n}
                             END AS idx) w
  CROSS JOIN LATERAL (SELECT md5((w.idx + 10000000000)::text || ':' || s.serial::text) AS h) m
  JOIN _bench_space sp ON sp.idx = w.idx
  JOIN _bench_obs_tpl t ON t.k = abs(hashint8(s.serial + 7)::bigint) % {templates}
  CROSS JOIN LATERAL (SELECT timestamptz '2016-01-01 00:00:00+00'
      + (abs(hashint8(-s.serial)::bigint) % {datagen.SPAN_DAYS * 86400})
        * interval '1 second' AS at) d
), doc AS (
  SELECT src.*, replace(replace(replace(src.tpl, '{M_UUID}', src.id), '{M_INS}', src.ins),
         '{M_DATE}', to_char(src.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')) AS body
  FROM src
), res AS (
  INSERT INTO fhir_resource (resource_type, id, space_id, brick, version_id, last_updated,
      deleted, source, source_app, author, author_kind, sort_date, json)
  SELECT 'Observation', id, sid, 'measurements', 1, '{stamp}', false, '', 'bench-app', ins,
      'patient', at, body FROM doc
), ver AS (
  INSERT INTO fhir_resource_version (space_id, resource_type, resource_id, version_id, brick,
      last_updated, method, deleted, author, json)
  SELECT sid, 'Observation', id, 1, 'measurements', '{stamp}', 'POST', false, ins, body
  FROM doc
)
INSERT INTO fhir_search_index (space_id, resource_type, resource_id, param, system, code,
    date_lo, date_hi)
SELECT src.sid, 'Observation', src.id, v.param, v.system, v.code, v.lo, v.hi
FROM src CROSS JOIN LATERAL (VALUES
  ('code', 'http://loinc.org', src.code, NULL::timestamptz, NULL::timestamptz),
  ('category', '{CATEGORY_SYSTEM}', src.category, NULL, NULL),
  ('date', '', '', src.at, src.at + interval '999999 microseconds'),
  ('status', '', 'final', NULL, NULL),
  ('subject.identifier', 'urn:oid:{datagen.INS_OID_TEST}', src.ins, NULL, NULL)
) AS v(param, system, code, lo, hi)
"""


def load_observations(
    db: BenchDb,
    count: int,
    space_indexes: range,
    now: datetime,
    *,
    first_serial: int = 0,
    probe_spaces: int = 8,
    probe_count: int = 1000,
    seed: int = 2025,
    workers: int = 4,
    progress: Callable[[int], None] | None = None,
) -> PgLoad:
    """Generate Observations ``first_serial`` .. ``first_serial + count - 1`` in PostgreSQL.

    Serials below ``probe_spaces * probe_count`` belong to the probe spaces (the first ones of
    ``space_indexes``; a connected scale used daily for three years), the others are spread
    uniformly over the other spaces.
    """
    began = time.perf_counter()
    timings: dict[str, float] = {}
    probes = min(probe_spaces, len(space_indexes))
    others = space_indexes[probes:] or space_indexes
    with _conn(db) as conn:
        conn.execute("DROP TABLE IF EXISTS _bench_obs_tpl")
        conn.execute("CREATE UNLOGGED TABLE _bench_obs_tpl (k integer PRIMARY KEY, code text, "
                     "category text, json text)")
        templates = observation_templates(seed, now)
        _copy(conn, "_bench_obs_tpl", ["k", "code", "category", "json"],
              ((t["k"], t["code"], t["category"], t["json"]) for t in templates))
        conn.execute("ANALYZE _bench_obs_tpl")
    timings["prepare_seconds"] = time.perf_counter() - began
    sql = _observation_sql(len(templates), probes * probe_count, probe_count,
                           space_indexes.start, others.start, len(others), now)
    done = _Counter()

    def job(lo: int, hi: int) -> None:
        with _conn(db) as conn:
            cpu = backend_cpu(conn)
            conn.execute(_bind(sql, lo, hi))
            cpu = backend_cpu(conn) - cpu
        count = done.add(hi - lo, cpu)
        if progress is not None:
            progress(count)

    bounds = list(range(first_serial, first_serial + count, CHUNK_OBSERVATIONS))
    ranges = [(lo, min(lo + CHUNK_OBSERVATIONS, first_serial + count)) for lo in bounds]
    insert_began = time.perf_counter()
    with bulk_mode(db, OBSERVATION_TABLES, timings):
        _parallel([partial(job, lo, hi) for lo, hi in ranges], workers)
        timings["insert_seconds"] = time.perf_counter() - insert_began
        timings["insert_cpu_seconds"] = done.cpu
    with db.raw() as conn:
        conn.execute("DROP TABLE IF EXISTS _bench_obs_tpl")
    return PgLoad(
        observations=count, index_rows=5 * count, seconds=time.perf_counter() - began,
        timings={k: round(v, 1) for k, v in timings.items()}, space_indexes=space_indexes,
    )
