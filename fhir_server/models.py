"""The one module importing ``fhir.resources.R4B`` (FHIR R4 4.0.1 models; the package root is R5).

Resources are validated on write (FHIR R4 http.html §3.1.0.1: "servers SHALL reject resources
that are not valid") and stored as JSON; reads render the stored JSON without re-serialising.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.resource import Resource
from pydantic import ValidationError


class ResourceInvalid(Exception):
    """A resource that does not parse against the R4 model (HTTP 422, issue ``structure``)."""

    def __init__(
        self, diagnostics: str, expression: list[str] | None = None, *, syntax: bool = False
    ) -> None:
        super().__init__(diagnostics)
        self.diagnostics = diagnostics
        self.expression = expression or []
        self.syntax = syntax  # not even well-formed (HTTP 400 rather than 422)


@lru_cache(maxsize=256)
def is_resource_type(name: str) -> bool:
    """Whether ``name`` is an R4 resource type (not a datatype)."""
    if not name or not name[0].isupper() or not name.isalnum():
        return False
    try:
        model = get_fhir_model_class(name)
    except (ValueError, KeyError, AttributeError):
        return False
    return isinstance(model, type) and issubclass(model, Resource)


def validate(resource: Any, expected_type: str | None = None) -> dict[str, Any]:
    """Validate ``resource`` (a JSON object) and return it as a plain dict, unchanged."""
    if not isinstance(resource, dict):
        raise ResourceInvalid("the body is not a JSON object")
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str) or not is_resource_type(rtype):
        raise ResourceInvalid(f"unknown resourceType {rtype!r}", ["resourceType"])
    if expected_type is not None and rtype != expected_type:
        raise ResourceInvalid(
            f"resourceType {rtype} does not match the URL ({expected_type})", ["resourceType"]
        )
    try:
        get_fhir_model_class(rtype).model_validate(resource)
    except ValidationError as exc:
        errors = exc.errors()
        where = [
            ".".join([rtype, *(str(p) for p in e.get("loc", ()) if p != "__root__")])
            for e in errors[:10]
        ]
        text = "; ".join(f"{w}: {e.get('msg')}" for w, e in zip(where, errors[:10], strict=False))
        raise ResourceInvalid(text or "invalid resource", where) from exc
    except (TypeError, ValueError) as exc:  # model-level validators raise ValueError
        raise ResourceInvalid(str(exc)) from exc
    except LookupError as exc:  # a nested resource of an unknown type ("contained", Bundle)
        raise ResourceInvalid(f"unknown resource type in the resource: {exc}") from exc
    return resource


def serialize(model_json: dict[str, Any]) -> str:
    """Round-trip a resource through the R4B model (tests use it to compare with examples)."""
    model = get_fhir_model_class(model_json["resourceType"]).model_validate(model_json)
    return str(model.model_dump_json(exclude_none=True))


def round_trip(resource: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(serialize(resource))
    return data


_FORBIDDEN_XML = (b"<!doctype", b"<!entity", b"<?xml-stylesheet", b"xinclude")


def from_xml(data: bytes) -> dict[str, Any]:
    """Parse a FHIR XML resource (xml.html) into its JSON form.

    DTDs, entities, stylesheets and XInclude are refused before parsing (the XML attack
    classes of ``reference/security/xml-attacks``); the R4B model validates the rest.
    """
    lowered = data[:65536].lower()
    if any(marker in lowered for marker in _FORBIDDEN_XML):
        raise ResourceInvalid("DTDs, entities, stylesheets and XInclude are not accepted",
                              syntax=True)
    try:
        root = data.lstrip()
        start = root.index(b"<", root.index(b"?>") + 2 if root.startswith(b"<?xml") else 0)
        name = root[start + 1:].split(maxsplit=1)[0].split(b">")[0].decode("ascii")
    except (ValueError, IndexError, UnicodeDecodeError) as exc:
        raise ResourceInvalid("the body is not a FHIR XML resource", syntax=True) from exc
    name = name.rstrip("/")
    if not is_resource_type(name):
        raise ResourceInvalid(f"unknown resource type {name!r}")
    try:
        model = get_fhir_model_class(name).model_validate_xml(data)
    except ValidationError as exc:
        where = [".".join([name, *(str(p) for p in e.get("loc", ()))]) for e in exc.errors()[:10]]
        text = "; ".join(f"{w}: {e.get('msg')}" for w, e in zip(where, exc.errors(), strict=False))
        raise ResourceInvalid(text, where) from exc
    except Exception as exc:  # lxml syntax errors and the like
        raise ResourceInvalid(f"the body is not well-formed FHIR XML: {exc}", syntax=True) \
            from exc
    parsed: dict[str, Any] = json.loads(model.model_dump_json(exclude_none=True))
    return parsed


def to_xml(resource: dict[str, Any]) -> bytes:
    """Render a (stored, valid) resource as FHIR XML."""
    model = get_fhir_model_class(str(resource["resourceType"])).model_validate(resource)
    rendered: bytes | str = model.model_dump_xml()
    return rendered.encode("utf-8") if isinstance(rendered, str) else rendered
