"""Fuzzing with hypothesis (issue 7, "Fuzzing"): the SOAP/MTOM intake, the VIHF reader, the FHIR
JSON intake and the MIME/XDM parser. For every input: no crash (no 5xx, only the parser's own
error types), no hang over 2 s, and nothing written by a refused input.

Each intake is fuzzed twice:

- **end to end**, in process: the WSGI app through Flask's test client (no sockets), the real
  endpoint, PDP and trace writes; properties: no 5xx, the answer is a SOAP fault / XDS error /
  FHIR OperationOutcome when refused, and a refused input commits no INSERT/UPDATE/DELETE to
  any table but the trace (``WriteLog``, from SQLAlchemy's engine events); the trace chains
  verify at the end;
- **parser only**: the same inputs given straight to the parsing functions the endpoint calls
  (``xds.mtom.parse_mtom`` + ``xds.xml.parse_xml`` + the envelope check + XOP resolution;
  ``xds.vihf.verify_vihf``; ``json.loads`` + ``fhir_server.models.validate``;
  ``mssante.mime.parse_message``, ``mssante.xdm.read_archive``); property: only the parser's own
  error types escape, and a mutated VIHF that still verifies names the signed identity.

Sizes: the default tests try ``MES_FUZZ_EXAMPLES`` inputs per target (200); the slow
``test_fuzz_long[...]`` ``MES_FUZZ_LONG_EXAMPLES`` (2,000). The issue's long run is
``MES_FUZZ_LONG_EXAMPLES=100000 pytest -m slow tests/security/test_sec_fuzz.py``.
``MES_FUZZ_REPORT=file.jsonl`` appends one line of figures per target (inputs, seconds, CPU
seconds, refused, accepted, 5xx, rows written by refused inputs, max latency), and a partial
line every 5,000 inputs. Inputs are built from one number hypothesis draws (``mutated``,
``fhir_inputs``): hypothesis' per-draw cost would otherwise dominate a 100,000-input run.
On SQLite the end-to-end tests keep the database on ``/dev/shm`` when there is one (commits
without a disk fsync; the code path is the same): ``MES_FUZZ_DISK=1`` keeps it on disk.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sec_world import FHIR, PATIENTS, World, build_world
from soap_kit import signed_vihf
from sqlalchemy import event, func, select
from xds_support import (
    AUTHOR,
    ITI18,
    ITI41,
    REGISTRY,
    REPOSITORY,
    Doc,
    envelope_bytes,
    find_documents,
    provide_and_register,
)

from espace.clock import FrozenClock
from espace.models import TraceRecord
from espace.service import Espace
from habilitation.model import ActorKind
from xds.mtom import build_mtom_request


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, "") or default)


EXAMPLES = _env_int("MES_FUZZ_EXAMPLES", 200)
LONG_EXAMPLES = _env_int("MES_FUZZ_LONG_EXAMPLES", 2000)
MAX_SECONDS = 2.0
POSTGRES_RUN = bool(os.environ.get("MES_TEST_DATABASE_URL"))
PATIENT_A = PATIENTS[0]


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,  # nothing written under the work tree; failures print their input
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )


# ------------------------------------------------------------------ figures of a run
@dataclass
class FuzzStats:
    """What one target's run did; printed, and appended to ``MES_FUZZ_REPORT`` when set."""

    target: str
    backend: str = "postgresql" if POSTGRES_RUN else "sqlite"
    inputs: int = 0
    refused: int = 0
    accepted: int = 0
    server_errors: int = 0  # 5xx answers (each one fails the property)
    unexpected_exceptions: int = 0  # exceptions out of a parser that are not its own errors
    known_bug_inputs: int = 0  # inputs classified as an already reported open bug
    rows_written_by_refused: int = 0
    max_latency_s: float = 0.0
    over_budget_reruns: int = 0  # inputs over MAX_SECONDS, re-run once (a real hang reproduces)
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # this process' CPU time: the figure a loaded machine keeps
    _started: float = field(default_factory=time.monotonic, repr=False)
    _cpu_started: float = field(default_factory=time.process_time, repr=False)

    def timed(self, call: Callable[[], Any]) -> Any:
        """Run ``call``; over MAX_SECONDS, run it again: a real hang reproduces, a scheduling
        hiccup of a loaded machine does not (hypothesis would report the latter as flaky)."""
        self.progress()
        started = time.monotonic()
        result = call()
        elapsed = time.monotonic() - started
        self.max_latency_s = max(self.max_latency_s, elapsed)
        if elapsed >= MAX_SECONDS:
            self.over_budget_reruns += 1
            started = time.monotonic()
            result = call()
            assert time.monotonic() - started < MAX_SECONDS, "hang reproduced"
        return result

    def line(self, **extra: Any) -> dict[str, Any]:
        line = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        line["seconds"] = round(time.monotonic() - self._started, 1)
        line["max_latency_s"] = round(self.max_latency_s, 3)
        line["cpu_seconds"] = round(time.process_time() - self._cpu_started, 1)
        return {**line, **extra}

    def progress(self) -> None:
        """Every 5,000 inputs of a long run, a partial line in the report."""
        if self.inputs % 5_000 == 0:
            self._write(self.line(partial=True))

    def finish(self) -> None:
        line = self.line()
        self.seconds = line["seconds"]
        rate = self.inputs / self.seconds if self.seconds else 0.0
        print(f"\nfuzz {json.dumps(line)} ({rate:.0f} inputs/s)")
        self._write(line)

    @staticmethod
    def _write(line: dict[str, Any]) -> None:
        report = os.environ.get("MES_FUZZ_REPORT")
        if report:
            with open(report, "a", encoding="utf-8") as out:
                out.write(json.dumps(line) + "\n")


# ------------------------------------------------------------------ fixtures
@pytest.fixture
def settings_fast(settings: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The suite's settings with the SQLite file on tmpfs (see the module docstring)."""
    shm = Path("/dev/shm")
    if POSTGRES_RUN or os.environ.get("MES_FUZZ_DISK") or not shm.is_dir():
        yield settings
        return
    directory = tempfile.mkdtemp(prefix="mes-fuzz-", dir=shm)
    try:
        yield {**settings, "DATABASE_URL": f"sqlite:///{directory}/fuzz.db"}
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def fast_espace(
    settings_fast: dict[str, Any],
    settings: dict[str, Any],
    clock: FrozenClock,
    request: pytest.FixtureRequest,
) -> Iterator[Espace]:
    """An Espace on ``settings_fast`` (the suite's ``espace`` when nothing moved)."""
    if settings_fast is settings:
        yield request.getfixturevalue("espace")
        return
    from mes.wiring import build_espace, create_schema

    service = build_espace(settings_fast, clock=clock)
    create_schema(service)
    try:
        yield service
    finally:
        service.session_factory.kw["bind"].dispose()


@pytest.fixture
def fast_client(settings_fast: dict[str, Any], fast_espace: Espace) -> FlaskClient:
    from mes.app import create_app

    app: Flask = create_app(settings_fast, espace=fast_espace)
    app.config["TESTING"] = True
    return app.test_client()


@pytest.fixture
def world(
    fast_espace: Espace,
    settings_fast: dict[str, Any],
    clock: FrozenClock,
    pki: Any,
    fast_client: FlaskClient,
) -> World:
    return build_world(fast_espace, settings_fast, clock, pki, fast_client, with_mail=False)


TRACE_TABLES = frozenset({"trace_record", "trace_head", "trace_checkpoint"})
_WRITE = re.compile(r'^\s*(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)', re.I)


class WriteLog:
    """The tables of every committed INSERT/UPDATE/DELETE, from SQLAlchemy's engine events
    (``after_cursor_execute``, ``commit``, ``rollback``): a refused input may write the trace
    (its refusal is traced) and nothing else. Cheaper than counting rows around each input,
    and it sees updates and deletes in every table too."""

    def __init__(self, espace: Espace) -> None:
        self.engine = espace.session_factory.kw["bind"]
        self.pending: dict[int, list[str]] = {}
        self.committed: list[str] = []
        event.listen(self.engine, "after_cursor_execute", self._executed)
        event.listen(self.engine, "commit", self._commit)
        event.listen(self.engine, "rollback", self._rollback)

    def close(self) -> None:
        event.remove(self.engine, "after_cursor_execute", self._executed)
        event.remove(self.engine, "commit", self._commit)
        event.remove(self.engine, "rollback", self._rollback)

    def _executed(self, conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        match = _WRITE.match(statement)
        if match:
            self.pending.setdefault(id(conn), []).append(match.group(1).lower())

    def _commit(self, conn: Any) -> None:
        self.committed.extend(self.pending.pop(id(conn), []))

    def _rollback(self, conn: Any) -> None:
        self.pending.pop(id(conn), None)

    def mark(self) -> int:
        return len(self.committed)

    def data_writes(self, mark: int) -> list[str]:
        """Tables other than the trace written (and committed) since ``mark``."""
        return [t for t in self.committed[mark:] if t not in TRACE_TABLES]


@pytest.fixture
def writes(fast_espace: Espace) -> Iterator[WriteLog]:
    log = WriteLog(fast_espace)
    try:
        yield log
    finally:
        log.close()


def _trace_ok(espace: Espace) -> None:
    from espace.trace import verify_chains

    with espace.session_factory() as session:
        assert verify_chains(session, espace.signer) == []
        assert session.execute(select(func.count(TraceRecord.id))).scalar_one() > 0


# ------------------------------------------------------------------ byte-level mutations
INSERTS = [
    b"<",
    b">",
    b"&",
    b"\x00",
    b"\xff\xfe",
    b"]]>",
    b"<!DOCTYPE x []>",
    b"--",
    b"\r\n\r\n",
    b"cid:",
    b"<!--",
    b'"',
    b"&#0;",
    b"\xc3\x28",
    b' xmlns:x="relative"',
    b"<x:y xmlns:x='urn:x'/>",
]


def mutate(seed: bytes, rng: random.Random) -> bytes:
    """Flip, insert, delete, duplicate, truncate or splice (1 to 8 of them): the classic
    mutation operators of byte-level fuzzers (AFL's havoc stage)."""
    data = bytearray(seed)
    for _ in range(1 + min(7, int(rng.expovariate(0.7)))):  # one mutation half the time
        if not data:
            break
        op = rng.randrange(6)
        pos = rng.randrange(len(data))
        if op == 0:  # flip one bit
            data[pos] ^= 1 << rng.randrange(8)
        elif op == 1:  # insert a metacharacter or a few random bytes
            data[pos:pos] = (
                rng.choice(INSERTS) if rng.random() < 0.6 else rng.randbytes(rng.randint(0, 16))
            )
        elif op == 2:  # delete a run
            del data[pos : pos + rng.randint(1, 64)]
        elif op == 3:  # duplicate a run
            end = min(len(data), pos + rng.randint(1, 256))
            data[pos:pos] = data[pos:end]
        elif op == 4:
            del data[pos:]
        else:  # splice random bytes over
            data[pos : pos + 4] = rng.randbytes(rng.randint(1, 64))
    return bytes(data)


def mutated(seed: bytes) -> st.SearchStrategy[bytes]:
    """Mutants of ``seed``. hypothesis draws one 64-bit number per input and a seeded
    ``random.Random`` applies the mutations: one draw instead of some 25 keeps hypothesis'
    own cost near 2 ms per input, which 100,000 inputs need; the failing input is printed
    with its number, which reproduces it."""
    return st.integers(0, 2**64 - 1).map(lambda n: mutate(seed, random.Random(n)))


def _check(stats: FuzzStats, response: Any) -> None:
    if response.status_code >= 500:
        stats.server_errors += 1
    assert response.status_code < 500, response.data[:500]


def _soap_refused(response: Any) -> bool:
    from xds_support import parse_response

    try:
        soap = parse_response(response.status_code, response.content_type or "", response.data)
    except Exception:  # unparseable answer: must not happen
        raise AssertionError(response.data[:300]) from None
    if str(soap.body.tag).endswith("}Fault"):
        return True
    return bool(soap.status_value() != "Success")


def _count_refusal(stats: FuzzStats, refused: bool, written: list[str]) -> None:
    if refused:
        stats.refused += 1
        if written:
            stats.rows_written_by_refused += len(written)
        assert written == [], f"a refused input wrote to {written}"
    else:
        stats.accepted += 1


# ------------------------------------------------------------------ 1. SOAP / MTOM intake
class AcceptReplays:
    """A replay cache (``xds.vihf.ReplayCache``) that lets every assertion through. The fuzzer
    sends one signed VIHF many times: with the real cache only its first copy passes, and no
    mutant that keeps the signature valid would reach the transaction handlers (ebXML
    metadata, registry writes). Replay refusal has its own test (test_sec_soap_attacks.py)."""

    def add(self, assertion_id: str, *, expires_at: datetime, now: datetime) -> bool:
        return True


def _iti41_seed(world: World) -> tuple[bytes, str]:
    doc = Doc(patient=PATIENT_A)
    body, parts = provide_and_register([doc], patient=PATIENT_A)
    data = envelope_bytes(ITI41, body, signed_vihf(world.pki, world.clock, AUTHOR, PATIENT_A))
    return build_mtom_request(data, parts, action=ITI41)


def _soap_inputs(world: World) -> st.SearchStrategy[tuple[bytes, str, str]]:
    seed, content_type = _iti41_seed(world)
    content_types = [
        content_type,
        content_type,
        content_type,
        content_type.replace("start=", "x="),
        "multipart/related; boundary=zz",
        "application/soap+xml",
        'multipart/related; type="application/xop+xml"; boundary=""',
        "text/plain",
    ]
    return st.tuples(
        mutated(seed) | st.binary(max_size=2048),
        st.sampled_from(content_types),
        st.sampled_from([REPOSITORY, REGISTRY]),
    )


def fuzz_soap_http(
    client: FlaskClient, espace: Espace, writes: WriteLog, world: World, examples: int
) -> None:
    stats = FuzzStats("soap_mtom_http")
    client.application.extensions["xds_replay_cache"] = AcceptReplays()

    @fuzz_settings(examples)
    @given(case=_soap_inputs(world))
    def run(case: tuple[bytes, str, str]) -> None:
        data, ct, path = case
        stats.inputs += 1
        mark = writes.mark()
        response = stats.timed(lambda: client.post(path, data=data, content_type=ct))
        _check(stats, response)
        _count_refusal(stats, _soap_refused(response), writes.data_writes(mark))

    try:
        run()
    finally:
        stats.finish()
    _trace_ok(espace)


def fuzz_soap_parser(app: Flask, world: World, examples: int) -> None:
    from werkzeug.exceptions import RequestEntityTooLarge

    from xds.endpoint import SoapFault, _check_envelope
    from xds.mtom import MtomError, parse_mtom, resolve_xop_includes
    from xds.xml import XmlSecurityError, parse_xml

    stats = FuzzStats("soap_mtom_parser")
    allowed = (MtomError, XmlSecurityError, SoapFault, RequestEntityTooLarge)

    def parse(data: bytes, ct: str) -> None:
        message = parse_mtom(data, ct, max_part_bytes=1 << 20, max_total_bytes=4 << 20)
        root = parse_xml(message.root_xml, max_bytes=4 << 20)
        _check_envelope(root)
        resolve_xop_includes(root, message.attachments)

    @fuzz_settings(examples)
    @given(case=_soap_inputs(world))
    def run(case: tuple[bytes, str, str]) -> None:
        data, ct, _ = case
        stats.inputs += 1
        stats.timed(lambda: _parse_once(stats, lambda: parse(data, ct), allowed))

    try:
        run()
    finally:
        stats.finish()


def _parse_once(
    stats: FuzzStats, call: Callable[[], Any], allowed: tuple[type[BaseException], ...]
) -> Any:
    try:
        result = call()
    except allowed:
        stats.refused += 1
        return None
    except Exception:
        stats.unexpected_exceptions += 1
        raise
    stats.accepted += 1
    return result


# ------------------------------------------------------------------ 2. VIHF reader
def _vihf_parts(world: World) -> tuple[bytes, bytes, bytes]:
    assertion = signed_vihf(world.pki, world.clock, AUTHOR, PATIENT_A)
    seed = envelope_bytes(ITI18, find_documents(PATIENT_A), assertion)
    start = seed.index(b"<saml2:Assertion")
    end = seed.index(b"</wsse:Security>")
    return seed[:start], seed[start:end], seed[end:]


def fuzz_vihf_http(
    client: FlaskClient, espace: Espace, writes: WriteLog, world: World, examples: int
) -> None:
    head, vihf, tail = _vihf_parts(world)
    stats = FuzzStats("vihf_http")
    client.application.extensions["xds_replay_cache"] = AcceptReplays()

    @fuzz_settings(examples)
    @given(vihf=mutated(vihf))
    def run(vihf: bytes) -> None:
        stats.inputs += 1
        mark = writes.mark()
        # the test client re-raises what the app lets out (a 500): the test fails on it
        response = stats.timed(
            lambda: client.post(
                REGISTRY,
                data=head + vihf + tail,
                content_type=f'application/soap+xml; action="{ITI18}"',
            )
        )
        _check(stats, response)
        refused = _soap_refused(response)
        # a mutated assertion is refused (the signature covers it) unless the mutation only
        # touched what exclusive c14n ignores; then it is the untouched identity
        if not refused:
            assert AUTHOR.encode() in vihf
        _count_refusal(stats, refused, writes.data_writes(mark))

    try:
        run()
    finally:
        stats.finish()
    _trace_ok(espace)


def fuzz_vihf_parser(app: Flask, world: World, examples: int) -> None:
    from xds.endpoint import trusted_ca_pems
    from xds.vihf import VihfError, verify_vihf
    from xds.xml import XmlSecurityError, parse_xml

    head, vihf, tail = _vihf_parts(world)
    cas = trusted_ca_pems(app)
    stats = FuzzStats("vihf_parser")

    def verify(data: bytes) -> Any:
        root = parse_xml(data)
        return verify_vihf(
            root, trusted_ca_pems=cas, now=world.clock.now(), clock_skew=timedelta(minutes=5)
        )

    @fuzz_settings(examples)
    @given(vihf=mutated(vihf))
    def run(vihf: bytes) -> None:
        stats.inputs += 1
        verified = stats.timed(
            lambda: _parse_once(
                stats, lambda: verify(head + vihf + tail), (VihfError, XmlSecurityError)
            )
        )
        if verified is not None:  # still verifies: it must be the signed identity, untouched
            assert verified.actor.id.endswith(AUTHOR), verified.actor
            assert verified.patient_ins == PATIENT_A

    try:
        run()
    finally:
        stats.finish()


# ------------------------------------------------------------------ 3. FHIR JSON intake
KEYS = [
    "resourceType",
    "id",
    "meta",
    "subject",
    "code",
    "entry",
    "request",
    "resource",
    "contained",
    "extension",
    "valueQuantity",
    "status",
    "method",
    "url",
    "reference",
    "value",
]
STRINGS = ["Patient/x", "urn:uuid:1", "2015-13-45", "\u0000", "Condition", "#", "../..", ""]


def random_text(rng: random.Random, size: int) -> str:
    """Any code point but the surrogates (which JSON cannot carry as UTF-8)."""
    pick = rng.random()
    if pick < 0.6:
        return "".join(chr(rng.randint(32, 126)) for _ in range(rng.randint(0, size)))
    return "".join(
        chr(rng.choice([rng.randint(0, 0xD7FF), rng.randint(0xE000, 0x10FFFF)]))
        for _ in range(rng.randint(0, size))
    )


def random_json(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON value (at most 4 levels, 5 members): the shapes a FHIR parser meets."""
    kind = rng.randrange(10 if depth < 4 else 7)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.choice([0, -1, 2**31, 2**63, 10**400 // 10**380, rng.randint(-1000, 1000)])
    if kind == 3:
        return rng.choice([0.5, -0.0, 1e308, float("nan"), float("inf"), rng.uniform(-1e6, 1e6)])
    if kind in (4, 5):
        return random_text(rng, 30)
    if kind == 6:
        return rng.choice(STRINGS)
    if kind in (7, 8):
        return {
            (rng.choice(KEYS) if rng.random() < 0.6 else random_text(rng, 12)): random_json(
                rng, depth + 1
            )
            for _ in range(rng.randint(0, 5))
        }
    return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]


SEEDS: list[dict[str, Any]] = [
    {
        "resourceType": "Condition",
        "code": {"text": "x"},
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
    },
    {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "effectiveDateTime": "2026-01-01",
        "valueQuantity": {
            "value": 70,
            "unit": "kg",
            "system": "http://unitsofmeasure.org",
            "code": "kg",
        },
    },
    {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {"resourceType": "Condition", "code": {"text": "y"}},
                "request": {"method": "POST", "url": "Condition"},
            }
        ],
    },
]


def fhir_case(rng: random.Random) -> tuple[str, str, bytes]:
    """One FHIR write: a seed with a member replaced or added, random JSON, or a mutated seed,
    POSTed or PUT on a type (or the base, for a Bundle)."""
    seed = json.loads(json.dumps(rng.choice(SEEDS)))
    kind = rng.choice(["replace", "add", "raw", "bytes"])
    if kind in ("replace", "add"):
        key = rng.choice(sorted(seed)) if kind == "replace" else random_text(rng, 10)
        seed[key] = random_json(rng)
        body = json.dumps(seed, allow_nan=True).encode()
    elif kind == "raw":
        body = json.dumps(random_json(rng), allow_nan=True).encode()
    else:
        body = mutate(json.dumps(seed).encode(), rng)
    path = (
        "/fhir"
        if seed.get("resourceType") == "Bundle"
        else "/fhir/" + rng.choice(["Condition", "Observation", "Patient", "Bundle", "Binary"])
    )
    method = rng.choice(["POST", "POST", "PUT"])
    if method == "PUT":
        path += "/" + rng.choice(["x", "..", "%00", "a" * 70])
    return method, path, body


def fhir_inputs() -> st.SearchStrategy[tuple[str, str, bytes]]:
    """hypothesis draws one number per input; ``fhir_case`` builds the input from it (see
    ``mutated``: hypothesis' recursive JSON strategy cost 15 ms an input)."""
    return st.integers(0, 2**64 - 1).map(lambda n: fhir_case(random.Random(n)))


def fuzz_fhir_http(
    client: FlaskClient, espace: Espace, writes: WriteLog, world: World, examples: int
) -> None:
    headers = {**world.bearer(ActorKind.PATIENT, PATIENT_A), "Content-Type": FHIR}
    stats = FuzzStats("fhir_json_http")

    @fuzz_settings(examples)
    @given(case=fhir_inputs())
    def run(case: tuple[str, str, bytes]) -> None:
        method, path, body = case
        stats.inputs += 1
        mark = writes.mark()
        response = stats.timed(
            lambda: client.open(path, method=method, data=body, headers=headers)
        )
        _check(stats, response)
        refused = response.status_code >= 400
        if refused:
            assert response.get_json()["resourceType"] == "OperationOutcome"
        elif response.status_code == 201:  # the write detector sees accepted writes
            assert "fhir_resource" in writes.data_writes(mark)
        _count_refusal(stats, refused, writes.data_writes(mark))

    try:
        run()
    finally:
        stats.finish()
    _trace_ok(espace)


def fuzz_fhir_parser(app: Flask, world: World, examples: int) -> None:
    from fhir_server.models import ResourceInvalid, validate

    stats = FuzzStats("fhir_json_parser")

    def parse(path: str, body: bytes) -> None:
        resource = json.loads(body)
        rtype = path.removeprefix("/fhir").strip("/").split("/")[0] or None
        validate(resource, rtype)

    @fuzz_settings(examples)
    @given(case=fhir_inputs())
    def run(case: tuple[str, str, bytes]) -> None:
        _, path, body = case
        stats.inputs += 1
        stats.timed(
            lambda: _parse_once(stats, lambda: parse(path, body), (ValueError, ResourceInvalid))
        )

    try:
        run()
    finally:
        stats.finish()


# ------------------------------------------------------------------ 4. MIME / XDM parser
def _mail_seed() -> tuple[bytes, bytes]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "mssante"))
    from mailkit import xdm_message, xdm_zip

    return xdm_message(), xdm_zip()


def _fuzz_bytes(
    target: str,
    parse: Callable[[bytes], Any],
    seed: bytes,
    allowed: tuple[type[BaseException], ...],
    examples: int,
) -> int:
    stats = FuzzStats(target)

    @fuzz_settings(examples)
    @given(data=mutated(seed) | st.binary(max_size=4096))
    def run(data: bytes) -> None:
        stats.inputs += 1
        stats.timed(lambda: _parse_once(stats, lambda: parse(data), allowed))

    try:
        run()
    finally:
        stats.finish()
    return stats.inputs


def fuzz_mime(examples: int) -> int:
    from mssante import mime, xdm

    message, _ = _mail_seed()
    return _fuzz_bytes(
        "mime_parser",
        lambda d: mime.parse_message(d, domain="patient.mssante.fr"),
        message,
        (mime.MimeError, xdm.XdmError),
        examples,
    )


def fuzz_xdm(examples: int) -> int:
    from mssante import xdm

    _, archive = _mail_seed()
    return _fuzz_bytes("xdm_parser", xdm.read_archive, archive, (xdm.XdmError,), examples)


# ------------------------------------------------------------------ the tests
@pytest.fixture
def fast_app(fast_client: FlaskClient) -> Flask:
    return fast_client.application


def test_fuzz_soap_mtom_intake(
    fast_client: FlaskClient, fast_espace: Espace, writes: WriteLog, world: World
) -> None:
    fuzz_soap_http(fast_client, fast_espace, writes, world, EXAMPLES)


def test_fuzz_soap_mtom_parser(fast_app: Flask, world: World) -> None:
    fuzz_soap_parser(fast_app, world, EXAMPLES)


def test_fuzz_vihf_reader(
    fast_client: FlaskClient, fast_espace: Espace, writes: WriteLog, world: World
) -> None:
    fuzz_vihf_http(fast_client, fast_espace, writes, world, EXAMPLES)


def test_fuzz_vihf_parser(fast_app: Flask, world: World) -> None:
    fuzz_vihf_parser(fast_app, world, EXAMPLES)


def test_fuzz_fhir_json_intake(
    fast_client: FlaskClient, fast_espace: Espace, writes: WriteLog, world: World
) -> None:
    fuzz_fhir_http(fast_client, fast_espace, writes, world, EXAMPLES)


def test_fuzz_fhir_json_parser(fast_app: Flask, world: World) -> None:
    fuzz_fhir_parser(fast_app, world, EXAMPLES)


def test_fuzz_mime_and_xdm_parsers() -> None:
    n = fuzz_mime(EXAMPLES) + fuzz_xdm(EXAMPLES)
    assert n >= 2 * min(EXAMPLES, 50)


def test_write_log_sees_a_committed_write_and_ignores_a_rolled_back_one(
    fast_espace: Espace, writes: WriteLog
) -> None:
    """The detector behind "nothing written by a refused input" can fail."""
    from sqlalchemy import text

    mark = writes.mark()
    with fast_espace.session_factory() as session:
        session.execute(text("UPDATE patient_space SET family_name = family_name"))
        session.rollback()
    assert writes.data_writes(mark) == []
    with fast_espace.session_factory() as session:
        session.execute(text("UPDATE patient_space SET family_name = family_name"))
        session.commit()
    assert writes.data_writes(mark) == ["patient_space"]


LONG_TARGETS = [
    "soap_http",
    "soap_parser",
    "vihf_http",
    "vihf_parser",
    "fhir_http",
    "fhir_parser",
    "mime",
    "xdm",
]


@pytest.mark.slow
@pytest.mark.parametrize("target", LONG_TARGETS)
def test_fuzz_long(target: str, request: pytest.FixtureRequest) -> None:
    """Same properties with ``MES_FUZZ_LONG_EXAMPLES`` inputs (100,000 for the issue's run)."""
    n = LONG_EXAMPLES
    if target == "mime":
        fuzz_mime(n)
        return
    if target == "xdm":
        fuzz_xdm(n)
        return
    client: FlaskClient = request.getfixturevalue("fast_client")
    espace: Espace = request.getfixturevalue("fast_espace")
    writes: WriteLog = request.getfixturevalue("writes")
    world: World = request.getfixturevalue("world")
    app = client.application
    runs: dict[str, Callable[[], Any]] = {
        "soap_http": lambda: fuzz_soap_http(client, espace, writes, world, n),
        "soap_parser": lambda: fuzz_soap_parser(app, world, n),
        "vihf_http": lambda: fuzz_vihf_http(client, espace, writes, world, n),
        "vihf_parser": lambda: fuzz_vihf_parser(app, world, n),
        "fhir_http": lambda: fuzz_fhir_http(client, espace, writes, world, n),
        "fhir_parser": lambda: fuzz_fhir_parser(app, world, n),
    }
    runs[target]()
