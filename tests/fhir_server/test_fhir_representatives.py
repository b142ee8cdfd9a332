"""The patient side includes a minor's legal representatives and a protected adult's
representative; a legal representative loses the space at the child's majority."""

from __future__ import annotations

from datetime import date

from fhir_helpers import World, ins_for
from flask.testing import FlaskClient

from espace.admin import add_representative, register_space
from habilitation.model import ActorKind
from mes.tokens import issue_token

FHIR = "application/fhir+json"
PARENT = ins_for("2700175123450")


def test_legal_representative_of_a_minor(client: FlaskClient, world: World) -> None:
    with world.espace.session_factory() as session:
        child = register_space(session, ins=ins_for("1150675123458"), now=world.clock.now(),
                               birth_date=date(2015, 6, 1), sex="M")
        adult = register_space(session, ins=ins_for("1000675123459"), now=world.clock.now(),
                               birth_date=date(2000, 6, 1), sex="M")
        for space in (child, adult):
            add_representative(session, space, PARENT, now=world.clock.now())
        session.commit()
        child_ins, adult_ins = child.ins, adult.ins

    def headers(patient: str) -> dict[str, str]:
        token = issue_token(world.settings, subject=PARENT, patient=patient,
                            kind=ActorKind.LEGAL_REPRESENTATIVE)
        return {"Authorization": f"Bearer {token}", "Content-Type": FHIR}

    created = client.post("/fhir/Immunization", headers=headers(child_ins), json={
        "resourceType": "Immunization", "status": "completed",
        "vaccineCode": {"text": "ROR"}, "occurrenceDateTime": "2016-06-01"})
    assert created.status_code == 201, created.get_json()
    assert client.get("/fhir/Immunization", headers=headers(child_ins)).get_json()["total"] == 1
    refused = client.get("/fhir/Immunization", headers=headers(adult_ins))
    assert refused.status_code == 403
    trace = client.get("/fhir/AuditEvent", headers=headers(child_ins)).get_json()
    assert any(e["resource"]["agent"][0]["who"]["identifier"]["value"] == PARENT
               for e in trace["entry"])
