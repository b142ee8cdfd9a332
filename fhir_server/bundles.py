"""Batch and transaction Bundles (FHIR R4 http.html §3.1.0.11), including the MES API Mesures
feeding transaction (API Mesures v1.5.2 §2.2: Observation + optional PhdDevice with
``ifNoneExist`` conditional create).

A transaction runs inside the request's one ``Espace.operation``: any failing entry raises,
the operation rolls the whole transaction back and traces the failure (all or nothing). A
batch runs each entry in a savepoint and reports each entry's own outcome.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from espace import fhir_store as store
from espace import measurements as mes
from espace.errors import AccessDenied, DomainError
from fhir_server import mhd
from fhir_server.errors import FhirError, to_fhir_error
from fhir_server.models import ResourceInvalid, is_resource_type
from fhir_server.repository import FhirRepository, Outcome
from fhir_server.routing import SERVED_TYPES
from fhir_server.text import unstorable

_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
_REASONS = {200: "OK", 201: "Created", 204: "No Content"}


@dataclass(slots=True)
class Entry:
    index: int
    method: str
    url: str
    resource_type: str
    resource_id: str | None
    query: str
    resource: dict[str, Any] | None
    full_url: str
    if_none_exist: str | None
    if_match: str | None
    assigned_id: str | None = None
    outcome: Outcome | None = None
    result: dict[str, Any] = field(default_factory=dict)


def no_bundle() -> FhirError:
    return FhirError(400, "invalid", mes.NO_BUNDLE, details="Bad Request", code="no_bundle")


def first_entry(bundle: Any) -> tuple[str, str, dict[str, Any] | None]:
    """(method, resource type, resource) of the first entry: what the gate decides on."""
    entries = bundle.get("entry") or [] if isinstance(bundle, dict) else []
    if not entries or not isinstance(entries[0], dict):
        return "GET", "", None
    request = entries[0].get("request") or {}
    url = str(request.get("url", ""))
    rtype = urlsplit(url).path.strip("/").split("/")[0]
    resource = entries[0].get("resource")
    return str(request.get("method", "GET")).upper(), rtype, resource if isinstance(
        resource, dict) else None


def _parse_entries(bundle: dict[str, Any]) -> list[Entry]:
    entries = []
    for index, raw in enumerate(bundle.get("entry") or []):
        if not isinstance(raw, dict) or not isinstance(raw.get("request"), dict):
            raise FhirError(400, "invalid", f"entry {index} has no request", code="entry_request")
        request = raw["request"]
        method = str(request.get("method", "")).upper()
        if method not in _ORDER:
            raise FhirError(400, "invalid", f"entry {index}: unsupported method {method!r}",
                            code="entry_method")
        parts = urlsplit(str(request.get("url", "")))
        segments = [s for s in parts.path.split("/") if s]
        if not segments or not is_resource_type(segments[0]):
            raise FhirError(400, "invalid", f"entry {index}: bad url {request.get('url')!r}",
                            code="entry_url")
        if segments[0] not in SERVED_TYPES:
            raise FhirError(404, "not-supported",
                            f"entry {index}: resource type {segments[0]} is not served",
                            code="unsupported_type")
        resource = raw.get("resource")
        entries.append(Entry(
            index=index, method=method, url=str(request.get("url")), resource_type=segments[0],
            resource_id=segments[1] if len(segments) > 1 else None, query=parts.query,
            resource=dict(resource) if isinstance(resource, dict) else None,
            full_url=str(raw.get("fullUrl") or ""),
            if_none_exist=request.get("ifNoneExist"), if_match=request.get("ifMatch"),
        ))
    return entries


def _check_feeding(entries: list[Entry]) -> None:
    """MES API Mesures §2.2.8: what a feeding Bundle may hold and how it links its Device."""
    devices: dict[str, Entry] = {}
    observations = []
    for entry in entries:
        allowed = entry.method == "POST" and entry.resource_type in ("Observation", "Device")
        if not allowed:
            raise mes.MeasurementError(
                422, mes.BUNDLE_NOT_VALID, "not-supported",
                f"Resource of type {entry.resource_type} is not acceptable with method "
                f"{entry.method}.",
            )
        if entry.resource_type == "Device":
            mes.validate_device(entry.resource or {}, entry.if_none_exist)
            device_id = str((entry.resource or {}).get("id") or "")
            devices[f"Device/{device_id}"] = entry
            if entry.full_url:
                devices[entry.full_url] = entry
        else:
            observations.append(entry)
    if not observations:
        raise mes.MeasurementError(422, mes.BUNDLE_NOT_VALID, "invalid",
                                   "Bundle must contains one observation creation (POST)")
    if devices:
        for entry in observations:
            reference = ((entry.resource or {}).get("device") or {}).get("reference")
            if not reference:
                raise mes.MeasurementError(422, mes.LINK_NOT_VALID, "invalid",
                                           "Observation.device.reference is mandatory.")
            if reference not in devices:
                raise mes.MeasurementError(
                    422, mes.LINK_NOT_VALID, "invalid",
                    "Observation and device not linked by id "
                    "(Observation.device.reference <-> Device.id)",
                )


def is_feeding(entries: list[Entry]) -> bool:
    return any(
        e.resource_type == "Device"
        or (e.resource is not None and mes.measurement_of(e.resource) is not None)
        for e in entries
    )


def _rewrite(node: Any, mapping: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "reference" and isinstance(value, str) and value in mapping:
                out[key] = mapping[value]
            else:
                out[key] = _rewrite(value, mapping)
        return out
    if isinstance(node, list):
        return [_rewrite(v, mapping) for v in node]
    return node


def transaction(repo: FhirRepository, bundle: dict[str, Any], path: str) -> dict[str, Any]:
    """All or nothing: resolve ids and references first, then DELETE, POST, PUT, GET."""
    if mhd.is_provide_bundle(list(bundle.get("entry") or [])):
        return mhd.provide(repo, bundle)
    entries = _parse_entries(bundle)
    if is_feeding(entries):
        _check_feeding(entries)
    mapping: dict[str, str] = {}
    for entry in entries:
        if entry.method != "POST" or entry.resource is None:
            continue
        target = None
        if entry.if_none_exist:
            match = repo.conditional_match(entry.resource_type, entry.if_none_exist)
            target = match.id if match is not None else None
        client_id = str(entry.resource.get("id") or "")
        if target is None:
            keep = entry.resource_type == "Device" and store.ID_PATTERN.match(client_id) and \
                store.id_is_free(repo.session, "Device", client_id)
            entry.assigned_id = client_id if keep else store.new_id()
            target = entry.assigned_id
        new_ref = f"{entry.resource_type}/{target}"
        if entry.full_url:
            mapping[entry.full_url] = new_ref
        if client_id:
            mapping[f"{entry.resource_type}/{client_id}"] = new_ref
    results: dict[int, dict[str, Any]] = {}
    for entry in sorted(entries, key=lambda e: (_ORDER[e.method], e.index)):
        if entry.resource is not None:
            entry.resource = _rewrite(entry.resource, mapping)
        try:
            results[entry.index] = _run(repo, entry, path)
        except (DomainError, FhirError, ResourceInvalid, mes.MeasurementError) as exc:
            error = to_fhir_error(exc)
            if not error.expression:
                error.expression = [f"Bundle.entry[{entry.index}]"]
            raise error from exc
    repo.op.detail["entries"] = len(entries)
    return {"resourceType": "Bundle", "type": "transaction-response",
            "entry": [results[i] for i in sorted(results)]}


def batch(repo: FhirRepository, bundle: dict[str, Any], path: str) -> dict[str, Any]:
    """Each entry on its own (a savepoint each); failures are reported in their entry."""
    if mhd.is_provide_bundle(list(bundle.get("entry") or [])):
        raise FhirError(400, "invalid", "ITI-65 needs a transaction Bundle", code="mhd_batch")
    entries = _parse_entries(bundle)
    results: list[dict[str, Any]] = []
    failed = 0
    for entry in entries:
        decision = repo.op.decision
        savepoint = repo.session.begin_nested()
        try:
            results.append(_run(repo, entry, path))
            savepoint.commit()
        except (DomainError, FhirError, ResourceInvalid, mes.MeasurementError,
                AccessDenied) as exc:
            savepoint.rollback()
            repo.op.decision = decision
            failed += 1
            error = to_fhir_error(exc)
            results.append({"response": {"status": str(error.status),
                                         "outcome": error.outcome()}})
    repo.op.detail.update(entries=len(entries), failed_entries=failed)
    return {"resourceType": "Bundle", "type": "batch-response", "entry": results}


def _status(code: int) -> str:
    return f"{code} {_REASONS.get(code, '')}".strip()


def _written(outcome: Outcome, base: str) -> dict[str, Any]:
    response: dict[str, Any] = {"status": _status(outcome.status)}
    if outcome.resource is not None:
        response["location"] = f"{outcome.resource_type}/{outcome.resource_id}"
        response["etag"] = f'W/"{outcome.version_id}"'
        response["lastModified"] = outcome.last_updated
    elif outcome.resource_id and outcome.status == 200:  # If-None-Exist matched, unreadable
        response["location"] = f"{outcome.resource_type}/{outcome.resource_id}"
    entry: dict[str, Any] = {"response": response}
    if outcome.resource is not None:
        entry["fullUrl"] = f"{base}/{outcome.resource_type}/{outcome.resource_id}"
        entry["resource"] = outcome.resource
    return entry


def patch_document(entry: Entry) -> Any:
    """The JSON Patch of a PATCH entry: a ``Binary`` whose ``contentType`` is
    ``application/json-patch+json`` and whose ``data`` is the base64 patch (http.html#trules,
    "the body of a PATCH entry is a Binary"); FHIRPath Patch (``Parameters``) is refused."""
    resource = entry.resource or {}
    if resource.get("resourceType") != "Binary" or \
            resource.get("contentType") != "application/json-patch+json":
        raise FhirError(415, "not-supported",
                        f"entry {entry.index}: a PATCH entry carries a Binary of "
                        "application/json-patch+json (FHIRPath Patch is not supported)",
                        code="unsupported_patch")
    try:
        patch = json.loads(base64.b64decode(str(resource.get("data", "")), validate=True))
    except (ValueError, UnicodeDecodeError) as exc:
        raise FhirError(400, "invalid", f"entry {entry.index}: the Binary does not hold a JSON "
                        "Patch document", code="bad_patch") from exc
    if unstorable(patch):
        raise FhirError(400, "invalid", "NUL characters and lone surrogates are refused",
                        code="nul_character")
    return patch


def _run(repo: FhirRepository, entry: Entry, path: str) -> dict[str, Any]:
    if entry.method == "POST":
        if entry.resource_id is not None:
            raise FhirError(400, "invalid", "POST entries address a type", code="entry_url")
        outcome = repo.create(entry.resource_type, entry.resource,
                              if_none_exist=entry.if_none_exist, resource_id=entry.assigned_id)
        return _written(outcome, repo.base)
    if entry.method == "PUT":
        if entry.resource_id is None:
            return _written(repo.conditional_update(
                entry.resource_type, parse_qsl(entry.query, keep_blank_values=True),
                entry.resource, if_match=entry.if_match), repo.base)
        return _written(repo.update(entry.resource_type, entry.resource_id, entry.resource,
                                    if_match=entry.if_match), repo.base)
    if entry.method == "DELETE":
        if entry.resource_id is None:
            outcome = repo.conditional_delete(entry.resource_type,
                                              parse_qsl(entry.query, keep_blank_values=True))
        else:
            outcome = repo.delete(entry.resource_type, entry.resource_id)
        return {"response": {"status": _status(outcome.status)}}
    if entry.method == "PATCH":
        patch = patch_document(entry)
        if entry.resource_id is None:
            return _written(repo.conditional_patch(
                entry.resource_type, parse_qsl(entry.query, keep_blank_values=True), patch,
                if_match=entry.if_match), repo.base)
        return _written(repo.patch(entry.resource_type, entry.resource_id, patch,
                                   if_match=entry.if_match), repo.base)
    if entry.resource_id is not None:
        resource = repo.read(entry.resource_type, entry.resource_id)
        return {"resource": resource, "response": {"status": "200 OK"}}
    params = parse_qsl(entry.query, keep_blank_values=True)
    found = repo.search(entry.resource_type, params, entry.resource_type)
    return {"resource": found, "response": {"status": "200 OK"}}
