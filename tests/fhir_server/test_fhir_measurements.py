"""MES API Mesures v1.5.2: feeding transaction, search modes, BMI, the error catalogue."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from fhir_helpers import APP_OID, MES_API, SHARED, World, height, measurement, weight
from flask.testing import FlaskClient

FHIR = "application/fhir+json"
MEASURE_ALL = ["measurements.read", "measurements.write"]


def example(name: str, ins: str) -> dict[str, Any]:
    path = MES_API / name
    if not path.exists():
        pytest.skip(f"MES API examples not found at {path}")
    data: dict[str, Any] = json.loads(path.read_text().replace("{{idPe}}", ins))
    return data


def post_bundle(client: FlaskClient, bundle: Any, headers: dict[str, str]) -> Any:
    return client.post("/fhir", json=bundle, headers={**headers, "Content-Type": FHIR})


def feeding(obs: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:9a0b5b2e-2f4e-4b7e-8f2a-1d9b0f3a0c11", "resource": obs,
         "request": {"method": "POST", "url": "Observation"}}]}


def issue(response: Any) -> dict[str, Any]:
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome", body
    first: dict[str, Any] = body["issue"][0]
    return first


def test_example_feeding_bundle_is_accepted(client: FlaskClient, world: World) -> None:
    world.pair(world.alice, MEASURE_ALL)
    h = world.app_headers()
    bundle = example("Bundle-mes-api-alimentation-poids-transaction.json", world.alice.ins)
    first = post_bundle(client, bundle, h)
    assert first.status_code == 200, first.get_json()
    body = first.get_json()
    assert body["type"] == "transaction-response"
    statuses = {e["response"]["location"].split("/")[0]: e["response"]["status"]
                for e in body["entry"]}
    assert statuses == {"Device": "201 Created", "Observation": "201 Created"}
    device_location = next(e["response"]["location"] for e in body["entry"]
                           if e["response"]["location"].startswith("Device/"))
    assert device_location == "Device/3bc44de3-069d-442d-829b-f3ef68cae371"
    again = post_bundle(client, bundle, h).get_json()
    statuses = {e["response"]["location"].split("/")[0]: e["response"]["status"]
                for e in again["entry"]}
    assert statuses == {"Device": "200 OK", "Observation": "201 Created"}
    # the stored observation is tagged with the app and links the one device
    found = client.get(
        f"/fhir/Observation?subject.identifier=urn:oid:1.2.3|{world.alice.ins}&code=29463-7"
        "&_sort=-date&_count=1&_include=Observation:device", headers=h).get_json()
    assert found["total"] == 2
    kinds = [(e["resource"]["resourceType"], e["search"]["mode"]) for e in found["entry"]]
    assert kinds == [("Observation", "match"), ("Device", "include")]
    obs = found["entry"][0]["resource"]
    assert obs["meta"]["source"] == f"urn:oid:{APP_OID}"
    assert obs["device"]["reference"] == "Device/3bc44de3-069d-442d-829b-f3ef68cae371"


def test_example_search_bundle_shape(client: FlaskClient, world: World) -> None:
    """The documented searchset: "all" mode with two bounds, paging of 2, devices once."""
    world.pair(world.alice, MEASURE_ALL)
    h = world.app_headers()
    bundle = example("Bundle-mes-api-alimentation-poids-transaction.json", world.alice.ins)
    for day in ("05", "10", "15", "20"):
        b = copy.deepcopy(bundle)
        b["entry"][1]["resource"]["effectiveDateTime"] = f"2022-09-{day}T08:00:00+02:00"
        assert post_bundle(client, b, h).status_code == 200
    url = (f"/fhir/Observation?subject.identifier=x|{world.alice.ins}&code=29463-7"
           "&date=gt2022-09-04&date=lt2022-09-23&_offset=0&_count=2&_include=Observation.device")
    page = client.get(url, headers=h).get_json()
    assert page["type"] == "searchset" and page["total"] == 4
    assert [e["search"]["mode"] for e in page["entry"]] == ["match", "match", "include"]
    assert {link["relation"] for link in page["link"]} >= {"self", "next"}


@pytest.mark.parametrize(
    ("query", "diagnostic"),
    [
        ("code=29463-7&date=ge2022-01-01&date=le2022-12-31&_count=101",
         "Maximum page size allowed is 100. Actual : 101"),
        ("code=29463-7&_sort=-date&_count=2",
         "Sort parameter must be equals to -date (date DESC) with _count equals to 1 to "
         "retrieve last observation"),
        ("code=29463-7&_sort=-date&_count=1&date=ge2022-01-01",
         "Paged search and search last cannot be requested concurrently"),
        ("code=29463-7", "No search mode detected"),
        ("code=29463-7&date=ge2022-01-01", "No search mode detected"),
    ],
)
def test_search_request_errors(client: FlaskClient, world: World, query: str,
                               diagnostic: str) -> None:
    world.pair(world.alice, MEASURE_ALL)
    response = client.get(f"/fhir/Observation?{query}", headers=world.app_headers())
    assert response.status_code == 400
    assert issue(response)["code"] == "invalid"
    assert issue(response)["diagnostics"] == diagnostic


def test_idpe_mismatch_is_403(client: FlaskClient, world: World) -> None:
    world.pair(world.alice, MEASURE_ALL)
    response = client.get(
        f"/fhir/Observation?subject.identifier=x|{world.bob.ins}&code=29463-7&_sort=-date"
        "&_count=1", headers=world.app_headers())
    assert response.status_code == 403
    assert issue(response)["diagnostics"] == "idPe requested do not match authorized idPe."


def test_no_bundle_provided(client: FlaskClient, world: World) -> None:
    world.pair(world.alice, MEASURE_ALL)
    response = client.post("/fhir", data="", headers={**world.app_headers(),
                                                      "Content-Type": FHIR})
    assert response.status_code == 400
    assert issue(response)["diagnostics"] == "No bundle provided."


def _bmi(ins: str) -> dict[str, Any]:
    return measurement("39156-5", 22.0, "kg/m2", "2026-01-01", ins)


def _glucose_example() -> dict[str, Any]:
    path = (SHARED / "reference/fhir/mesures/examples"
            / "Observation-example-mes-fr-observation-glucose-001.json")
    if not path.exists():
        pytest.skip("Mesures IG examples not found")
    data: dict[str, Any] = json.loads(path.read_text())
    data.pop("id")
    return data


def _with(obs: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(obs)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


MOMENT = {"url": "https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition/"
                 "mesures-moment-of-measurement", "valueCodeableConcept": {"text": "à jeun"}}
DAYS = {"url": "https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition/"
               "mesures-number-of-days", "valueCodeableConcept": {"text": "7j"}}


@pytest.mark.parametrize(
    ("build", "issue_code", "diagnostic"),
    [
        (lambda ins: _bmi(ins), "not-supported", "Bmi observation cannot be created."),
        (lambda ins: _with(weight(70, "2026-01-01", ins), meta=None), "invalid",
         "Observation must provide meta.profile value."),
        (lambda ins: _with(weight(70, "2026-01-01", ins), valueQuantity=None), "value",
         "Observation value quantity not provided."),
        (lambda ins: _with(weight(70, "2026-01-01", ins), subject=None), "invalid",
         "Observation.subject.identifier is mandatory."),
        (lambda ins: _with(weight(70, "2026-01-01", ins),
                           meta={"profile": ["x"], "source": "urn:oid:1.2.250.1.1"}),
         "value", f"Solution oid contains in Observation.meta.source don't belong to root "
                  f"editor oid ({APP_OID})."),
        (lambda ins: measurement("2345-7", 95, "mg/dL", "2026-01-01", ins), "incomplete",
         "Observation.extension.moment is mandatory."),
        (lambda ins: measurement("2345-7", 95, "mg/dL", "2026-01-01", ins,
                                 extension=[MOMENT, DAYS]), "invalid",
         "Observation.extension.numberOfDays cannot be added."),
        (lambda ins: measurement("MED-969", 130, "mg/dL", "2026-01-01", ins,
                                 extension=[MOMENT, DAYS]), "invalid",
         "Observation.extension.moment cannot be added."),
        (lambda ins: measurement("MED-972", 6.5, "%", "2026-01-01", ins), "incomplete",
         "Observation.extension.numberOfDays is mandatory."),
        (lambda ins: _with(_glucose_example(), subject={"identifier": {"value": ins}}),
         "invalid", "Observation.extension.numberOfDays cannot be added."),
    ],
)
def test_validation_catalogue(client: FlaskClient, world: World, build: Any, issue_code: str,
                              diagnostic: str) -> None:
    world.pair(world.alice, MEASURE_ALL)
    h = world.app_headers()
    obs = build(world.alice.ins)
    for response in (post_bundle(client, feeding(obs), h),
                     client.post("/fhir/Observation", json=obs,
                                 headers={**h, "Content-Type": FHIR})):
        assert response.status_code == 422, response.get_json()
        assert issue(response)["code"] == issue_code
        assert issue(response)["diagnostics"] == diagnostic
    assert client.get("/fhir/Observation?code=29463-7", headers=world.patient_headers()) \
        .get_json()["total"] == 0


def test_valid_glucose_types_are_accepted(client: FlaskClient, world: World) -> None:
    world.pair(world.alice, MEASURE_ALL)
    h = world.app_headers()
    ins = world.alice.ins
    for obs in (measurement("2345-7", 95, "mg/dL", "2026-01-01", ins, extension=[MOMENT]),
                measurement("4548-4", 6.1, "%", "2026-01-01", ins),
                measurement("MED-969", 130, "mg/dL", "2026-01-01", ins, extension=[DAYS]),
                measurement("MED-972", 6.5, "%", "2026-01-01", ins, extension=[DAYS])):
        response = post_bundle(client, feeding(obs), h)
        assert response.status_code == 200, response.get_json()


@pytest.mark.parametrize(
    ("mutate", "message", "diagnostic"),
    [
        (lambda b: b["entry"].append({"resource": {"resourceType": "Condition",
                                                   "code": {"text": "x"}},
                                      "request": {"method": "POST", "url": "Condition"}}),
         "Bundle not valid.", "Resource of type Condition is not acceptable with method POST."),
        (lambda b: b["entry"][0]["request"].update(ifNoneExist="identifier=abc"),
         "Bundle not valid.",
         "Device request must have a valid IfNoneExist attribute : "
         "identifier=urn:oid:<OID>|<DEVICE ID>"),
        (lambda b: b["entry"].pop(1), "Bundle not valid.",
         "Bundle must contains one observation creation (POST)"),
        (lambda b: b["entry"][1]["resource"].pop("device"),
         "Observation and Device link not valid.",
         "Observation.device.reference is mandatory."),
        (lambda b: b["entry"][1]["resource"].update(device={"reference": "Device/other"}),
         "Observation and Device link not valid.",
         "Observation and device not linked by id (Observation.device.reference <-> Device.id)"),
        (lambda b: b["entry"][0]["resource"].pop("meta"), "Device resource not valid.",
         "Device must provide meta.profile value."),
    ],
)
def test_bundle_catalogue(client: FlaskClient, world: World, mutate: Any, message: str,
                          diagnostic: str) -> None:
    world.pair(world.alice, MEASURE_ALL)
    bundle = example("Bundle-mes-api-alimentation-poids-transaction.json", world.alice.ins)
    mutate(bundle)
    response = post_bundle(client, bundle, world.app_headers())
    assert response.status_code == 422
    assert issue(response)["diagnostics"] == diagnostic
    assert issue(response)["details"]["text"] == message
    patient = world.patient_headers()
    assert client.get("/fhir/Device", headers=patient).get_json()["total"] == 0


def test_bmi_is_computed_from_weight_and_latest_height(client: FlaskClient,
                                                       world: World) -> None:
    h = world.patient_headers()
    ins = world.alice.ins
    for obs in (height(160, "2025-01-01T08:00:00Z", ins), height(180, "2025-06-01T08:00:00Z", ins),
                weight(81, "2025-03-01T08:00:00Z", ins), weight(81, "2025-07-01T08:00:00Z", ins)):
        assert client.post("/fhir/Observation", json=obs,
                           headers={**h, "Content-Type": FHIR}).status_code == 201
    found = client.get("/fhir/Observation?code=39156-5&_sort=-date", headers=h).get_json()
    assert found["total"] == 2
    values = [e["resource"]["valueQuantity"]["value"] for e in found["entry"]]
    assert values == [25.0, 31.6]  # 81/1.8^2 after the second height, 81/1.6^2 before
    bmi = found["entry"][0]["resource"]
    assert bmi["code"]["coding"][0]["code"] == "39156-5"
    again = client.get(f"/fhir/Observation/{bmi['id']}", headers=h).get_json()
    assert again["valueQuantity"] == bmi["valueQuantity"]


def test_unpaired_app_gets_the_catalogue_403(client: FlaskClient, world: World) -> None:
    response = client.get("/fhir/Observation?code=29463-7&_sort=-date&_count=1",
                          headers=world.app_headers())
    assert response.status_code == 403
    assert issue(response)["diagnostics"] == "Consent not given, access refused."
    world.pair(world.alice, ["measurements.read"])
    write = post_bundle(client, feeding(weight(70, "2026-01-01", world.alice.ins)),
                        world.app_headers())
    assert write.status_code == 403
    assert issue(write)["diagnostics"] == "Consent not given, access refused."


def test_meta_source_keeps_the_apps_sub_oid(client: FlaskClient, world: World) -> None:
    world.pair(world.alice, MEASURE_ALL)
    obs = weight(70, "2026-01-01", world.alice.ins)
    obs["meta"]["source"] = f"urn:oid:{APP_OID}.7"
    response = post_bundle(client, feeding(obs), world.app_headers())
    assert response.status_code == 200, response.get_json()
    stored = client.get("/fhir/Observation?code=29463-7", headers=world.patient_headers())
    assert stored.get_json()["entry"][0]["resource"]["meta"]["source"] == f"urn:oid:{APP_OID}.7"
