"""``python -m bench.run --quick|--full``: load the registry, measure every workload of issue 8
against its floor in the same run, write ``bench/report.md`` and ``bench/results/*.json``.

Reports: ``bench/report.md`` (full) and ``bench/report-quick.md`` (quick).
``--quick`` is the CI smoke run (small registry, few rounds, no thresholds; a missing face is
reported as "not run: reason", never a failure). ``--full`` grows the registry 100 k -> 1 M ->
10 M entries and the observations 100 k -> 1 M -> 10 M (``--max-entries`` and
``--max-observations`` stop earlier), measuring ITI-18 and the FHIR Observation search at each
step.
PostgreSQL at ``--database-url`` (schema ``bench``, dropped at the end) or SQLite when none answers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from bench import datagen, loader, xdsmsg
from bench.db import DEFAULT_PG_URL, BenchDb
from bench.report import write_report
from bench.server import Server, server_settings
from bench.workloads import (
    Context,
    Result,
    big_attachment,
    fhir,
    iti18,
    iti41,
    iti43,
    policy,
    smtp,
    worker_memory,
)

BENCH_DIR = Path(__file__).resolve().parent
BENCH_PROFESSIONAL = xdsmsg.AUTHOR


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="CI smoke run (default)")
    mode.add_argument("--full", action="store_true", help="100 k -> 1 M (-> 10 M) entries")
    parser.add_argument("--database-url", default=os.environ.get("MES_BENCH_DATABASE_URL",
                                                                  DEFAULT_PG_URL))
    parser.add_argument("--out", type=Path, default=BENCH_DIR, help="report.md and results/")
    parser.add_argument("--repeats", type=int, default=None, help="rounds per figure")
    parser.add_argument("--max-entries", type=int, default=None,
                        help="largest registry step (full: 1 M unless raised to 10 M)")
    parser.add_argument("--observations", type=int, default=None,
                        help="observations of the first step (quick 20 k, full 100 k)")
    parser.add_argument("--max-observations", type=int, default=None,
                        help="largest observation step (quick 40 k, full 10 M)")
    parser.add_argument("--schema", default="bench", help="PostgreSQL schema (dropped at the end)")
    parser.add_argument("--keep", action="store_true", help="keep the bench schema")
    parser.add_argument("--skip", action="append", default=[],
                        help="skip a section: iti41 iti18 iti43 fhir smtp memory policy profile")
    return parser.parse_args(argv)


def registry_steps(args: argparse.Namespace) -> list[int]:
    if not args.full:
        steps = [10_000, 100_000]
        return [s for s in steps if s <= (args.max_entries or steps[-1])]
    steps = [100_000, 1_000_000, 10_000_000]
    return [s for s in steps if s <= (args.max_entries or steps[-1])]


def observation_steps(args: argparse.Namespace) -> list[int]:
    """Observation counts at which the FHIR search is measured (the first one is loaded with
    the registry)."""
    if not args.full:  # quick: one growth step, to exercise it
        first = args.observations or 20_000
        steps = [first, 2 * first]
    else:
        steps = [100_000, 1_000_000, 10_000_000]
        if args.observations:
            steps = [args.observations, *(s for s in steps if s > args.observations)]
    top = args.max_observations or steps[-1]
    return [s for s in steps if s <= top] or [steps[0]]


class Run:
    """One bench run: sections run in order; a failing section never stops the others."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.quick = not args.full
        self.started = time.perf_counter()
        self.results: dict[str, Result] = {}
        self.meta: dict[str, Any] = {
            "mode": "quick" if self.quick else "full",
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "host": platform.node(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_start": os.getloadavg(),
        }

    def section(self, key: str, fn: Callable[[], Result]) -> Result:
        if key in self.args.skip:
            result = Result(key, status="not run", reason="skipped on the command line")
        else:
            print(f"[bench] {key} ...", flush=True)
            began = time.perf_counter()
            try:
                result = fn()
            except Exception as exc:  # a section's failure is reported, not raised
                result = Result(key, status="failed", reason=f"{type(exc).__name__}: {exc}")
                result.data["traceback"] = traceback.format_exc()
            result.data["section_seconds"] = round(time.perf_counter() - began, 1)
            print(f"[bench] {key}: {result.status} {result.reason}", flush=True)
        self.results[key] = result
        return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run = Run(args)
    repeats = args.repeats or (3 if run.quick else 5)
    work = Path(tempfile.mkdtemp(prefix="mes-bench-"))
    results_dir = args.out / "results"
    results_dir.mkdir(parents=True, exist_ok=True)

    from mes.pki import generate_test_pki

    pki = generate_test_pki(work / "pki")
    db = BenchDb.choose(args.database_url, work, schema=args.schema)
    run.meta["database"] = db.kind
    settings = server_settings(db.url, pki.directory, work)
    ctx = Context(db=db, settings=settings, pki=pki, signer=xdsmsg.Signer.from_pki(pki),
                  quick=run.quick, repeats=repeats, results_dir=results_dir)
    steps = registry_steps(args)
    obs_steps = observation_steps(args)
    observations = obs_steps[0]
    loads: list[dict[str, Any]] = []
    try:
        db.reset()
        load = run.section("load", lambda: _load(ctx, steps[0], observations, loads))
        if load.status != "ok":
            return _finish(run, ctx, args, loads)
        ctx.server = Server(settings, log_path=work / "gunicorn.log")
        ctx.server.start()
        run.meta["workers"] = ctx.server.workers
        run.meta["threads_per_worker"] = ctx.server.threads
        run.section("memory_50mb", lambda: big_attachment(ctx))
        run.section("iti41", lambda: iti41(ctx))
        iti18_result = Result("ITI-18 FindDocuments (patient with 200 entries)")
        run.results["iti18"] = iti18_result
        total = steps[0]
        for index, step in enumerate(steps):
            if index > 0:
                extra = step - total
                grow: Callable[[], Result] = partial(_grow, ctx, extra, total, loads)
                if run.section(f"load_{step}", grow).status != "ok":
                    break
                total = step
            label = _label(step)
            measure: Callable[[], Result] = partial(_iti18, ctx, label)
            res = run.section(f"iti18_{label}", measure)
            del run.results[f"iti18_{label}"]  # merged into "iti18"
            iti18_result.figures.update(res.figures)
            iti18_result.data.update(res.data)
            if res.status != "ok":  # the next steps still load: their rates and sizes count
                iti18_result.status = res.status
                iti18_result.reason = "; ".join(
                    r for r in (iti18_result.reason, f"{label}: {res.reason}") if r)
        iti18_result.data["steps"] = [_label(s) for s in steps]
        run.section("iti43", lambda: iti43(ctx))
        run.section("fhir", lambda: _fhir_with_peer(ctx, args))
        run.section("obs_growth", lambda: _observation_growth(ctx, obs_steps, loads))
        request_ms = None
        top = _label(steps[0])
        if f"{top}:p50" in iti18_result.figures:
            request_ms = iti18_result.figures[f"{top}:p50"].median
        run.section("policy", lambda: policy(ctx, request_ms))
        run.section("memory", lambda: _memory(ctx))
        ctx.server.stop()
        run.section("smtp", lambda: _smtp_with_peer(ctx, args))
        run.section("profile", lambda: _profile(ctx, results_dir))
    finally:
        if ctx.server is not None:
            ctx.server.stop()
        if not args.keep:
            try:
                db.drop()
            except Exception as exc:  # the report still gets written
                print(f"[bench] could not drop the bench schema: {exc}")
        shutil.rmtree(work, ignore_errors=True)
    return _finish(run, ctx, args, loads)


def _label(entries: int) -> str:
    return f"{entries // 1_000_000}M" if entries >= 1_000_000 else f"{entries // 1000}k"


def _load(ctx: Context, entries: int, observations: int, loads: list[dict[str, Any]]) -> Result:
    res = Result(f"bulk load ({ctx.db.kind})")
    stats = loader.load_registry(ctx.db, datagen.Plan(entries=entries), ctx.now,
                                 progress=not ctx.quick)
    loads.append({"what": "registry", **stats.as_dict(), "database_bytes": ctx.db.size_bytes()})
    ctx.probe_spaces = min(8, stats.spaces)
    obs = loader.load_observations(ctx.db, observations, stats.space_indexes, ctx.now,
                                   probe_spaces=ctx.probe_spaces, progress=not ctx.quick)
    loads.append({"what": "observations", **obs.as_dict(),
                  "database_bytes": ctx.db.size_bytes()})
    ctx.settings["_spaces"] = stats.spaces
    _care_team(ctx)
    res.fig("entries_per_s", "registry entries loaded per second", "rows/s").add(
        stats.entries / stats.seconds)
    res.fig("obs_per_s", "observations loaded per second (with index rows)", "rows/s").add(
        obs.observations / obs.seconds)
    res.data["database_bytes"] = ctx.db.size_bytes()
    return res


def _grow(ctx: Context, extra: int, already: int, loads: list[dict[str, Any]]) -> Result:
    res = Result(f"grow registry by {extra}")
    room = loader.disk_room(ctx.db, extra * loader.BYTES_PER_ENTRY)
    if room is not None:
        res.status, res.reason = "not run", room
        return res
    first = int(ctx.settings.get("_spaces", 0))
    stats = loader.load_registry(
        ctx.db, datagen.Plan(entries=extra, targets=0, seed=already), ctx.now,
        first_space=first, progress=not ctx.quick,
    )
    ctx.settings["_spaces"] = first + stats.spaces
    loads.append({"what": f"registry +{extra}", **stats.as_dict(),
                  "database_bytes": ctx.db.size_bytes()})
    res.fig("entries_per_s", "registry entries loaded per second", "rows/s").add(
        stats.entries / stats.seconds)
    res.data["database_bytes"] = ctx.db.size_bytes()
    return res


def _observation_growth(ctx: Context, steps: list[int], loads: list[dict[str, Any]]) -> Result:
    """The FHIR Observation search measured at each observation step (the first was loaded
    with the registry; each next step adds observations spread over the non-probe spaces)."""
    from bench.workloads import observation_search

    res = Result("FHIR Observation search as observations grow")
    status, _ = httpload_get(ctx, "/fhir/metadata")
    if status != 200:
        res.status, res.reason = "not run", f"/fhir/metadata answered {status} (face missing)"
        return res
    loaded = steps[0]
    spaces = range(0, int(ctx.settings.get("_spaces", 0)))
    for index, step in enumerate(steps):
        label = _label(step)
        if index > 0:
            extra = step - loaded
            room = loader.disk_room(ctx.db, extra * loader.BYTES_PER_OBSERVATION)
            if room is not None:
                res.notes.append(f"{label} not loaded: {room}")
                break
            stats = loader.load_observations(
                ctx.db, extra, spaces, ctx.now, first_serial=loaded,
                probe_spaces=ctx.probe_spaces, progress=not ctx.quick,
            )
            loads.append({"what": f"observations +{extra}", **stats.as_dict(),
                          "database_bytes": ctx.db.size_bytes()})
            res.fig(f"{label}:load", f"{label}: observations loaded per second", "obs/s").add(
                stats.observations / stats.seconds)
            loaded = step
        res.data[f"{label}:database_bytes"] = ctx.db.size_bytes()
        try:
            observation_search(ctx, res, label)
        except RuntimeError as exc:
            res.status, res.reason = "failed", f"{label}: {exc}"
            break
    res.data["steps"] = [_label(s) for s in steps]
    return res


def httpload_get(ctx: Context, path: str) -> tuple[int, bytes]:
    from bench import httpload

    assert ctx.server is not None
    return httpload.get(ctx.server.base_url, path)


def _iti18(ctx: Context, label: str) -> Result:
    res = Result(f"ITI-18 at {label}")
    from bench.workloads import face_available

    missing = face_available(ctx, "/xds/registry")
    if missing:
        res.status, res.reason = "not run", missing
        return res
    iti18(ctx, res, label)
    return res


def _care_team(ctx: Context) -> None:
    """The bench médecin is authorized (TD0.3) on the probe spaces, as in the real DMP."""
    from espace.admin import link_professional, upsert_professional
    from espace.models import PatientSpace
    from mes.wiring import build_espace

    espace = build_espace(ctx.settings)
    with espace.session_factory() as session:
        upsert_professional(session, BENCH_PROFESSIONAL, name="Dr Bench", profession="10",
                            specialty="SM26", structure_id=xdsmsg.STRUCTURE)
        for i in range(ctx.probe_spaces):
            space = session.get(PatientSpace, datagen.space_id_for(i))
            assert space is not None
            link_professional(session, space, BENCH_PROFESSIONAL, "authorized",
                              declared_by=BENCH_PROFESSIONAL, now=ctx.now)
        session.commit()
    espace.session_factory.kw["bind"].dispose()


def _fhir_with_peer(ctx: Context, args: argparse.Namespace) -> Result:
    peer = None
    if "peers" not in args.skip:
        from bench.peers import start_medplum

        peer = start_medplum()
    try:
        return fhir(ctx, peer)
    finally:
        if peer is not None:
            peer.stop()


def _memory(ctx: Context) -> Result:
    res = Result("Memory per worker under load")
    worker_memory(ctx, res)
    return res


def _smtp_with_peer(ctx: Context, args: argparse.Namespace) -> Result:
    """Our SMTP intake and, in the same rounds, Postfix -> smtp-sink (installed from Debian's
    packages by the bench when absent: ``bench.peers.ensure_postfix``)."""
    peer = None
    if "peers" not in args.skip:
        from bench.peers import start_postfix

        peer = start_postfix(ctx.pki.directory)
    try:
        return smtp(ctx, peer)
    finally:
        if peer is not None:
            peer.stop()


def _profile(ctx: Context, results_dir: Path) -> Result:
    from bench.profiling import profile_faces

    return profile_faces(ctx, results_dir)


def _finish(run: Run, ctx: Context, args: argparse.Namespace, loads: list[dict[str, Any]]) -> int:
    run.meta["seconds"] = round(time.perf_counter() - run.started, 1)
    run.meta["load_average_at_end"] = os.getloadavg()
    run.meta["repeats"] = ctx.repeats
    run.meta["loads"] = loads
    results_dir = args.out / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    mode = run.meta["mode"]
    payload = {"meta": run.meta, "results": {k: v.as_dict() for k, v in run.results.items()}}
    (results_dir / f"{mode}.json").write_text(json.dumps(payload, indent=2, default=str))
    for key, result in run.results.items():
        (results_dir / f"{mode}-{key}.json").write_text(
            json.dumps(result.as_dict(), indent=2, default=str))
    # the full run's report is the one kept in the repository; a quick run never overwrites it
    report = args.out / ("report.md" if mode == "full" else "report-quick.md")
    write_report(report, run.meta, run.results)
    print(f"[bench] report: {report} ({run.meta['seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
