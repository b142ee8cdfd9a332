"""The cheaper search path (issue #8): total and page in one statement, ``_total=none``
(search.html#total), stored JSON spliced into the searchset (bundle.html) exactly as ``read``
returns it, and the splice kept valid JSON whatever the resources hold."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from fhir_helpers import World
from flask.testing import FlaskClient
from sqlalchemy import event

from fhir_server.search import RawResource, dumps, materialize

FHIR = "application/fhir+json"


def condition(text: str) -> dict[str, Any]:
    return {"resourceType": "Condition", "code": {"text": text},
            "clinicalStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                "code": "active"}]},
            "onsetDateTime": "2015-03-01"}


def _create(client: FlaskClient, h: dict[str, str], count: int) -> list[str]:
    ids = []
    for n in range(count):
        # text a naive splice would break: quotes, backslashes, NUL-like escapes, non-ASCII
        body = condition(f'Asthme "{n}" \\u0000 é \u2028')
        created = client.post("/fhir/Condition", json=body, headers={**h, "Content-Type": FHIR})
        assert created.status_code == 201, created.get_json()
        ids.append(created.get_json()["id"])
    return ids


def test_searchset_entries_are_what_read_returns(client: FlaskClient, world: World) -> None:
    h = world.patient_headers()
    ids = _create(client, h, 3)
    update = client.get(f"/fhir/Condition/{ids[0]}", headers=h).get_json()
    update["note"] = [{"text": "v2"}]
    world.clock.advance(timedelta(seconds=5))
    assert client.put(f"/fhir/Condition/{ids[0]}", json=update,
                      headers={**h, "Content-Type": FHIR}).status_code == 200
    response = client.get("/fhir/Condition", headers=h)
    assert response.status_code == 200
    bundle = json.loads(response.data)  # strict parse of the spliced text
    assert bundle["total"] == 3
    assert {e["search"]["mode"] for e in bundle["entry"]} == {"match"}
    for entry in bundle["entry"]:
        rid = entry["resource"]["id"]
        assert entry["fullUrl"].endswith(f"/fhir/Condition/{rid}")
        assert entry["resource"] == client.get(f"/fhir/Condition/{rid}", headers=h).get_json()
    first = next(e["resource"] for e in bundle["entry"] if e["resource"]["id"] == ids[0])
    assert first["meta"]["versionId"] == "2" and first["note"] == [{"text": "v2"}]
    assert first["code"]["text"] == 'Asthme "0" \\u0000 é \u2028'


def test_total_and_page_come_in_one_statement(client: FlaskClient, world: World) -> None:
    h = world.patient_headers()
    _create(client, h, 5)
    engine = world.espace.session_factory.kw["bind"]
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", count)
    try:
        page = client.get("/fhir/Condition?_count=2", headers=h).get_json()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert page["total"] == 5 and len(page["entry"]) == 2
    on_resources = [s for s in statements if "FROM fhir_resource" in s]
    assert len(on_resources) == 1, on_resources
    assert "over" in on_resources[0].lower()


@pytest.mark.parametrize(("query", "total", "entries", "has_next"), [
    ("_count=2", 5, 2, True),
    ("_count=2&_offset=4", 5, 1, False),
    ("_count=2&_offset=10", 5, 0, False),  # past the end: the total is counted apart
    ("_count=10", 5, 5, False),
    ("_count=0", 5, 0, False),
    ("_summary=count", 5, 0, False),
])
def test_totals_and_links(client: FlaskClient, world: World, query: str, total: int,
                          entries: int, has_next: bool) -> None:
    h = world.patient_headers()
    _create(client, h, 5)
    page = client.get(f"/fhir/Condition?{query}", headers=h).get_json()
    assert page["total"] == total
    assert len(page.get("entry", [])) == entries
    assert any(link["relation"] == "next" for link in page["link"]) is has_next


def test_total_none_omits_the_total(client: FlaskClient, world: World) -> None:
    h = world.patient_headers()
    _create(client, h, 3)
    full = client.get("/fhir/Condition?_count=2&_total=none", headers=h).get_json()
    assert "total" not in full and len(full["entry"]) == 2
    assert any(link["relation"] == "next" for link in full["link"])
    last = client.get("/fhir/Condition?_count=2&_offset=2&_total=none", headers=h).get_json()
    assert "total" not in last and len(last["entry"]) == 1
    assert not any(link["relation"] == "next" for link in last["link"])
    accurate = client.get("/fhir/Condition?_total=accurate", headers=h).get_json()
    assert accurate["total"] == 3
    bad = client.get("/fhir/Condition?_total=maybe", headers=h)
    assert bad.status_code == 400
    assert bad.get_json()["resourceType"] == "OperationOutcome"


def test_spliced_search_in_xml_and_in_a_batch(client: FlaskClient, world: World) -> None:
    h = world.patient_headers()
    ids = _create(client, h, 2)
    xml = client.get("/fhir/Condition?_format=xml", headers=h)
    assert xml.status_code == 200 and xml.mimetype == "application/fhir+xml"
    assert ids[0].encode() in xml.data and b"<total value=\"2\"/>" in xml.data
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Condition?_count=1"}}]}
    response = client.post("/fhir", json=batch, headers={**h, "Content-Type": FHIR})
    assert response.status_code == 200
    inner = json.loads(response.data)["entry"][0]["resource"]
    assert inner["total"] == 2 and inner["entry"][0]["resource"]["resourceType"] == "Condition"


def test_dumps_splices_only_its_own_placeholders() -> None:
    stored = json.dumps({"resourceType": "Condition", "id": "a", "note": "x"},
                        separators=(",", ":"))
    lookalike = "\x000123456789abcdef:0\x00"  # a placeholder of another call
    body = {"entry": [{"resource": RawResource("Condition", "a", stored)},
                      {"text": lookalike}]}
    text = dumps(body)
    decoded = json.loads(text)
    assert decoded["entry"][0]["resource"] == json.loads(stored)
    assert decoded["entry"][1]["text"] == lookalike
    assert materialize(body) == decoded
    with pytest.raises(TypeError):
        dumps({"bad": object()})


def test_capability_statement_is_dated_per_request(client: FlaskClient, world: World) -> None:
    first = client.get("/fhir/metadata").get_json()
    world.clock.advance(timedelta(days=1))
    second = client.get("/fhir/metadata").get_json()
    assert first["date"] != second["date"]
    assert {k: v for k, v in first.items() if k != "date"} == {
        k: v for k, v in second.items() if k != "date"}
