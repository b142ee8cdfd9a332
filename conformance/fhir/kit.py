"""Shared state of the FHIR suite: the patient, its clients per actor, feeding Bundles."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Final

from conformance.context import KitContext
from conformance.data import DATA_DIR
from conformance.fhir.client import FhirClient, Reply
from conformance.model import CaseResult
from habilitation.model import ActorKind

EXAMPLES: Final = DATA_DIR / "fhir"
SUITE: Final = "fhir"
KIT_APP_ID: Final = "mes-conformance-kit"
KIT_APP_OID: Final = "1.2.250.1.215.400"
MEASUREMENT_PURPOSES: Final = ["measurements.read", "measurements.write"]
SPEC_CAPABILITY: Final = "HL7 FHIR R4 http.html, capabilitystatement.html"
SPEC_MES: Final = "MES API Mesures v1.5.2 (2023-07-21)"
SPEC_MESURES: Final = "ANS IG Mesures de santé 3.2.0"


def new_case(case_id: str, title: str, spec: str) -> CaseResult:
    return CaseResult(suite=SUITE, case_id=case_id, title=title, spec=spec)


def load_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


class FhirKit:
    """State of one FHIR run: the patient, its Patient id, the clients per actor."""

    def __init__(self, context: KitContext) -> None:
        self.context = context
        self.ins = context.patients.new_patient()
        self.oid = context.patients.oid
        self.patient = FhirClient(
            context.transport,
            context.fhir_base,
            context.token(kind=ActorKind.PATIENT, subject=self.ins, patient=self.ins),
        )
        self.app_ready = self._pair_app(self.ins)
        self.app = self.patient.with_token(self._app_token(self.ins))
        self.patient_id = ""

    def _app_token(self, ins: str) -> str:
        return self.context.token(
            kind=ActorKind.APP,
            subject=KIT_APP_ID,
            patient=ins,
            app_id=KIT_APP_ID,
            scope=" ".join(MEASUREMENT_PURPOSES),
        )

    def _pair_app(self, ins: str) -> bool:
        """Reference the kit's app and record the patient's consent (in process only)."""
        espace = self.context.extra.get("espace")
        if espace is None:
            return True  # remote: ``mes conformance setup`` paired the pool patients
        from espace.admin import grant_app_consent, register_app
        from espace.spaces import find_space_by_ins

        now = espace.clock.now()
        with espace.session_factory() as session:
            register_app(
                session,
                KIT_APP_ID,
                name="MES conformance kit",
                allowed_purposes=MEASUREMENT_PURPOSES,
                now=now,
                oid=KIT_APP_OID,
            )
            space = find_space_by_ins(session, ins)
            if space is None:
                return False
            grant_app_consent(
                session, space, KIT_APP_ID, MEASUREMENT_PURPOSES, granted_by=ins, now=now
            )
            session.commit()
        return True

    def subject(self) -> dict[str, Any]:
        return {"identifier": {"system": f"urn:oid:{self.oid}", "value": self.ins}}

    def find_patient_id(self, case: CaseResult | None) -> str:
        if not self.patient_id:
            reply = self.patient.request(case, "find the Patient", "GET", "Patient")
            entries = (reply.body or {}).get("entry") or []
            if entries:
                self.patient_id = str(entries[0]["resource"].get("id", ""))
        return self.patient_id


def why(reply: Reply) -> str:
    issue = reply.issue()
    return f"({issue.get('code')}: {str(issue.get('diagnostics', ''))[:160]})" if issue else ""


def _device() -> dict[str, Any]:
    return {
        "resourceType": "Device",
        "id": "kit-device",
        "meta": {"profile": ["http://hl7.org/fhir/uv/phd/StructureDefinition/PhdDevice"]},
        "identifier": [{"system": f"urn:oid:{KIT_APP_OID}", "value": "KIT-DEVICE-1"}],
        "type": {"coding": [{"system": "urn:iso:std:iso:11073:10101", "code": "65573"}]},
    }


def feeding_bundle(kit: FhirKit, observation: dict[str, Any]) -> dict[str, Any]:
    """MES API Mesures §2.2: a transaction Bundle with the Device and the Observation."""
    observation = copy.deepcopy(observation)
    observation.pop("id", None)
    observation["subject"] = kit.subject()
    observation["device"] = {"reference": "Device/kit-device"}
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:7b1f0c3e-0000-4000-8000-000000000001",
                "resource": _device(),
                "request": {
                    "method": "POST",
                    "url": "Device",
                    "ifNoneExist": f"identifier=urn:oid:{KIT_APP_OID}|KIT-DEVICE-1",
                },
            },
            {
                "fullUrl": "urn:uuid:7b1f0c3e-0000-4000-8000-000000000002",
                "resource": observation,
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }


def created_observation(reply: Reply) -> str:
    for entry in (reply.body or {}).get("entry") or []:
        location = str((entry.get("response") or {}).get("location", ""))
        if location.startswith("Observation/"):
            return location.split("/")[1]
    return ""
