"""The FHIR R4 REST face (http.html): one blueprint at ``/fhir``, one enforcement point.

``_gate`` (the blueprint's only ``before_request``) authenticates the bearer token into an
``Actor`` (RFC 6750; 401 with ``WWW-Authenticate``) and classifies the request into a
:class:`~fhir_server.routing.Route` whose ``Action`` the PDP decides. ``_run`` then opens the
request's one ``Espace.operation`` (policy once, trace on success, failure and denial) and
hands a per-request :class:`~fhir_server.repository.FhirRepository` to a 3-6 line handler.
Every error leaves as an OperationOutcome (``_render_error``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from email.utils import format_datetime
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from espace.errors import AccessDenied, DomainError
from espace.fhir_store import FhirResourceRow, date_range
from espace.measurements import MeasurementError
from espace.service import Espace
from espace.spaces import find_space_by_ins
from espace.trace import Source, Target, TraceEntry
from fhir_server import bundles, mhd
from fhir_server.capability import capability_statement
from fhir_server.errors import FhirError, to_fhir_error
from fhir_server.models import ResourceInvalid, from_xml, is_resource_type, to_xml
from fhir_server.repository import FhirRepository, Outcome
from fhir_server.routing import (
    DOCUMENTS,
    SERVED_TYPES,
    STORED_TYPES,
    VIRTUAL_TYPES,
    Route,
    action_for,
    brick_hint,
)
from fhir_server.search import dumps, instant, materialize
from fhir_server.text import storable, unstorable
from habilitation.model import Actor, ActorKind, Decision
from mes.tokens import TokenError, actor_from_bearer

FHIR_JSON = "application/fhir+json"
FHIR_XML = "application/fhir+xml"
JSON_PATCH = "application/json-patch+json"
JSON_TYPES = ("application/fhir+json", "application/json", "application/json+fhir")
XML_TYPES = (FHIR_XML, "application/xml", "text/xml", "application/xml+fhir")
XML_FORMATS = frozenset({"xml", *XML_TYPES})
JSON_FORMATS = frozenset({"json", *JSON_TYPES})
ALL_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH"]
bp = Blueprint("fhir", __name__, url_prefix="/fhir")


# ----------------------------------------------------------------------------- responses
def wants_xml() -> bool:
    """Content negotiation (http.html §3.1.0.1.7): ``_format``, else ``Accept``; JSON default."""
    fmt = request.args.get("_format", "")
    if fmt:
        return fmt in XML_FORMATS
    best = request.accept_mimetypes.best_match([FHIR_JSON, "application/json", *XML_TYPES])
    return best in XML_TYPES and request.accept_mimetypes[best] > request.accept_mimetypes[
        FHIR_JSON]


def fhir_json(body: dict[str, Any] | None, status: int = 200,
              headers: dict[str, str] | None = None) -> Response:
    """A FHIR response body in the negotiated format (JSON, or XML when asked)."""
    if body is not None and wants_xml():
        try:
            data = to_xml(materialize(body))
        except Exception:  # pragma: no cover - every body served is a valid R4 resource
            current_app.logger.exception("XML rendering failed; answering JSON")
        else:
            response = Response(data, status=status, content_type=f"{FHIR_XML}; charset=utf-8")
            for key, value in (headers or {}).items():
                response.headers[key] = value
            return response
    text = "" if body is None else dumps(body)
    response = Response(text, status=status, content_type=f"{FHIR_JSON}; charset=utf-8")
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _version_headers(resource: dict[str, Any]) -> dict[str, str]:
    meta = resource.get("meta") or {}
    headers = {}
    if meta.get("versionId"):
        headers["ETag"] = f'W/"{meta["versionId"]}"'
    if meta.get("lastUpdated"):
        headers["Last-Modified"] = format_datetime(date_range(meta["lastUpdated"])[0],
                                                   usegmt=True)
    return headers


def _written(outcome: Outcome) -> Response:
    """Create/update responses honour ``Prefer: return=`` (http.html §3.1.0.5)."""
    headers: dict[str, str] = {}
    resource = outcome.resource
    if resource is not None:
        headers = _version_headers(resource)
        headers["Location"] = (
            f"{base_url()}/{outcome.resource_type}/{outcome.resource_id}"
            f"/_history/{outcome.version_id}"
        )
    elif outcome.resource_id:  # matched a resource the caller may not read: its id only
        headers["Location"] = f"{base_url()}/{outcome.resource_type}/{outcome.resource_id}"
        return fhir_json({"resourceType": "OperationOutcome", "issue": [
            {"severity": "information", "code": "duplicate",
             "diagnostics": f"{outcome.resource_type}/{outcome.resource_id} already exists "
                            "(If-None-Exist); its content is not readable by this caller"}]},
            outcome.status, headers)
    prefer = request.headers.get("Prefer", "")
    if "return=minimal" in prefer:
        return fhir_json(None, outcome.status, headers)
    if "return=OperationOutcome" in prefer:
        body = {"resourceType": "OperationOutcome", "issue": [
            {"severity": "information", "code": "informational",
             "diagnostics": f"{outcome.resource_type}/{outcome.resource_id} written"}]}
        return fhir_json(body, outcome.status, headers)
    return fhir_json(resource, outcome.status, headers)


def base_url() -> str:
    public = current_app.config.get("PUBLIC_BASE_URL")
    root = str(public).rstrip("/") if public else request.host_url.rstrip("/")
    return f"{root}/fhir"


# ----------------------------------------------------------------------------- the gate
def _refuse_unstorable_request() -> None:
    """A NUL character (or a lone surrogate) in the path, the query, a form-encoded search or
    a header the face reads is bad input (400), refused before anything is read or stored: no
    text column can hold it (PostgreSQL rejects NUL, even as a query parameter)."""
    texts = [request.path, *(t for kv in request.args.items(multi=True) for t in kv)]
    if request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded":
        texts += [t for kv in request.form.items(multi=True) for t in kv]
    texts += [request.headers.get(h, "") for h in (
        "If-Match", "If-None-Exist", "Prefer", "User-Agent", "X-Request-ID")]
    if any(unstorable(t) for t in texts):
        raise FhirError(400, "invalid", "NUL characters are refused in FHIR URLs and headers",
                        code="nul_character")


def _body() -> Any:
    if request.method not in ("POST", "PUT", "PATCH"):
        return None
    mimetype = request.mimetype or ""
    if request.method == "PATCH":
        if mimetype != JSON_PATCH:
            raise FhirError(415, "not-supported",
                            f"unsupported PATCH Content-Type {mimetype!r}: use {JSON_PATCH} "
                            "(RFC 6902); FHIRPath Patch is not supported",
                            code="unsupported_media_type")
    elif mimetype == "application/x-www-form-urlencoded":
        return None
    elif mimetype not in JSON_TYPES and mimetype not in XML_TYPES:
        raise FhirError(415, "not-supported",
                        f"unsupported Content-Type {mimetype!r}: use {FHIR_JSON}",
                        code="unsupported_media_type")
    raw = request.get_data(cache=True)
    if not raw.strip():
        if request.method == "PATCH":
            raise FhirError(400, "invalid", "a PATCH needs a JSON Patch document",
                            code="bad_patch")
        return None
    if mimetype in XML_TYPES:
        return from_xml(raw)
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FhirError(400, "structure", f"the body is not valid JSON: {exc}",
                        code="bad_json") from exc
    if unstorable(body):
        raise FhirError(400, "invalid", "NUL characters and lone surrogates are refused",
                        code="nul_character")
    return body


def _authenticate() -> Actor:
    try:
        return actor_from_bearer(current_app.config, request.headers.get("Authorization"))
    except TokenError as exc:
        raise FhirError(
            401, "login", str(exc), code=f"token.{exc.error}",
            headers={"WWW-Authenticate":
                     f'Bearer realm="mes", error="{exc.error}", '
                     f'error_description="{str(exc)[:120].replace(chr(34), chr(39))}"'},
        ) from exc


def _classify(actor: Actor, endpoint: str, args: dict[str, Any], body: Any) -> Route:
    method = request.method if request.method != "HEAD" else "GET"
    rtype = args.get("rtype")
    rid = args.get("rid")
    interaction = {
        ("root", "POST"): "bundle",
        ("type", "GET"): "search-type", ("type", "POST"): "create",
        ("type", "PUT"): "update", ("type", "PATCH"): "patch", ("type", "DELETE"): "delete",
        ("type_search", "POST"): "search-type",
        ("type_history", "GET"): "history-type",
        ("instance", "GET"): "read", ("instance", "PUT"): "update",
        ("instance", "PATCH"): "patch", ("instance", "DELETE"): "delete",
        ("instance_history", "GET"): "history-instance",
        ("vread", "GET"): "vread",
    }.get((endpoint, method))
    if rtype is not None and (not is_resource_type(rtype) or rtype not in SERVED_TYPES):
        raise FhirError(404, "not-supported", f"resource type {rtype!r} is not served here",
                        code="unsupported_type")
    if interaction is None:
        raise FhirError(405, "not-supported",
                        f"{request.method} is not supported on {request.path}",
                        code="method_not_allowed",
                        headers={"Allow": "GET, POST, PUT, PATCH, DELETE"})
    if rtype in VIRTUAL_TYPES and interaction not in ("read", "vread", "search-type"):
        raise FhirError(405, "not-supported", f"{rtype} is read-only here",
                        code="method_not_allowed")
    if rtype == "Binary" and interaction != "read":
        raise FhirError(405, "not-supported", "Binary is read only", code="method_not_allowed")
    if interaction == "bundle":
        if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
            raise bundles.no_bundle()
        kind = body.get("type")
        if kind not in ("transaction", "batch"):
            raise FhirError(400, "invalid", "only transaction and batch Bundles are processed",
                            code="bundle_type")
        entries = body.get("entry") or []
        if not isinstance(entries, list) or not all(
            isinstance(e, dict) and isinstance(e.get("request", {}), dict) for e in entries
        ):
            # R4 Bundle.entry is an array of objects, entry.request an object (http.html#trans)
            raise FhirError(400, "invalid", "Bundle.entry must be an array of entry objects "
                            "whose request is an object", code="bundle_entry")
        if mhd.is_provide_bundle(list(entries)):
            return Route(str(kind), None, None, None,
                         action_for(DOCUMENTS, "create", actor.kind), DOCUMENTS)
        method, rtype, resource = bundles.first_entry(body)
        entry_interaction = {"POST": "create", "PUT": "update", "PATCH": "patch",
                             "DELETE": "delete"}.get(method, "read")
        brick = brick_hint(rtype if rtype in SERVED_TYPES else "Patient", [], resource,
                           actor.kind)
        return Route(str(kind), None, None, None,
                     action_for(brick, entry_interaction, actor.kind), brick)
    assert rtype is not None
    codes = request.args.getlist("code") + request.form.getlist("code")
    brick = brick_hint(rtype, codes, body, actor.kind)
    if rid is not None and rtype in ("Observation", "Consent") and interaction != "update":
        brick = _stored_brick(rtype, rid) or brick
    read_kind = "binary" if rtype == "Binary" else interaction
    return Route(interaction, rtype, rid, args.get("vid"),
                 action_for(brick, read_kind, actor.kind), brick)


def _stored_brick(rtype: str, rid: str) -> str | None:
    """The brick of a stored resource read or deleted by id (Observation and Consent span two
    bricks): only the gate's choice of action; the repository checks the space and the brick
    again inside the operation."""
    espace: Espace = current_app.extensions["espace"]
    row = FhirResourceRow
    with espace.session_factory() as session:  # the brick column only, no entity to build
        brick: str | None = session.execute(
            select(row.brick).where(row.resource_type == rtype, row.id == rid)
        ).scalar_one_or_none()
        return brick


@bp.before_request
def _gate() -> None:
    """Authenticate and classify: the face's one enforcement point (with ``_run``)."""
    endpoint = (request.endpoint or "").rsplit(".", 1)[-1]
    if endpoint == "metadata":
        if request.method not in ("GET", "HEAD"):
            raise FhirError(405, "not-supported", "metadata is read only",
                            code="method_not_allowed")
        return
    fmt = request.args.get("_format", "")
    if fmt and fmt not in JSON_FORMATS and fmt not in XML_FORMATS:
        raise FhirError(406, "not-supported", f"unsupported _format {fmt!r}",
                        code="not_acceptable")
    if endpoint == "unknown":
        raise FhirError(404, "not-found", f"no FHIR endpoint at {request.path}",
                        code="no_endpoint")
    actor = _authenticate()
    g.fhir_actor = actor
    _refuse_unstorable_request()
    body = _body()
    g.fhir_body = body
    g.fhir_route = _classify(actor, endpoint, dict(request.view_args or {}), body)


def _run(handler: Callable[[FhirRepository], Response]) -> Response:
    """Run ``handler`` inside the request's one ``Espace.operation``."""
    actor: Actor = g.fhir_actor
    route: Route = g.fhir_route
    espace: Espace = current_app.extensions["espace"]
    patient = actor.on_behalf_of or (actor.id if actor.kind is ActorKind.PATIENT else None)
    if not patient:
        raise FhirError(403, "forbidden", "the token names no patient", code="no_patient")
    g.fhir_traced = True  # from here on the operation traces success, failure and denial
    with espace.operation(
        actor, route.action, event_type=route.event_type, source=_source(actor),
        space_ins=patient,
        target=Target(type=route.resource_type or "Bundle", id=route.resource_id or ""),
    ) as op:
        op.detail["interaction"] = route.interaction
        op.detail["brick"] = route.brick
        lenient = "handling=lenient" in request.headers.get("Prefer", "")
        return handler(FhirRepository(op, base_url=base_url(), lenient=lenient))


def _source(actor: Actor) -> Source:
    """Where the request comes from, as the trace stores it (bounded, storable text)."""
    return Source("fhir", request.remote_addr or "", storable(str(g.get("request_id", "")))[:80],
                  storable(actor.software or request.headers.get("User-Agent", ""))[:200])


def _params() -> list[tuple[str, str]]:
    items = list(request.args.items(multi=True))
    if request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded":
        items += list(request.form.items(multi=True))
    return items


# ----------------------------------------------------------------------------- handlers
@bp.route("/metadata", methods=ALL_METHODS)
def metadata() -> Response:
    return fhir_json(capability_statement(base_url(), instant(
        current_app.extensions["espace"].clock.now())))


@bp.route("", methods=ALL_METHODS, strict_slashes=False)
def root() -> Response:
    route: Route = g.fhir_route
    process = bundles.transaction if route.interaction == "transaction" else bundles.batch
    return _run(lambda repo: fhir_json(process(repo, g.fhir_body, "")))


@bp.route("/<rtype>", methods=ALL_METHODS, endpoint="type")
def type_(rtype: str) -> Response:
    if g.fhir_route.interaction == "create":
        return _run(lambda repo: _written(repo.create(
            rtype, g.fhir_body, if_none_exist=request.headers.get("If-None-Exist"))))
    if g.fhir_route.interaction == "update":
        return _run(lambda repo: _written(repo.conditional_update(
            rtype, list(request.args.items(multi=True)), g.fhir_body,
            if_match=request.headers.get("If-Match"))))
    if g.fhir_route.interaction == "patch":
        return _run(lambda repo: _written(repo.conditional_patch(
            rtype, list(request.args.items(multi=True)), g.fhir_body,
            if_match=request.headers.get("If-Match"))))
    if g.fhir_route.interaction == "delete":
        return _run(lambda repo: fhir_json(None, repo.conditional_delete(
            rtype, list(request.args.items(multi=True))).status))
    return _run(lambda repo: fhir_json(repo.search(rtype, _params(), rtype)))


@bp.route("/<rtype>/_search", methods=ALL_METHODS)
def type_search(rtype: str) -> Response:
    return _run(lambda repo: fhir_json(repo.search(rtype, _params(), rtype)))


@bp.route("/<rtype>/_history", methods=ALL_METHODS)
def type_history(rtype: str) -> Response:
    return _run(lambda repo: fhir_json(
        repo.history(rtype, None, _params(), f"{rtype}/_history")))


@bp.route("/<rtype>/<rid>", methods=ALL_METHODS)
def instance(rtype: str, rid: str) -> Response:
    interaction = g.fhir_route.interaction
    if interaction == "update":
        return _run(lambda repo: _written(repo.update(
            rtype, rid, g.fhir_body, if_match=request.headers.get("If-Match"))))
    if interaction == "patch":
        return _run(lambda repo: _written(repo.patch(
            rtype, rid, g.fhir_body, if_match=request.headers.get("If-Match"))))
    if interaction == "delete":
        return _run(lambda repo: fhir_json(None, repo.delete(rtype, rid).status))
    return _run(lambda repo: _read(repo.read(rtype, rid)))


@bp.route("/<rtype>/<rid>/_history", methods=ALL_METHODS)
def instance_history(rtype: str, rid: str) -> Response:
    return _run(lambda repo: fhir_json(
        repo.history(rtype, rid, _params(), f"{rtype}/{rid}/_history")))


@bp.route("/<rtype>/<rid>/_history/<vid>", methods=ALL_METHODS)
def vread(rtype: str, rid: str, vid: str) -> Response:
    return _run(lambda repo: _read(repo.vread(rtype, rid, vid)))


@bp.route("/<path:rest>", methods=ALL_METHODS)
def unknown(rest: str) -> Response:  # pragma: no cover - the gate answers 404 first
    raise FhirError(404, "not-found", f"no FHIR endpoint at /fhir/{rest}", code="no_endpoint")


def _read(resource: dict[str, Any]) -> Response:
    headers = _version_headers(resource)
    if resource.get("resourceType") == "Binary" and "json" not in request.headers.get(
        "Accept", "json"
    ):
        import base64

        return Response(base64.b64decode(resource.get("data", "")),
                        content_type=str(resource.get("contentType")), headers=headers)
    return fhir_json(resource, 200, headers)


# ----------------------------------------------------------------------------- errors
def _render_error(exc: Exception) -> Response:
    error = to_fhir_error(exc)
    if error.status >= 500:
        current_app.logger.exception("FHIR request failed", exc_info=exc)
    _trace_gate_refusal(error)
    return fhir_json(error.outcome(), error.status, error.headers)


def _trace_gate_refusal(error: FhirError) -> None:
    """A request refused by the gate itself (bad JSON, unknown type, 405...) never reached an
    operation: trace it in the caller's space all the same (``Espace.record``)."""
    actor: Actor | None = g.get("fhir_actor")
    if actor is None or g.get("fhir_traced"):
        return
    espace: Espace = current_app.extensions["espace"]
    patient = actor.on_behalf_of or (actor.id if actor.kind is ActorKind.PATIENT else None)
    with espace.session_factory() as session:
        space = find_space_by_ins(session, patient) if patient else None
        space_id = space.id if space is not None else None
    espace.record(TraceEntry(
        actor=actor, action="fhir.gate", event_type="fhir.refused",
        decision=Decision.deny("fhir_gate", storable(error.diagnostics)[:400]),
        outcome="failure", source=_source(actor), space_id=space_id,
        target=Target(type="", id=storable(request.path)[:200]), error_code=error.code,
    ))


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    issue = {404: "not-found", 405: "not-supported", 413: "too-costly"}.get(status, "invalid")
    return fhir_json(FhirError(status, issue, exc.description or exc.name).outcome(), status)


for _exc_type in (FhirError, DomainError, AccessDenied, MeasurementError, ResourceInvalid):
    bp.register_error_handler(_exc_type, _render_error)
bp.register_error_handler(HTTPException, _http_error)
bp.register_error_handler(Exception, _render_error)


def init_app(app: Flask) -> None:
    """Register the FHIR blueprint at /fhir and the OAuth2 endpoints at /oauth."""
    app.register_blueprint(bp)
    from fhir_server import oauth

    oauth.init_app(app)


__all__ = ["STORED_TYPES", "bp", "init_app"]
