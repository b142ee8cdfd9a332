"""The CapabilityStatement (FHIR R4 capabilitystatement.html), built from what the code serves:
the stored types and their declared search parameters (``espace.fhir_store.SEARCH_PARAMS``),
the computed types, and the interactions the router accepts. Nothing is declared that does not
work (a test walks every declared interaction, search parameter, _include and _revinclude)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from espace.fhir_store import SEARCH_PARAMS
from fhir_server.documents import DOC_PARAMS
from fhir_server.routing import STORED_TYPES
from fhir_server.search import REVINCLUDES

SOFTWARE_VERSION = "0.1.0"
STORED_INTERACTIONS = ("read", "vread", "update", "patch", "delete", "history-instance",
                       "history-type", "create", "search-type")
_DOC_TYPES = {"status": "token", "type": "token", "category": "token", "creation": "date",
              "date": "date", "period": "date", "security-label": "token", "format": "token",
              "identifier": "token", "patient.identifier": "token", "setting": "token",
              "facility": "token", "isArchived": "token"}
VIRTUAL: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "Patient": (("read", "vread", "search-type"), {"identifier": "token"}),
    "AuditEvent": (("read", "vread", "search-type"), {"date": "date"}),
    "DocumentReference": (("read", "vread", "search-type"),
                          {p: _DOC_TYPES[p] for p in DOC_PARAMS}),
    "Binary": (("read",), {}),
}
PROFILES = {
    "Observation": [
        "https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition/"
        "mesures-fr-observation-body-weight",
        "https://fhir.monespacesante.fr/ref/mesure/StructureDefinition/mes-observation-bodyweight",
    ],
    "Device": ["http://hl7.org/fhir/uv/phd/StructureDefinition/PhdDevice"],
    "DocumentReference": [
        "https://interop.esante.gouv.fr/ig/fhir/pdsm/StructureDefinition/PDSm_ComprehensiveDocumentReference"
    ],
    "Appointment": ["https://interop.esante.gouv.fr/ig/fhir/gap/StructureDefinition/gap-appointment"],
}


def _param(name: str, ptype: str) -> dict[str, Any]:
    return {"name": name, "type": ptype}


def _common(ptypes: dict[str, str], patient: bool) -> list[dict[str, Any]]:
    params = [_param("_id", "token"), _param("_lastUpdated", "date")]
    if patient:
        params += [_param("patient", "reference"), _param("subject", "reference")]
        if "patient.identifier" not in ptypes:
            params.append(_param("patient.identifier", "token"))
    return params + [_param(n, t) for n, t in ptypes.items()]


def capability_statement(base_url: str, now_text: str) -> dict[str, Any]:
    """The CapabilityStatement (FHIR R4 capabilitystatement.html) at ``now_text``: built once
    per base URL (the tables do not change while the process runs), dated per request."""
    return {**_statement(base_url), "date": now_text}


@lru_cache(maxsize=16)
def _statement(base_url: str) -> dict[str, Any]:
    resources: list[dict[str, Any]] = []
    for rtype in sorted(STORED_TYPES):
        specs = SEARCH_PARAMS.get(rtype, {})
        entry: dict[str, Any] = {
            "type": rtype,
            "interaction": [{"code": c} for c in STORED_INTERACTIONS],
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": False,
            "conditionalCreate": True,
            "conditionalUpdate": True,
            "conditionalDelete": "single",
            "searchInclude": [f"{rtype}:{n}" for n, s in specs.items() if s.type == "reference"],
            "searchParam": _common({n: s.type for n, s in specs.items()}, True),
        }
        if rtype in REVINCLUDES:
            entry["searchRevInclude"] = [f"{s}:{p}" for s, p in REVINCLUDES[rtype]]
        if rtype in PROFILES:
            entry["supportedProfile"] = PROFILES[rtype]
        resources.append(entry)
    for rtype, (interactions, ptypes) in sorted(VIRTUAL.items()):
        entry = {
            "type": rtype,
            "interaction": [{"code": c} for c in interactions],
            "versioning": "no-version",
            "readHistory": False,
            "updateCreate": False,
        }
        if "search-type" in interactions:
            entry["searchParam"] = _common(ptypes, rtype == "DocumentReference")
            if rtype in ("Patient", "AuditEvent"):
                entry["searchParam"] = [_param("_id", "token")] + [
                    _param(n, t) for n, t in ptypes.items()]
        if rtype in REVINCLUDES:
            entry["searchRevInclude"] = [f"{s}:{p}" for s, p in REVINCLUDES[rtype]]
        if rtype in PROFILES:
            entry["supportedProfile"] = PROFILES[rtype]
        resources.append(entry)
    return {
        "resourceType": "CapabilityStatement",
        "id": "mes-server",
        "url": f"{base_url}/metadata",
        "name": "MonEspaceSanteServer",
        "title": "Mon espace santé FHIR R4 server",
        "status": "active",
        "experimental": False,
        "date": "",
        "publisher": "mes-server",
        "kind": "instance",
        "software": {"name": "mes-server", "version": SOFTWARE_VERSION},
        "implementation": {"description": "Mon espace santé FHIR API", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json", "application/fhir+xml", "xml"],
        "rest": [{
            "mode": "server",
            "documentation": (
                "Measurements per MES API Mesures v1.5.2 (search modes all/last, _count <= 100, "
                "default 50); profile, agenda, pairings (Consent), trace (AuditEvent, IHE BALP), "
                "documents (IHE MHD / ANS PDSm: DocumentReference, Binary). Unknown search "
                "parameters are rejected (400). Sort: date, _lastUpdated, _id. Patch: JSON "
                "Patch (RFC 6902, application/json-patch+json), also conditional "
                "(PATCH [type]?criteria) and in Bundles (a Binary entry); FHIRPath Patch is "
                "not supported. Conditional delete: no match deletes nothing (204), one match "
                "is deleted, several are refused (412)."
            ),
            "security": {
                "cors": False,
                "service": [{"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                    "code": "OAuth"}]}],
                "extension": [{
                    "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                    "extension": [
                        {"url": "authorize", "valueUri": f"{base_url.rsplit('/fhir', 1)[0]}"
                                                         "/oauth/authorize"},
                        {"url": "token", "valueUri": f"{base_url.rsplit('/fhir', 1)[0]}"
                                                     "/oauth/token"},
                    ],
                }],
            },
            "resource": resources,
            "interaction": [{"code": "transaction"}, {"code": "batch"}],
        }],
    }
