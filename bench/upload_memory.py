"""Peak memory of one large ITI-41 upload (issue #8), measured in this process alone.

The app runs in-process (Flask's test client) on a database of its own; the VmHWM (peak RSS) is
reset through ``/proc/self/clear_refs`` once the request is built, so the growth printed is what
the server side of one ITI-41 costs: MTOM parsing, hash, CDA check, encryption and the INSERT.
An ITI-43 of the same document then checks that the bytes come back identical.

Usage::

    python -m bench.upload_memory [--database-url URL | --sqlite] [--size 50000000]
        [--tracemalloc]

``--tracemalloc`` also prints the top Python allocation sites at the peak (slower).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from bench import xdsmsg
from bench.db import DEFAULT_PG_URL, BenchDb
from bench.server import server_settings


def _status() -> dict[str, int]:
    values: dict[str, int] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            name, amount, _ = line.split()
            values[name.rstrip(":")] = int(amount) * 1024
    return values


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS (proc(5))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.upload_memory", description=__doc__)
    parser.add_argument("--database-url", default=DEFAULT_PG_URL)
    parser.add_argument("--sqlite", action="store_true", help="a SQLite file, even if PG answers")
    parser.add_argument("--schema", default="uploadmem")
    parser.add_argument("--size", type=int, default=50_000_000)
    parser.add_argument("--tracemalloc", action="store_true")
    args = parser.parse_args(argv)

    from espace.admin import link_professional, register_space, upsert_professional
    from mes.app import create_app
    from mes.pki import generate_test_pki
    from mes.wiring import build_espace

    work = Path(tempfile.mkdtemp(prefix="mes-upload-mem-"))
    pki = generate_test_pki(work / "pki")
    db = BenchDb.choose("" if args.sqlite else args.database_url, work, schema=args.schema)
    settings = server_settings(db.url, pki.directory, work,
                               MAX_ATTACHMENT_BYTES=64 * 1024 * 1024)
    db.reset()
    now = datetime.now(UTC)
    ins = "279035121518989"
    espace = build_espace(settings)
    with espace.session_factory() as session:
        space = register_space(session, ins=ins, now=now, ins_oid=xdsmsg.INS_OID)
        upsert_professional(
            session,
            xdsmsg.AUTHOR,
            name="Dr Bench",
            profession="10",
            specialty="SM26",
            structure_id=xdsmsg.STRUCTURE,
        )
        link_professional(
            session, space, xdsmsg.AUTHOR, "authorized", declared_by=xdsmsg.AUTHOR, now=now
        )
        session.commit()
    espace.session_factory.kw["bind"].dispose()
    app = create_app(settings)
    client = app.test_client()
    signer = xdsmsg.Signer.from_pki(pki)

    # warm up (imports, first connection, parsers) with a small document
    small = xdsmsg.iti41_request(signer, ins, xdsmsg.cda(ins, 20_000), now)
    response = client.post("/xds/repository", data=small[0], content_type=small[1])
    assert xdsmsg.registry_status(response.data) == "Success", response.data[:2000]

    content = xdsmsg.cda(ins, args.size)
    size, digest = len(content), hashlib.sha1(content).hexdigest()
    payload, ctype, uid, _ = xdsmsg.iti41_request(signer, ins, content, now)
    del content
    gc.collect()
    if args.tracemalloc:
        import tracemalloc

        tracemalloc.start(25)
    _reset_peak()
    before = _status()
    response = client.post("/xds/repository", data=payload, content_type=ctype)
    after = _status()
    if args.tracemalloc:
        snapshot = tracemalloc.take_snapshot()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"tracemalloc peak {peak / 1e6:.1f} MB")
        for stat in snapshot.statistics("traceback")[:5]:
            print(stat)
    status = xdsmsg.registry_status(response.data)
    growth = after["VmHWM"] - before["VmRSS"]
    print(
        f"database={db.kind} size={size / 1e6:.1f} MB status={status} "
        f"{xdsmsg.error_codes(response.data)}"
    )
    print(f"peak growth {growth / 1e6:.1f} MB = {growth / size:.2f}x the document")
    del payload, response
    gc.collect()

    env, ctype43 = xdsmsg.iti43_request(signer, ins, uid, now)
    got = client.post("/xds/repository", data=env, content_type=ctype43)
    items = list(got.iter_encoded())
    biggest = max(items, key=len)
    same = len(biggest) == size and hashlib.sha1(biggest).hexdigest() == digest
    print(f"ITI-43: {got.status_code}, identical bytes: {same}")
    db.drop()
    return 0 if status == "Success" and same else 1


if __name__ == "__main__":
    raise SystemExit(main())
