"""PATCH, conditional delete and _revinclude over real HTTP (a live server), with concurrent
writers: patches of one resource queue on its row lock, so none is lost and a stale
``If-Match`` is a 412, never a 409 or a 500 (FHIR R4 http.html#concurrency, RFC 9110
§13.1.1), on SQLite and PostgreSQL alike."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from fhir_helpers import World

FHIR = "application/fhir+json"
PATCH = "application/json-patch+json"
WRITERS = 6


def _concurrently(live_server: str, send: Any) -> list[httpx.Response]:
    barrier = threading.Barrier(WRITERS)

    def one(n: int) -> httpx.Response:
        with httpx.Client(base_url=live_server, timeout=60) as client:
            barrier.wait()
            response: httpx.Response = send(client, n)
            return response

    with ThreadPoolExecutor(max_workers=WRITERS) as pool:
        return list(pool.map(one, range(WRITERS)))


def test_concurrent_patches_lose_nothing(live_server: str, world: World) -> None:
    h = world.patient_headers()
    with httpx.Client(base_url=live_server, timeout=60, headers=h) as http:
        created = http.post("/fhir/Condition", json={
            "resourceType": "Condition", "code": {"text": "x"}, "note": [{"text": "start"}]},
            headers={"Content-Type": FHIR})
        assert created.status_code == 201, created.text
        rid = created.json()["id"]

        def append(client: httpx.Client, n: int) -> httpx.Response:
            return client.patch(f"/fhir/Condition/{rid}", headers={**h, "Content-Type": PATCH},
                                content=f'[{{"op": "add", "path": "/note/-", '
                                        f'"value": {{"text": "writer {n}"}}}}]')

        results = _concurrently(live_server, append)
        assert [r.status_code for r in results] == [200] * WRITERS, [r.text for r in results]
        assert sorted(int(r.json()["meta"]["versionId"]) for r in results) == list(
            range(2, WRITERS + 2))
        final = http.get(f"/fhir/Condition/{rid}").json()
        assert sorted(n["text"] for n in final["note"]) == sorted(
            ["start", *(f"writer {n}" for n in range(WRITERS))])
        assert http.get(f"/fhir/Condition/{rid}/_history").json()["total"] == WRITERS + 1


def test_concurrent_patches_with_one_if_match_one_winner(live_server: str,
                                                          world: World) -> None:
    h = world.patient_headers()
    with httpx.Client(base_url=live_server, timeout=60, headers=h) as http:
        rid = http.post("/fhir/Condition", json={"resourceType": "Condition",
                                                  "code": {"text": "x"}},
                        headers={"Content-Type": FHIR}).json()["id"]

        def replace(client: httpx.Client, n: int) -> httpx.Response:
            return client.patch(
                f"/fhir/Condition/{rid}",
                headers={**h, "Content-Type": PATCH, "If-Match": 'W/"1"'},
                content=f'[{{"op": "replace", "path": "/code/text", "value": "w{n}"}}]')

        results = _concurrently(live_server, replace)
        codes = sorted(r.status_code for r in results)
        assert codes == [200] + [412] * (WRITERS - 1), codes
        assert all(r.json()["resourceType"] == "OperationOutcome"
                   for r in results if r.status_code == 412)
        winner = next(r.json() for r in results if r.status_code == 200)
        assert http.get(f"/fhir/Condition/{rid}").json() == winner
        assert http.get(f"/fhir/Condition/{rid}/_history").json()["total"] == 2


def test_conditional_delete_and_revinclude_over_http(live_server: str, world: World) -> None:
    h = world.patient_headers()
    with httpx.Client(base_url=live_server, timeout=60, headers=h) as http:
        rid = http.post("/fhir/Condition", json={
            "resourceType": "Condition",
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "195967001"}]}},
            headers={"Content-Type": FHIR}).json()["id"]
        bundle = http.get("/fhir/Patient", params=[
            ("_revinclude", "Condition:subject")]).json()
        assert [e["resource"]["id"] for e in bundle["entry"]
                if e["search"]["mode"] == "include"] == [rid]

        def delete(client: httpx.Client, n: int) -> httpx.Response:
            return client.delete("/fhir/Condition", headers=h,
                                 params={"code": "http://snomed.info/sct|195967001"})

        results = _concurrently(live_server, delete)
        assert [r.status_code for r in results] == [204] * WRITERS
        assert http.get(f"/fhir/Condition/{rid}").status_code == 410
        history = http.get(f"/fhir/Condition/{rid}/_history").json()
        assert [e["request"]["method"] for e in history["entry"]] == ["DELETE", "POST"]
