"""The plumbing of the patient API: route registry (for OpenAPI), authentication, strict JSON
bodies, and the one error handler that maps domain errors to HTTP (RFC 9110, RFC 6750).

Errors are ``{"error": <stable code>, "message": <text>}`` (plus ``rule`` for a policy
denial); tests assert on the code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from espace.errors import (
    AccessDenied,
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    SpaceNotOpen,
    UnknownSpace,
)
from espace.service import Espace
from espace.trace import Source, Target, TraceEntry
from habilitation.model import Actor, ActorKind, Decision
from mes.tokens import TokenError, actor_from_bearer

PATIENT_KINDS = frozenset(
    {ActorKind.PATIENT, ActorKind.LEGAL_REPRESENTATIVE, ActorKind.PROTECTED_ADULT_REPRESENTATIVE}
)


@dataclass(frozen=True, slots=True)
class Field:
    type: str  # string | boolean | date | integer
    required: bool = False
    description: str = ""
    enum: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """One route as the OpenAPI document describes it."""

    method: str
    path: str  # Flask rule, e.g. /api/patient/spaces/<ins>/settings
    summary: str
    auth: str  # bearer | support | none
    body: Mapping[str, Field] = field(default_factory=dict)
    query: Mapping[str, Field] = field(default_factory=dict)
    responses: Mapping[str, str] = field(default_factory=dict)
    produces: str = "application/json"


ROUTES: list[RouteSpec] = []


class ApiError(Exception):
    """An HTTP-level refusal with a stable code (bad JSON, unknown field, wrong token kind)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def route(
    bp: Blueprint,
    prefix: str,
    rule: str,
    method: str,
    summary: str,
    *,
    auth: str = "bearer",
    body: Mapping[str, Field] | None = None,
    query: Mapping[str, Field] | None = None,
    responses: Mapping[str, str] | None = None,
    produces: str = "application/json",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a view on the blueprint and describe it for the OpenAPI document."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        endpoint = f"{method.lower()}_{view.__name__}"
        bp.add_url_rule(rule, endpoint=endpoint, view_func=view, methods=[method])
        ROUTES.append(
            RouteSpec(
                method,
                prefix + rule,
                summary,
                auth,
                dict(body or {}),
                dict(query or {}),
                dict(responses or {"200": "OK"}),
                produces,
            )
        )
        return view

    return decorator


def espace() -> Espace:
    service: Espace = current_app.extensions["espace"]
    return service


def source() -> Source:
    return Source(
        face="patient_api",
        address=request.remote_addr or "",
        request_id=str(g.get("request_id", "")),
        software=request.headers.get("User-Agent", "")[:200],
    )


def bearer_actor() -> Actor:
    """The patient-side caller of a bearer token (the patient or a representative)."""
    actor = actor_from_bearer(current_app.config, request.headers.get("Authorization"))
    if actor.kind not in PATIENT_KINDS:
        g.refused_actor = actor
        raise ApiError(403, "wrong_token_kind", "this API is for the patient and representatives")
    g.actor = actor
    return actor


def support_actor() -> Actor:
    """A support-desk agent (token kind ``support_agent``; authentication mode: none)."""
    actor = actor_from_bearer(current_app.config, request.headers.get("Authorization"))
    if actor.kind is not ActorKind.SUPPORT_AGENT:
        g.refused_actor = actor
        raise ApiError(403, "wrong_token_kind", "the back office is for the support desk")
    actor = replace(actor, authentication_mode=None)
    g.actor = actor
    return actor


def json_body(spec: Mapping[str, Field]) -> dict[str, Any]:
    """Parse a JSON object strictly: unknown fields, wrong types, missing fields are 400."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        data: Any = {}
    else:
        try:
            data = request.get_json(force=True, silent=False)
        except Exception as exc:  # werkzeug raises BadRequest on invalid JSON
            raise ApiError(400, "invalid_json", "the body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "the body must be a JSON object")
    unknown = sorted(set(data) - set(spec))
    if unknown:
        raise ApiError(400, "unknown_field", f"unknown fields: {', '.join(unknown)}")
    out: dict[str, Any] = {}
    for name, f in spec.items():
        if name not in data or data[name] is None:
            if f.required:
                raise ApiError(400, "missing_field", f"{name} is required")
            continue
        out[name] = _coerce(name, f, data[name])
    return out


def _coerce(name: str, f: Field, value: Any) -> Any:
    if f.type == "boolean":
        if not isinstance(value, bool):
            raise ApiError(400, "invalid_value", f"{name} must be true or false")
        return value
    if f.type == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            raise ApiError(400, "invalid_value", f"{name} must be an integer")
        return value
    if not isinstance(value, str):
        raise ApiError(400, "invalid_value", f"{name} must be a string")
    if len(value) > 400:
        raise ApiError(400, "invalid_value", f"{name} is too long")
    if f.enum and value not in f.enum:
        raise ApiError(400, "invalid_value", f"{name} must be one of {', '.join(f.enum)}")
    if f.type == "date":
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            raise ApiError(400, "invalid_value", f"{name} must be a date (YYYY-MM-DD)") from exc
    return value


def query_int(name: str, default: int, *, low: int = 0, high: int = 1000) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ApiError(400, "invalid_value", f"{name} must be an integer in [{low}, {high}]")
    return int(raw)


def reject_unknown_query(allowed: set[str]) -> None:
    unknown = sorted(set(request.args) - allowed)
    if unknown:
        raise ApiError(400, "unknown_parameter", f"unknown parameters: {', '.join(unknown)}")


STATUS = {
    InvalidInput: 400,
    NotFound: 404,
    UnknownSpace: 404,
    Conflict: 409,
    SpaceNotOpen: 409,
}


def _error(status: int, code: str, message: str, **extra: Any) -> Response:
    response = jsonify({"error": code, "message": message, **extra})
    response.status_code = status
    return response


def _trace_refused_authentication(code: str, actor: Actor | None) -> None:
    """A call refused before any use case (bad token, wrong token kind): traced all the same."""
    who = actor or Actor(ActorKind.PATIENT, "unauthenticated", name="unauthenticated caller")
    espace().record(
        TraceEntry(
            actor=who,
            action="authenticate",
            event_type="patient_api.authentication",
            decision=Decision.deny(code, "authentication refused"),
            outcome="denied",
            source=source(),
            target=Target("Endpoint", request.path[:200]),
            error_code=code,
        )
    )


def handle_error(exc: Exception) -> Response:
    """The face's one error handler."""
    if isinstance(exc, TokenError):
        _trace_refused_authentication(exc.error, None)
        response = _error(401, exc.error, str(exc))
        response.headers["WWW-Authenticate"] = f'Bearer error="{exc.error}"'
        return response
    if isinstance(exc, ApiError):
        if exc.code == "wrong_token_kind":
            _trace_refused_authentication(exc.code, g.get("refused_actor"))
        return _error(exc.status, exc.code, exc.message)
    if isinstance(exc, AccessDenied):
        return _error(403, "access_denied", exc.decision.reason, rule=exc.decision.rule_id)
    if isinstance(exc, UnknownSpace):
        actor: Actor | None = g.get("actor")
        ins = (request.view_args or {}).get("ins")
        if actor is not None and ins not in (actor.id, actor.on_behalf_of):
            return _error(403, "access_denied", "the caller does not speak for this patient")
        return _error(404, exc.code, exc.message)
    if isinstance(exc, DomainError):
        status = next((s for t, s in STATUS.items() if isinstance(exc, t)), 400)
        if exc.code == "export_expired":
            status = 410
        return _error(status, exc.code, exc.message)
    if isinstance(exc, HTTPException):
        return _error(exc.code or 500, (exc.name or "error").lower().replace(" ", "_"), str(exc))
    raise exc
