"""Helpers of the FHIR face tests: a patient space, a referenced app, bearer tokens."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from reference_data import SHARED

from espace.admin import grant_app_consent, register_app, register_space
from espace.clock import FrozenClock
from espace.service import Espace
from habilitation.model import ActorKind
from mes.tokens import issue_token

MES_API = SHARED / "reference" / "fhir" / "mes-api"
APP_ID = "diabeto-app"
APP_OID = "1.2.250.1.999.42"
REDIRECT = "https://app.example.org/callback"
ALL_PURPOSES = [
    "measurements.read", "measurements.write", "profile.read", "profile.write",
    "agenda.read", "agenda.write", "documents.read", "documents.write",
]


def ins_for(body: str) -> str:
    """A matricule INS with its valid NIR key."""
    return f"{body}{97 - int(body) % 97:02d}"


@dataclass
class Patient:
    ins: str
    space_id: str


@dataclass
class World:
    espace: Espace
    settings: dict[str, Any]
    clock: FrozenClock
    alice: Patient
    bob: Patient

    def token(self, kind: ActorKind, *, patient: Patient | None = None, subject: str = "",
              app_id: str | None = None) -> str:
        target = patient or self.alice
        return issue_token(
            self.settings, subject=subject or (app_id or target.ins), kind=kind,
            patient=target.ins, app_id=app_id,
        )

    def headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def patient_headers(self, patient: Patient | None = None) -> dict[str, str]:
        return self.headers(self.token(ActorKind.PATIENT, patient=patient))

    def app_headers(self, patient: Patient | None = None, app_id: str = APP_ID) -> dict[str, str]:
        return self.headers(self.token(ActorKind.APP, patient=patient, app_id=app_id))

    def pair(self, patient: Patient, purposes: list[str], app_id: str = APP_ID) -> None:
        with self.espace.session_factory() as session:
            from espace.models import PatientSpace

            space = session.get(PatientSpace, patient.space_id)
            assert space is not None
            grant_app_consent(session, space, app_id, purposes, granted_by=patient.ins,
                              now=self.clock.now())
            session.commit()


def weight(value: float, when: str, ins: str, **extra: Any) -> dict[str, Any]:
    return measurement("29463-7", value, "kg", when, ins, **extra)


def height(value: float, when: str, ins: str) -> dict[str, Any]:
    return measurement("8302-2", value, "cm", when, ins)


def measurement(code: str, value: float, unit: str, when: str, ins: str,
                **extra: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "meta": {"profile": ["https://interop.esante.gouv.fr/ig/fhir/mesures/"
                             "StructureDefinition/mesures-fr-observation-body-weight"]},
        "status": "final",
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"identifier": {"system": "urn:oid:1.2.250.1.213.1.4.8", "value": ins}},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org",
                          "code": unit},
    }
    resource.update(extra)
    return resource


Maker = Callable[..., dict[str, Any]]


def make_world(espace: Espace, settings: dict[str, Any], clock: FrozenClock) -> World:
    with espace.session_factory() as session:
        alice = register_space(session, ins=ins_for("2850275123456"), now=clock.now(),
                               family_name="MARTIN", given_names="Alice", sex="F",
                               birth_date=date(1985, 2, 14), email="alice@example.org")
        bob = register_space(session, ins=ins_for("1790599123457"), now=clock.now(),
                             family_name="DURAND", given_names="Bob", sex="M",
                             birth_date=date(1979, 5, 3))
        register_app(session, APP_ID, name="Diabeto", allowed_purposes=ALL_PURPOSES,
                     now=clock.now(), oid=APP_OID, redirect_uris=[REDIRECT])
        register_app(session, "other-app", name="Other", allowed_purposes=ALL_PURPOSES,
                     now=clock.now(), oid="1.2.250.1.999.43", redirect_uris=[REDIRECT])
        session.commit()
        result = World(espace, settings, clock, Patient(alice.ins, alice.id),
                       Patient(bob.ins, bob.id))
    return result


