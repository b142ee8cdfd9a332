"""The export as a job: 202 Accepted with a status URL, built by the job runner as the
requester sees the space (policy asked again), sealed to a key the server does not keep, the
link's expiry counted from the archive being ready, failures retried then reported."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from lifecycle_helpers import SRC, feed_document, make_ins, outbox
from sqlalchemy import select

from espace import lifecycle
from espace.clock import FrozenClock
from espace.lifecycle import ExportArchive, Person, export_jobs
from espace.models import TraceRecord
from espace.service import Espace
from habilitation.model import ActorKind
from mes.tokens import issue_token

BIRTH = date(1960, 10, 10)
INS = make_ins(2, BIRTH, 651)


def _bearer(
    settings: dict[str, Any], subject: str, kind: ActorKind = ActorKind.PATIENT, **kw: Any
) -> dict[str, str]:
    token = issue_token(settings, subject=subject, kind=kind, **kw)
    return {"Authorization": f"Bearer {token}"}


def _created(espace: Espace, clock: FrozenClock, ins: str = INS, **kw: Any) -> str:
    person = kw.pop("person", None) or Person(ins, "NOIR", "Lise", BIRTH, "F", "lise@ex.org")
    enrolment = lifecycle.enrol(espace, person, source=SRC, **kw)
    clock.advance(timedelta(weeks=6))
    lifecycle.run_automatic_creation(espace)
    return enrolment.space_id


def _row(espace: Espace, export_id: str) -> ExportArchive:
    with espace.session_factory() as session:
        row = session.get(ExportArchive, export_id)
        assert row is not None
        return row


def _builds(espace: Espace, export_id: str) -> list[tuple[str, str, str]]:
    with espace.session_factory() as session:
        rows = session.execute(
            select(TraceRecord.event_type, TraceRecord.outcome, TraceRecord.source_face)
            .where(TraceRecord.target_id == export_id)
            .order_by(TraceRecord.id)
        ).all()
    return [(e, o, f) for e, o, f in rows]


def test_request_then_job_then_download(
    client: FlaskClient, espace: Espace, settings: dict[str, Any], clock: FrozenClock
) -> None:
    space_id = _created(espace, clock)
    feed_document(espace, INS, title="compte rendu")
    h = _bearer(settings, INS)
    r = client.post(f"/api/patient/spaces/{INS}/exports", headers=h)
    assert r.status_code == 202 and r.headers["Location"] == r.json["status_url"]
    status_url, link = r.json["status_url"], r.json["download_url"]
    pending = client.get(status_url, headers=h)
    assert pending.json["status"] == "pending" and pending.headers["Retry-After"] == "60"
    assert client.get(link, headers=h).json["error"] == "export_not_ready"
    assert not [n for n in outbox(espace, space_id) if n.category == "export_ready"]
    again = client.post(f"/api/patient/spaces/{INS}/exports", headers=h)
    assert again.status_code == 409 and again.json["error"] == "export_pending"
    clock.advance(timedelta(hours=2))
    assert lifecycle.run_due_jobs(espace)["exports_built"] == 1
    assert lifecycle.run_due_jobs(espace)["exports_built"] == 0  # built once
    ready = client.get(status_url, headers=h).json
    assert ready["status"] == "ready" and ready["resources"] > 1 and ready["size"] > 0
    assert datetime.fromisoformat(ready["expires_at"]) == clock.now() + timedelta(hours=168)
    (notice,) = [n for n in outbox(espace, space_id) if n.category == "export_ready"]
    assert "prêt" in notice.body and link.rsplit("=", 1)[1] not in notice.body
    got = client.get(link, headers=h)
    assert got.status_code == 200 and got.mimetype == "application/zip"
    bundle = json.loads(zipfile.ZipFile(io.BytesIO(got.data)).read("bundle.json"))
    assert {"Patient", "DocumentReference"} <= {
        e["resource"]["resourceType"] for e in bundle["entry"]
    }
    # the job acted as the requester, through the enforcement point, on the job face
    assert ("export.build", "success", "job") in _builds(espace, r.json["id"])
    with espace.session_factory() as session:
        build = session.execute(
            select(TraceRecord).where(TraceRecord.event_type == "export.build")
        ).scalar_one()
    assert (build.actor_kind, build.actor_id, build.action) == ("patient", INS, "space.export")


def test_the_server_keeps_no_key_that_opens_the_archive(
    client: FlaskClient, espace: Espace, settings: dict[str, Any], clock: FrozenClock
) -> None:
    _created(espace, clock)
    h = _bearer(settings, INS)
    r = client.post(f"/api/patient/spaces/{INS}/exports", headers=h)
    lifecycle.run_due_jobs(espace)
    row = _row(espace, r.json["id"])
    key = r.json["download_url"].rsplit("key=", 1)[1]
    assert row.blob is not None and row.blob[:1] == export_jobs.SEALED_V2
    assert b"bundle.json" not in row.blob and key not in (row.requester + row.public_key)
    wrong = r.json["download_url"].rsplit("key=", 1)[0] + "key=" + "A" * 43
    assert client.get(wrong, headers=h).json["error"] == "unknown_export"
    assert client.get(r.json["download_url"], headers=h).status_code == 200


def test_the_link_expires_a_week_after_the_archive_is_ready(
    client: FlaskClient, espace: Espace, settings: dict[str, Any], clock: FrozenClock
) -> None:
    _created(espace, clock)
    h = _bearer(settings, INS)
    r = client.post(f"/api/patient/spaces/{INS}/exports", headers=h)
    clock.advance(timedelta(days=3))  # the job was late
    lifecycle.run_due_jobs(espace)
    clock.advance(timedelta(days=7) - timedelta(seconds=1))
    assert client.get(r.json["download_url"], headers=h).status_code == 200
    clock.advance(timedelta(seconds=1))
    assert client.get(r.json["download_url"], headers=h).status_code == 410
    assert client.get(r.json["status_url"], headers=h).json["status"] == "expired"
    assert lifecycle.run_due_jobs(espace)["exports_expired"] == 1
    assert _row(espace, r.json["id"]).blob is None


def test_a_failed_build_is_retried_then_reported(
    client: FlaskClient,
    espace: Espace,
    settings: dict[str, Any],
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    space_id = _created(espace, clock)
    h = _bearer(settings, INS)
    r = client.post(f"/api/patient/spaces/{INS}/exports", headers=h)
    real = export_jobs.build_archive
    calls = {"n": 0}

    def flaky(op: Any) -> tuple[bytes, int, int]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("disk full")
        return real(op)

    monkeypatch.setattr(export_jobs, "build_archive", flaky)
    assert lifecycle.run_due_jobs(espace)["exports_built"] == 0
    assert _row(espace, r.json["id"]).status == "pending"  # rolled back, retried next run
    assert lifecycle.run_due_jobs(espace)["exports_built"] == 1
    assert [o for e, o, _ in _builds(espace, r.json["id"]) if e == "export.build"] == [
        "failure",
        "success",
    ]
    # an export that never builds is reported after three attempts
    monkeypatch.setattr(export_jobs, "build_archive", lambda op: 1 / 0)
    second = client.post(f"/api/patient/spaces/{INS}/exports", headers=h)
    for _ in range(4):
        lifecycle.run_due_jobs(espace)
    assert client.get(second.json["status_url"], headers=h).json["status"] == "failed"
    assert client.get(second.json["download_url"], headers=h).json["error"] == "export_failed"
    bodies = [n.body for n in outbox(espace, space_id) if n.category == "export_ready"]
    assert any("n'a pas pu être préparé" in b for b in bodies)


def test_the_policy_is_asked_again_when_the_job_builds(
    client: FlaskClient, espace: Espace, settings: dict[str, Any], clock: FrozenClock
) -> None:
    child_birth = date(2008, 2, 20)  # 18 on 2026-02-20
    child, mother = make_ins(1, child_birth, 652), make_ins(2, date(1980, 1, 1), 653)
    _created(
        espace,
        clock,
        child,
        person=Person(child, "NOIR", "Tom", child_birth, "M"),
        representatives=[Person(mother, email="m@ex.org")],
    )
    mh = _bearer(settings, mother, kind=ActorKind.LEGAL_REPRESENTATIVE, patient=child)
    r = client.post(f"/api/patient/spaces/{child}/exports", headers=mh)
    assert r.status_code == 202
    clock.advance(timedelta(days=40))  # the minor came of age before the job ran
    for _ in range(3):
        assert lifecycle.run_due_jobs(espace)["exports_built"] == 0
    lifecycle.run_due_jobs(espace)
    row = _row(espace, r.json["id"])
    assert row.status == "failed" and row.blob is None
    assert {o for e, o, _ in _builds(espace, r.json["id"]) if e == "export.build"} == {"denied"}


def test_mes_jobs_run_builds_the_pending_exports(
    client: FlaskClient,
    espace: Espace,
    settings: dict[str, Any],
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock.advance(datetime.now(UTC) - clock.now() - timedelta(weeks=6))  # the CLI's clock is real
    _created(espace, clock)
    r = client.post(f"/api/patient/spaces/{INS}/exports", headers=_bearer(settings, INS))
    from patient_api.cli import commands

    for key in ("DATABASE_URL", "DOCUMENT_KEY", "TRACE_SIGNING_KEY", "PKI_DIR", "VAR_DIR"):
        monkeypatch.setenv(f"MES_{key}", str(settings[key]))
    jobs_cmd = next(c for c in commands if c.name == "jobs")
    out = CliRunner().invoke(jobs_cmd, ["run", "--no-progress"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["exports_built"] == 1
    assert _row(espace, r.json["id"]).status == "ready"


def test_sealing_round_trip_and_legacy_archives() -> None:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    private = X25519PrivateKey.generate()
    blob = export_jobs.seal(b"zip", private.public_key().public_bytes_raw(), b"aad")
    assert export_jobs.unseal(blob, private.private_bytes_raw(), b"aad") == b"zip"
    with pytest.raises(InvalidTag):
        export_jobs.unseal(blob, private.private_bytes_raw(), b"other")
    key, nonce = AESGCM.generate_key(bit_length=256), b"\0" * 12
    legacy = export_jobs.LEGACY_V1 + nonce + AESGCM(key).encrypt(nonce, b"old", b"aad")
    assert export_jobs.unseal(legacy, key, b"aad") == b"old"
