"""Crash tests (issue 7, "Crashes"): ``kill -9`` a ``mes serve`` process (temporary SQLite
database) at a random moment while ITI-41 submissions, FHIR transactions and SMTP deliveries
are in flight; restart it; then check the invariants of DESIGN.md §"One request" step 5:

- every acknowledged submission / transaction / message is there (nothing acknowledged lost);
- no registry entry without its document bytes, no document bytes without their entry;
- every trace chain verifies (``espace.trace.verify_chains``);
- exactly one ``new_document`` notification per stored document (none lost, none doubled);
- after the restart the server answers, and the senders' retries are answered idempotently.

``MES_CRASH_RUNS`` runs (5 by default; the slow test does 100).
"""

from __future__ import annotations

import os
import random
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from xds_support import (
    AUTHOR,
    ITI41,
    PATIENT,
    REPOSITORY,
    Doc,
    envelope_bytes,
    parse_response,
    provide_and_register,
    setup_space,
)

from espace.clock import FrozenClock, SystemClock
from espace.crypto import DocumentCipher
from espace.models import DocumentContent, DocumentEntryRow, NotificationOutbox, PatientSpace
from espace.trace import TraceSigner, verify_chains
from habilitation.model import ActorKind
from mes.tokens import issue_token
from mes.wiring import build_espace, create_schema
from xds.mtom import build_mtom_request

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "mssante"))
from mailkit import (  # noqa: E402
    PATIENT_ADDRESS,
    PATIENT_INS,
    SENDER,
    SENDER_ID,
    TEST_INS_OID,
    build_message,
    client_context,
)
from soap_kit import signed_vihf  # noqa: E402

RUNS = int(os.environ.get("MES_CRASH_RUNS", "5"))
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    env: dict[str, str]
    settings: dict[str, Any]
    http_port: int
    smtp_port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(ROOT / ".venv" / "bin" / "mes"), "serve", "--no-https"],
                env=self.env,
                cwd=str(ROOT),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                if httpx.get(self.base + "/healthz", timeout=1).status_code == 200:
                    with socket.create_connection(("127.0.0.1", self.smtp_port), timeout=1):
                        return
            except (httpx.HTTPError, OSError):
                time.sleep(0.1)
        raise AssertionError("mes serve did not start: " + self.log.read_text()[-3000:])

    def kill9(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill9()


@pytest.fixture
def server(tmp_path: Path, pki: Any) -> Iterator[Server]:
    settings: dict[str, Any] = {
        "VAR_DIR": str(tmp_path / "var"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'crash.db'}",
        "DOCUMENT_KEY": DocumentCipher.generate_key(),
        "TRACE_SIGNING_KEY": TraceSigner.generate_key(),
        "PKI_DIR": str(pki.directory),
        "LOG_JSON": False,
        "HTTP_PORT": _free_port(),
        "SMTP_PORT": _free_port(),
    }
    espace = build_espace(settings, clock=SystemClock())
    create_schema(espace)
    clock = FrozenClock()
    clock.set(datetime.now(UTC).replace(microsecond=0))
    setup_space(espace, clock, ins=PATIENT)
    from espace.admin import register_space, upsert_professional

    with espace.session_factory() as session:
        register_space(
            session,
            ins=PATIENT_INS,
            now=clock.now(),
            family_name="PAT",
            given_names="M",
            birth_date=date(1979, 3, 15),
            sex="F",
            ins_oid=TEST_INS_OID,
        )
        upsert_professional(
            session,
            SENDER_ID,
            name="Dr Jean Martin",
            profession="10",
            specialty="SM26",
            mssante_address=SENDER,
        )
        session.commit()
    espace.session_factory.kw["bind"].dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MES_")}
    env.update({f"MES_{k}": str(v) for k, v in settings.items()})
    issue_token(settings, subject=PATIENT, kind=ActorKind.PATIENT, patient=PATIENT)  # key file
    srv = Server(
        env, settings, settings["HTTP_PORT"], settings["SMTP_PORT"], tmp_path / "serve.log"
    )
    try:
        yield srv
    finally:
        srv.stop()


@dataclass
class Acked:
    documents: set[str] = field(default_factory=set)
    fhir: set[str] = field(default_factory=set)
    mails: set[str] = field(default_factory=set)
    sent: list[tuple[str, bytes, str, str]] = field(default_factory=list)  # for the retries


def _workload(srv: Server, pki: Any, acked: Acked, stop: threading.Event, n: int) -> None:
    clock = FrozenClock()
    clock.set(datetime.now(UTC).replace(microsecond=0))
    token = issue_token(srv.settings, subject=PATIENT, kind=ActorKind.PATIENT, patient=PATIENT)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}

    def iti41() -> None:
        with httpx.Client(base_url=srv.base, timeout=10) as client:
            i = 0
            while not stop.is_set():
                i += 1
                doc = Doc()
                body, parts = provide_and_register([doc, Doc(symbolic_id="Document02")])
                data = envelope_bytes(ITI41, body, signed_vihf(pki, clock, AUTHOR, PATIENT))
                payload, ct = build_mtom_request(data, parts, action=ITI41)
                acked.sent.append((doc.unique_id, body_bytes(body), ct, "iti41"))
                try:
                    r = client.post(REPOSITORY, content=payload, headers={"Content-Type": ct})
                except httpx.HTTPError:
                    return
                soap = parse_response(r.status_code, r.headers.get("content-type", ""), r.content)
                if soap.status_value() == "Success":
                    uids = {
                        e.get("value")
                        for e in body.iter()
                        if e.get("identificationScheme")
                        == "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
                    }
                    acked.documents |= {u for u in uids if u}

    def fhir() -> None:
        with httpx.Client(base_url=srv.base, timeout=10) as client:
            i = 0
            while not stop.is_set():
                i += 1
                bundle = {
                    "resourceType": "Bundle",
                    "type": "transaction",
                    "entry": [
                        {
                            "fullUrl": f"urn:uuid:00000000-0000-4000-8000-{n:04d}{i:08d}",
                            "resource": {
                                "resourceType": "Condition",
                                "code": {"text": f"c{n}-{i}"},
                                "clinicalStatus": {
                                    "coding": [
                                        {
                                            "system": "http://terminology.hl7.org/CodeSystem/"
                                            "condition-clinical",
                                            "code": "active",
                                        }
                                    ]
                                },
                            },
                            "request": {"method": "POST", "url": "Condition"},
                        },
                        {
                            "resource": {
                                "resourceType": "Condition",
                                "code": {"text": f"d{n}-{i}"},
                            },
                            "request": {"method": "POST", "url": "Condition"},
                        },
                    ],
                }
                try:
                    r = client.post("/fhir", json=bundle, headers=headers)
                except httpx.HTTPError:
                    return
                if r.status_code == 200:
                    for entry in r.json().get("entry", []):
                        location = entry.get("response", {}).get("location", "")
                        acked.fhir.add(location.split("/")[1] if "/" in location else location)

    def smtp() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            mid = f"<crash-{n}-{i}-{random.random()}@operateur.test.mssante.fr>"
            raw = build_message(message_id=mid, subject=f"m{n}-{i}")
            try:
                with smtplib.SMTP("127.0.0.1", srv.smtp_port, timeout=10) as client:
                    client.ehlo("op.test")
                    client.starttls(context=client_context(pki))
                    client.ehlo("op.test")
                    client.sendmail(SENDER, [PATIENT_ADDRESS], raw)
                acked.mails.add(mid.strip("<>"))
            except (smtplib.SMTPException, OSError):
                return

    threads = [threading.Thread(target=f) for f in (iti41, iti41, fhir, fhir, smtp)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)


def body_bytes(body: Any) -> bytes:
    from lxml import etree

    return bytes(etree.tostring(body))


def _check_invariants(srv: Server, acked: Acked) -> dict[str, int]:
    from espace.fhir_store import FhirResourceRow
    from espace.mailbox import MailMessage

    espace = build_espace(srv.settings, clock=SystemClock())
    try:
        with espace.session_factory() as session:
            space_id = session.execute(
                select(PatientSpace.id).where(PatientSpace.ins == PATIENT)
            ).scalar_one()
            entries = set(
                session.execute(
                    select(DocumentEntryRow.unique_id).where(DocumentEntryRow.space_id == space_id)
                ).scalars()
            )
            contents = set(
                session.execute(
                    select(DocumentContent.unique_id).where(DocumentContent.space_id == space_id)
                ).scalars()
            )
            assert acked.documents <= entries, acked.documents - entries  # nothing acked lost
            assert entries == contents, entries ^ contents  # no entry w/o bytes, no orphan
            notes = list(
                session.execute(
                    select(NotificationOutbox.dedup_key).where(
                        NotificationOutbox.category == "new_document",
                        NotificationOutbox.space_id == space_id,
                    )
                ).scalars()
            )
            assert len(notes) == len(set(notes))  # never doubled
            assert {k.rsplit(":", 1)[-1] for k in notes} == entries  # never lost
            fhir_ids = set(session.execute(select(FhirResourceRow.id)).scalars())
            assert acked.fhir <= fhir_ids, acked.fhir - fhir_ids
            mails = set(session.execute(select(MailMessage.message_id)).scalars())
            assert acked.mails <= mails, acked.mails - mails
            assert verify_chains(session, espace.signer) == []
            return {"documents": len(entries), "fhir": len(fhir_ids), "mails": len(mails)}
    finally:
        espace.session_factory.kw["bind"].dispose()


def _one_run(srv: Server, pki: Any, rng: random.Random, run: int) -> dict[str, int]:
    started = time.monotonic()
    srv.start()
    if os.environ.get("MES_CRASH_DEBUG"):
        print(f"run {run}: started in {time.monotonic() - started:.1f}s")
    acked = Acked()
    stop = threading.Event()
    worker = threading.Thread(target=_workload, args=(srv, pki, acked, stop, run))
    worker.start()
    deadline = time.monotonic() + 30  # first requests warm the process up (lazy imports)
    while time.monotonic() < deadline and not (acked.documents and acked.fhir and acked.mails):
        time.sleep(0.05)
    time.sleep(rng.uniform(0.05, 1.5))
    srv.kill9()
    stop.set()
    worker.join(timeout=60)
    figures = _check_invariants(srv, acked)
    if os.environ.get("MES_CRASH_DEBUG"):
        print(
            f"run {run}: acked {len(acked.documents)} docs {len(acked.fhir)} fhir "
            f"{len(acked.mails)} mails; {figures}; t={time.monotonic() - started:.1f}s"
        )
    # the next run's start is the restart check (the server comes back on the same database)
    figures.update(acked=len(acked.documents) + len(acked.fhir) + len(acked.mails))
    return figures


def test_kill9_during_traffic_loses_nothing_acknowledged(server: Server, pki: Any) -> None:
    rng = random.Random(int(os.environ.get("MES_CRASH_SEED", "11")))
    totals = {"acked": 0}
    for run in range(RUNS):
        figures = _one_run(server, pki, rng, run)
        totals["acked"] += figures["acked"]
    server.start()  # restarts after the last crash too
    server.stop()
    assert totals["acked"] > 0  # the crashes really hit in-flight traffic
    print(f"crash runs: {RUNS}, acknowledged operations checked: {totals['acked']}")


@pytest.mark.slow
def test_hundred_kill9_runs(server: Server, pki: Any) -> None:
    rng = random.Random(2026)
    acked = 0
    for run in range(100):
        acked += _one_run(server, pki, rng, run)["acked"]
    server.start()
    server.stop()
    assert acked > 0
    print(f"crash runs: 100, acknowledged operations checked: {acked}")
