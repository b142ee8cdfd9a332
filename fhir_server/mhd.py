"""ITI-65 Provide Document Bundle (IHE MHD 4, ANS PDSm 3.1.1 "Flux 01/02 ajout"): a
transaction Bundle of one List (SubmissionSet), DocumentReferences and their Binaries, mapped
to the registry's plain dataclasses and stored by ``espace.registry.submit_document_set`` in
the request's one operation: the same use case, checks and store as XDS ITI-41.

Mapping (MHD "DocumentReference <-> DocumentEntry", ITI TF-3 4.5.1.1; "List <-> SubmissionSet",
4.5.1.2): coded values keep their code, the FHIR system becomes the XDS codingScheme OID
(``urn:oid:`` stripped; LOINC, SNOMED CT, HL7 v3 Confidentiality, IHE formatcode and the ANS
``https://mos.esante.gouv.fr/NOS/<TRE>/FHIR/...`` systems through the OIDs of the DMP value
sets).
"""

from __future__ import annotations

import base64
import csv
import io
import uuid
from functools import lru_cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from espace.clock import as_utc
from espace.fhir_store import date_range
from espace.registry import (
    Association,
    Author,
    Code,
    DocumentEntry,
    RegistryConfig,
    RegistryError,
    SubmissionRequest,
    SubmissionSet,
    format_dtm,
    submit_document_set,
)
from espace.registry.model import HAS_MEMBER, RPLC
from espace.spaces import INS_OID_NIR
from fhir_server.errors import FhirError
from fhir_server.routing import DOCUMENTS, WRITE
from habilitation.model import ActorKind
from xds.cda import CdaInspector

if TYPE_CHECKING:
    from fhir_server.repository import FhirRepository

KNOWN_SYSTEMS = {
    "http://loinc.org": "2.16.840.1.113883.6.1",
    "http://snomed.info/sct": "2.16.840.1.113883.6.96",
    "http://terminology.hl7.org/CodeSystem/v3-Confidentiality": "2.16.840.1.113883.5.25",
    "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode": "1.3.6.1.4.1.19376.1.2.3",
}
PS_IDNAT = "1.2.250.1.71.4.2.1"
MHD_TYPES = frozenset({"List", "DocumentReference", "Binary"})
# the CDA reader of the XDS face (one hardened XML parser for both): a CDA R2 document's
# recordTarget must name the patient of the submission (ANS CI-SIS, as for ITI-41 and mail)
CDA_INSPECTOR = CdaInspector()


@lru_cache(maxsize=1)
def _tre_oids() -> dict[str, str]:
    """codeSystemName (TRE_...) -> OID, from the DMP value-set files of the registry."""
    found: dict[str, str] = {}
    folder = files("espace.registry").joinpath("data")
    for item in folder.iterdir():
        if not item.name.endswith(".csv") or not item.name.startswith("JDV"):
            continue
        for row in csv.DictReader(io.StringIO(item.read_text(encoding="utf-8"))):
            if row.get("codeSystemName") and row.get("codeSystemOID"):
                found[row["codeSystemName"]] = row["codeSystemOID"]
    return found


def scheme_of(system: str) -> str:
    if system.startswith("urn:oid:"):
        return system[8:]
    if system in KNOWN_SYSTEMS:
        return KNOWN_SYSTEMS[system]
    if "/NOS/" in system:
        name = system.split("/NOS/", 1)[1].split("/", 1)[0]
        return _tre_oids().get(name, system)
    return system


def _code(concept: Any) -> Code | None:
    codings = (concept or {}).get("coding") if isinstance(concept, dict) else None
    if not codings:
        return None
    coding = codings[0]
    return Code(str(coding.get("code", "")), scheme_of(str(coding.get("system", ""))),
                str(coding.get("display", "")))


def _coding(coding: Any) -> Code | None:
    if not isinstance(coding, dict) or not coding.get("code"):
        return None
    return Code(str(coding["code"]), scheme_of(str(coding.get("system", ""))),
                str(coding.get("display", "")))


def _dtm(value: Any) -> str:
    return format_dtm(as_utc(date_range(str(value))[0])) if value else ""


def is_provide_bundle(entries: list[dict[str, Any]]) -> bool:
    """An ITI-65 Bundle: it POSTs a List, DocumentReferences or Binaries."""
    for raw in entries:
        request = raw.get("request") if isinstance(raw, dict) else None
        url = str((request or {}).get("url", "")).split("?")[0].strip("/")
        if url in MHD_TYPES:
            return True
    return False


def _contained(resource: dict[str, Any], ref: str) -> dict[str, Any] | None:
    for item in resource.get("contained") or []:
        if f"#{item.get('id')}" == ref:
            return dict(item)
    return None


def _authors(resource: dict[str, Any], refs: list[Any], default: Author) -> list[Author]:
    authors = []
    for ref in refs:
        target = _contained(resource, str((ref or {}).get("reference", ""))) or ref or {}
        for identifier in target.get("identifier") or [target.get("identifier") or {}]:
            value = (identifier or {}).get("value")
            if value:
                oid = scheme_of(str(identifier.get("system", ""))) or PS_IDNAT
                authors.append(Author(person=f"{value}^^^^^^^^&{oid}&ISO"))
    return authors or [default]


def provide(repo: FhirRepository, bundle: dict[str, Any]) -> dict[str, Any]:
    """Run ITI-65 in the operation; answer the transaction-response (ITI TF-2 3.65.4.2)."""
    repo.require(DOCUMENTS, WRITE)
    space = repo.space
    patient_cx = f"{space.ins}^^^&{space.ins_oid or INS_OID_NIR}&ISO"
    caller = repo.actor
    default_author = Author(person=f"{space.ins}^^^^^^^^&{space.ins_oid or INS_OID_NIR}&ISO")
    entries = [e for e in bundle.get("entry") or [] if isinstance(e, dict)]
    lists = [e for e in entries if (e.get("resource") or {}).get("resourceType") == "List"]
    docs = [e for e in entries
            if (e.get("resource") or {}).get("resourceType") == "DocumentReference"]
    binaries = {str(e.get("fullUrl")): e.get("resource") or {} for e in entries
                if (e.get("resource") or {}).get("resourceType") == "Binary"}
    if len(lists) != 1 or not docs or len(lists) + len(docs) + len(binaries) != len(entries):
        raise FhirError(422, "invalid", "an ITI-65 Bundle holds one List (SubmissionSet), "
                        "DocumentReferences and their Binaries", code="mhd_bundle_shape")
    listing = lists[0]["resource"]
    ext = {x.get("url", "").rsplit("/", 1)[-1]: x for x in listing.get("extension") or []}
    ss_id = str(lists[0].get("fullUrl") or f"urn:uuid:{uuid.uuid4()}")
    ss_unique = next((str(i.get("value")) for i in listing.get("identifier") or []
                      if i.get("use") == "usual" and i.get("value")), "")
    source_id = str((ext.get("ihe-sourceId") or {}).get("valueIdentifier", {}).get("value", ""))
    submission = SubmissionSet(
        id=ss_id,
        unique_id=(ss_unique or f"2.25.{uuid.uuid4().int}").removeprefix("urn:oid:"),
        source_id=source_id.removeprefix("urn:oid:") or "1.2.250.1.213.1.4.8",
        patient_id=patient_cx,
        submission_time=_dtm(listing.get("date")) or format_dtm(repo.op.now),
        content_type_code=_code((ext.get("ihe-designationType") or {})
                                .get("valueCodeableConcept")),
        authors=_authors(listing, [listing.get("source")] if listing.get("source") else [],
                         default_author),
        title=str(listing.get("title", "")),
    )
    request = SubmissionRequest(submission_set=submission)
    for raw in docs:
        request.documents.append(_document(raw, patient_cx, binaries, request, default_author))
        request.associations.append(Association(
            id=f"urn:uuid:{uuid.uuid4()}", type=HAS_MEMBER, source=ss_id,
            target=request.documents[-1].id, slots={"SubmissionSetStatus": ["Original"]}))
        for relation in raw["resource"].get("relatesTo") or []:
            target = str((relation.get("target") or {}).get("reference", ""))
            if relation.get("code") == "replaces" and target.startswith("DocumentReference/"):
                request.associations.append(Association(
                    id=f"urn:uuid:{uuid.uuid4()}", type=RPLC, source=request.documents[-1].id,
                    target=f"urn:uuid:{target.split('/', 1)[1]}"))
    try:
        result = submit_document_set(
            repo.op, request, config=RegistryConfig.from_settings(repo.op.espace.settings),
            provide=True, origin="fhir", inspector=CDA_INSPECTOR,
        )
    except RegistryError as exc:
        raise FhirError(422, "business-rule", exc.message, code=str(exc.error_code)) from exc
    repo.op.detail["submission_set"] = submission.unique_id
    ss_uuid = result.submission_set_uuid.removeprefix("urn:uuid:")
    response = [{"response": {"status": "201 Created", "location": f"List/{ss_uuid}"}}]
    for doc in request.documents:
        entry_uuid = result.document_uuids.get(doc.id, doc.id).removeprefix("urn:uuid:")
        response.append({"response": {"status": "201 Created",
                                       "location": f"DocumentReference/{entry_uuid}"}})
        response.append({"response": {"status": "201 Created",
                                       "location": f"Binary/{entry_uuid}"}})
    if caller.kind is ActorKind.APP:
        repo.op.detail["app"] = caller.app_id or caller.id
    return {"resourceType": "Bundle", "type": "transaction-response", "entry": response}


def _document(raw: dict[str, Any], patient_cx: str, binaries: dict[str, dict[str, Any]],
              request: SubmissionRequest, default_author: Author) -> DocumentEntry:
    resource = raw["resource"]
    content = (resource.get("content") or [{}])[0]
    attachment = content.get("attachment") or {}
    binary = binaries.get(str(attachment.get("url", "")))
    doc_id = str(raw.get("fullUrl") or f"urn:uuid:{uuid.uuid4()}")
    if binary is None or not binary.get("data"):
        raise FhirError(422, "invalid", f"{doc_id}: attachment.url names no Binary of the Bundle",
                        code="mhd_missing_binary")
    try:
        data = base64.b64decode(str(binary["data"]), validate=True)
    except ValueError as exc:
        raise FhirError(422, "invalid", "Binary.data is not base64", code="mhd_bad_binary") \
            from exc
    request.contents[doc_id] = data
    context = resource.get("context") or {}
    period = context.get("period") or {}
    master = str((resource.get("masterIdentifier") or {}).get("value", ""))
    hash_b64 = attachment.get("hash")
    return DocumentEntry(
        id=doc_id,
        unique_id=master.removeprefix("urn:oid:"),
        patient_id=patient_cx,
        mime_type=str(attachment.get("contentType") or binary.get("contentType") or ""),
        class_code=_code((resource.get("category") or [None])[0]),
        type_code=_code(resource.get("type")),
        format_code=_coding(content.get("format")),
        practice_setting_code=_code(context.get("practiceSetting")),
        healthcare_facility_type_code=_code(context.get("facilityType")),
        confidentiality_codes=[c for c in (_code(s) for s in resource.get("securityLabel") or [])
                               if c is not None],
        event_codes=[c for c in (_code(e) for e in context.get("event") or []) if c is not None],
        authors=_authors(resource, resource.get("author") or [], default_author),
        creation_time=_dtm(attachment.get("creation")),
        service_start_time=_dtm(period.get("start")),
        service_stop_time=_dtm(period.get("end")),
        title=str(attachment.get("title", "")),
        comments=str(resource.get("description", "")),
        language_code=str(attachment.get("language", "")),
        source_patient_id=patient_cx,
        hash=base64.b64decode(hash_b64).hex() if hash_b64 else "",
        size=int(attachment["size"]) if attachment.get("size") is not None else None,
    )
