"""A new one-time code asked for over HTTP: sent to the contact channel on file (e-mail, the
representatives', else the letters' print queue), never in the answer, the same answer for any
INS, rate-limited per address and per person, traced without the code."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from lifecycle_helpers import SRC, make_ins, outbox
from sqlalchemy import select

from espace import lifecycle
from espace.clock import FrozenClock
from espace.lifecycle import CodeLetter, Person
from espace.models import TraceRecord
from espace.service import Espace
from habilitation.model import ActorKind
from mes.tokens import issue_token

BIRTH = date(1985, 7, 1)
INS = make_ins(1, BIRTH, 611)
NEW_CODE = "/api/patient/enrolment/new-code"
CODE = re.compile(r"\b[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}\b")
HERE = {"REMOTE_ADDR": "127.0.0.5"}


def _enrol(espace: Espace, email: str | None = "paul@example.org") -> lifecycle.Enrolment:
    return lifecycle.enrol(espace, Person(INS, "BLANC", "Paul", BIRTH, "M", email), source=SRC)


def _mailed_codes(espace: Espace, space_id: str) -> list[str]:
    return [
        found.group(0)
        for n in outbox(espace, space_id)
        if (found := CODE.search(n.body)) is not None
    ]


def _records(espace: Espace, event_type: str) -> list[TraceRecord]:
    with espace.session_factory() as session:
        return list(
            session.execute(
                select(TraceRecord)
                .where(TraceRecord.event_type == event_type)
                .order_by(TraceRecord.id)
            ).scalars()
        )


def test_the_new_code_goes_to_the_email_on_file_never_to_the_caller(
    client: FlaskClient, espace: Espace
) -> None:
    first = _enrol(espace)
    r = client.post(NEW_CODE, json={"ins": INS}, environ_base=HERE)
    assert r.status_code == 202 and r.json["status"] == "accepted"
    mailed = _mailed_codes(espace, first.space_id)
    assert len(mailed) == 1 and mailed[0] not in r.get_data(as_text=True)
    assert CODE.search(r.get_data(as_text=True)) is None
    # the mailed code works; the letter's code was revoked
    body = {"ins": INS, "code": first.code}
    assert client.post("/api/patient/enrolment/oppose", json=body).json["error"] == "invalid_code"
    body["code"] = mailed[0]
    assert client.post("/api/patient/enrolment/oppose", json=body).status_code == 201
    (record,) = _records(espace, "lifecycle.code_request")
    assert (record.outcome, record.source_address, record.detail) == (
        "success",
        "127.0.0.5",
        {"channel": "email"},
    )
    with espace.session_factory() as session:
        texts = [json.dumps(d) for d in session.execute(select(TraceRecord.detail)).scalars()]
    assert not any(mailed[0] in t or first.code in t for t in texts)


def test_the_answer_is_the_same_for_an_ins_without_a_space(
    client: FlaskClient, espace: Espace
) -> None:
    _enrol(espace)
    known = client.post(NEW_CODE, json={"ins": INS})
    unknown = client.post(NEW_CODE, json={"ins": make_ins(2, BIRTH, 612)})
    assert (known.status_code, known.json) == (unknown.status_code, unknown.json)
    assert [r.outcome for r in _records(espace, "lifecycle.code_request")] == [
        "success",
        "failure",
    ]
    bad = client.post(NEW_CODE, json={"ins": "123"})
    assert bad.status_code == 400 and bad.json["error"] == "invalid_ins"
    assert client.post(NEW_CODE, json={}).json["error"] == "missing_field"


def test_three_codes_a_day_per_person_then_silence(
    client: FlaskClient, espace: Espace, clock: FrozenClock
) -> None:
    space_id = _enrol(espace).space_id
    answers = {client.post(NEW_CODE, json={"ins": INS}).status_code for _ in range(5)}
    assert answers == {202}
    assert len(_mailed_codes(espace, space_id)) == 3
    errors = [r.error_code for r in _records(espace, "lifecycle.code_request")]
    assert errors == ["", "", "", "code_request_limited", "code_request_limited"]
    clock.advance(timedelta(days=1, seconds=1))
    assert client.post(NEW_CODE, json={"ins": INS}).status_code == 202
    assert len(_mailed_codes(espace, space_id)) == 4


def test_one_address_is_limited_whatever_the_ins(client: FlaskClient, espace: Espace) -> None:
    for n in range(lifecycle.NEW_CODE_PER_ADDRESS_PER_HOUR):
        ins = make_ins(1, BIRTH, 620 + n)
        assert client.post(NEW_CODE, json={"ins": ins}, environ_base=HERE).status_code == 202
    r = client.post(NEW_CODE, json={"ins": INS}, environ_base=HERE)
    assert r.status_code == 429 and r.json["error"] == "too_many_requests"
    assert 0 < int(r.headers["Retry-After"]) <= 3600
    assert _records(espace, "lifecycle.code_request")[-1].error_code == "too_many_requests"
    other = client.post(NEW_CODE, json={"ins": INS}, environ_base={"REMOTE_ADDR": "127.0.0.6"})
    assert other.status_code == 202


def test_a_minor_code_goes_to_the_legal_representatives(
    client: FlaskClient, espace: Espace
) -> None:
    child_birth = date(2015, 2, 2)
    child = make_ins(1, child_birth, 630)
    parent = Person(make_ins(2, date(1984, 4, 4), 631), email="mere@example.org")
    enrolment = lifecycle.enrol(
        espace,
        Person(child, "PETIT", "Léo", child_birth, "M"),
        source=SRC,
        representatives=[parent],
    )
    assert client.post(NEW_CODE, json={"ins": child}).status_code == 202
    (notice,) = [n for n in outbox(espace, enrolment.space_id) if CODE.search(n.body)]
    assert notice.recipients == "mere@example.org"


def test_no_email_on_file_means_a_sealed_letter_printed_once(
    client: FlaskClient,
    espace: Espace,
    settings: dict[str, Any],
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock.advance(datetime.now(UTC) - clock.now())  # the CLI below reads the real clock
    space_id = _enrol(espace, email=None).space_id
    assert client.post(NEW_CODE, json={"ins": INS}).status_code == 202
    assert _mailed_codes(espace, space_id) == []
    with espace.session_factory() as session:
        (letter,) = session.execute(select(CodeLetter)).scalars()
        assert letter.sealed is not None and CODE.search(letter.sealed.decode("latin-1")) is None
    from patient_api.cli import commands

    for key in ("DATABASE_URL", "DOCUMENT_KEY", "TRACE_SIGNING_KEY", "PKI_DIR", "VAR_DIR"):
        monkeypatch.setenv(f"MES_{key}", str(settings[key]))
    space_cmd = next(c for c in commands if c.name == "space")
    out = CliRunner().invoke(space_cmd, ["letters"])
    assert out.exit_code == 0, out.output
    printed = json.loads(out.stdout.splitlines()[0])
    assert printed["ins"] == INS and CODE.fullmatch(printed["code"])
    body = {"ins": INS, "code": printed["code"]}
    assert client.post("/api/patient/enrolment/create", json=body).status_code == 200
    again = CliRunner().invoke(space_cmd, ["letters"])
    assert again.exit_code == 0 and again.stdout == ""
    with espace.session_factory() as session:
        (letter,) = session.execute(select(CodeLetter)).scalars()
        assert letter.sealed is None and letter.printed_at is not None
    assert [r.detail for r in _records(espace, "lifecycle.code_letter")] == [{"printed": True}]


def test_the_support_desk_sends_a_code_it_never_sees(
    client: FlaskClient, espace: Espace, settings: dict[str, Any], clock: FrozenClock
) -> None:
    space_id = _enrol(espace).space_id
    token = issue_token(settings, subject="AGENT-9", kind=ActorKind.SUPPORT_AGENT, name="Agent")
    r = client.post(
        f"/api/admin/spaces/{INS}/code", headers={"Authorization": f"Bearer {token}"}, json={}
    )
    assert r.status_code == 200 and r.json["channel"] == "email"
    (mailed,) = _mailed_codes(espace, space_id)
    assert mailed not in r.get_data(as_text=True)
    (record,) = _records(espace, "lifecycle.code")
    assert (record.actor_kind, record.actor_id) == ("support_agent", "AGENT-9")


def test_openapi_describes_the_new_code_request(client: FlaskClient) -> None:
    spec = client.get("/api/patient/openapi.json").json
    operation = spec["paths"][NEW_CODE]["post"]
    assert operation["security"] == []
    assert {"202", "400", "429"} <= set(operation["responses"])
    assert "Retry-After" in operation["responses"]["429"]["headers"]
    assert operation["requestBody"]["content"]["application/json"]["schema"]["required"] == ["ins"]
