"""Server bugs found by the fuzzing of the FHIR JSON intake, now fixed and kept as regression
tests (FHIR R4 http.html#transaction: a Bundle that is not valid is refused with 400 and an
OperationOutcome; never a 500; a NUL character, which PostgreSQL cannot store, is bad input)."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sec_world import FHIR, PATIENTS
from sqlalchemy import select

from espace.admin import register_space
from espace.clock import FrozenClock
from espace.models import TraceRecord
from espace.service import Espace
from habilitation.model import ActorKind
from mes.tokens import issue_token


@pytest.fixture
def headers(espace: Espace, settings: dict[str, Any], clock: FrozenClock) -> dict[str, str]:
    with espace.session_factory() as session:
        register_space(session, ins=PATIENTS[0], now=clock.now())
        session.commit()
    token = issue_token(settings, subject=PATIENTS[0], kind=ActorKind.PATIENT, patient=PATIENTS[0])
    return {"Authorization": f"Bearer {token}", "Content-Type": FHIR}


def test_control_malformed_entries_that_are_refused(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    for entry in ("x", [1], [{"request": {"method": 5}}]):
        response = client.post(
            "/fhir",
            json={"resourceType": "Bundle", "type": "transaction", "entry": entry},
            headers=headers,
        )
        assert response.status_code == 400
        assert response.get_json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("entry", [5, True, {"a": 1}])
def test_bundle_entry_not_an_array_is_400(
    client: FlaskClient, headers: dict[str, str], entry: Any
) -> None:
    response = client.post(
        "/fhir",
        json={"resourceType": "Bundle", "type": "transaction", "entry": entry},
        headers=headers,
    )
    assert response.status_code == 400, response.status_code


def test_bundle_entry_request_not_an_object_is_400(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    response = client.post(
        "/fhir",
        json={"resourceType": "Bundle", "type": "transaction", "entry": [{"request": 5}]},
        headers=headers,
    )
    assert response.status_code == 400, response.status_code


@pytest.mark.parametrize("path", [
    "/fhir/Condition/%00", "/fhir/Cond%00ition", "/fhir/Condition?code=%00",
    "/fhir/Condition?co%00de=x", "/fhir/Condition/x/_history/%00", "/fhir/%00",
])
def test_nul_character_in_the_url_is_not_a_500(
    client: FlaskClient, headers: dict[str, str], path: str, espace: Espace
) -> None:
    """PostgreSQL refuses NUL in text columns: the face refuses it (400) before anything is
    stored, and the refusal is traced with the NUL escaped (it used to be a 500)."""
    try:
        response = client.get(path, headers=headers)
    except Exception as exc:  # the test client re-raises what escaped the error handler
        raise AssertionError(f"escaped: {exc!r}") from None
    assert response.status_code in (400, 404), response.status_code
    assert response.get_json()["resourceType"] == "OperationOutcome"
    with espace.session_factory() as session:
        targets = session.execute(select(TraceRecord.target_id)).scalars().all()
    assert not any("\x00" in t for t in targets)


@pytest.mark.parametrize("body", [
    {"resourceType": "Condition", "code": {"text": "a\u0000b"}},
    {"resourceType": "Condition", "code": {"text": "\ud800"}},
    {"resourceType": "Condition", "note\u0000": []},
    {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "GET", "url": "Condition/\u0000"}}]},
])
def test_nul_or_lone_surrogate_in_a_body_is_400(
    client: FlaskClient, headers: dict[str, str], body: dict[str, Any]
) -> None:
    import json

    url = "/fhir" if body["resourceType"] == "Bundle" else "/fhir/Condition"
    raw = json.dumps(body)  # ensure_ascii: NUL and the surrogate travel as \\u escapes
    response = client.post(url, data=raw, headers=headers)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["resourceType"] == "OperationOutcome"
    assert client.get("/fhir/Condition", headers=headers).get_json()["total"] == 0


@pytest.mark.parametrize("header", ["If-Match", "User-Agent", "X-Request-ID", "Prefer"])
def test_nul_in_a_header_the_face_reads_is_400(
    client: FlaskClient, headers: dict[str, str], header: str
) -> None:
    response = client.get("/fhir/Condition", headers={**headers, header: "a\x00b"})
    assert response.status_code == 400, response.get_json()


def test_nul_in_a_form_encoded_search_is_400(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    response = client.post("/fhir/Condition/_search", data={"code": "a\x00b"},
                           headers={**headers,
                                    "Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400, response.get_json()


def test_nul_in_a_json_patch_is_400(client: FlaskClient, headers: dict[str, str]) -> None:
    created = client.post("/fhir/Condition", json={"resourceType": "Condition",
                                                   "code": {"text": "x"}}, headers=headers)
    rid = created.get_json()["id"]
    response = client.patch(
        f"/fhir/Condition/{rid}",
        data='[{"op": "add", "path": "/note", "value": [{"text": "\\u0000"}]}]',
        headers={**headers, "Content-Type": "application/json-patch+json"})
    assert response.status_code == 400, response.get_json()
    assert client.get(f"/fhir/Condition/{rid}", headers=headers).get_json()["meta"][
        "versionId"] == "1"


def test_contained_resource_of_an_unknown_type_is_422(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    """Found by test_fuzz_long[fhir_parser]: the R4B models raise KeyError for a nested
    resource of an unknown type; it was a 500."""
    response = client.post("/fhir/Condition", json={
        "resourceType": "Condition", "code": {"text": "x"},
        "contained": [{"resourceType": "ContitionType"}]}, headers=headers)
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["resourceType"] == "OperationOutcome"
