"""Generic versioned storage of FHIR resources (JSON), with a search index pushed into SQL.

Every row carries ``space_id`` (the partition key) and the *brick* it belongs to
(measurements, profile, agenda, consents): the per-request repository of the FHIR face pushes
"this space" and "the bricks the caller may read" into every SQL query, before counting and
paging (FHIR R4 search.html §3.1.1.1; DESIGN.md "filter before paging").

Versions follow FHIR R4 http.html §3.1.0.4 (``meta.versionId``, ``_history``): the current
version lives in ``fhir_resource``, every version (including deletions) in
``fhir_resource_version``. Search parameters are extracted at write time into
``fhir_search_index`` (token ``system|code``, date ranges, references).

This module knows JSON dictionaries only: no Flask, no ``fhir.resources``.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    Boolean,
    ColumnElement,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    and_,
    delete,
    exists,
    false,
    func,
    insert,
    not_,
    or_,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from espace.clock import as_utc
from espace.db import Base
from espace.errors import Conflict, DomainError, InvalidInput, NotFound

Timestamp = DateTime(timezone=True)
ID_PATTERN = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")  # FHIR R4 datatypes.html#id


class Gone(DomainError):
    """The resource existed and was deleted (HTTP 410)."""

    code = "gone"


class VersionConflict(DomainError):
    """``If-Match`` named a stale version (HTTP 412)."""

    code = "version_conflict"


class FhirResourceRow(Base):
    """The current version of one resource."""

    __tablename__ = "fhir_resource"
    __table_args__ = (
        Index("ix_fhir_resource_space_type", "space_id", "resource_type", "deleted", "brick"),
    )

    resource_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    space_id: Mapped[str] = mapped_column(ForeignKey("patient_space.id"))
    brick: Mapped[str] = mapped_column(String(16))
    version_id: Mapped[int] = mapped_column(Integer)
    last_updated: Mapped[datetime] = mapped_column(Timestamp)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(200), default="")  # meta.source
    source_app: Mapped[str] = mapped_column(String(64), default="")  # app id that wrote it
    author: Mapped[str] = mapped_column(String(128), default="")
    author_kind: Mapped[str] = mapped_column(String(40), default="")
    sort_date: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    json: Mapped[str] = mapped_column(Text, default="")


class FhirResourceVersion(Base):
    """Every version ever written, deletions included (``_history``)."""

    __tablename__ = "fhir_resource_version"
    __table_args__ = (
        UniqueConstraint("resource_type", "resource_id", "version_id"),
        Index("ix_fhir_version_space_type_time", "space_id", "resource_type", "last_updated"),
    )

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    space_id: Mapped[str] = mapped_column(ForeignKey("patient_space.id"))
    resource_type: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str] = mapped_column(String(64))
    version_id: Mapped[int] = mapped_column(Integer)
    brick: Mapped[str] = mapped_column(String(16))
    last_updated: Mapped[datetime] = mapped_column(Timestamp)
    method: Mapped[str] = mapped_column(String(8))  # POST | PUT | DELETE
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    author: Mapped[str] = mapped_column(String(128), default="")
    json: Mapped[str] = mapped_column(Text, default="")


class FhirSearchIndex(Base):
    """One extracted search value of the current version of a resource."""

    __tablename__ = "fhir_search_index"
    __table_args__ = (
        Index("ix_fhir_index_lookup", "space_id", "resource_type", "param", "code"),
        Index("ix_fhir_index_resource", "resource_type", "resource_id"),
    )

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    space_id: Mapped[str] = mapped_column(ForeignKey("patient_space.id"))
    resource_type: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str] = mapped_column(String(64))
    param: Mapped[str] = mapped_column(String(64))
    system: Mapped[str] = mapped_column(String(255), default="")
    code: Mapped[str] = mapped_column(String(255), default="")  # token code, reference, string
    date_lo: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    date_hi: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)


# ----------------------------------------------------------------------------- parameters
@dataclass(frozen=True, slots=True)
class ParamSpec:
    """A search parameter: its FHIR type and the JSON paths it reads (search.html §3.1.1)."""

    type: str  # token | date | reference | string
    paths: tuple[str, ...]
    target: str = ""  # reference target type (for _include)


_COMMON_DATE = ("effectiveDateTime", "effectivePeriod", "effectiveInstant")
SEARCH_PARAMS: dict[str, dict[str, ParamSpec]] = {
    "Observation": {
        "code": ParamSpec("token", ("code",)),
        "category": ParamSpec("token", ("category",)),
        "date": ParamSpec("date", _COMMON_DATE),
        "identifier": ParamSpec("token", ("identifier",)),
        "status": ParamSpec("token", ("status",)),
        "device": ParamSpec("reference", ("device",), "Device"),
        "subject.identifier": ParamSpec("token", ("subject.identifier",)),
    },
    "Device": {
        "identifier": ParamSpec("token", ("identifier",)),
        "type": ParamSpec("token", ("type",)),
    },
    "Condition": {
        "code": ParamSpec("token", ("code",)),
        "clinical-status": ParamSpec("token", ("clinicalStatus",)),
        "onset-date": ParamSpec("date", ("onsetDateTime", "onsetPeriod")),
        "category": ParamSpec("token", ("category",)),
    },
    "MedicationStatement": {
        "code": ParamSpec("token", ("medicationCodeableConcept",)),
        "status": ParamSpec("token", ("status",)),
        "effective": ParamSpec("date", ("effectiveDateTime", "effectivePeriod")),
    },
    "Procedure": {
        "code": ParamSpec("token", ("code",)),
        "date": ParamSpec("date", ("performedDateTime", "performedPeriod")),
        "category": ParamSpec("token", ("category",)),
    },
    "AllergyIntolerance": {
        "code": ParamSpec("token", ("code",)),
        "clinical-status": ParamSpec("token", ("clinicalStatus",)),
    },
    "FamilyMemberHistory": {
        "relationship": ParamSpec("token", ("relationship",)),
        "code": ParamSpec("token", ("condition.code",)),
    },
    "Immunization": {
        "vaccine-code": ParamSpec("token", ("vaccineCode",)),
        "date": ParamSpec("date", ("occurrenceDateTime",)),
        "lot-number": ParamSpec("string", ("lotNumber",)),
        "status": ParamSpec("token", ("status",)),
    },
    "RelatedPerson": {
        "relationship": ParamSpec("token", ("relationship",)),
        "name": ParamSpec("string", ("name.family", "name.given", "name.text")),
    },
    "CareTeam": {
        "category": ParamSpec("token", ("category",)),
        "status": ParamSpec("token", ("status",)),
    },
    "Consent": {
        "category": ParamSpec("token", ("category",)),
        "scope": ParamSpec("token", ("scope",)),
        "status": ParamSpec("token", ("status",)),
        "date": ParamSpec("date", ("dateTime",)),
        "actor": ParamSpec("reference", ("provision.actor.reference",)),
    },
    "Appointment": {
        "date": ParamSpec("date", ("start",)),
        "status": ParamSpec("token", ("status",)),
        "identifier": ParamSpec("token", ("identifier",)),
        "service-type": ParamSpec("token", ("serviceType",)),
    },
    "CommunicationRequest": {
        "occurrence": ParamSpec("date", ("occurrenceDateTime",)),
        "status": ParamSpec("token", ("status",)),
        "category": ParamSpec("token", ("category",)),
    },
}
# The date used by ``_sort=date`` (and ``-date``) per type.
SORT_DATE_PATHS: dict[str, tuple[str, ...]] = {
    t: specs[p].paths
    for t, specs in SEARCH_PARAMS.items()
    for p in ("date", "onset-date", "effective", "occurrence")
    if p in specs
}


# ----------------------------------------------------------------------------- dates
_DATE_RE = re.compile(
    r"^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?"
    r"(Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


def date_range(value: str) -> tuple[datetime, datetime]:
    """The instant range a FHIR date/dateTime/instant denotes (search.html §3.1.1.4.3)."""
    m = _DATE_RE.match(value.strip().replace(" ", "+"))  # an unencoded "+" became a space
    if m is None:
        raise InvalidInput(f"not a FHIR date: {value!r}", code="invalid_date")
    year, month, day, hour, minute, second, frac, tz = m.groups()
    tzinfo = UTC
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        tzinfo = _tz(sign * (int(tz[1:3]) * 60 + int(tz[4:6])))
    try:
        if month is None:
            lo = datetime(int(year), 1, 1, tzinfo=tzinfo)
            hi = datetime(int(year) + 1, 1, 1, tzinfo=tzinfo)
        elif day is None:
            lo = datetime(int(year), int(month), 1, tzinfo=tzinfo)
            hi = datetime(int(year) + int(month) // 12, int(month) % 12 + 1, 1, tzinfo=tzinfo)
        elif hour is None:
            lo = datetime(int(year), int(month), int(day), tzinfo=tzinfo)
            hi = lo + timedelta(days=1)
        elif second is None:
            lo = datetime(int(year), int(month), int(day), int(hour), int(minute), tzinfo=tzinfo)
            hi = lo + timedelta(minutes=1)
        else:
            micro = int(float(frac) * 1_000_000) if frac else 0
            lo = datetime(
                int(year), int(month), int(day), int(hour), int(minute), int(second), micro,
                tzinfo=tzinfo,
            )
            hi = lo + (timedelta(microseconds=1) if frac else timedelta(seconds=1))
    except ValueError as exc:
        raise InvalidInput(f"not a FHIR date: {value!r}", code="invalid_date") from exc
    return lo.astimezone(UTC), (hi - timedelta(microseconds=1)).astimezone(UTC)


def _tz(minutes: int) -> Any:
    from datetime import timezone

    return timezone(timedelta(minutes=minutes))


# ----------------------------------------------------------------------------- extraction
def _walk(node: Any, path: str) -> list[Any]:
    values = node if isinstance(node, list) else [node]
    for part in path.split("."):
        nxt: list[Any] = []
        for value in values:
            if isinstance(value, dict) and part in value:
                got = value[part]
                nxt.extend(got if isinstance(got, list) else [got])
        values = nxt
    return values


def _tokens(value: Any) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [("", value)]
    if not isinstance(value, dict):
        return []
    if "coding" in value:
        return [(c.get("system", ""), c.get("code", "")) for c in value["coding"] if c.get("code")]
    if "value" in value and isinstance(value["value"], str):  # Identifier
        return [(value.get("system", ""), value["value"])]
    if "code" in value and isinstance(value["code"], str):  # Coding
        return [(value.get("system", ""), value["code"])]
    return []


def _dates(value: Any) -> list[tuple[datetime, datetime]]:
    if isinstance(value, str):
        return [date_range(value)]
    if isinstance(value, dict) and ("start" in value or "end" in value):  # Period
        lo = date_range(value["start"])[0] if "start" in value else datetime.min.replace(tzinfo=UTC)
        hi = date_range(value["end"])[1] if "end" in value else datetime.max.replace(tzinfo=UTC)
        return [(lo, hi)]
    return []


def index_values(resource: dict[str, Any]) -> list[tuple[str, str, str, Any, Any]]:
    """(param, system, code, date_lo, date_hi) for every search value of ``resource``."""
    rows: list[tuple[str, str, str, Any, Any]] = []
    for name, spec in SEARCH_PARAMS.get(str(resource.get("resourceType")), {}).items():
        for path in spec.paths:
            for value in _walk(resource, path):
                if spec.type == "token":
                    rows.extend((name, s[:255], c[:255], None, None) for s, c in _tokens(value))
                elif spec.type == "date":
                    rows.extend((name, "", "", lo, hi) for lo, hi in _dates(value))
                elif spec.type == "reference":
                    ref = value.get("reference") if isinstance(value, dict) else value
                    if isinstance(ref, str):
                        rows.append((name, "", ref[:255], None, None))
                elif spec.type == "string" and isinstance(value, str):
                    rows.append((name, "", value.lower()[:255], None, None))
    return rows


def sort_date(resource: dict[str, Any]) -> datetime | None:
    for path in SORT_DATE_PATHS.get(str(resource.get("resourceType")), ()):
        for value in _walk(resource, path):
            found = _dates(value)
            if found:
                return found[0][0]
    return None


# ----------------------------------------------------------------------------- writes
@dataclass(frozen=True, slots=True)
class Writer:
    """Who writes: recorded on the row and in ``meta.source`` (FHIR R4 resource.html#Meta)."""

    author: str
    author_kind: str
    source: str = ""
    source_app: str = ""


def new_id() -> str:
    return str(uuid.uuid4())


def id_is_free(session: Session, resource_type: str, resource_id: str) -> bool:
    return session.get(FhirResourceRow, (resource_type, resource_id)) is None


def _stamp(resource: dict[str, Any], rid: str, version: int, now: datetime, source: str) -> str:
    resource["id"] = rid
    meta = dict(resource.get("meta") or {})
    meta["versionId"] = str(version)
    meta["lastUpdated"] = as_utc(now).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if source:
        meta["source"] = source
    resource["meta"] = meta
    return json.dumps(resource, separators=(",", ":"), ensure_ascii=False)


def _reindex(
    session: Session, row: FhirResourceRow, resource: dict[str, Any] | None, *,
    fresh: bool = False,
) -> None:
    """Replace the index rows of ``row`` (none to delete when ``fresh``: a new id), inserted
    in one multi-row statement rather than one ORM object each."""
    if not fresh:
        session.execute(
            delete(FhirSearchIndex).where(
                FhirSearchIndex.resource_type == row.resource_type,
                FhirSearchIndex.resource_id == row.id,
            )
        )
    if resource is None:
        return
    values = [
        {"space_id": row.space_id, "resource_type": row.resource_type, "resource_id": row.id,
         "param": param, "system": system, "code": code, "date_lo": lo, "date_hi": hi}
        for param, system, code, lo, hi in index_values(resource)
    ]
    if values:
        session.execute(insert(FhirSearchIndex), values)


def _version(session: Session, row: FhirResourceRow, method: str) -> None:
    session.add(
        FhirResourceVersion(
            space_id=row.space_id,
            resource_type=row.resource_type,
            resource_id=row.id,
            version_id=row.version_id,
            brick=row.brick,
            last_updated=row.last_updated,
            method=method,
            deleted=row.deleted,
            author=row.author,
            json=row.json,
        )
    )


def create(
    session: Session,
    space_id: str,
    resource: dict[str, Any],
    *,
    brick: str,
    writer: Writer,
    now: datetime,
    resource_id: str | None = None,
) -> FhirResourceRow:
    """Store a new resource (server-assigned id unless ``resource_id`` is given and free)."""
    rtype = str(resource["resourceType"])
    rid = resource_id or new_id()
    # a server-assigned UUID (RFC 9562 v4) is not looked up: the primary key still guards it
    if resource_id is not None and not id_is_free(session, rtype, rid):
        raise Conflict(f"{rtype}/{rid} already exists", code="duplicate_id")
    row = FhirResourceRow(
        resource_type=rtype,
        id=rid,
        space_id=space_id,
        brick=brick,
        version_id=1,
        last_updated=now,
        deleted=False,
        source=writer.source,
        source_app=writer.source_app,
        author=writer.author,
        author_kind=writer.author_kind,
        sort_date=sort_date(resource),
        json=_stamp(resource, rid, 1, now, writer.source),
    )
    session.add(row)
    session.flush()
    _version(session, row, "POST")
    _reindex(session, row, resource, fresh=True)
    return row


def lock_row(session: Session, resource_type: str, resource_id: str) -> FhirResourceRow | None:
    """The current row, locked for the rest of the transaction (``SELECT ... FOR UPDATE``).

    Writers read the version they check ``If-Match`` against under this lock, so concurrent
    writers of one resource queue and each sees the version its predecessor committed: a
    stale ``If-Match`` is a 412, never a unique-constraint 409 (FHIR R4 http.html#concurrency,
    RFC 9110 §13.1.1). PostgreSQL waits on the row lock and re-reads the committed row; SQLite
    ignores ``FOR UPDATE`` (its transactions take the database write lock at ``BEGIN``).
    """
    return session.get(
        FhirResourceRow, (resource_type, resource_id), with_for_update=True,
        populate_existing=True,
    )


def get_row(
    session: Session, space_id: str, resource_type: str, resource_id: str, bricks: Iterable[str]
) -> FhirResourceRow:
    """The current row, in this space and a readable brick; NotFound otherwise, Gone if deleted."""
    row = session.get(FhirResourceRow, (resource_type, resource_id))
    if row is None or row.space_id != space_id or row.brick not in set(bricks):
        raise NotFound(f"{resource_type}/{resource_id} is not known")
    if row.deleted:
        raise Gone(f"{resource_type}/{resource_id} was deleted")
    return row


def update(
    session: Session,
    row: FhirResourceRow,
    resource: dict[str, Any],
    *,
    writer: Writer,
    now: datetime,
    if_match: int | None = None,
    brick: str | None = None,
) -> FhirResourceRow:
    """Write a new version (FHIR R4 http.html#update, §3.1.0.4.2 ``If-Match``)."""
    if if_match is not None and if_match != row.version_id:
        raise VersionConflict(
            f"version {if_match} is stale, current is {row.version_id}", code="version_conflict"
        )
    row.version_id += 1
    row.last_updated = now
    row.deleted = False
    row.author = writer.author
    row.author_kind = writer.author_kind
    row.brick = brick or row.brick
    row.sort_date = sort_date(resource)
    row.json = _stamp(resource, row.id, row.version_id, now, row.source or writer.source)
    _version(session, row, "PUT")
    _reindex(session, row, resource)
    return row


def remove(
    session: Session, row: FhirResourceRow, *, writer: Writer, now: datetime
) -> FhirResourceRow:
    """Logically delete (a new, empty version; the history keeps the old ones)."""
    row.version_id += 1
    row.last_updated = now
    row.deleted = True
    row.author = writer.author
    row.author_kind = writer.author_kind
    row.json = ""
    _version(session, row, "DELETE")
    _reindex(session, row, None)
    return row


def resource_of(row: FhirResourceRow | FhirResourceVersion) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(row.json)
    return data


# ----------------------------------------------------------------------------- search
@dataclass(frozen=True, slots=True)
class Criterion:
    """One search parameter occurrence: OR over ``values`` (search.html §3.1.1.2)."""

    param: str
    values: tuple[str, ...]
    modifier: str = ""


@dataclass(slots=True)
class SearchQuery:
    resource_type: str
    space_id: str
    bricks: frozenset[str]
    criteria: list[Criterion] = field(default_factory=list)
    sort: list[tuple[str, bool]] = field(default_factory=list)  # (param, descending)
    count: int = 50
    offset: int = 0
    ids: frozenset[str] | None = None


DATE_PREFIXES = ("eq", "ne", "lt", "gt", "le", "ge", "sa", "eb")


def _split_prefix(value: str) -> tuple[str, str]:
    if len(value) > 2 and value[:2] in DATE_PREFIXES and not value[:2].isdigit():
        return value[:2], value[2:]
    return "eq", value


def date_clause(lo_col: Any, hi_col: Any, value: str) -> ColumnElement[bool]:
    """The prefix semantics of search.html §3.1.1.4.3 (``ap`` is not supported)."""
    prefix, raw = _split_prefix(value)
    plo, phi = date_range(raw)
    contained = and_(lo_col >= plo, hi_col <= phi)
    clauses: dict[str, ColumnElement[bool]] = {
        "eq": contained,
        "ne": not_(contained),
        "gt": hi_col > phi,
        "lt": lo_col < plo,
        "ge": or_(hi_col > phi, contained),
        "le": or_(lo_col < plo, contained),
        "sa": lo_col > phi,
        "eb": hi_col < plo,
    }
    return clauses[prefix]


def _criterion_clause(query: SearchQuery, crit: Criterion) -> ColumnElement[bool]:
    row = FhirResourceRow
    if crit.param == "_id":
        return row.id.in_(crit.values)
    if crit.param == "_lastUpdated":
        return or_(*(date_clause(row.last_updated, row.last_updated, v) for v in crit.values))
    spec = SEARCH_PARAMS.get(query.resource_type, {}).get(crit.param)
    if spec is None:
        raise InvalidInput(f"unknown search parameter {crit.param!r}", code="unknown_param")
    idx = FhirSearchIndex
    ors: list[ColumnElement[bool]] = []
    for value in crit.values:
        if spec.type == "token":
            if "|" in value:
                system, code = value.split("|", 1)
                parts = [idx.system == system] if system or not code else [idx.system == ""]
                if code:
                    parts.append(idx.code == code)
                ors.append(and_(*parts))
            else:
                ors.append(idx.code == value)
        elif spec.type == "date":
            ors.append(date_clause(idx.date_lo, idx.date_hi, value))
        elif spec.type == "reference":
            ors.append(idx.code == value if "/" in value else idx.code.like(f"%/{value}"))
        else:
            if crit.modifier == "exact":
                ors.append(idx.code == value.lower())
            else:
                ors.append(idx.code.like(value.lower().replace("%", "") + "%"))
    matched = exists(
        select(idx.pk).where(
            idx.space_id == query.space_id,
            idx.resource_type == query.resource_type,
            idx.resource_id == row.id,
            idx.param == crit.param,
            or_(*ors) if ors else false(),
        )
    )
    return not_(matched) if crit.modifier == "not" else matched


def _where(query: SearchQuery) -> list[ColumnElement[bool]]:
    row = FhirResourceRow
    where: list[ColumnElement[bool]] = [
        row.space_id == query.space_id,
        row.resource_type == query.resource_type,
        row.deleted.is_(False),
        row.brick.in_(sorted(query.bricks)) if query.bricks else false(),
    ]
    if query.ids is not None:
        where.append(row.id.in_(sorted(query.ids)))
    where.extend(_criterion_clause(query, c) for c in query.criteria)
    return where


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a search: its rows and the total (``None`` when not asked for)."""

    total: int | None
    rows: list[FhirResourceRow]


class StoredJson(NamedTuple):
    """What a searchset needs of a current resource: its type, id and stored JSON text."""

    resource_type: str
    id: str
    json: str


@dataclass(frozen=True, slots=True)
class JsonPage:
    """One page of a search as :class:`StoredJson` rows (no ORM entities to build)."""

    total: int | None
    rows: list[StoredJson]


def _order(query: SearchQuery) -> list[Any]:
    row = FhirResourceRow
    order: list[Any] = []
    for param, desc in query.sort:
        column: Any = row.last_updated if param == "_lastUpdated" else row.sort_date
        if param == "_id":
            column = row.id
        order.append(column.desc() if desc else column.asc())
    order.append(row.last_updated.desc() if not query.sort else row.id.asc())
    order.append(row.id.asc())
    return order


def search_page(session: Session, query: SearchQuery, *, want_total: bool = True) -> Page:
    """One page of ORM rows (for callers that write them), see :func:`_page`."""
    total, rows = _page(session, query, (FhirResourceRow,), want_total)
    return Page(total, [found[0] for found in rows])


def search_json_page(
    session: Session, query: SearchQuery, *, want_total: bool = True
) -> JsonPage:
    """One page of (type, id, stored JSON) tuples: what a searchset splices, read without
    building ORM entities, see :func:`_page`."""
    row = FhirResourceRow
    total, rows = _page(session, query, (row.resource_type, row.id, row.json), want_total)
    return JsonPage(total, [StoredJson(r[0], r[1], r[2]) for r in rows])


def _page(
    session: Session, query: SearchQuery, columns: tuple[Any, ...], want_total: bool
) -> tuple[int | None, Sequence[Any]]:
    """One page, every filter in SQL before counting and paging (search.html §3.1.1.1).

    The total comes with the page in one statement (``count(*) OVER ()``, evaluated over every
    matching row before ``LIMIT``). A second ``count`` runs only when the page is empty past
    the first one, and no count at all when ``want_total`` is false (``_total=none``,
    search.html#total). ``_count=0`` (``_summary=count``) runs the count alone."""
    where = _where(query)
    if query.count == 0:
        return (_count(session, where) if want_total else None), []
    statement = select(*columns)
    if want_total:
        statement = statement.add_columns(func.count().over().label("total"))
    statement = statement.where(*where).order_by(*_order(query))
    rows = session.execute(statement.offset(query.offset).limit(query.count)).all()
    if not want_total:
        return None, rows
    if rows:
        return int(rows[0][-1]), rows
    return (_count(session, where) if query.offset else 0), rows


def _count(session: Session, where: list[ColumnElement[bool]]) -> int:
    statement = select(func.count()).select_from(FhirResourceRow).where(*where)
    return int(session.execute(statement).scalar_one())


def search(session: Session, query: SearchQuery) -> tuple[int, list[FhirResourceRow]]:
    """Total and one page (:func:`search_page` with the total)."""
    page = search_page(session, query)
    assert page.total is not None
    return page.total, page.rows


def includes(
    session: Session,
    space_id: str,
    bricks: frozenset[str],
    rows: Sequence[FhirResourceRow | StoredJson],
    resource_type: str,
    param: str,
    target: str | None = None,
) -> list[FhirResourceRow]:
    """Resources referenced by ``param`` of ``rows`` (one batched query, no duplicates)."""
    spec = SEARCH_PARAMS.get(resource_type, {}).get(param)
    if spec is None or spec.type != "reference" or not rows:
        return []
    refs = session.execute(
        select(FhirSearchIndex.code).where(
            FhirSearchIndex.space_id == space_id,
            FhirSearchIndex.resource_type == resource_type,
            FhirSearchIndex.resource_id.in_([r.id for r in rows]),
            FhirSearchIndex.param == param,
        )
    ).scalars()
    wanted: dict[str, set[str]] = {}
    for ref in refs:
        rtype, _, rid = ref.rpartition("/")
        rtype = rtype.rsplit("/", 1)[-1]
        if rtype and (target or spec.target or rtype) == rtype:
            wanted.setdefault(rtype, set()).add(rid)
    found: list[FhirResourceRow] = []
    for rtype, ids in sorted(wanted.items()):
        found.extend(
            session.execute(
                select(FhirResourceRow)
                .where(
                    FhirResourceRow.space_id == space_id,
                    FhirResourceRow.resource_type == rtype,
                    FhirResourceRow.id.in_(sorted(ids)),
                    FhirResourceRow.deleted.is_(False),
                    FhirResourceRow.brick.in_(sorted(bricks)) if bricks else false(),
                )
                .order_by(FhirResourceRow.id)
            ).scalars()
        )
    return found


def revincludes(
    session: Session,
    space_id: str,
    bricks: frozenset[str],
    source_type: str,
    *,
    param: str | None,
    targets: Sequence[str] | None,
    limit: int,
) -> list[FhirResourceRow]:
    """Current ``source_type`` resources of the space, in readable bricks, whose reference
    parameter ``param`` points at one of ``targets`` (``Type/id``, relative or absolute), at
    most ``limit`` (FHIR R4 search.html#revinclude). ``targets=None`` takes every resource of
    the type: the Patient compartment, since everything stored in a space concerns its
    patient. One query; the space and brick filters are in SQL like every other read."""
    row = FhirResourceRow
    where: list[ColumnElement[bool]] = [
        row.space_id == space_id,
        row.resource_type == source_type,
        row.deleted.is_(False),
        row.brick.in_(sorted(bricks)) if bricks else false(),
    ]
    if targets is not None:
        if not targets or param is None:
            return []
        idx = FhirSearchIndex
        refs = sorted(set(targets))
        where.append(exists(select(idx.pk).where(
            idx.space_id == space_id,
            idx.resource_type == source_type,
            idx.resource_id == row.id,
            idx.param == param,
            or_(idx.code.in_(refs), *(idx.code.like(f"%/{ref}") for ref in refs)),
        )))
    return list(session.execute(
        select(row).where(*where).order_by(row.last_updated.desc(), row.id.asc()).limit(limit)
    ).scalars())


def history(
    session: Session,
    space_id: str,
    bricks: frozenset[str],
    *,
    resource_type: str | None = None,
    resource_id: str | None = None,
    since: datetime | None = None,
    count: int = 50,
    offset: int = 0,
) -> tuple[int, list[FhirResourceVersion]]:
    """Versions newest first (http.html#history), filtered by space and brick before paging."""
    ver = FhirResourceVersion
    where: list[ColumnElement[bool]] = [
        ver.space_id == space_id,
        ver.brick.in_(sorted(bricks)) if bricks else false(),
    ]
    if resource_type is not None:
        where.append(ver.resource_type == resource_type)
    if resource_id is not None:
        where.append(ver.resource_id == resource_id)
    if since is not None:
        where.append(ver.last_updated >= since)
    total = int(session.execute(select(func.count()).select_from(ver).where(*where)).scalar_one())
    rows = list(
        session.execute(
            select(ver)
            .where(*where)
            .order_by(ver.last_updated.desc(), ver.pk.desc())
            .offset(offset)
            .limit(count)
        ).scalars()
    )
    return total, rows


def get_version(
    session: Session,
    space_id: str,
    bricks: frozenset[str],
    resource_type: str,
    resource_id: str,
    version_id: int,
) -> FhirResourceVersion:
    found = session.execute(
        select(FhirResourceVersion).where(
            FhirResourceVersion.space_id == space_id,
            FhirResourceVersion.resource_type == resource_type,
            FhirResourceVersion.resource_id == resource_id,
            FhirResourceVersion.version_id == version_id,
        )
    ).scalar_one_or_none()
    if found is None or found.brick not in bricks:
        raise NotFound(f"{resource_type}/{resource_id}/_history/{version_id} is not known")
    if found.deleted:
        raise Gone(f"{resource_type}/{resource_id} version {version_id} is a deletion")
    return found


def find_by_token(
    session: Session, space_id: str, resource_type: str, param: str, system: str, code: str
) -> list[FhirResourceRow]:
    """Current resources whose ``param`` has exactly ``system|code`` (conditional create)."""
    idx = FhirSearchIndex
    return list(
        session.execute(
            select(FhirResourceRow)
            .join(
                idx,
                and_(idx.resource_type == FhirResourceRow.resource_type,
                     idx.resource_id == FhirResourceRow.id),
            )
            .where(
                FhirResourceRow.space_id == space_id,
                FhirResourceRow.resource_type == resource_type,
                FhirResourceRow.deleted.is_(False),
                idx.param == param,
                idx.system == system,
                idx.code == code,
            )
            .distinct()
        ).scalars()
    )


# ----------------------------------------------------------------------------- app pairing codes
class PairingCode(Base):
    """An OAuth2 authorization code (RFC 6749 §4.1.2) issued when the patient pairs an app.

    Only the SHA-256 of the code is stored; PKCE (RFC 7636) binds it to the app's verifier.
    Single use, ten minutes (RFC 6749 §4.1.2 "a maximum authorization code lifetime of 10
    minutes is RECOMMENDED").
    """

    __tablename__ = "pairing_code"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    space_id: Mapped[str] = mapped_column(ForeignKey("patient_space.id"), index=True)
    app_id: Mapped[str] = mapped_column(String(64))
    redirect_uri: Mapped[str] = mapped_column(Text)
    purposes: Mapped[str] = mapped_column(String(400))  # flat
    code_challenge: Mapped[str] = mapped_column(String(128))
    consent_id: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    expires_at: Mapped[datetime] = mapped_column(Timestamp)
    used_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
