"""Intake throughput of the MSSanté relay: 1 MB IHE_XDM messages over STARTTLS + client cert.

Starts a fresh database (SQLite file by default, or ``--database-url``), the test PKI, one
patient space and the relay on loopback, in a process of its own (``--serve``); then
``--connections`` smtplib clients each send their share of ``--messages`` messages (one TLS
session per client, one message per DATA), each a CDA plus a ~1 MB PDF inside an
``IHE_XDM.ZIP`` (hash and size checked on reception, stored encrypted, committed before the
250). Prints messages/s and MB/s.

    .venv/bin/python -m bench.mail_bench --messages 40 --connections 4

``--target HOST:PORT`` sends the same messages, with the same TLS client, to another SMTP
server instead (the Postfix -> smtp-sink peer of ``bench/peers.py``): no database, no relay.
``--pki-dir`` reuses a test PKI (the peer's certificates) instead of a fresh one.
"""

from __future__ import annotations

import argparse
import os
import smtplib
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from email import policy
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

from sqlalchemy import text

from espace.admin import register_space
from espace.clock import SystemClock
from espace.crypto import DocumentCipher
from espace.trace import TraceSigner
from mes.pki import generate_test_pki
from mes.wiring import build_espace, create_schema
from mssante.prefork import run_prefork
from mssante.smtp_server import start_smtp
from mssante.xdm import build_archive

INS = "279035121518989"
SENDER = "dr.bench@operateur.test.mssante.fr"
CDA = (
    Path(__file__).resolve().parents[1]
    / ".."
    / "shared"
    / "reference"
    / "dmp"
    / "cda"
    / ("TestContenuCDA-3-0_LDL-SES_2022.01.xml")
)


def xdm_message(pdf: bytes, cda: bytes, n: int) -> bytes:
    archive = build_archive(
        [
            (
                "DOC0001.XML",
                cda,
                {
                    "unique_id": f"1.2.250.1.999.7.{n}.1",
                    "mime_type": "text/xml",
                    "type_code": ("11490-0", "2.16.840.1.113883.6.1", "LDL"),
                },
            ),
            (
                "DOC0002.PDF",
                pdf,
                {"unique_id": f"1.2.250.1.999.7.{n}.2", "mime_type": "application/pdf"},
            ),
        ],
        patient_id=f"{INS}^^^&1.2.250.1.213.1.4.10&ISO^NH",
    )
    msg = EmailMessage()
    msg["From"] = SENDER
    msg["To"] = f"{INS}@patient.mssante.fr"
    msg["Subject"] = f"Bench {n}"
    msg["Message-ID"] = make_msgid(domain="operateur.test.mssante.fr")
    msg["X-MSS-CODECDA"] = "11490-0"
    msg["X-MSS-INS"] = "O"
    msg.set_content("Compte rendu")
    msg.add_attachment(archive, maintype="application", subtype="zip", filename="IHE_XDM.ZIP")
    return msg.as_bytes(policy=policy.SMTP)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=40)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--pdf-bytes", type=int, default=1024 * 1024)
    parser.add_argument("--database-url", default=os.environ.get("MES_BENCH_DATABASE_URL", ""))
    parser.add_argument("--pki-dir", type=Path, default=None, help="reuse this test PKI")
    parser.add_argument("--target", default="", help="HOST:PORT of another SMTP server")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1,
                        help="relay processes (MAIL_PROCESSES; default: one per core)")
    parser.add_argument("--serve", action="store_true",
                        help="only run the relay (the bench starts it so, in its own process)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mail-bench-"))
    pki = generate_test_pki(args.pki_dir or work / "pki")
    cda = CDA.read_bytes() if CDA.is_file() else b"<ClinicalDocument/>"
    pdf = os.urandom(args.pdf_bytes)
    if args.target:
        host, _, port = args.target.rpartition(":")
        messages = [xdm_message(pdf, cda, n) for n in range(args.messages)]
        _send(args, pki, host, int(port), messages, "peer")
        return

    if not args.serve:
        # our relay runs in a process of its own, as Postfix does: the clients' TLS and the
        # message generation must not share the server's interpreter (GIL)
        messages = [xdm_message(pdf, cda, n) for n in range(args.messages)]
        command = [sys.executable, "-m", "bench.mail_bench", "--serve",
                   "--pki-dir", str(pki.directory), "--processes", str(args.processes)]
        if args.database_url:
            command += ["--database-url", args.database_url]
        server = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  cwd=str(Path(__file__).resolve().parents[1]))
        try:
            assert server.stdout is not None
            line = server.stdout.readline().decode()
            if not line.startswith("LISTENING "):
                raise SystemExit(f"the relay did not start: {line!r}")
            port, backend = line.split()[1:3]
            _send(args, pki, "127.0.0.1", int(port), messages, backend)
        finally:
            if server.stdin is not None:
                server.stdin.close()
            server.wait(timeout=60)
        return
    _serve(args, work, pki)


def _serve(args: argparse.Namespace, work: Path, pki: Any) -> None:
    """``--serve``: the relay on a free loopback port; prints ``LISTENING <port> <backend>``
    and runs until its standard input closes."""
    settings: dict[str, Any] = {
        "DATABASE_URL": args.database_url or f"sqlite:///{work / 'bench.db'}",
        "DOCUMENT_KEY": DocumentCipher.generate_key(),
        "TRACE_SIGNING_KEY": TraceSigner.generate_key(),
        "PKI_DIR": str(pki.directory),
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": 0,
        "MAIL_MAX_MESSAGE_BYTES": 64 * 1024 * 1024,
    }
    espace = build_espace(settings, clock=SystemClock())
    create_schema(espace)
    with espace.session_factory() as session:
        if (
            session.execute(
                text("SELECT count(*) FROM patient_space WHERE ins = :i"), {"i": INS}
            ).scalar()
            == 0
        ):
            register_space(session, ins=INS, now=espace.clock.now(), ins_oid="1.2.250.1.213.1.4.10")
        session.commit()
    backend = settings["DATABASE_URL"].split(":", 1)[0]
    if args.processes <= 1:
        handle = start_smtp(espace, settings)
        try:
            print(f"LISTENING {handle.port} {backend}", flush=True)
            sys.stdin.read()  # until the bench closes it
        finally:
            handle.stop()
        return
    espace.session_factory.kw["bind"].dispose()  # no connection may cross the fork
    stop = threading.Event()

    def ready(ports: list[int]) -> None:
        print(f"LISTENING {ports[0]} {backend}", flush=True)
        def wait_for_eof() -> None:
            sys.stdin.read()  # until the bench closes it
            stop.set()

        threading.Thread(target=wait_for_eof, daemon=True).start()

    run_prefork(settings, args.processes, ready=ready, stop=stop)


def _send(args: argparse.Namespace, pki: Any, host: str, port: int, messages: list[bytes],
          backend: str) -> None:
    """Send ``messages`` over ``args.connections`` STARTTLS sessions; print the rates."""
    size = statistics.mean(len(m) for m in messages)
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    ctx.load_cert_chain(pki.mssante_client_cert, pki.mssante_client_key)
    latencies: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def client(share: list[bytes]) -> None:
        try:
            with smtplib.SMTP(host, port, timeout=120) as smtp:
                smtp.starttls(context=ctx)
                for raw in share:
                    started = time.perf_counter()
                    smtp.sendmail(SENDER, [f"{INS}@patient.mssante.fr"], raw)
                    with lock:
                        latencies.append(time.perf_counter() - started)
        except BaseException as exc:  # reported below
            errors.append(exc)

    shares = [messages[i :: args.connections] for i in range(args.connections)]
    threads = [threading.Thread(target=client, args=(share,)) for share in shares]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise SystemExit(f"{len(errors)} client(s) failed: {errors[0]!r}")
    latencies.sort()
    print(
        f"{len(messages)} messages of {size / 1e6:.2f} MB over {args.connections} TLS "
        f"connection(s), {backend}: {len(messages) / elapsed:.1f} messages/s, "
        f"{len(messages) * size / elapsed / 1e6:.1f} MB/s, latency p50 "
        f"{latencies[len(latencies) // 2] * 1000:.0f} ms, p95 "
        f"{latencies[int(len(latencies) * 0.95) - 1] * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
