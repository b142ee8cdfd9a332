"""In-process measurement of the XDS faces (issue #8): ITI-18, ITI-41 and ITI-43 through Flask's
test client on a database of their own, so the figures are the server's own CPU per request
(``time.process_time``, not disturbed by the other jobs of a shared machine) and, with
``--profile``, a pyinstrument profile of one transaction.

Usage::

    python -m bench.xds_inprocess [--database-url URL] [--requests 200] [--profile iti18]

The database is emptied and filled (2,000 entries: 8 patients with 200 each, the 2025 mix):
give it a database or schema of its own (default: schema ``xdsinproc`` of the bench database).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench import datagen, loader, xdsmsg
from bench.db import DEFAULT_PG_URL, BenchDb
from bench.server import server_settings


def _measure(call: Callable[[], None], count: int) -> dict[str, float]:
    """Median CPU and wall milliseconds per call of this process (the database's CPU is not
    counted: it runs in PostgreSQL's own processes)."""
    cpu: list[float] = []
    wall: list[float] = []
    for _ in range(count):
        c0, w0 = time.process_time(), time.perf_counter()
        call()
        cpu.append((time.process_time() - c0) * 1000)
        wall.append((time.perf_counter() - w0) * 1000)
    return {"cpu_ms": statistics.median(cpu), "wall_ms": statistics.median(wall),
            "wall_p99_ms": sorted(wall)[max(0, int(len(wall) * 0.99) - 1)]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.xds_inprocess", description=__doc__)
    parser.add_argument("--database-url", default=DEFAULT_PG_URL)
    parser.add_argument("--schema", default="xdsinproc")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--profile", choices=["iti18", "iti41", "iti43"], default=None)
    args = parser.parse_args(argv)

    from mes.app import create_app
    from mes.pki import generate_test_pki

    work = Path(tempfile.mkdtemp(prefix="mes-xds-inproc-"))
    pki = generate_test_pki(work / "pki")
    db = BenchDb.choose(args.database_url, work, schema=args.schema)
    settings = server_settings(db.url, pki.directory, work)
    now = datetime.now(UTC)
    db.reset()
    stats = loader.load_registry(db, datagen.Plan(entries=2_000), now, progress=False)
    from bench.run import _care_team
    from bench.workloads import Context

    ctx = Context(db=db, settings=settings, pki=pki, signer=xdsmsg.Signer.from_pki(pki),
                  quick=True, repeats=1, results_dir=work, now=now)
    ctx.probe_spaces = min(8, stats.spaces)
    _care_team(ctx)
    app = create_app(settings)
    client = app.test_client()
    signer = ctx.signer
    n = args.requests

    def post(path: str, payload: bytes, ctype: str) -> bytes:
        response = client.post(path, data=payload, content_type=ctype)
        status = xdsmsg.registry_status(response.data)
        if response.status_code != 200 or status != "Success":
            raise RuntimeError(f"{path}: {response.status_code} {status} "
                               f"{xdsmsg.error_codes(response.data)[:3]}")
        return bytes(response.data)

    # ITI-18: warm the pre-rendered fragments once, then measure
    queries = [xdsmsg.iti18_request(signer, ctx.probe_ins(0), now) for _ in range(n + 1)]
    post("/xds/registry", *queries.pop())
    q_iter = iter(queries)

    def iti18() -> None:
        post("/xds/registry", *next(q_iter))

    content = xdsmsg.cda(ctx.probe_ins(3), 50_000)
    submissions = iter([xdsmsg.iti41_request(signer, ctx.probe_ins(3), content, now)[:2]
                        for _ in range(n)])

    def iti41() -> None:
        post("/xds/repository", *next(submissions))

    big = xdsmsg.cda(ctx.probe_ins(1), 1_000_000)
    payload, ctype, uid, _ = xdsmsg.iti41_request(signer, ctx.probe_ins(1), big, now)
    post("/xds/repository", payload, ctype)
    retrieves = iter([xdsmsg.iti43_request(signer, ctx.probe_ins(1), uid, now)
                      for _ in range(n)])

    def iti43() -> None:
        post("/xds/repository", *next(retrieves))

    calls = {"iti18": iti18, "iti41": iti41, "iti43": iti43}
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0002)
        profiler.start()
        for _ in range(n):
            calls[args.profile]()
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False, show_all=False))
    else:
        for name, call in calls.items():
            print(name, {k: round(v, 2) for k, v in _measure(call, n).items()}, flush=True)
    db.drop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
