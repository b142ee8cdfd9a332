"""App pairings as FHIR Consent resources, kept equal to the stored ``AppConsent``.

The patient consents per purpose (read/write per brick, ``habilitation.model.Purpose``) through
the OAuth2 authorization-code flow (``fhir_server.oauth``); the pairing is then both an
``AppConsent`` row (what the PDP checks on every call, via ``SpaceFacts.app_consents``) and a
Consent resource (R4 consent.html, scope ``patient-privacy``, one nested ``provision`` per
purpose) the patient reads, updates (status ``inactive`` withdraws, fewer purposes narrows) and
deletes (withdraws). A withdrawal takes effect on the app's very next call.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from espace import fhir_store as store
from espace.admin import grant_app_consent
from espace.models import AppConsent, PatientSpace, ReferencedApp, unflat
from fhir_server.errors import FhirError
from fhir_server.routing import CONSENTS, PAIRING_CATEGORY, PAIRING_CATEGORY_SYSTEM
from fhir_server.search import instant
from habilitation.model import Purpose

if TYPE_CHECKING:
    from fhir_server.repository import FhirRepository

PURPOSE_SYSTEM = "https://monespacesante.fr/fhir/CodeSystem/pairing-purpose"
APP_SYSTEM = "https://monespacesante.fr/fhir/NamingSystem/referenced-app"
_ACTIONS = {"read": "access", "write": "correct"}


def consent_resource(
    space: PatientSpace, app: ReferencedApp, purposes: set[str], *, when: datetime, by: str
) -> dict[str, Any]:
    """The Consent resource of one pairing."""
    app_ref: dict[str, Any] = {"identifier": {"system": APP_SYSTEM, "value": app.id},
                               "display": app.name}
    return {
        "resourceType": "Consent",
        "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                              "code": "patient-privacy"}]},
        "category": [
            {"coding": [{"system": "http://loinc.org", "code": "59284-0",
                         "display": "Patient Consent"}]},
            {"coding": [{"system": PAIRING_CATEGORY_SYSTEM, "code": PAIRING_CATEGORY,
                         "display": "Appariement d'un service référencé"}]},
        ],
        "patient": {"reference": f"Patient/{space.id}"},
        "dateTime": instant(when),
        "performer": [{"identifier": {"value": by}}],
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                   "code": "OPTIN"}]},
        "provision": {
            "type": "permit",
            "period": {"start": instant(when)},
            "actor": [{
                "role": {"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                    "code": "IRCP"}]},
                "reference": app_ref,
            }],
            "provision": [
                {
                    "type": "permit",
                    "action": [{"coding": [{
                        "system": "http://terminology.hl7.org/CodeSystem/consentaction",
                        "code": _ACTIONS[p.split(".")[1]]}]}],
                    "code": [{"coding": [{"system": PURPOSE_SYSTEM, "code": p}]}],
                }
                for p in sorted(purposes)
            ],
        },
    }


def app_of(resource: dict[str, Any]) -> str:
    for actor in (resource.get("provision") or {}).get("actor") or []:
        identifier = (actor.get("reference") or {}).get("identifier") or {}
        if identifier.get("system") == APP_SYSTEM and identifier.get("value"):
            return str(identifier["value"])
    raise FhirError(422, "business-rule", "the pairing names no referenced app",
                    code="pairing_without_app")


def purposes_of(resource: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for sub in (resource.get("provision") or {}).get("provision") or []:
        if sub.get("type", "permit") != "permit":
            continue
        for concept in sub.get("code") or []:
            for coding in concept.get("coding") or []:
                if coding.get("system") == PURPOSE_SYSTEM:
                    found.add(str(coding.get("code")))
    return found


def check_purposes(app: ReferencedApp | None, purposes: set[str]) -> None:
    """Purposes must be known (never the mailbox) and allowed for the app in the catalogue."""
    known = {p.value for p in Purpose}
    if app is None or app.status != "referenced":
        raise FhirError(403, "forbidden", "the app is not referenced", code="app_not_referenced")
    unknown = purposes - known
    if unknown or not purposes:
        raise FhirError(400, "invalid", f"unknown purposes {sorted(unknown)}",
                        code="unknown_purpose")
    beyond = purposes - unflat(app.allowed_purposes)
    if beyond:
        raise FhirError(403, "forbidden",
                        f"purposes not allowed for this app: {sorted(beyond)}",
                        code="purpose_not_allowed")


def withdraw(repo: FhirRepository, resource: dict[str, Any]) -> None:
    app_id = app_of(resource)
    for row in repo.session.execute(
        select(AppConsent).where(
            AppConsent.space_id == repo.space.id,
            AppConsent.app_id == app_id,
            AppConsent.withdrawn_at.is_(None),
        )
    ).scalars():
        row.withdrawn_at = repo.op.now
    repo.op.detail["pairing_withdrawn"] = app_id


def apply_update(repo: FhirRepository, row: store.FhirResourceRow,
                 resource: dict[str, Any]) -> None:
    """A PUT on a pairing: ``inactive``/``rejected`` withdraws, fewer purposes narrow it."""
    old = store.resource_of(row) if not row.deleted else {}
    app_id = app_of(resource)
    if old and app_of(old) != app_id:
        raise FhirError(422, "business-rule", "a pairing cannot change app",
                        code="pairing_app_change")
    if resource.get("status") != "active":
        withdraw(repo, resource)
        return
    purposes = purposes_of(resource)
    check_purposes(repo.session.get(ReferencedApp, app_id), purposes)
    grant_app_consent(repo.session, repo.space, app_id, sorted(purposes),
                      granted_by=repo.actor.id, now=repo.op.now)
    repo.op.detail["pairing_purposes"] = sorted(purposes)


def grant(repo: FhirRepository, app: ReferencedApp, purposes: set[str]) -> str:
    """Record a new pairing (AppConsent + Consent resource); returns the Consent id."""
    check_purposes(app, purposes)
    grant_app_consent(repo.session, repo.space, app.id, sorted(purposes),
                      granted_by=repo.actor.id, now=repo.op.now)
    resource = consent_resource(repo.space, app, purposes, when=repo.op.now, by=repo.actor.id)
    existing = [
        r for r in repo.session.execute(
            select(store.FhirResourceRow).where(
                store.FhirResourceRow.space_id == repo.space.id,
                store.FhirResourceRow.resource_type == "Consent",
                store.FhirResourceRow.brick == CONSENTS,
                store.FhirResourceRow.deleted.is_(False),
            )
        ).scalars()
        if app_of(store.resource_of(r)) == app.id
    ]
    writer = repo.writer()
    if existing:
        row = existing[0]
        resource["id"] = row.id
        store.update(repo.session, row, resource, writer=writer, now=repo.op.now)
        return row.id
    row = store.create(repo.session, repo.space.id, resource, brick=CONSENTS, writer=writer,
                       now=repo.op.now)
    return row.id
