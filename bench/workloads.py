"""The workloads of issue 8, each measured against its floor in the same run.

Each function takes the run's :class:`Context` and returns a :class:`Result` whose figures are
medians over ``ctx.repeats`` rounds; a ratio is computed per round (floor and face measured
back to back) and then summarised, so machine noise hits both sides of each ratio alike.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import datagen, floors, httpload, xdsmsg
from bench.db import BenchDb
from bench.server import Server
from bench.stats import Figure, percentile, ratio_figure

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Result:
    """One workload: its figures, or why it did not run."""

    name: str
    status: str = "ok"  # ok | not run | failed
    reason: str = ""
    figures: dict[str, Figure] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def fig(self, key: str, name: str, unit: str) -> Figure:
        if key not in self.figures:
            self.figures[key] = Figure(name, unit)
        return self.figures[key]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "reason": self.reason,
            "figures": {k: v.as_dict() for k, v in self.figures.items() if v.runs},
            "notes": self.notes,
            "data": self.data,
        }


@dataclass
class Context:
    db: BenchDb
    settings: dict[str, Any]
    pki: Any
    signer: xdsmsg.Signer
    quick: bool
    repeats: int
    results_dir: Path
    server: Server | None = None
    probe_spaces: int = 8
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def trusted(self) -> list[bytes]:
        return [self.pki.ca_cert.read_bytes()]

    def probe_ins(self, i: int) -> str:
        return datagen.ins_for(i % self.probe_spaces)


def _soap(body: bytes, content_type: str, path: str) -> httpload.Request:
    return httpload.Request("POST", path, body, {"Content-Type": content_type})


def _xds_check(status: int, data: bytes) -> str | None:
    result = xdsmsg.registry_status(data)
    if status != 200 or result not in ("Success", "PartialSuccess"):
        return f"HTTP {status} {result} {xdsmsg.error_codes(data)[:3]}"
    return None


def face_available(ctx: Context, path: str, method: str = "POST") -> str | None:
    """None when ``path`` is served, else the reason (for "not run: ...")."""
    assert ctx.server is not None
    status, _ = httpload.send(ctx.server.base_url, httpload.Request(method, path, b"", {}))
    if status == 404:
        return f"{path} is not served (face missing)"
    return None


# ----------------------------------------------------------------------------- ITI-41
def iti41(ctx: Context) -> Result:
    """ITI-41, one 50 KB CDA over MTOM with a signed VIHF: throughput and ratio to the floor."""
    res = Result("ITI-41 provide and register (50 KB CDA)")
    assert ctx.server is not None
    missing = face_available(ctx, "/xds/repository")
    if missing:
        res.status, res.reason = "not run", missing
        return res
    sequential = 10 if ctx.quick else 30
    concurrent = 20 if ctx.quick else 150
    concurrency = 4 if ctx.quick else 8
    floor_space = datagen.space_id_for(ctx.probe_spaces)  # a non-probe space for raw rows
    writers = max(1, ctx.probe_spaces - 1)  # probe space 0 stays at 200 entries for ITI-18

    def target(i: int) -> str:
        return ctx.probe_ins(1 + i % writers)

    for round_ in range(ctx.repeats):
        ins = target(round_)
        content = xdsmsg.cda(ins, 50_000)
        seq = [xdsmsg.iti41_request(ctx.signer, ins, content, ctx.now) for _ in range(sequential)]
        contents = {i: xdsmsg.cda(target(i), 50_000) for i in range(writers)}
        par = [
            xdsmsg.iti41_request(ctx.signer, target(i), contents[i % writers], ctx.now)
            for i in range(concurrent)
        ]
        envelopes = [p[3] for p in seq]
        floor = floors.iti41_floor(
            ctx.db, envelopes, content, trusted=ctx.trusted, space_id=floor_space, now=ctx.now
        )
        face = httpload.run(
            ctx.server.base_url,
            [_soap(p[0], p[1], "/xds/repository") for p in seq],
            concurrency=1,
            check=_xds_check,
        )
        if face.failures:
            res.status, res.reason = "failed", face.failures[0]
            return res
        floor_ms = sum(floor) / len(floor) * 1000
        face_ms = sum(face.latencies) / len(face.latencies) * 1000
        res.fig("floor_ms", "floor: parse + VIHF verify + raw INSERTs, per submission", "ms").add(
            floor_ms
        )
        res.fig("face_ms", "face: ITI-41 per submission, one client", "ms").add(face_ms)
        res.fig("ratio", "face / floor (time per submission)", "x").add(face_ms / floor_ms)
        cpu0 = ctx.server.cpu_seconds()
        load = httpload.run(
            ctx.server.base_url,
            [_soap(p[0], p[1], "/xds/repository") for p in par],
            concurrency=concurrency,
            check=_xds_check,
        )
        cpu = ctx.server.cpu_seconds() - cpu0
        if load.failures:
            res.status, res.reason = "failed", f"under load: {load.failures[0]}"
            return res
        res.fig("throughput", f"submissions/s, {concurrency} clients", "/s").add(
            load.throughput
        )
        res.fig("p99_ms", "latency p99 under load", "ms").add(percentile(load.latencies, 99) * 1000)
        res.fig("cpu_ms", "server CPU per submission", "ms").add(cpu / load.count * 1000)
    return res


# ----------------------------------------------------------------------------- ITI-18
def find_documents_sql(ctx: Context, ins: str) -> str:
    """The SQL FindDocuments runs for the bench médecin on ``ins`` (visibility pushed in)."""
    from sqlalchemy import select

    from espace.models import DocumentEntryRow, PatientSpace
    from espace.spaces import space_facts
    from espace.store import visibility_clause
    from habilitation.pdp import PolicyDecisionPoint
    from xds.vihf import actor_from_vihf, read_vihf_attributes

    actor = actor_from_vihf(
        read_vihf_attributes(xdsmsg.signed_vihf(ctx.signer, patient_ins=ins, now=ctx.now))
    )
    engine = ctx.db.engine()
    from sqlalchemy.orm import Session

    with Session(engine) as session:
        space = session.execute(select(PatientSpace).where(PatientSpace.ins == ins)).scalar_one()
        facts = space_facts(session, space, ctx.now)
        vis = PolicyDecisionPoint().visible_documents(actor, facts)
        entry = DocumentEntryRow
        statement = (
            select(entry)
            .where(
                entry.space_id == space.id,
                visibility_clause(vis),
                entry.status.in_(["Approved"]),
                entry.object_type.in_([datagen.STABLE]),
            )
            .order_by(entry.submission_time, entry.entry_uuid)
            .limit(501)
        )
    engine.dispose()
    return floors.compiled_query(ctx.db, statement)


def iti18(ctx: Context, res: Result, label: str) -> None:
    """FindDocuments for a probe patient (200 entries): p50/p99, floor and ratio."""
    assert ctx.server is not None
    count = 20 if ctx.quick else 40
    sql = find_documents_sql(ctx, ctx.probe_ins(0))
    # warm-up: bulk-loaded entries have no stored ebRIM fragment yet; the first query renders
    # and stores them (espace.registry.prerender, guard 3), as after any submission
    warm = httpload.run(ctx.server.base_url, [
        _soap(*xdsmsg.iti18_request(ctx.signer, ctx.probe_ins(0), ctx.now), "/xds/registry")
    ], concurrency=1, check=_xds_check)
    if warm.failures:
        raise RuntimeError(warm.failures[0])
    res.data[f"{label}:first_query_ms"] = round(warm.latencies[0] * 1000, 1)
    for _ in range(ctx.repeats):
        floor, rows = floors.timed_query(ctx.db, sql, count)
        requests = [
            _soap(*xdsmsg.iti18_request(ctx.signer, ctx.probe_ins(0), ctx.now), "/xds/registry")
            for _ in range(count)
        ]
        face = httpload.run(ctx.server.base_url, requests, concurrency=1, check=_xds_check)
        if face.failures:
            raise RuntimeError(face.failures[0])
        f50, f99 = percentile(floor, 50) * 1000, percentile(floor, 99) * 1000
        p50, p99 = percentile(face.latencies, 50) * 1000, percentile(face.latencies, 99) * 1000
        res.fig(f"{label}:p50", f"{label}: face p50", "ms").add(p50)
        res.fig(f"{label}:p99", f"{label}: face p99", "ms").add(p99)
        res.fig(f"{label}:floor_p50", f"{label}: raw SQL p50 ({rows} rows)", "ms").add(f50)
        res.fig(f"{label}:floor_p99", f"{label}: raw SQL p99", "ms").add(f99)
        res.fig(f"{label}:ratio", f"{label}: face p50 / raw SQL p50", "x").add(p50 / f50)
        res.data[f"{label}:rows"] = rows
        res.data[f"{label}:response_bytes"] = face.bytes_received // max(1, face.count)


# ----------------------------------------------------------------------------- ITI-43
def iti43(ctx: Context) -> Result:
    """ITI-43 of a 1 MB document: MB/s through the face vs a raw read of the stored bytes."""
    res = Result("ITI-43 retrieve (1 MB)")
    assert ctx.server is not None
    missing = face_available(ctx, "/xds/repository")
    if missing:
        res.status, res.reason = "not run", missing
        return res
    ins = ctx.probe_ins(1)
    content = xdsmsg.cda(ins, 1_000_000)
    payload, ctype, uid, _ = xdsmsg.iti41_request(ctx.signer, ins, content, ctx.now)
    status, body = httpload.send(ctx.server.base_url, _soap(payload, ctype, "/xds/repository"))
    problem = _xds_check(status, body)
    if problem:
        res.status, res.reason = "failed", f"could not store the 1 MB document: {problem}"
        return res
    from espace.registry.config import DEFAULT_REPOSITORY_UNIQUE_ID

    count = 10 if ctx.quick else 40
    for _ in range(ctx.repeats):
        floor, size = floors.raw_read(ctx.db, DEFAULT_REPOSITORY_UNIQUE_ID, uid, count)
        requests = [
            _soap(*xdsmsg.iti43_request(ctx.signer, ins, uid, ctx.now), "/xds/repository")
            for _ in range(count)
        ]
        face = httpload.run(ctx.server.base_url, requests, concurrency=1, check=_xds_check)
        if face.failures:
            res.status, res.reason = "failed", face.failures[0]
            return res
        floor_mbs = size * count / sum(floor) / 1e6
        face_mbs = len(content) * count / sum(face.latencies) / 1e6
        res.fig("floor", "raw read of the stored bytes", "MB/s").add(floor_mbs)
        res.fig("face", "ITI-43 through the face (MTOM, VIHF, policy, trace, decrypt)",
                "MB/s").add(face_mbs)
        res.fig("ratio", "face / raw read throughput", "x").add(face_mbs / floor_mbs)
        res.fig("p50_ms", "ITI-43 latency p50", "ms").add(percentile(face.latencies, 50) * 1000)
    return res


# ----------------------------------------------------------------------------- FHIR
def fhir_token(ctx: Context, space_index: int) -> str:
    from habilitation.model import ActorKind
    from mes.tokens import issue_token

    ins = datagen.ins_for(space_index)
    return issue_token(ctx.settings, subject=ins, kind=ActorKind.PATIENT, patient=ins,
                       ttl_seconds=7200)


def _fhir_check(status: int, data: bytes) -> str | None:
    if status >= 300:
        return f"HTTP {status} {data[:200]!r}"
    return None


def weight(ins: str, serial: int) -> bytes:
    return json.dumps({
        "resourceType": "Observation",
        "meta": {"profile": [
            "https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition/"
            "mesures-fr-observation-body-weight"]},
        "status": "final",
        "subject": {"identifier": {"system": "urn:oid:1.2.250.1.213.1.4.10", "value": ins}},
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7",
                             "display": "Body weight"}]},
        "effectiveDateTime": f"2025-{1 + serial % 12:02d}-{1 + serial % 28:02d}T08:00:00+01:00",
        "valueQuantity": {"value": 70 + serial % 10, "unit": "kg",
                          "system": "http://unitsofmeasure.org", "code": "kg"},
    }).encode()


def fhir_search_sql(ctx: Context, space_index: int) -> str:
    mark = "'"
    sid = datagen.space_id_for(space_index)
    return (
        "SELECT r.json FROM fhir_resource r JOIN fhir_search_index i "
        "ON i.resource_type = r.resource_type AND i.resource_id = r.id "
        f"WHERE i.space_id = {mark}{sid}{mark} AND i.resource_type = 'Observation' "
        "AND i.param = 'code' AND i.system = 'http://loinc.org' AND i.code = '29463-7' "
        "AND r.deleted = false ORDER BY r.sort_date DESC LIMIT 50"
    )


def observation_search(ctx: Context, res: Result, label: str) -> None:
    """FHIR Observation search of probe patient 0 (body weight, 50 a page): face p50/p99
    against the raw SQL, and the plans of the face's own statements (PostgreSQL EXPLAIN)."""
    assert ctx.server is not None
    headers = {"Authorization": f"Bearer {fhir_token(ctx, 0)}",
               "Accept": "application/fhir+json"}
    query = "/fhir/Observation?code=http://loinc.org|29463-7&_count=50"
    count = 20 if ctx.quick else 100
    sql = fhir_search_sql(ctx, 0)
    for _ in range(ctx.repeats):
        floor, rows = floors.timed_query(ctx.db, sql, count)
        face = httpload.run(
            ctx.server.base_url,
            [httpload.Request("GET", query, None, headers) for _ in range(count)],
            check=_fhir_check,
        )
        if face.failures:
            raise RuntimeError(face.failures[0])
        p50, p99 = percentile(face.latencies, 50) * 1000, percentile(face.latencies, 99) * 1000
        f50, f99 = percentile(floor, 50) * 1000, percentile(floor, 99) * 1000
        res.fig(f"{label}:p50", f"{label}: Observation search p50", "ms").add(p50)
        res.fig(f"{label}:p99", f"{label}: Observation search p99", "ms").add(p99)
        res.fig(f"{label}:floor_p50", f"{label}: raw SQL p50 ({rows} rows)", "ms").add(f50)
        res.fig(f"{label}:floor_p99", f"{label}: raw SQL p99", "ms").add(f99)
        res.fig(f"{label}:ratio", f"{label}: face p50 / raw SQL p50", "x").add(p50 / f50)
    if ctx.db.kind == "postgresql":
        plans = search_plans(ctx, 0)
        text = "\n\n".join(plans)
        (ctx.results_dir / f"plan-observation-search-{label}.txt").write_text(text + "\n")
        res.data[f"{label}:seq_scan"] = bool(
            re.search(r"Seq Scan on (fhir_resource|fhir_search_index)\b", text))
        res.data[f"{label}:plan_ms"] = [
            float(m) for m in re.findall(r"Execution Time: ([0-9.]+) ms", text)]
        res.data[f"{label}:statements"] = len(plans)


def search_plans(ctx: Context, space_index: int) -> list[str]:
    """EXPLAIN ANALYZE of the statements ``espace.fhir_store.search`` runs for the bench
    query (captured from SQLAlchemy, so the plans are those of the face's own SQL)."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    from espace import fhir_store as store

    engine = ctx.db.engine()
    captured: list[tuple[str, Any]] = []

    def grab(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        captured.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", grab)
    try:
        with Session(engine) as session:
            store.search(session, store.SearchQuery(
                "Observation", datagen.space_id_for(space_index),
                frozenset({"measurements", "profile", "agenda", "consents"}),
                [store.Criterion("code", ("http://loinc.org|29463-7",))], count=50))
    finally:
        event.remove(engine, "before_cursor_execute", grab)
    plans = []
    with engine.connect() as conn:
        for statement, parameters in captured:
            result = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
            plans.append("\n".join(str(r[0]) for r in result))
    engine.dispose()
    return plans


def _peer_requests(peer: Any, mixed: list[httpload.Request], ids: list[str]) -> list[
    httpload.Request
]:
    """The same mix for the peer: same paths and bodies, ids of the peer's own resources."""
    out = []
    for req in mixed:
        path = req.path
        if req.method == "GET" and path.startswith("/fhir/Observation/"):
            path = f"/fhir/Observation/{ids[hash(path) % len(ids)]}"
        out.append(httpload.Request(req.method, path, req.body,
                                    {"Content-Type": "application/fhir+json"}))
    return out


def _seed_peer(peer: Any, count: int) -> list[str]:
    ids = []
    for n in range(count):
        status, body = httpload.send(peer.base_url, httpload.Request(
            "POST", "/fhir/Observation", weight(datagen.ins_for(n % 8), n),
            {"Content-Type": "application/fhir+json"}))
        if status >= 300:
            raise RuntimeError(f"peer POST answered {status}: {body[:200]!r}")
        ids.append(json.loads(body)["id"])
    return ids


def fhir(ctx: Context, peer: Any = None) -> Result:
    """FHIR Observation search p99 (vs raw SQL) and a mixed read/write/search rate, with the
    Medplum router (in-memory) running the same mix in the same round when ``peer`` runs."""
    res = Result("FHIR R4 (Observation search, mixed read/write/search)")
    assert ctx.server is not None
    status, _ = httpload.get(ctx.server.base_url, "/fhir/metadata")
    if status != 200:
        res.status, res.reason = "not run", f"/fhir/metadata answered {status} (face missing)"
        return res
    headers = [
        {"Authorization": f"Bearer {fhir_token(ctx, i)}", "Accept": "application/fhir+json",
         "Content-Type": "application/fhir+json"}
        for i in range(ctx.probe_spaces)
    ]
    query = "/fhir/Observation?code=http://loinc.org|29463-7&_count=50"
    count = 20 if ctx.quick else 100
    # one write per space first, so reads have a known id
    ids: list[str] = []
    for i in range(ctx.probe_spaces):
        st, body = httpload.send(ctx.server.base_url, httpload.Request(
            "POST", "/fhir/Observation", weight(datagen.ins_for(i), i), headers[i]))
        if st >= 300:
            res.status, res.reason = "failed", f"POST Observation answered {st}: {body[:300]!r}"
            return res
        ids.append(json.loads(body)["id"])
    sql = fhir_search_sql(ctx, 0)
    peer_ids: list[str] = []
    if peer is not None and peer.running:
        peer_ids = _seed_peer(peer, 200 if ctx.quick else 1000)
        res.data["peer"] = f"{peer.name} {peer.info}"
    elif peer is not None:
        res.notes.append(f"Medplum peer not run: {peer.reason}")
    for _ in range(ctx.repeats):
        floor, rows = floors.timed_query(ctx.db, sql, count)
        face = httpload.run(
            ctx.server.base_url,
            [httpload.Request("GET", query, None, headers[0]) for _ in range(count)],
            check=_fhir_check,
        )
        if face.failures:
            res.status, res.reason = "failed", face.failures[0]
            return res
        res.fig("search_p50", "Observation search p50", "ms").add(
            percentile(face.latencies, 50) * 1000)
        res.fig("search_p99", "Observation search p99", "ms").add(
            percentile(face.latencies, 99) * 1000)
        res.fig("floor_p99", f"raw SQL p99 ({rows} rows)", "ms").add(percentile(floor, 99) * 1000)
        res.fig("ratio", "search p50 / raw SQL p50", "x").add(
            percentile(face.latencies, 50) / percentile(floor, 50))
        mixed: list[httpload.Request] = []
        total = 60 if ctx.quick else 300
        for n in range(total):
            i = n % ctx.probe_spaces
            kind = n % 10
            if kind < 6:
                mixed.append(httpload.Request("GET", f"/fhir/Observation/{ids[i]}", None,
                                              headers[i]))
            elif kind < 8:
                mixed.append(httpload.Request("GET", query, None, headers[i]))
            else:
                mixed.append(httpload.Request("POST", "/fhir/Observation",
                                              weight(datagen.ins_for(i), n), headers[i]))
        cpu0 = ctx.server.cpu_seconds()
        load = httpload.run(ctx.server.base_url, mixed, concurrency=4, check=_fhir_check)
        cpu = ctx.server.cpu_seconds() - cpu0
        if load.failures:
            res.status, res.reason = "failed", f"in the mix: {load.failures[0]}"
            return res
        res.fig("mixed_rps", "mixed 60/20/20 read/search/create, 4 clients", "req/s").add(
            load.throughput)
        res.fig("mixed_per_core", "mixed requests per server CPU-second", "req/s/core").add(
            load.count / cpu if cpu else 0.0)
        if peer_ids:
            cpu0 = peer.cpu_seconds()
            theirs = httpload.run(peer.base_url, _peer_requests(peer, mixed[:100], peer_ids),
                                  concurrency=4, check=_fhir_check)
            peer_cpu = peer.cpu_seconds() - cpu0
            if theirs.failures:
                res.notes.append(f"peer failures: {theirs.failures[0]}")
                peer_ids = []
                continue
            res.fig("peer_rps", "Medplum router, same mix, 4 clients (1 Node process)",
                    "req/s").add(theirs.throughput)
            res.fig("peer_per_core", "Medplum requests per CPU-second", "req/s/core").add(
                theirs.count / peer_cpu if peer_cpu else 0.0)
            res.fig("peer_ratio", "ours / Medplum, requests per CPU-second (same round)",
                    "x").add((load.count / cpu) / (theirs.count / peer_cpu)
                             if cpu and peer_cpu else 0.0)
            res.data["peer_rss_mb"] = round(peer.rss_bytes() / 1e6, 1)
    return res


# ----------------------------------------------------------------------------- policy
_PDP_LINE = re.compile(
    r"^(?P<label>\w+)\s+[\d,]+ decisions/s\s+(?P<us>[\d.]+) µs/decision .*?"
    r"min [\d,]+/s = (?P<max>[\d.]+) µs, max [\d,]+/s = (?P<min>[\d.]+) µs"
)


def policy(ctx: Context, request_ms: float | None) -> Result:
    """The PDP micro-benchmark (bench/pdp_bench.py, run as is) and its share of a request."""
    res = Result("Policy decision (bench/pdp_bench.py)")
    script = ROOT / "bench" / "pdp_bench.py"
    if not script.exists():
        res.status, res.reason = "not run", "bench/pdp_bench.py is missing"
        return res
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=600, cwd=str(ROOT))
    if out.returncode != 0:
        res.status, res.reason = "failed", " ".join(out.stderr.strip().splitlines()[-1:])
        return res
    for line in out.stdout.splitlines():
        match = _PDP_LINE.match(line.strip())
        if match:
            fig = res.fig(match["label"], f"{match['label']} (median of the script's repeats)",
                          "µs")
            fig.runs = [float(match["min"]), float(match["us"]), float(match["max"])]
    res.notes.append("figures as printed by pdp_bench.py (median of 7; min and max)")
    res.data["stdout"] = out.stdout
    if request_ms and "authorize_operation" in res.figures:
        us = res.figures["authorize_operation"].median
        res.data["share_of_request_percent"] = us / (request_ms * 1000) * 100
    return res


# ----------------------------------------------------------------------------- SMTP
_MAIL_LINE = re.compile(r"(?P<rate>[\d.]+) messages/s, (?P<mbs>[\d.]+) MB/s")


def smtp(ctx: Context, peer: Any = None) -> Result:
    """SMTP intake of 1 MB XDM messages over STARTTLS + client certificate (mail_bench.py),
    and, in the same round, the same messages through the same TLS client to Postfix relaying
    to smtp-sink (``peer``, a running :class:`bench.peers.PostfixPeer`)."""
    res = Result("SMTP intake (1 MB IHE_XDM, bench/mail_bench.py)")
    script = ROOT / "bench" / "mail_bench.py"
    if not script.exists():
        res.status, res.reason = "not run", "bench/mail_bench.py is missing"
        return res
    messages = 8 if ctx.quick else 40
    common = ["--messages", str(messages), "--connections", "2",
              "--pki-dir", str(ctx.pki.directory)]
    if peer is not None and not peer.running:
        res.notes.append(f"Postfix peer not run: {peer.reason}")
    elif peer is not None:
        res.data["peer"] = f"Postfix {peer.info.get('postfix')} -> smtp-sink, STARTTLS"
    for _ in range(ctx.repeats):
        ours = _mail_bench(common + ["--database-url", ctx.db.url])
        if isinstance(ours, str):
            res.status, res.reason = "failed", ours
            return res
        res.fig("rate", "messages/s (committed before 250)", "/s").add(ours[0])
        res.fig("mbs", "intake", "MB/s").add(ours[1])
        if peer is None or not peer.running:
            continue
        theirs = _mail_bench(common + ["--target", f"127.0.0.1:{peer.port}"])
        if isinstance(theirs, str):
            res.notes.append(f"Postfix round failed: {theirs} {peer.log_tail(2)}")
            continue
        res.fig("peer_rate", "Postfix -> smtp-sink, same messages and client", "/s").add(
            theirs[0])
        res.fig("peer_mbs", "Postfix intake", "MB/s").add(theirs[1])
        res.fig("peer_ratio", "ours / Postfix, messages/s (same round)", "x").add(
            ours[0] / theirs[0])
    return res


def _mail_bench(args: list[str]) -> tuple[float, float] | str:
    """(messages/s, MB/s) printed by one ``bench.mail_bench`` run, or what went wrong."""
    out = subprocess.run([sys.executable, "-m", "bench.mail_bench", *args], capture_output=True,
                         text=True, timeout=900, cwd=str(ROOT))
    match = _MAIL_LINE.search(out.stdout)
    if out.returncode != 0 or not match:
        tail = (out.stderr or out.stdout).strip().splitlines()[-1:]
        return f"mail_bench: {tail}"
    return float(match["rate"]), float(match["mbs"])


# ----------------------------------------------------------------------------- memory
def big_attachment(ctx: Context, size: int = 50_000_000) -> Result:
    """Peak RSS of the worker that takes one 50 MB ITI-41 document (goal: <= 2x its size)."""
    res = Result("Memory: one 50 MB document (ITI-41)")
    assert ctx.server is not None
    missing = face_available(ctx, "/xds/repository")
    if missing:
        res.status, res.reason = "not run", missing
        return res
    ins = ctx.probe_ins(2)
    content = xdsmsg.cda(ins, size)
    payload, ctype, _, _ = xdsmsg.iti41_request(ctx.signer, ins, content, ctx.now)
    before = ctx.server.memory()
    start = time.perf_counter()
    status, body = httpload.send(ctx.server.base_url, _soap(payload, ctype, "/xds/repository"))
    elapsed = time.perf_counter() - start
    after = ctx.server.memory()
    growth = max(
        (after[pid]["VmHWM"] - before.get(pid, {}).get("VmHWM", after[pid]["VmHWM"]))
        for pid in after
    )
    res.data["status"] = f"{status} {xdsmsg.registry_status(body)} {xdsmsg.error_codes(body)}"
    res.fig("peak_growth_mb", "growth of the worker's peak RSS (VmHWM)", "MB").add(growth / 1e6)
    res.fig("ratio", "peak growth / document size", "x").add(growth / len(content))
    res.fig("seconds", "request time", "s").add(elapsed)
    res.notes.append("one run (a second run would start from the raised peak)")
    return res


def worker_memory(ctx: Context, res: Result) -> None:
    assert ctx.server is not None
    mem = ctx.server.memory()
    for pid, values in sorted(mem.items()):
        res.fig("rss", "RSS per worker after the load", "MB").add(values["VmRSS"] / 1e6)
        res.fig("hwm", "peak RSS per worker (VmHWM)", "MB").add(values["VmHWM"] / 1e6)
        res.data[str(pid)] = values


def ratio(a: Figure, b: Figure, name: str) -> Figure:
    return ratio_figure(name, a, b)
