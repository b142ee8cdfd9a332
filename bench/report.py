"""``bench/report.md``: the goals table of issue 8 with the measured figures, then the details.

Every figure is ``median (min, max, n)``; a verdict compares the median with the goal and says
by how much it misses. Rows whose workload did not run say "not run: reason".
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.stats import Figure

Verdict = tuple[str, str]  # (measured text, verdict)


def _f(fig: Figure | None, digits: int = 1) -> str:
    return fig.text(digits) if fig is not None and fig.runs else "—"


def _status(results: dict[str, Any], key: str) -> str | None:
    res = results.get(key)
    if res is None:
        return "not run: section not reached"
    if res.status != "ok":
        return f"{res.status}: {res.reason}"
    return None


def _meets(value: float, goal: float, *, at_most: bool) -> str:
    if at_most:
        return "met" if value <= goal else f"NOT met ({value / goal:.1f}x the goal)"
    return "met" if value >= goal else f"NOT met ({value / goal:.2f}x the goal)"


def goal_rows(results: dict[str, Any], meta: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []

    def row(workload: str, goal: str, key: str, body: Callable[[Any], Verdict]) -> None:
        problem = _status(results, key)
        if problem:
            rows.append((workload, goal, problem, "not run"))
            return
        measured, verdict = body(results[key])
        rows.append((workload, goal, measured, verdict))

    def iti41(res: Any) -> Verdict:
        t, r = res.figures.get("throughput"), res.figures.get("ratio")
        verdicts = []
        if t:
            verdicts.append("throughput " + _meets(t.median, 200, at_most=False))
        if r:
            verdicts.append("ratio " + _meets(r.median, 3, at_most=True))
        return (f"{_f(t)} submissions/s; {_f(r, 2)} the floor "
                f"(floor {_f(res.figures.get('floor_ms'), 2)}, face "
                f"{_f(res.figures.get('face_ms'), 2)} per submission)", "; ".join(verdicts))

    row("ITI-41, one 50 KB CDA, MTOM, VIHF verified, policy, trace, notification, commit",
        ">= 200 submissions/s sustained; <= 3x the floor", "iti41", iti41)

    def iti18(res: Any) -> Verdict:
        steps = res.data.get("steps", [])
        parts, verdicts = [], []
        first = None
        for step in steps:
            p50, p99 = res.figures.get(f"{step}:p50"), res.figures.get(f"{step}:p99")
            if not p50 or not p99:
                continue
            parts.append(f"{step}: p50 {_f(p50)} / p99 {_f(p99)} (raw SQL p50 "
                         f"{_f(res.figures.get(f'{step}:floor_p50'), 2)})")
            if first is None:
                first = (step, p50.median)
            last = (step, p50.median, p99.median)
        if first is None:
            return ("no step measured", "not run")
        verdicts.append(f"p50 at {last[0]} " + _meets(last[1], 5, at_most=True))
        verdicts.append(f"p99 at {last[0]} " + _meets(last[2], 20, at_most=True))
        if len(parts) > 1:
            verdicts.append(f"growth {first[0]} -> {last[0]}: p50 x{last[1] / first[1]:.2f}")
        if "10M" not in steps:
            verdicts.append("10 M step not run (see Scale)")
        return ("; ".join(parts), "; ".join(verdicts))

    row("ITI-18 FindDocuments, patient with 200 entries, registry of 10 M",
        "p50 <= 5 ms, p99 <= 20 ms; sub-linear growth 100 k -> 1 M -> 10 M", "iti18", iti18)

    def iti43(res: Any) -> Verdict:
        r = res.figures.get("ratio")
        return (f"{_f(res.figures.get('face'))} vs raw {_f(res.figures.get('floor'))}; "
                f"ratio {_f(r, 3)}", _meets(r.median, 0.8, at_most=False) if r else "—")

    row("ITI-43, 1 MB document", ">= 0.8x the raw read throughput", "iti43", iti43)

    def fhir_mixed(res: Any) -> Verdict:
        per_core = res.figures.get("mixed_per_core")
        ratio = res.figures.get("peer_ratio")
        text = (f"{_f(res.figures.get('mixed_rps'))} req/s over {meta.get('cpus')} cores; "
                f"{_f(per_core)} per server CPU-second")
        verdict = "per core " + _meets(per_core.median, 250, at_most=False) if per_core else "—"
        if ratio is not None and ratio.runs:
            text += (f"; Medplum router {_f(res.figures.get('peer_rps'))} req/s, "
                     f"{_f(res.figures.get('peer_per_core'))} per CPU-second; "
                     f"ours / Medplum {_f(ratio, 2)}")
            verdict += "; vs Medplum " + _meets(ratio.median, 1, at_most=False)
        else:
            text += "; Medplum: not run"
            verdict += "; Medplum ratio not run"
        return text, verdict

    row("FHIR mixed read/write/search, authenticated, traced",
        ">= 250 requests/s per core; >= 1x the Medplum router side by side", "fhir", fhir_mixed)

    def fhir_search(res: Any) -> Verdict:
        growth = results.get("obs_growth")
        if growth is not None and any(k.endswith(":p99") for k in growth.figures):
            parts, last = [], None
            for step in growth.data.get("steps", []):
                p50, p99 = growth.figures.get(f"{step}:p50"), growth.figures.get(f"{step}:p99")
                if not p99 or not p99.runs:
                    continue
                scan = growth.data.get(f"{step}:seq_scan")
                parts.append(f"{step}: p50 {_f(p50)} / p99 {_f(p99)} (raw SQL p99 "
                             f"{_f(growth.figures.get(f'{step}:floor_p99'), 2)}"
                             + ("; plan: no seq scan" if scan is False else "")
                             + ("; plan: SEQ SCAN" if scan else "") + ")")
                last = (step, p99.median)
            if last is not None:
                verdict = f"p99 at {last[0]} " + _meets(last[1], 20, at_most=True)
                if last[0] != "10M":
                    verdict += "; 10 M observations not measured"
                    if growth.notes:
                        verdict += f" ({growth.notes[-1]})"
                    if growth.status != "ok":
                        verdict += f" ({growth.status}: {growth.reason})"
                return "; ".join(parts), verdict
        p99 = res.figures.get("search_p99")
        obs = next((x["observations"] for x in meta.get("loads", [])
                    if x.get("what") == "observations"), 0)
        return (f"p99 {_f(p99)} with {obs:,} observations (raw SQL p99 "
                f"{_f(res.figures.get('floor_p99'), 2)})",
                (_meets(p99.median, 20, at_most=True) if p99 else "—")
                + ("" if obs >= 10_000_000 else "; 10 M observations not loaded"))

    row("FHIR Observation search, 10 M observations", "p99 <= 20 ms", "fhir", fhir_search)

    def pdp(res: Any) -> Verdict:
        auth = res.figures.get("authorize_operation")
        share = res.data.get("share_of_request_percent")
        text = f"authorize_operation {_f(auth, 2)}; visible_documents " \
               f"{_f(res.figures.get('visible_documents'), 2)}"
        verdict = _meets(auth.median, 20, at_most=True) if auth else "—"
        if share is not None:
            text += f"; {share:.3f} % of an ITI-18 request (p50)"
            verdict += "; share " + _meets(share, 5, at_most=True)
        return text, verdict

    row("Policy decision", "<= 20 µs, <= 5 % of request time", "policy", pdp)

    def mail(res: Any) -> Verdict:
        text = f"{_f(res.figures.get('rate'))} messages/s ({_f(res.figures.get('mbs'))})"
        ratio = res.figures.get("peer_ratio")
        if ratio is None or not ratio.runs:
            why = res.notes[-1] if res.notes else "peer skipped"
            return text + f"; Postfix -> smtp-sink: not run ({why})", "ratio not run"
        return (text + f"; Postfix -> smtp-sink {_f(res.figures.get('peer_rate'))} messages/s "
                f"({_f(res.figures.get('peer_mbs'))}); ours / Postfix {_f(ratio, 2)}",
                _meets(ratio.median, 0.5, at_most=False))

    row("SMTP intake, 1 MB XDM attachment, committed before 250",
        ">= 0.5x Postfix -> smtp-sink", "smtp", mail)

    def memory(res: Any) -> Verdict:
        rss = res.figures.get("rss")
        big = results.get("memory_50mb")
        text = f"RSS per worker {_f(rss)} (peak {_f(res.figures.get('hwm'))})"
        verdict = ("RSS " + _meets(rss.max, 300, at_most=True)) if rss else "—"
        if big is not None and big.status == "ok":
            ratio = big.figures.get("ratio")
            text += (f"; 50 MB document: peak +{_f(big.figures.get('peak_growth_mb'))} "
                     f"= {_f(ratio, 2)} its size")
            if ratio:
                verdict += "; 50 MB " + _meets(ratio.median, 2, at_most=True)
        elif big is not None:
            text += f"; 50 MB document: {big.status}: {big.reason}"
        return text, verdict

    row("Memory", "<= 300 MB RSS per worker under load; a 50 MB attachment streamed with peak "
        "<= 2x its size", "memory", memory)
    return rows


SCALE_RUNS = "scale-runs.md"


def write_report(path: Path, meta: dict[str, Any], results: dict[str, Any]) -> None:
    lines = [
        f"# Benchmarks ({meta.get('mode')} run)",
        "",
        f"Run at {meta.get('started_at')} on `{meta.get('host')}`: {meta.get('cpus')} CPUs, "
        f"Python {meta.get('python')}, database {meta.get('database')}, "
        f"{meta.get('workers', '?')} gunicorn workers x {meta.get('threads_per_worker', '?')} "
        f"threads, {meta.get('repeats')} rounds per figure, {meta.get('seconds')} s in all. "
        f"Load average at start {tuple(round(x, 1) for x in meta.get('load_average_at_start', ()))}"
        f", at end {tuple(round(x, 1) for x in meta.get('load_average_at_end', ()))} "
        "(shared machine: read the ratios, measured in the same rounds, before absolute figures).",
        "",
        "Every figure: median (min, max, n = rounds). Reproduce: `make bench-quick` or "
        "`make bench` (`python -m bench.run --full`).",
        "",
        "## Goals",
        "",
        "| workload | goal | measured | verdict |",
        "|---|---|---|---|",
    ]
    for workload, goal, measured, verdict in goal_rows(results, meta):
        lines.append(f"| {workload} | {goal} | {measured} | {verdict} |")
    scale = path.parent / SCALE_RUNS
    if meta.get("mode") == "full" and scale.is_file():
        # runs that a single report cannot hold (the disk takes either the 10 M registry or the
        # 10 M observations): written by hand from their own reports, kept beside this one
        lines += ["", scale.read_text().strip()]
    lines += ["", "## Data loaded", "",
              "| what | items | seconds | items/s | items per PostgreSQL CPU-second (insert) "
              "| insert / indexes / vacuum s | database after |",
              "|---|---|---|---|---|---|---|"]
    for load in meta.get("loads", []):
        rows = load.get("entries") or load.get("observations") or 0
        extra = f" (+{load['index_rows']:,} index rows)" if load.get("index_rows") else ""
        phases = " / ".join(str(load.get(k, "—")) for k in
                            ("insert_seconds", "index_seconds", "vacuum_seconds"))
        size = load.get("database_bytes")
        size_text = f"{size / 1e9:.2f} GB" if size else "—"
        rate = rows / load["seconds"] if load.get("seconds") else 0
        cpu = load.get("insert_cpu_seconds")
        per_cpu = f"{rows / cpu:,.0f}" if cpu else "—"
        lines.append(f"| {load['what']} | {rows:,}{extra} | {load['seconds']} | "
                     f"{rate:,.0f} | {per_cpu} | {phases} | {size_text} |")
    lines += ["", "## Details", ""]
    for key, res in results.items():
        lines.append(f"### {res.name} (`{key}`)")
        lines.append("")
        if res.status != "ok":
            lines.append(f"{res.status}: {res.reason}")
            lines.append("")
            continue
        for fig in res.figures.values():
            if fig.runs:
                lines.append(f"- {fig.name}: {fig.text(2)}")
        for note in res.notes:
            lines.append(f"- note: {note}")
        for name, value in res.data.items():
            if name in ("stdout", "traceback", "top") or isinstance(value, dict):
                continue
            lines.append(f"- {name}: {value}")
        if res.data.get("top"):
            lines += ["", "```", *res.data["top"], "```"]
        lines.append("")
    path.write_text("\n".join(lines) + "\n")
