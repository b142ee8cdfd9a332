"""DMP documents over FHIR (IHE MHD 4 / ANS PDSm 3.1.1): DocumentReference search and read
(ITI-67), Binary retrieve (ITI-68).

Same store and same predicate as XDS: the rows are ``DocumentEntryRow``/``DocumentContent`` and
every query carries ``espace.store.visibility_clause(op.visibility())`` before counting and
paging, so a document hidden from an actor over XDS is hidden over FHIR too, and ``total``
never counts it. Mapping: MHD "DocumentReference <-> XDS DocumentEntry" (ITI TF-3 4.5.1.1,
PDSm "Fiche" pages).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, and_, func, or_, select

from espace.errors import NotFound
from espace.models import DocumentContent, DocumentEntryRow, unflat
from espace.store import document_facts, visibility_clause
from fhir_server.routing import DOCUMENTS, READ
from fhir_server.search import bad, date_clause_for, instant, parse, searchset
from habilitation.model import Action

if TYPE_CHECKING:
    from fhir_server.repository import FhirRepository

_STATUS_TO_FHIR = {"Approved": "current", "Archived": "current", "Deprecated": "superseded",
                   "Deleted": "entered-in-error"}
_FHIR_TO_STATUS = {"current": ("Approved", "Archived"), "superseded": ("Deprecated",),
                   "entered-in-error": ("Deleted",)}
DOC_PARAMS = ("status", "type", "category", "creation", "date", "period", "security-label",
              "format", "identifier", "patient.identifier", "setting", "facility", "isArchived")
PDSM_ARCHIVED = "https://interop.esante.gouv.fr/ig/fhir/pdsm/StructureDefinition/PDSm_isArchived"


def fhir_id(entry_uuid: str) -> str:
    return entry_uuid.removeprefix("urn:uuid:")


def _codes(flat_value: str) -> list[tuple[str, str]]:
    pairs = []
    for item in sorted(unflat(flat_value)):
        code, _, scheme = item.partition("^")
        pairs.append((code, scheme))
    return pairs


def _coding(code: str, system: str) -> dict[str, Any]:
    coding: dict[str, Any] = {"code": code}
    if system:
        coding["system"] = system if ":" in system else f"urn:oid:{system}"
    return coding


def document_reference(row: DocumentEntryRow, patient_id: str) -> dict[str, Any]:
    """One DocumentEntry as an MHD DocumentReference."""
    attachment: dict[str, Any] = {"contentType": row.mime_type or "application/octet-stream",
                                  "url": f"Binary/{fhir_id(row.entry_uuid)}"}
    if row.language_code:
        attachment["language"] = row.language_code
    if row.size:
        attachment["size"] = int(row.size)
    if row.hash:
        attachment["hash"] = base64.b64encode(bytes.fromhex(row.hash)).decode()
    if row.title:
        attachment["title"] = row.title
    if row.creation_time:
        attachment["creation"] = instant(row.creation_time)
    resource: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "id": fhir_id(row.entry_uuid),
        "meta": {"versionId": str(row.version or 1), "lastUpdated": instant(row.updated_at)},
        "masterIdentifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:oid:{row.unique_id}"
                             if row.unique_id[:1].isdigit() else row.unique_id},
        "identifier": [{"use": "official", "system": "urn:ietf:rfc:3986",
                        "value": row.entry_uuid}],
        "status": _STATUS_TO_FHIR.get(row.status, "current"),
        "subject": {"reference": f"Patient/{patient_id}"},
        "date": instant(row.submission_time),
        "content": [{"attachment": attachment}],
    }
    if row.status == "Archived":
        resource["extension"] = [{"url": PDSM_ARCHIVED, "valueBoolean": True}]
    if row.type_code:
        resource["type"] = {"coding": [_coding(row.type_code, row.type_code_system)]}
    if row.class_code:
        resource["category"] = [{"coding": [_coding(*_split(row.class_code))]}]
    labels = [_coding(*_split(c)) for c in sorted(unflat(row.confidentiality_codes))]
    if labels:
        resource["securityLabel"] = [{"coding": [c]} for c in labels]
    if row.format_code:
        resource["content"][0]["format"] = _coding(*_split(row.format_code))
    authors = sorted(unflat(row.author_ids))
    if authors:
        resource["author"] = [{"identifier": {"value": a}} for a in authors]
    context: dict[str, Any] = {}
    if row.service_start_time or row.service_stop_time:
        context["period"] = {
            k: instant(v)
            for k, v in (("start", row.service_start_time), ("end", row.service_stop_time))
            if v
        }
    if row.healthcare_facility_type_code:
        context["facilityType"] = {"coding": [_coding(*_split(row.healthcare_facility_type_code))]}
    if row.practice_setting_code:
        context["practiceSetting"] = {"coding": [_coding(*_split(row.practice_setting_code))]}
    events = [_coding(c, s) for c, s in _codes(row.event_codes)]
    if events:
        context["event"] = [{"coding": [e]} for e in events]
    if context:
        resource["context"] = context
    return resource


def _split(value: str) -> tuple[str, str]:
    code, _, system = value.partition("^")
    return code, system


def _visible(repo: FhirRepository) -> ColumnElement[bool]:
    return and_(DocumentEntryRow.space_id == repo.space.id,
                visibility_clause(repo.op.visibility()))


def _entry(repo: FhirRepository, rid: str) -> DocumentEntryRow:
    row = repo.session.execute(
        select(DocumentEntryRow).where(
            DocumentEntryRow.entry_uuid.in_([rid, f"urn:uuid:{rid}"]), _visible(repo)
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"DocumentReference/{rid} is not known")
    repo.op.target.document_type = row.type_code
    return row


def read(repo: FhirRepository, rid: str) -> dict[str, Any]:
    repo.require(DOCUMENTS, READ)
    return document_reference(_entry(repo, rid), repo.space.id)


def binary(repo: FhirRepository, rid: str) -> dict[str, Any]:
    """ITI-68: the bytes, decrypted, as a Binary (the document is checked by the PDP first)."""
    row = _entry(repo, rid)
    if repo.op.action is not Action.SYSTEM_JOB:
        repo.op.authorize(Action.READ_DOCUMENT, document_facts(row))
    content = repo.session.execute(
        select(DocumentContent).where(
            DocumentContent.space_id == repo.space.id,
            DocumentContent.unique_id == row.unique_id,
        ).limit(1)
    ).scalar_one_or_none()
    if content is None:
        raise NotFound(f"Binary/{rid} has no content")
    data = repo.op.espace.cipher.decrypt(
        content.encrypted, space_id=repo.space.id, object_id=content.unique_id
    )
    return {"resourceType": "Binary", "id": rid, "contentType": content.mime_type,
            "data": base64.b64encode(data).decode()}


def _token(column: Any, values: Sequence[str], flat_column: bool = False) -> ColumnElement[bool]:
    ors = []
    for value in values:
        code = value.rsplit("|", 1)[-1]
        if flat_column:
            ors.append(column.like(f"%|{code}%"))
        else:
            ors.append(or_(column == code, column.like(f"{code}^%")))
    return or_(*ors)


def search(repo: FhirRepository, params: Sequence[tuple[str, str]], path: str) -> dict[str, Any]:
    """ITI-67 Find Document References, visibility pushed into SQL before paging."""
    repo.require(DOCUMENTS, READ)
    parsed = parse("DocumentReference", params, known=DOC_PARAMS, lenient=repo.lenient)
    doc = DocumentEntryRow
    where: list[ColumnElement[bool]] = [_visible(repo)]
    if not repo.patient_filter_ok(parsed):
        where.append(doc.space_id == "")
    for crit in parsed.criteria:
        values = crit.values
        if crit.param == "_id":
            where.append(doc.entry_uuid.in_([f"urn:uuid:{v}" for v in values] + list(values)))
        elif crit.param == "status":
            statuses = [s for v in values for s in _FHIR_TO_STATUS.get(v, ())]
            where.append(doc.status.in_(statuses))
        elif crit.param == "patient.identifier":
            if not any(v.rsplit("|", 1)[-1] == repo.space.ins for v in values):
                where.append(doc.space_id == "")
        elif crit.param == "type":
            where.append(_token(doc.type_code, values))
        elif crit.param == "category":
            where.append(_token(doc.class_code, values))
        elif crit.param == "format":
            where.append(_token(doc.format_code, values))
        elif crit.param == "setting":
            where.append(_token(doc.practice_setting_code, values))
        elif crit.param == "facility":
            where.append(_token(doc.healthcare_facility_type_code, values))
        elif crit.param == "security-label":
            where.append(_token(doc.confidentiality_codes, values, flat_column=True))
        elif crit.param == "identifier":
            bare = [v.rsplit("|", 1)[-1] for v in values]
            where.append(or_(doc.entry_uuid.in_(bare),
                             doc.unique_id.in_([b.removeprefix("urn:oid:") for b in bare])))
        elif crit.param == "_lastUpdated":
            where.append(date_clause_for(doc.updated_at, values))
        elif crit.param == "creation":
            where.append(date_clause_for(doc.creation_time, values))
        elif crit.param == "date":
            where.append(date_clause_for(doc.submission_time, values))
        elif crit.param == "period":
            where.append(date_clause_for(doc.service_start_time, values))
        elif crit.param == "isArchived":
            archived = [v.rsplit("|", 1)[-1] == "true" for v in values]
            where.append(doc.status == "Archived" if all(archived) else doc.status != "Archived")
        else:  # pragma: no cover - parse() rejects undeclared parameters
            raise bad(f"unsupported parameter {crit.param}")
    total = int(repo.session.execute(select(func.count()).select_from(doc).where(*where))
                .scalar_one())
    rows = repo.session.execute(
        select(doc).where(*where).order_by(doc.submission_time.desc(), doc.entry_uuid)
        .offset(parsed.offset).limit(0 if parsed.summary_count else parsed.count)
    ).scalars()
    return searchset(base=repo.base, path=path, raw=parsed.used, total=total,
                     offset=parsed.offset, count=parsed.count,
                     matches=[document_reference(r, repo.space.id) for r in rows],
                     now=repo.op.now)
