"""Where the time goes: pyinstrument over ITI-41 and ITI-18 run in-process (Flask test client on
the same database), so the profile shows our frames rather than the HTTP server's.

The full text profiles go to ``bench/results/profile-*.txt``; the report keeps the top lines.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bench import xdsmsg
from bench.workloads import Context, Result


def _profile(call: Any, count: int) -> str:
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005)
    profiler.start()
    for _ in range(count):
        call()
    profiler.stop()
    return str(profiler.output_text(unicode=False, color=False, show_all=False))


def profile_faces(ctx: Context, results_dir: Path) -> Result:
    res = Result("Profiles (pyinstrument, in-process)")
    try:
        import pyinstrument  # noqa: F401
    except ImportError:
        res.status, res.reason = "not run", "pyinstrument is not installed"
        return res
    from mes.app import create_app

    settings = {k: v for k, v in ctx.settings.items() if not k.startswith("_")}
    app = create_app(settings)
    client = app.test_client()
    ins = ctx.probe_ins(3)
    content = xdsmsg.cda(ins, 50_000)
    count = 11 if ctx.quick else 41
    prepared = [xdsmsg.iti41_request(ctx.signer, ins, content, ctx.now) for _ in range(count)]
    queue = iter(prepared)

    def submit() -> None:
        payload, ctype, _, _ = next(queue)
        response = client.post("/xds/repository", data=payload, content_type=ctype)
        if xdsmsg.registry_status(response.data) != "Success":
            context = re.search(rb'codeContext="([^"]*)"', response.data)
            raise RuntimeError(
                f"ITI-41 failed: {xdsmsg.error_codes(response.data)} "
                f"{context.group(1)[:300].decode(errors='replace') if context else ''}"
            )

    queries = iter([xdsmsg.iti18_request(ctx.signer, ctx.probe_ins(0), ctx.now)
                    for _ in range(count)])

    def query() -> None:
        env, ctype = next(queries)
        response = client.post("/xds/registry", data=env, content_type=ctype)
        if xdsmsg.registry_status(response.data) != "Success":
            raise RuntimeError("ITI-18 failed")

    from sqlalchemy import event

    engine = app.extensions["espace"].session_factory.kw["bind"]
    statements: list[str] = []

    def count_statement(*args: Any) -> None:
        statements.append(str(args[2]).split(None, 1)[0].upper())

    event.listen(engine, "before_cursor_execute", count_statement)
    for name, call in (("iti41", submit), ("iti18", query)):
        statements.clear()
        try:
            call()  # one request, counted: SQL statements per transaction
        except RuntimeError as exc:  # keep profiling the other transaction
            res.notes.append(f"{name} not profiled: {exc}")
            continue
        kinds: dict[str, int] = {}
        for kind in statements:
            kinds[kind] = kinds.get(kind, 0) + 1
        res.data[f"{name}:sql_statements_per_request"] = f"{len(statements)} {kinds}"
        text = _profile(call, count - 1)
        (results_dir / f"profile-{name}.txt").write_text(text)
        top = [line.rstrip() for line in text.splitlines() if line.strip()][:45]
        res.data[f"profile-{name}"] = f"{results_dir.name}/profile-{name}.txt"
        res.data.setdefault("top", []).extend([f"== {name} ({count - 1} requests)", *top])
    event.remove(engine, "before_cursor_execute", count_statement)
    app.extensions["espace"].session_factory.kw["bind"].dispose()
    return res
