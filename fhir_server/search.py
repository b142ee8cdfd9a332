"""Search parameters in, searchset Bundles out (FHIR R4 search.html, bundle.html).

Parsing turns a request's parameters into an ``espace.fhir_store.SearchQuery`` (every filter
goes to SQL before counting and paging); rendering builds the Bundle with ``total``, paging
links (``self``/``first``/``previous``/``next``) and ``search.mode`` match/include.
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import ColumnElement, or_

from espace.clock import as_utc
from espace.fhir_store import SEARCH_PARAMS, Criterion, date_clause, date_range
from fhir_server.errors import FhirError

RESULT_PARAMS = frozenset(
    {"_count", "_offset", "_sort", "_include", "_revinclude", "_format", "_summary", "_total",
     "_pretty"}
)
COMMON_PARAMS = frozenset({"_id", "_lastUpdated"})
# Result parameters that do not change which resources match: accepted and ignored.
IGNORED_PARAMS = frozenset(
    {"_format", "_pretty", "_total", "_totalMethod", "_elements", "_contained", "_containedType"}
)
PATIENT_PARAMS = frozenset({"patient", "subject"})
PATIENT_IDENTIFIER_PARAMS = frozenset({"patient.identifier", "subject.identifier"})
# R4 search parameters of each stored type that reference the Patient (its Patient
# compartment). Every stored resource of a space concerns that space's patient, so
# ``Patient?_revinclude=<type>:<param>`` includes the type's resources of the space.
PATIENT_REFERENCE_PARAMS: dict[str, tuple[str, ...]] = {
    "Observation": ("subject", "patient"),
    "Condition": ("subject", "patient"),
    "MedicationStatement": ("subject", "patient"),
    "Procedure": ("subject", "patient"),
    "AllergyIntolerance": ("patient",),
    "FamilyMemberHistory": ("patient",),
    "Immunization": ("patient",),
    "RelatedPerson": ("patient",),
    "CareTeam": ("subject", "patient"),
    "Consent": ("patient",),
    "CommunicationRequest": ("subject", "patient"),
    "Device": ("patient",),
    "Appointment": ("patient", "actor"),
}
# Targets of the stored reference parameters whose ParamSpec names none (R4 Consent.actor).
_REFERENCE_TARGETS: dict[tuple[str, str], tuple[str, ...]] = {
    ("Consent", "actor"): ("CareTeam", "Device", "RelatedPerson"),
}


def _revinclude_table() -> dict[str, tuple[tuple[str, str], ...]]:
    """For each searched type, the ``(source type, parameter)`` pairs ``_revinclude`` takes
    (search.html#revinclude): the stored reference parameters, and the patient parameters."""
    table: dict[str, list[tuple[str, str]]] = {}
    for source, specs in SEARCH_PARAMS.items():
        for name, spec in specs.items():
            if spec.type != "reference":
                continue
            targets = (spec.target,) if spec.target else _REFERENCE_TARGETS.get((source, name),
                                                                                ())
            for target in targets:
                table.setdefault(target, []).append((source, name))
    for source, names in PATIENT_REFERENCE_PARAMS.items():
        table.setdefault("Patient", []).extend((source, name) for name in names)
    return {target: tuple(sorted(pairs)) for target, pairs in sorted(table.items())}


REVINCLUDES = _revinclude_table()
MAX_REVINCLUDE = 1000  # resources added by _revinclude to one page
MAX_COUNT = 100
DEFAULT_COUNT = 50
SORTS = frozenset({"date", "_lastUpdated", "_id"})
PREFIXED = ("eq", "ne", "lt", "gt", "le", "ge", "sa", "eb")


def bad(diagnostics: str, code: str = "invalid_search") -> FhirError:
    return FhirError(400, "invalid", diagnostics, code=code)


@dataclass(slots=True)
class ParsedSearch:
    """A search request, checked against the parameters the type declares."""

    resource_type: str
    criteria: list[Criterion] = field(default_factory=list)
    sort: list[tuple[str, bool]] = field(default_factory=list)
    count: int = DEFAULT_COUNT
    offset: int = 0
    includes: list[tuple[str, str]] = field(default_factory=list)  # (type, param)
    revincludes: list[tuple[str, str]] = field(default_factory=list)  # (source type, param)
    summary_count: bool = False
    want_total: bool = True  # _total=none: no Bundle.total, no count (search.html#total)
    patient_refs: list[str] = field(default_factory=list)
    patient_identifiers: list[str] = field(default_factory=list)  # system|INS
    raw: list[tuple[str, str]] = field(default_factory=list)
    used: list[tuple[str, str]] = field(default_factory=list)  # echoed in the self link

    def values(self, name: str) -> list[str]:
        return [v for c in self.criteria if c.param == name for v in c.values]

    def drop(self, name: str) -> None:
        self.criteria = [c for c in self.criteria if c.param != name]


def _int(name: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError as exc:
        raise bad(f"{name} must be an integer, got {value!r}") from exc
    if number < 0:
        raise bad(f"{name} must not be negative")
    return number


def parse(
    resource_type: str,
    params: Sequence[tuple[str, str]],
    *,
    known: Iterable[str] | None = None,
    max_count: int = MAX_COUNT,
    lenient: bool = False,
) -> ParsedSearch:
    """Check and parse ``params``: unknown parameters are a 400 (search.html §3.1.1.3.1
    ``handling=strict``) unless ``lenient`` (``Prefer: handling=lenient``) ignores them."""
    declared = set(SEARCH_PARAMS.get(resource_type, {}) if known is None else known)
    parsed = ParsedSearch(resource_type, raw=list(params))
    for raw_name, value in params:
        name, _, modifier = raw_name.partition(":")
        if name not in IGNORED_PARAMS and (lenient is False or name in RESULT_PARAMS
                                           or name in COMMON_PARAMS or name in declared
                                           or name in PATIENT_PARAMS
                                           or name in PATIENT_IDENTIFIER_PARAMS):
            parsed.used.append((raw_name, value))
        if name == "_count":
            parsed.count = _int("_count", value)
            if parsed.count > max_count:
                raise bad(
                    f"Maximum page size allowed is {max_count}. Actual : {parsed.count}",
                    "count_too_large",
                )
        elif name == "_offset":
            parsed.offset = _int("_offset", value)
        elif name == "_sort":
            for item in value.split(","):
                desc = item.startswith("-")
                key = item.lstrip("-")
                if key not in SORTS:
                    raise bad(f"cannot sort by {item!r}", "unknown_sort")
                parsed.sort.append((key, desc))
        elif name == "_include":
            parts = value.replace(".", ":", 1).split(":")
            if len(parts) < 2 or parts[0] != resource_type:
                raise bad(f"unsupported _include {value!r}", "unknown_include")
            spec = SEARCH_PARAMS.get(resource_type, {}).get(parts[1])
            if spec is None or spec.type != "reference":
                raise bad(f"unsupported _include {value!r}", "unknown_include")
            parsed.includes.append((resource_type, parts[1]))
        elif name == "_revinclude":
            if modifier:
                raise bad(f"unsupported _revinclude modifier :{modifier}", "unknown_revinclude")
            source, _, param = value.replace(".", ":", 1).partition(":")
            if (source, param) not in REVINCLUDES.get(resource_type, ()):
                raise bad(f"unsupported _revinclude {value!r} for {resource_type}",
                          "unknown_revinclude")
            if (source, param) not in parsed.revincludes:
                parsed.revincludes.append((source, param))
        elif name == "_total":
            if value not in ("none", "estimate", "accurate"):
                raise bad(f"unsupported _total {value!r}", "unsupported_total")
            parsed.want_total = value != "none"
        elif name == "_summary":
            if value != "count":
                raise bad("only _summary=count is supported", "unsupported_summary")
            parsed.summary_count = True
        elif name in IGNORED_PARAMS:
            continue
        elif name in PATIENT_PARAMS and resource_type not in ("Patient",):
            parsed.patient_refs.extend(v for v in value.split(",") if v)
        elif name in PATIENT_IDENTIFIER_PARAMS and name not in declared and \
                resource_type != "Patient":
            parsed.patient_identifiers.extend(v for v in value.split(",") if v)
        elif name in COMMON_PARAMS or name in declared:
            if not value:
                raise bad(f"empty value for {name}")
            values = tuple(v for v in value.split(",")) if name != "_lastUpdated" else (value,)
            spec = SEARCH_PARAMS.get(resource_type, {}).get(name)
            if name == "_lastUpdated" or (spec is not None and spec.type == "date"):
                for v in values:
                    check_date(v)
            if modifier not in ("", "not", "exact"):
                raise bad(f"unsupported modifier :{modifier}", "unsupported_modifier")
            parsed.criteria.append(Criterion(name, values, modifier))
        elif not lenient:
            raise bad(f"unknown search parameter {raw_name!r} for {resource_type}",
                      "unknown_param")
    return parsed


def check_date(value: str) -> None:
    raw = value[2:] if value[:2] in PREFIXED else value
    if value[:2] == "ap":
        raise bad("the ap date prefix is not supported", "unsupported_prefix")
    try:
        date_range(raw)
    except Exception as exc:
        raise bad(f"not a FHIR date: {value!r}", "invalid_date") from exc


def page_url(base: str, path: str, raw: Sequence[tuple[str, str]], offset: int, count: int) -> str:
    kept = [(k, v) for k, v in raw if k not in ("_offset", "_count")]
    kept += [("_offset", str(offset)), ("_count", str(count))]
    return f"{base}/{path}?{urlencode(kept)}"


def instant(value: datetime) -> str:
    return as_utc(value).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class RawResource:
    """A stored resource as its stored JSON text, spliced verbatim into a response body.

    The stored text is what ``read`` returns (``meta.versionId``/``lastUpdated`` are stamped
    into it at write time), so a searchset entry need not decode and re-encode it (RFC 8259
    text, written by ``json.dumps``). :func:`dumps` splices it; :func:`materialize` decodes it
    for the consumers that need a dictionary (XML rendering)."""

    __slots__ = ("resource_type", "id", "text")

    def __init__(self, resource_type: str, rid: str, text: str) -> None:
        self.resource_type = resource_type
        self.id = rid
        self.text = text

    def value(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.text)
        return data


Resource = dict[str, Any] | RawResource


def dumps(body: Any) -> str:
    """Compact JSON of ``body`` with every :class:`RawResource` spliced as its stored text.

    Each one is first encoded as a placeholder string carrying a per-call nonce and NUL
    characters (which no stored text holds: the faces refuse NUL), then replaced in one pass."""
    raws: list[str] = []
    nonce = secrets.token_hex(8)

    def hook(obj: Any) -> str:
        if isinstance(obj, RawResource):
            raws.append(obj.text)
            return f"\x00{nonce}:{len(raws) - 1}\x00"
        raise TypeError(f"{type(obj).__name__} is not JSON serializable")

    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=hook)
    if not raws:
        return text

    def splice(match: re.Match[str]) -> str:
        if match.group(1) != nonce:  # pragma: no cover - a stored string never holds NUL
            return match.group(0)
        return raws[int(match.group(2))]

    return _PLACEHOLDER.sub(splice, text)


_PLACEHOLDER = re.compile(r'"\\u0000([0-9a-f]{16}):(\d+)\\u0000"')


def materialize(body: Any) -> Any:
    """``body`` with every :class:`RawResource` decoded into a dictionary."""
    if isinstance(body, RawResource):
        return body.value()
    if isinstance(body, dict):
        return {k: materialize(v) for k, v in body.items()}
    if isinstance(body, list):
        return [materialize(v) for v in body]
    return body


def searchset(
    *,
    base: str,
    path: str,
    raw: Sequence[tuple[str, str]],
    total: int | None,
    offset: int,
    count: int,
    matches: Sequence[Resource],
    included: Sequence[Resource] = (),
    now: datetime,
    bundle_type: str = "searchset",
    warnings: Sequence[str] = (),
) -> dict[str, Any]:
    """A paged Bundle (searchset or history) with its navigation links; no ``total`` when
    ``total`` is ``None`` (``_total=none``), a ``next`` link then when the page is full."""
    links = [{"relation": "self", "url": page_url(base, path, raw, offset, count)}]
    if count:
        links.append({"relation": "first", "url": page_url(base, path, raw, 0, count)})
        if offset > 0:
            links.append(
                {"relation": "previous",
                 "url": page_url(base, path, raw, max(0, offset - count), count)}
            )
        more = len(matches) >= count if total is None else offset + count < total
        if more:
            links.append(
                {"relation": "next", "url": page_url(base, path, raw, offset + count, count)}
            )
    match_mode = {"mode": "match"}
    include_mode = {"mode": "include"}
    entries: list[dict[str, Any]] = []
    for resource in matches:
        entry = {"fullUrl": full_url(base, resource), "resource": resource}
        if bundle_type == "searchset":
            entry["search"] = match_mode
        entries.append(entry)
    for resource in included:
        entries.append(
            {"fullUrl": full_url(base, resource), "resource": resource, "search": include_mode}
        )
    if warnings:  # bundle.html#searchset: an OperationOutcome with search.mode "outcome"
        entries.append({
            "resource": {"resourceType": "OperationOutcome", "issue": [
                {"severity": "warning", "code": "too-costly", "diagnostics": text}
                for text in warnings]},
            "search": {"mode": "outcome"},
        })
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": instant(now)},
        "type": bundle_type,
    }
    if total is not None:
        bundle["total"] = total
    bundle["link"] = links
    if entries:
        bundle["entry"] = entries
    return bundle


def full_url(base: str, resource: Resource) -> str:
    if isinstance(resource, RawResource):
        return f"{base}/{resource.resource_type}/{resource.id}"
    return f"{base}/{resource.get('resourceType')}/{resource.get('id')}"


def history_entry(base: str, rtype: str, rid: str, version: int, method: str,
                  data: str, when: datetime) -> dict[str, Any]:
    """One entry of a history Bundle (http.html#history: request + response)."""
    entry: dict[str, Any] = {
        "fullUrl": f"{base}/{rtype}/{rid}",
        "request": {"method": method, "url": rtype if method == "POST" else f"{rtype}/{rid}"},
        "response": {
            "status": {"POST": "201", "PUT": "200", "DELETE": "204"}.get(method, "200"),
            "etag": f'W/"{version}"',
            "lastModified": instant(when),
        },
    }
    if data:
        entry["resource"] = json.loads(data)
    return entry


def date_clause_for(column: Any, values: Sequence[str]) -> ColumnElement[bool]:
    """OR of date prefixes on a single instant column (lo = hi)."""
    for value in values:
        check_date(value)
    return or_(*(date_clause(column, column, v) for v in values))
