"""Registry dataclasses -> ebRIM 3.0 / ebRS responses (ITI TF-3 4.2.3, 4.2.4).

Element order follows rim.xsd (Slot*, Name, Description, VersionInfo, Classification*,
ExternalIdentifier*), so every response validates against the NIST ebRS 3.0 schemas.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from lxml import etree

from espace.registry.model import (
    STATUS_URNS,
    Association,
    Author,
    Code,
    DocumentEntry,
    Folder,
    QueryResult,
    RegistryIssue,
    SubmissionSet,
)
from xds import ns
from xds.ebxml import schemes as S

NSMAP = {"rim": ns.RIM, "rs": ns.RS, "query": ns.QUERY, "lcm": ns.LCM, "xds": ns.XDS}


def _q(local: str, namespace: str = ns.RIM) -> str:
    return f"{{{namespace}}}{local}"


def _id() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def _slot(parent: etree._Element, name: str, values: Iterable[str]) -> None:
    values = [v for v in values if v is not None]
    if not values:
        return
    slot = etree.SubElement(parent, _q("Slot"), name=name)
    value_list = etree.SubElement(slot, _q("ValueList"))
    for value in values:
        etree.SubElement(value_list, _q("Value")).text = str(value)


def _localized(parent: etree._Element, tag: str, value: str) -> None:
    if value:
        holder = etree.SubElement(parent, _q(tag))
        etree.SubElement(holder, _q("LocalizedString"), value=value)


def _classification(
    parent: etree._Element,
    scheme: str,
    owner: str,
    code: Code | None = None,
    slots: dict[str, list[str]] | None = None,
) -> None:
    attrs = {
        "classificationScheme": scheme,
        "classifiedObject": owner,
        "id": _id(),
        "objectType": S.CLASSIFICATION_OBJECT_TYPE,
        "nodeRepresentation": code.code if code is not None else "",
    }
    c = etree.SubElement(parent, _q("Classification"), attrs)
    if code is not None:
        _slot(c, "codingScheme", [code.scheme])
        _localized(c, "Name", code.display or code.code)
    for name, values in (slots or {}).items():
        _slot(c, name, values)


def _author(parent: etree._Element, scheme: str, owner: str, author: Author) -> None:
    _classification(
        parent,
        scheme,
        owner,
        slots={
            "authorPerson": [author.person] if author.person else [],
            "authorInstitution": author.institutions,
            "authorRole": author.roles,
            "authorSpecialty": author.specialties,
            "authorTelecommunication": author.telecoms,
        },
    )


def _external_id(parent: etree._Element, scheme: str, owner: str, value: str, name: str) -> None:
    ei = etree.SubElement(
        parent,
        _q("ExternalIdentifier"),
        {
            "id": _id(),
            "registryObject": owner,
            "identificationScheme": scheme,
            "value": value,
            "objectType": S.EXTERNAL_IDENTIFIER_OBJECT_TYPE,
        },
    )
    _localized(ei, "Name", name)


def _home(attrs: dict[str, str], home: str) -> dict[str, str]:
    if home:
        attrs["home"] = home
    return attrs


def document_entry(entry: DocumentEntry, home: str = "") -> etree._Element:
    owner = entry.id
    el = etree.Element(
        _q("ExtrinsicObject"),
        _home(
            {
                "id": owner,
                "lid": entry.logical_id or owner,
                "objectType": entry.object_type,
                "status": STATUS_URNS.get(entry.status, entry.status),
                "mimeType": entry.mime_type or "application/octet-stream",
            },
            home,
        ),
        nsmap={"rim": ns.RIM},
    )
    _slot(el, "creationTime", [entry.creation_time] if entry.creation_time else [])
    _slot(el, "hash", [entry.hash] if entry.hash else [])
    _slot(el, "languageCode", [entry.language_code] if entry.language_code else [])
    _slot(
        el, "legalAuthenticator", [entry.legal_authenticator] if entry.legal_authenticator else []
    )
    _slot(el, "urn:ihe:iti:xds:2013:referenceIdList", entry.reference_ids)
    _slot(
        el, "repositoryUniqueId", [entry.repository_unique_id] if entry.repository_unique_id else []
    )
    _slot(el, "serviceStartTime", [entry.service_start_time] if entry.service_start_time else [])
    _slot(el, "serviceStopTime", [entry.service_stop_time] if entry.service_stop_time else [])
    _slot(el, "size", [str(entry.size)] if entry.size is not None else [])
    _slot(el, "sourcePatientId", [entry.source_patient_id] if entry.source_patient_id else [])
    _slot(el, "sourcePatientInfo", entry.source_patient_info)
    for name, values in sorted(entry.extra_slots.items()):
        _slot(el, name, values)
    _localized(el, "Name", entry.title)
    _localized(el, "Description", entry.comments)
    etree.SubElement(el, _q("VersionInfo"), versionName=entry.version or "1")
    for author in entry.authors:
        _author(el, S.DE_AUTHOR, owner, author)
    for scheme, code in (
        (S.DE_CLASS_CODE, entry.class_code),
        (S.DE_FORMAT_CODE, entry.format_code),
        (S.DE_FACILITY, entry.healthcare_facility_type_code),
        (S.DE_PRACTICE, entry.practice_setting_code),
        (S.DE_TYPE_CODE, entry.type_code),
    ):
        if code is not None:
            _classification(el, scheme, owner, code)
    for code in entry.confidentiality_codes:
        _classification(el, S.DE_CONFIDENTIALITY, owner, code)
    for code in entry.event_codes:
        _classification(el, S.DE_EVENT_CODE, owner, code)
    _external_id(el, S.DE_PATIENT_ID, owner, entry.patient_id, "XDSDocumentEntry.patientId")
    _external_id(el, S.DE_UNIQUE_ID, owner, entry.unique_id, "XDSDocumentEntry.uniqueId")
    return el


def submission_set(ss: SubmissionSet, home: str = "") -> etree._Element:
    owner = ss.id
    el = etree.Element(
        _q("RegistryPackage"),
        _home(
            {
                "id": owner,
                "lid": owner,
                "objectType": S.REGISTRY_PACKAGE_OBJECT_TYPE,
                "status": STATUS_URNS.get(ss.status, ss.status),
            },
            home,
        ),
        nsmap={"rim": ns.RIM},
    )
    _slot(el, "submissionTime", [ss.submission_time] if ss.submission_time else [])
    _slot(el, "intendedRecipient", ss.intended_recipients)
    _localized(el, "Name", ss.title)
    _localized(el, "Description", ss.comments)
    etree.SubElement(el, _q("VersionInfo"), versionName="1")
    for author in ss.authors:
        _author(el, S.SS_AUTHOR, owner, author)
    if ss.content_type_code is not None:
        _classification(el, S.SS_CONTENT_TYPE, owner, ss.content_type_code)
    etree.SubElement(
        el,
        _q("Classification"),
        {
            "id": _id(),
            "classifiedObject": owner,
            "classificationNode": S.SS_NODE,
            "objectType": S.CLASSIFICATION_OBJECT_TYPE,
        },
    )
    _external_id(el, S.SS_PATIENT_ID, owner, ss.patient_id, "XDSSubmissionSet.patientId")
    _external_id(el, S.SS_SOURCE_ID, owner, ss.source_id, "XDSSubmissionSet.sourceId")
    _external_id(el, S.SS_UNIQUE_ID, owner, ss.unique_id, "XDSSubmissionSet.uniqueId")
    return el


def folder(f: Folder, home: str = "") -> etree._Element:
    owner = f.id
    el = etree.Element(
        _q("RegistryPackage"),
        _home(
            {
                "id": owner,
                "lid": f.logical_id or owner,
                "objectType": S.REGISTRY_PACKAGE_OBJECT_TYPE,
                "status": STATUS_URNS.get(f.status, f.status),
            },
            home,
        ),
        nsmap={"rim": ns.RIM},
    )
    _slot(el, "lastUpdateTime", [f.last_update_time] if f.last_update_time else [])
    _localized(el, "Name", f.title)
    _localized(el, "Description", f.comments)
    etree.SubElement(el, _q("VersionInfo"), versionName=f.version or "1")
    for code in f.codes:
        _classification(el, S.FOLDER_CODE_LIST, owner, code)
    etree.SubElement(
        el,
        _q("Classification"),
        {
            "id": _id(),
            "classifiedObject": owner,
            "classificationNode": S.FOLDER_NODE,
            "objectType": S.CLASSIFICATION_OBJECT_TYPE,
        },
    )
    _external_id(el, S.FOLDER_PATIENT_ID, owner, f.patient_id, "XDSFolder.patientId")
    _external_id(el, S.FOLDER_UNIQUE_ID, owner, f.unique_id, "XDSFolder.uniqueId")
    return el


def association(a: Association, home: str = "") -> etree._Element:
    el = etree.Element(
        _q("Association"),
        _home(
            {
                "id": a.id,
                "objectType": S.ASSOCIATION_OBJECT_TYPE,
                "associationType": a.type,
                "sourceObject": a.source,
                "targetObject": a.target,
                "status": STATUS_URNS.get(a.status, a.status),
            },
            home,
        ),
        nsmap={"rim": ns.RIM},
    )
    for name, values in a.slots.items():
        _slot(el, name, values)
    return el


def _error_list(parent: etree._Element, issues: Iterable[RegistryIssue]) -> None:
    issues = list(issues)
    if not issues:
        return
    errors = [i for i in issues if not i.warning]
    highest = S.SEVERITY_ERROR if errors else S.SEVERITY_WARNING
    error_list = etree.SubElement(parent, _q("RegistryErrorList", ns.RS), highestSeverity=highest)
    for issue in issues:
        attrs = {
            "errorCode": str(issue.code),
            "codeContext": issue.message,
            "severity": S.SEVERITY_WARNING if issue.warning else S.SEVERITY_ERROR,
        }
        if issue.location:
            attrs["location"] = issue.location
        etree.SubElement(error_list, _q("RegistryError", ns.RS), attrs)


def status_of(issues: Iterable[RegistryIssue], *, partial: bool = False) -> str:
    if any(not i.warning for i in issues):
        return S.RESPONSE_PARTIAL if partial else S.RESPONSE_FAILURE
    return S.RESPONSE_SUCCESS


def registry_response(
    issues: Iterable[RegistryIssue] = (), *, status: str | None = None
) -> etree._Element:
    """``rs:RegistryResponse`` (ITI TF-3 4.2.4.1)."""
    issues = list(issues)
    el = etree.Element(
        _q("RegistryResponse", ns.RS), status=status or status_of(issues), nsmap={"rs": ns.RS}
    )
    _error_list(el, issues)
    return el


def adhoc_query_response(
    result: QueryResult | None, issues: Iterable[RegistryIssue] = (), home: str = ""
) -> etree._Element:
    """``query:AdhocQueryResponse`` with LeafClass objects or ObjectRefs (ITI TF-2a 3.18.4.1.3)."""
    issues = list(issues)
    el = etree.Element(
        _q("AdhocQueryResponse", ns.QUERY),
        status=status_of(issues),
        nsmap={"query": ns.QUERY, "rim": ns.RIM, "rs": ns.RS},
    )
    _error_list(el, issues)
    objects = etree.SubElement(el, _q("RegistryObjectList"))
    if result is None:
        return el
    if result.return_type == "ObjectRef":
        for ref in result.object_refs:
            etree.SubElement(objects, _q("ObjectRef"), _home({"id": ref}, home))
        return el
    for ss in result.submission_sets:
        objects.append(submission_set(ss, home))
    for f in result.folders:
        objects.append(folder(f, home))
    for entry in result.documents:
        objects.append(document_entry(entry, home))
    for a in result.associations:
        objects.append(association(a, home))
    return el
