"""The OpenAPI 3.1 document of the patient API and the back office, built from the route
registry (``patient_api.http.ROUTES``), so that every route is described."""

from __future__ import annotations

import re
from typing import Any

from patient_api.http import ROUTES, Field, RouteSpec

_PARAM = re.compile(r"<(?:[a-z_]+:)?([a-z_]+)>")
_ERROR = {"$ref": "#/components/responses/Error"}
_RETRY_AFTER = {
    "description": "Seconds to wait before trying again (RFC 9110 10.2.3)",
    "schema": {"type": "integer", "minimum": 1},
}
_ERROR_CONTENT = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
_TYPES = {
    "string": {"type": "string"},
    "boolean": {"type": "boolean"},
    "integer": {"type": "integer"},
    "date": {"type": "string", "format": "date"},
}


def openapi_path(rule: str) -> str:
    return _PARAM.sub(r"{\1}", rule)


def _schema(f: Field) -> dict[str, Any]:
    schema: dict[str, Any] = dict(_TYPES[f.type])
    if f.enum:
        schema["enum"] = list(f.enum)
    if f.description:
        schema["description"] = f.description
    return schema


def _operation(spec: RouteSpec) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": spec.summary,
        "operationId": f"{spec.method.lower()}_{openapi_path(spec.path)}".replace("/", "_")
        .replace("{", "")
        .replace("}", "")
        .replace("-", "_")
        .replace(".", "_"),
        "tags": ["admin" if spec.auth == "support" else "patient"],
    }
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PARAM.findall(spec.path)
    ]
    params += [
        {"name": name, "in": "query", "required": f.required, "schema": _schema(f)}
        for name, f in spec.query.items()
    ]
    if params:
        op["parameters"] = params
    if spec.body:
        op["requestBody"] = {
            "required": any(f.required for f in spec.body.values()),
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {n: _schema(f) for n, f in spec.body.items()},
                        "required": [n for n, f in spec.body.items() if f.required],
                    }
                }
            },
        }
    responses: dict[str, Any] = {}
    for status, description in spec.responses.items():
        response: dict[str, Any] = {"description": description}
        if status.startswith("2") and status != "204":
            response["content"] = {spec.produces: {"schema": {}}}
        if status == "202":  # RFC 9110 15.3.3: where to follow the accepted request
            response["headers"] = {
                "Location": {"description": "The status URL", "schema": {"type": "string"}}
            }
        if status.startswith("4"):  # errors keep the {error, message} body
            response["content"] = _ERROR_CONTENT
        if status == "429":  # RFC 6585 4
            response["headers"] = {"Retry-After": _RETRY_AFTER}
        responses[status] = response
    for status in ("400", "404", "409"):
        responses.setdefault(status, _ERROR)
    if spec.auth != "none":
        responses.setdefault("401", _ERROR)
        responses.setdefault("403", _ERROR)
        op["security"] = [{"bearer": []}]
    else:
        op["security"] = []
    op["responses"] = responses
    return op


def build_openapi() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for spec in ROUTES:
        paths.setdefault(openapi_path(spec.path), {})[spec.method.lower()] = _operation(spec)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Mon espace santé - patient API and back office",
            "version": "1.0.0",
            "description": (
                "The life of a patient space (enrolment code, opposition, creation, activation, "
                "closure, reopening, deletion, representatives) and the patient's rights "
                "(blocks, masks, emergency access, médecin traitant, feeding oppositions, "
                "prevention, contact, trace, export). Every call is decided by the policy "
                "decision point and traced. Errors: {error: code, message}."
            ),
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "message"],
                    "properties": {
                        "error": {"type": "string"},
                        "message": {"type": "string"},
                        "rule": {"type": "string"},
                    },
                }
            },
            "responses": {
                "Error": {
                    "description": "An error with a stable code",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                }
            },
        },
    }
