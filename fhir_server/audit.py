"""The trace of a space as AuditEvent resources, in the IHE BALP 1.1.4 shapes.

One projection of ``espace.trace`` (the other is the ATNA export): each record becomes an
AuditEvent whose ``type``/``subtype`` follow BALP (``rest`` + restful-interaction for FHIR
calls, DICOM event IDs + IHE transaction codes for XDS), ``outcome`` 0 (success),
4 (failure) or 8 (denied, with the deciding rule in ``outcomeDesc``, as the BALP
AuthZ-Consent deny example), the caller as the requestor agent (``IRCP`` / ``110150``
Application for apps, the OAuth client in ``agent.policy`` per BALP OAUTHaccessTokenUse),
the patient and the target as entities, and the request id as a ``XrequestId`` entity.
"""

from __future__ import annotations

import base64
from typing import Any

from espace.models import TraceRecord
from fhir_server.search import instant

DCM = "http://dicom.nema.org/resources/ontology/DCM"
AUDIT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
INTERACTION = "http://hl7.org/fhir/restful-interaction"
IHE_EVENT = "urn:ihe:event-type-code"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
BALP = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/"
MES_EVENT = "https://monespacesante.fr/fhir/CodeSystem/trace-event-type"
PS_IDNAT = "urn:oid:1.2.250.1.71.4.2.1"

_REST_ACTIONS = {
    "create": "C", "read": "R", "vread": "R", "update": "U", "patch": "U", "delete": "D",
    "search-type": "E", "search-system": "E", "history-instance": "R", "history-type": "R",
    "history-system": "R", "transaction": "E", "batch": "E", "capabilities": "R",
}
_REST_PROFILES = {
    "C": "IHE.BasicAudit.PatientCreate", "R": "IHE.BasicAudit.PatientRead",
    "U": "IHE.BasicAudit.PatientUpdate", "D": "IHE.BasicAudit.PatientDelete",
    "E": "IHE.BasicAudit.PatientQuery",
}
# IHE ITI transactions (ITI TF-2 audit message definitions): DICOM event ID and action.
_IHE = {
    "ITI-18": ("110112", "Query", "E"),
    "ITI-41": ("110107", "Import", "C"),
    "ITI-42": ("110107", "Import", "C"),
    "ITI-43": ("110106", "Export", "R"),
    "ITI-57": ("110107", "Import", "U"),
    "ITI-65": ("110107", "Import", "C"),
    "ITI-67": ("110112", "Query", "E"),
    "ITI-68": ("110106", "Export", "R"),
}
_OUTCOMES = {"success": "0", "failure": "4", "denied": "8"}


def _type_and_action(record: TraceRecord) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    event = record.event_type
    if event.startswith("rest."):
        interaction = event[5:]
        action = _REST_ACTIONS.get(interaction, "E")
        return (
            {"system": AUDIT_TYPE, "code": "rest", "display": "Restful Operation"},
            [{"system": INTERACTION, "code": interaction}],
            action,
        )
    if event in _IHE:
        code, display, action = _IHE[event]
        return (
            {"system": DCM, "code": code, "display": display},
            [{"system": IHE_EVENT, "code": event}],
            action,
        )
    return ({"system": MES_EVENT, "code": event}, [], "E")


def _who(record: TraceRecord) -> dict[str, Any]:
    kind = record.actor_kind
    if kind == "professional":
        identifier = {"system": PS_IDNAT, "value": record.actor_id}
    elif kind in ("patient", "legal_representative", "protected_adult_representative"):
        identifier = {"system": "urn:oid:1.2.250.1.213.1.4.8", "value": record.actor_id}
    else:
        identifier = {"value": record.actor_id}
    who: dict[str, Any] = {"identifier": identifier}
    if record.actor_name:
        who["display"] = record.actor_name
    return who


def _agents(record: TraceRecord) -> list[dict[str, Any]]:
    requestor: dict[str, Any] = {
        "type": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
            "code": "IRCP", "display": "information recipient"}]},
        "who": _who(record),
        "requestor": True,
    }
    if record.actor_kind == "app":
        requestor["type"] = {"coding": [{"system": DCM, "code": "110150",
                                         "display": "Application"}]}
        requestor["policy"] = [f"client_id={record.actor_id}"]
    if record.actor_profession:
        requestor["role"] = [{"coding": [{"system": "urn:oid:1.2.250.1.71.1.2.7",
                                          "code": record.actor_profession}]}]
    if record.access_mode and record.access_mode != "normal":
        requestor["purposeOfUse"] = [{"coding": [{
            "system": "urn:oid:1.2.250.1.213.1.1.4.248", "code": record.access_mode}]}]
    if record.source_address:
        requestor["network"] = {"address": record.source_address, "type": "2"}
    agents = [requestor]
    if record.on_behalf_of and record.on_behalf_of != record.actor_id:
        agents.append({
            "type": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/v3-RoleClass",
                "code": "PAT", "display": "patient"}]},
            "who": {"identifier": {"value": record.on_behalf_of}},
            "requestor": False,
        })
    return agents


def audit_event(record: TraceRecord, patient_id: str) -> dict[str, Any]:
    """Map one trace record of the space ``patient_id`` to an AuditEvent (BALP)."""
    event_type, subtype, action = _type_and_action(record)
    outcome = _OUTCOMES.get(record.outcome, "4")
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(record.id),
        "meta": {"versionId": "1", "lastUpdated": instant(record.recorded_at)},
        "type": event_type,
        "action": action,
        "recorded": instant(record.recorded_at),
        "outcome": outcome,
        "agent": _agents(record),
        "source": {
            "site": "Mon espace santé",
            "observer": {"display": "mes-server"},
            "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                      "code": "4", "display": "Application Server"}],
        },
        "entity": _entities(record, patient_id),
    }
    if subtype:
        resource["subtype"] = subtype
    if event_type.get("code") == "rest":
        resource["meta"]["profile"] = [BALP + _REST_PROFILES[action]]
    if outcome != "0":
        reason = record.reason if record.decision == "deny" else record.error_code
        resource["outcomeDesc"] = f"{record.rule_id}: {reason}"[:1000]
    return resource


def _entities(record: TraceRecord, patient_id: str) -> list[dict[str, Any]]:
    entities: list[dict[str, Any]] = [{
        "what": {"reference": f"Patient/{patient_id}"},
        "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
        "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
    }]
    if record.target_type:
        what: dict[str, Any] = (
            {"reference": f"{record.target_type}/{record.target_id}"}
            if record.target_id and record.target_type[:1].isupper()
            and "/" not in record.target_id
            else {"identifier": {"value": record.target_id or record.target_type}}
        )
        entity: dict[str, Any] = {
            "what": what,
            "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
            "role": {"system": OBJECT_ROLE, "code": "4", "display": "Domain Resource"},
        }
        if record.document_type:
            entity["description"] = record.document_type
        query = (record.detail or {}).get("query")
        if query:
            entity["query"] = base64.b64encode(str(query).encode()).decode()
        entities.append(entity)
    if record.request_id:
        entities.append({
            "what": {"identifier": {"value": record.request_id}},
            "type": {"system": "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType",
                     "code": "XrequestId"},
        })
    return entities
