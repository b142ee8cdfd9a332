"""Independent FHIR clients (fhirclient, fhirpy) against the live server."""

from __future__ import annotations

import asyncio

import pytest
from fhir_helpers import World, weight

FHIR = "application/fhir+json"


def test_fhirclient_reads_capability_and_resources(live_server: str, world: World) -> None:
    import requests
    from fhirclient import client as fc_client
    from fhirclient.models.condition import Condition
    from fhirclient.models.observation import Observation

    smart = fc_client.FHIRClient(settings={"app_id": "test", "api_base": f"{live_server}/fhir"})
    session = requests.Session()
    session.headers.update(world.patient_headers())
    smart.server.session = session
    smart.prepare()
    assert smart.server.capabilityStatement.fhirVersion == "4.0.1"

    condition = Condition({"code": {"text": "Diabète de type 2"},
                           "subject": {"reference": f"Patient/{world.alice.space_id}"},
                           "onsetDateTime": "2019-05-01"})
    created = condition.create(smart.server)
    assert created is not None and created["resourceType"] == "Condition"
    read = Condition.read(created["id"], smart.server)
    assert read.code.text == "Diabète de type 2"
    obs = Observation(weight(71.5, "2026-01-02T08:00:00+01:00", world.alice.ins))
    obs.create(smart.server)
    found = Observation.where(struct={"code": "29463-7"}).perform_resources(smart.server)
    assert [o.valueQuantity.value for o in found] == [71.5]


def test_fhirpy_search_paging_and_crud(live_server: str, world: World) -> None:
    from fhirpy import SyncFHIRClient

    client = SyncFHIRClient(f"{live_server}/fhir",
                            authorization=world.patient_headers()["Authorization"],
                            extra_headers={"Accept": FHIR})
    for day in range(1, 6):
        client.resource("Observation", **weight(70 + day, f"2026-02-0{day}", world.alice.ins)
                        ).save()
    search = client.resources("Observation").search(code="29463-7").sort("-date").limit(2)
    assert search.count() == 5
    values = [o["valueQuantity"]["value"] for o in search.fetch_all()]
    assert values == [75, 74, 73, 72, 71]
    appointment = client.resource(
        "Appointment", status="booked", description="Dentiste",
        start="2026-03-01T09:00:00Z", end="2026-03-01T09:30:00Z",
        participant=[{"actor": {"display": "Dr Dupont"}, "status": "accepted"}])
    appointment.save()
    assert appointment["id"]
    appointment["description"] = "Dentiste (contrôle)"
    appointment.save()
    fetched = client.reference("Appointment", appointment["id"]).to_resource()
    assert fetched["meta"]["versionId"] == "2"
    fetched.delete()
    assert client.resources("Appointment").count() == 0


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_fhirpy_async_client(live_server: str, world: World) -> None:
    from fhirpy import AsyncFHIRClient

    async def run() -> int:
        client = AsyncFHIRClient(f"{live_server}/fhir",
                                 authorization=world.patient_headers()["Authorization"])
        return int(await client.resources("AuditEvent").count())

    assert asyncio.run(run()) >= 0
