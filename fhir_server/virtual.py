"""Resources computed from other stores: Patient (the space), AuditEvent (the trace),
computed BMI Observations (MES API Mesures: "calculées à la volée") and the documents (MHD)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from espace import fhir_store as store
from espace import measurements as mes
from espace.clock import as_utc
from espace.errors import NotFound
from espace.fhir_store import Criterion
from espace.models import PatientSpace, TraceRecord
from espace.trace import visible_records_clause
from fhir_server import audit, documents
from fhir_server.routing import MEASUREMENTS, PROFILE, READ, TRACE
from fhir_server.search import ParsedSearch, bad, date_clause_for, parse, searchset

if TYPE_CHECKING:
    from fhir_server.repository import FhirRepository

_GENDER = {"M": "male", "F": "female", "U": "unknown"}


def patient_resource(space: PatientSpace) -> dict[str, Any]:
    """The space's person as an R4 Patient (FR Core: INS identifier with its OID)."""
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": space.id,
        "meta": {"versionId": "1"},
        "identifier": [
            {
                "use": "official",
                "type": {
                    "coding": [
                        {
                            "system": "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203",
                            "code": "INS-NIR",
                        }
                    ]
                },
                "system": f"urn:oid:{space.ins_oid}",
                "value": space.ins,
            }
        ],
        "active": space.status == "active",
        "gender": _GENDER.get(space.sex, "unknown"),
    }
    name: dict[str, Any] = {}
    if space.family_name:
        name["family"] = space.family_name
    if space.given_names:
        name["given"] = space.given_names.split()
    if name:
        resource["name"] = [{"use": "official", **name}]
    if space.birth_date:
        resource["birthDate"] = space.birth_date.isoformat()
    telecom = []
    if space.email:
        telecom.append({"system": "email", "value": space.email})
    if space.phone:
        telecom.append({"system": "phone", "value": space.phone})
    if telecom:
        resource["telecom"] = telecom
    return resource


def read(repo: FhirRepository, rtype: str, rid: str) -> dict[str, Any]:
    if rtype == "Patient":
        repo.require(PROFILE, READ)
        if rid != repo.space.id:
            raise NotFound(f"Patient/{rid} is not known")
        return patient_resource(repo.space)
    if rtype == "AuditEvent":
        repo.require(TRACE, READ)
        record = (
            repo.session.execute(
                select(TraceRecord).where(
                    TraceRecord.id == int(rid),
                    visible_records_clause(repo.space.id, repo.op.visibility()),
                )
            ).scalar_one_or_none()
            if rid.isdigit()
            else None
        )
        if record is None:
            raise NotFound(f"AuditEvent/{rid} is not known")
        return audit.audit_event(record, repo.space.id)
    if rtype == "DocumentReference":
        return documents.read(repo, rid)
    return documents.binary(repo, rid)


def search(
    repo: FhirRepository, rtype: str, params: Sequence[tuple[str, str]], path: str
) -> dict[str, Any]:
    if rtype == "Patient":
        repo.require(PROFILE, READ)
        parsed = parse(rtype, params, known=("identifier",), lenient=repo.lenient)
        match = all(
            (c.param == "_id" and repo.space.id in c.values)
            or (
                c.param == "identifier"
                and any(v.rsplit("|", 1)[-1] == repo.space.ins for v in c.values)
            )
            for c in parsed.criteria
        )
        found = [patient_resource(repo.space)] if match else []
        page = found[parsed.offset : parsed.offset + parsed.count]
        if parsed.summary_count:
            page = []
        revincluded, warnings = repo.revincluded(
            "Patient", [str(p["id"]) for p in page], parsed.revincludes)
        return searchset(
            base=repo.base,
            path=path,
            raw=parsed.used,
            total=len(found),
            offset=parsed.offset,
            count=parsed.count,
            matches=page,
            included=revincluded,
            now=repo.op.now,
            warnings=warnings,
        )
    if rtype == "AuditEvent":
        return search_audit(repo, params, path)
    if rtype == "DocumentReference":
        return documents.search(repo, params, path)
    raise bad(f"{rtype} cannot be searched", "not_searchable")


def search_audit(
    repo: FhirRepository, params: Sequence[tuple[str, str]], path: str
) -> dict[str, Any]:
    """The patient's trace, newest first, ``date`` (recorded) prefixes in SQL."""
    repo.require(TRACE, READ)
    parsed = parse("AuditEvent", params, known=("date",), lenient=repo.lenient)
    where = [visible_records_clause(repo.space.id, repo.op.visibility())]
    for crit in parsed.criteria:
        if crit.param == "_id":
            where.append(TraceRecord.id.in_([int(v) for v in crit.values if v.isdigit()]))
        else:
            where.append(date_clause_for(TraceRecord.recorded_at, crit.values))
    total = int(
        repo.session.execute(
            select(func.count()).select_from(TraceRecord).where(*where)
        ).scalar_one()
    )
    descending = not parsed.sort or parsed.sort[0][1]
    order = TraceRecord.seq.desc() if descending else TraceRecord.seq.asc()
    rows = repo.session.execute(
        select(TraceRecord)
        .where(*where)
        .order_by(order)
        .offset(parsed.offset)
        .limit(0 if parsed.summary_count else parsed.count)
    ).scalars()
    return searchset(
        base=repo.base,
        path=path,
        raw=parsed.used,
        total=total,
        offset=parsed.offset,
        count=parsed.count,
        matches=[audit.audit_event(r, repo.space.id) for r in rows],
        now=repo.op.now,
    )


# ----------------------------------------------------------------------------- BMI
def _heights(repo: FhirRepository) -> list[tuple[Any, dict[str, Any]]]:
    total, rows = store.search(
        repo.session,
        store.SearchQuery(
            "Observation",
            repo.space.id,
            repo.readable & {MEASUREMENTS},
            [Criterion("code", (mes.HEIGHT,))],
            sort=[("date", True)],
            count=10_000,
        ),
    )
    return [(r.sort_date and as_utc(r.sort_date), store.resource_of(r)) for r in rows]


def read_bmi(repo: FhirRepository, rid: str) -> dict[str, Any]:
    repo.require(MEASUREMENTS, READ)
    weight_id = mes.weight_id_of(rid) or ""
    row = store.get_row(repo.session, repo.space.id, "Observation", weight_id, repo.readable)
    weight = store.resource_of(row)
    kind = mes.measurement_of(weight)
    if kind is None or kind.code != mes.WEIGHT:
        raise NotFound(f"Observation/{rid} is not known")
    height = mes.height_for(row.sort_date and as_utc(row.sort_date), _heights(repo))
    bmi = mes.compute_bmi(weight, height) if height is not None else None
    if bmi is None:
        raise NotFound(f"Observation/{rid} is not known")
    return bmi


def search_bmi(
    repo: FhirRepository, parsed: ParsedSearch, path: str, _mode_checked: bool
) -> dict[str, Any]:
    """BMI search = weight search (same filters, paging) mapped through the latest height."""
    repo.require(MEASUREMENTS, READ)
    heights = _heights(repo)
    criteria = [c for c in parsed.criteria if c.param != "code"]
    criteria.append(Criterion("code", (mes.WEIGHT,)))
    bricks = (
        repo.readable & {MEASUREMENTS}
        if heights and repo.patient_filter_ok(parsed)
        else frozenset()
    )
    total, rows = store.search(
        repo.session,
        store.SearchQuery(
            "Observation",
            repo.space.id,
            frozenset(bricks),
            criteria,
            parsed.sort,
            0 if parsed.summary_count else parsed.count,
            parsed.offset,
        ),
    )
    matches = []
    for row in rows:
        weight = store.resource_of(row)
        height = mes.height_for(row.sort_date and as_utc(row.sort_date), heights)
        bmi = mes.compute_bmi(weight, height) if height is not None else None
        if bmi is not None:
            matches.append(bmi)
    return searchset(
        base=repo.base,
        path=path,
        raw=parsed.used,
        total=total,
        offset=parsed.offset,
        count=parsed.count,
        matches=matches,
        now=repo.op.now,
    )
