"""ebRIM 3.0 -> registry dataclasses (IHE ITI TF-3 4.2.3 "Metadata Attributes").

Only this package knows slots, classifications and external identifiers; what leaves it is
``espace.registry.model``. Malformed metadata raises ``RegistryError`` with
XDSRegistryMetadataError; ebRS query values are unquoted here (ITI TF-2a 3.18.4.1.2.3.3).
"""

from __future__ import annotations

from lxml import etree

from espace.registry.model import (
    STATUS_BY_URN,
    Association,
    Author,
    Code,
    DocumentEntry,
    DocumentRequest,
    Folder,
    RegistryError,
    RegistryErrorCode,
    StoredQueryRequest,
    SubmissionRequest,
    SubmissionSet,
)
from xds import ns
from xds.ebxml import schemes as S

RIM = ns.RIM
E = RegistryErrorCode
S_STABLE = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"


# ITI TF-3 4.2.3.2.28: the DocumentEntry.referenceIdList slot name.
REFERENCE_ID_LIST = "urn:ihe:iti:xds:2013:referenceIdList"


def _q(local: str, namespace: str = RIM) -> str:
    return f"{{{namespace}}}{local}"


def _metadata_error(message: str, location: str = "") -> RegistryError:
    return RegistryError(E.REGISTRY_METADATA_ERROR, message, location=location)


def slots(element: etree._Element) -> dict[str, list[str]]:
    """The element's own ``rim:Slot`` children as name -> values."""
    found: dict[str, list[str]] = {}
    for slot in element.findall(_q("Slot")):
        name = slot.get("name") or ""
        values = [(v.text or "").strip() for v in slot.iterfind(f"{_q('ValueList')}/{_q('Value')}")]
        found.setdefault(name, []).extend(values)
    return found


def localized(element: etree._Element, tag: str) -> str:
    node = element.find(f"{_q(tag)}/{_q('LocalizedString')}")
    return (node.get("value") or "") if node is not None else ""


def _code(classification: etree._Element, where: str) -> Code:
    code = classification.get("nodeRepresentation")
    scheme = slots(classification).get("codingScheme", [])
    if code is None or code == "":
        raise _metadata_error(f"{where}: classification without nodeRepresentation", where)
    if len(scheme) != 1 or not scheme[0]:
        raise _metadata_error(f"{where}: classification {code} needs one codingScheme", where)
    return Code(code, scheme[0], localized(classification, "Name"))


def _author(classification: etree._Element) -> Author:
    s = slots(classification)
    person = s.get("authorPerson", [""])
    return Author(
        person=person[0] if person else "",
        institutions=s.get("authorInstitution", []),
        roles=s.get("authorRole", []),
        specialties=s.get("authorSpecialty", []),
        telecoms=s.get("authorTelecommunication", []),
    )


def _classifications(
    element: etree._Element, extra: dict[str, list[etree._Element]]
) -> list[etree._Element]:
    return [*element.findall(_q("Classification")), *extra.get(element.get("id") or "", [])]


def _identifiers(element: etree._Element) -> dict[str, str]:
    return {
        (ei.get("identificationScheme") or ""): (ei.get("value") or "").strip()
        for ei in element.findall(_q("ExternalIdentifier"))
    }


def _status(element: etree._Element) -> str:
    status = element.get("status")
    return STATUS_BY_URN.get(status, "Approved") if status else "Approved"


def parse_document_entry(
    element: etree._Element, extra: dict[str, list[etree._Element]] | None = None
) -> DocumentEntry:
    extra = extra or {}
    entry_id = element.get("id") or ""
    if not entry_id:
        raise _metadata_error("ExtrinsicObject without id")
    where = f"DocumentEntry {entry_id}"
    s = slots(element)
    entry = DocumentEntry(
        id=entry_id,
        mime_type=element.get("mimeType") or "",
        object_type=element.get("objectType") or S_STABLE,
        logical_id=element.get("lid") or "",
        status=_status(element),
        title=localized(element, "Name"),
        comments=localized(element, "Description"),
    )
    version = element.find(_q("VersionInfo"))
    if version is not None:
        entry.version = version.get("versionName") or ""
    known = {
        "creationTime",
        "serviceStartTime",
        "serviceStopTime",
        "languageCode",
        "legalAuthenticator",
        "sourcePatientId",
        "sourcePatientInfo",
        "hash",
        "size",
        "repositoryUniqueId",
        "referenceIdList",
        REFERENCE_ID_LIST,
        "URI",
    }
    for name, values in s.items():
        single = values[0] if values else ""
        if name in (
            "creationTime",
            "serviceStartTime",
            "serviceStopTime",
            "languageCode",
            "legalAuthenticator",
            "sourcePatientId",
            "hash",
            "repositoryUniqueId",
        ):
            if len(values) > 1:
                raise _metadata_error(f"{where}: slot {name} takes one value", where)
            attribute = {
                "creationTime": "creation_time",
                "serviceStartTime": "service_start_time",
                "serviceStopTime": "service_stop_time",
                "languageCode": "language_code",
                "legalAuthenticator": "legal_authenticator",
                "sourcePatientId": "source_patient_id",
                "hash": "hash",
                "repositoryUniqueId": "repository_unique_id",
            }[name]
            setattr(entry, attribute, single)
        elif name == "size":
            if not single.isdigit():
                raise _metadata_error(f"{where}: size must be an integer", where)
            entry.size = int(single)
        elif name == "sourcePatientInfo":
            entry.source_patient_info = values
        elif name in (REFERENCE_ID_LIST, "referenceIdList"):
            entry.reference_ids = [*entry.reference_ids, *values]
        elif name not in known:
            entry.extra_slots[name] = values
    for c in _classifications(element, extra):
        scheme = c.get("classificationScheme") or ""
        if scheme == S.DE_AUTHOR:
            entry.authors.append(_author(c))
        elif scheme == S.DE_CLASS_CODE:
            entry.class_code = _single(entry.class_code, _code(c, where), "classCode", where)
        elif scheme == S.DE_TYPE_CODE:
            entry.type_code = _single(entry.type_code, _code(c, where), "typeCode", where)
        elif scheme == S.DE_FORMAT_CODE:
            entry.format_code = _single(entry.format_code, _code(c, where), "formatCode", where)
        elif scheme == S.DE_FACILITY:
            entry.healthcare_facility_type_code = _single(
                entry.healthcare_facility_type_code,
                _code(c, where),
                "healthcareFacilityTypeCode",
                where,
            )
        elif scheme == S.DE_PRACTICE:
            entry.practice_setting_code = _single(
                entry.practice_setting_code, _code(c, where), "practiceSettingCode", where
            )
        elif scheme == S.DE_CONFIDENTIALITY:
            entry.confidentiality_codes.append(_code(c, where))
        elif scheme == S.DE_EVENT_CODE:
            entry.event_codes.append(_code(c, where))
    ids = _identifiers(element)
    entry.patient_id = ids.get(S.DE_PATIENT_ID, "")
    entry.unique_id = ids.get(S.DE_UNIQUE_ID, "")
    return entry


def _single(current: Code | None, new: Code, name: str, where: str) -> Code:
    if current is not None:
        raise _metadata_error(f"{where}: {name} given twice", where)
    return new


def _package_kind(element: etree._Element, extra: dict[str, list[etree._Element]]) -> str:
    nodes = {c.get("classificationNode") for c in _classifications(element, extra)}
    if S.SS_NODE in nodes:
        return "submission_set"
    if S.FOLDER_NODE in nodes:
        return "folder"
    return ""


def parse_submission_set(
    element: etree._Element, extra: dict[str, list[etree._Element]]
) -> SubmissionSet:
    ss_id = element.get("id") or ""
    s = slots(element)
    ss = SubmissionSet(
        id=ss_id,
        submission_time=(s.get("submissionTime") or [""])[0],
        intended_recipients=s.get("intendedRecipient", []),
        title=localized(element, "Name"),
        comments=localized(element, "Description"),
        status=_status(element),
    )
    for name, values in s.items():
        if name not in ("submissionTime", "intendedRecipient"):
            ss.extra_slots[name] = values
    for c in _classifications(element, extra):
        scheme = c.get("classificationScheme") or ""
        if scheme == S.SS_AUTHOR:
            ss.authors.append(_author(c))
        elif scheme == S.SS_CONTENT_TYPE:
            ss.content_type_code = _code(c, f"SubmissionSet {ss_id}")
    ids = _identifiers(element)
    ss.patient_id = ids.get(S.SS_PATIENT_ID, "")
    ss.source_id = ids.get(S.SS_SOURCE_ID, "")
    ss.unique_id = ids.get(S.SS_UNIQUE_ID, "")
    return ss


def parse_folder(element: etree._Element, extra: dict[str, list[etree._Element]]) -> Folder:
    folder_id = element.get("id") or ""
    s = slots(element)
    folder = Folder(
        id=folder_id,
        title=localized(element, "Name"),
        comments=localized(element, "Description"),
        logical_id=element.get("lid") or "",
        last_update_time=(s.get("lastUpdateTime") or [""])[0],
        status=_status(element),
    )
    for c in _classifications(element, extra):
        if c.get("classificationScheme") == S.FOLDER_CODE_LIST:
            folder.codes.append(_code(c, f"Folder {folder_id}"))
    ids = _identifiers(element)
    folder.patient_id = ids.get(S.FOLDER_PATIENT_ID, "")
    folder.unique_id = ids.get(S.FOLDER_UNIQUE_ID, "")
    return folder


def parse_association(element: etree._Element) -> Association:
    assoc_id = element.get("id") or ""
    kind = element.get("associationType") or ""
    source, target = element.get("sourceObject") or "", element.get("targetObject") or ""
    if not (assoc_id and kind and source and target):
        raise _metadata_error(
            "Association needs id, associationType, sourceObject, targetObject", assoc_id
        )
    documentation = None
    for c in element.findall(_q("Classification")):
        if c.get("classificationScheme") == S.ASSOCIATION_DOCUMENTATION:
            documentation = _code(c, f"Association {assoc_id}")
    return Association(assoc_id, kind, source, target, slots(element), documentation=documentation)


def parse_submit_objects(request: etree._Element) -> SubmissionRequest:
    """``lcm:SubmitObjectsRequest`` -> SubmissionRequest (ITI-42/57; ITI-41 adds contents)."""
    object_list = request.find(_q("RegistryObjectList"))
    if object_list is None:
        raise _metadata_error("SubmitObjectsRequest without RegistryObjectList")
    extra: dict[str, list[etree._Element]] = {}
    for c in object_list.findall(_q("Classification")):
        extra.setdefault(c.get("classifiedObject") or "", []).append(c)
    sets: list[SubmissionSet] = []
    result = SubmissionRequest(submission_set=SubmissionSet(id=""))
    for child in object_list:
        if not isinstance(child.tag, str):
            continue
        tag = etree.QName(child).localname
        if etree.QName(child).namespace != RIM:
            raise _metadata_error(f"unexpected element {child.tag}")
        if tag == "ExtrinsicObject":
            result.documents.append(parse_document_entry(child, extra))
        elif tag == "RegistryPackage":
            kind = _package_kind(child, extra)
            if kind == "submission_set":
                sets.append(parse_submission_set(child, extra))
            elif kind == "folder":
                result.folders.append(parse_folder(child, extra))
            else:
                raise _metadata_error(
                    f"RegistryPackage {child.get('id')} is neither a submission set nor a folder",
                    child.get("id") or "",
                )
        elif tag == "Association":
            result.associations.append(parse_association(child))
        elif tag in ("Classification", "ObjectRef"):
            continue
        else:
            raise _metadata_error(f"unexpected {tag} in RegistryObjectList")
    if len(sets) != 1:
        raise _metadata_error(f"a submission holds exactly one SubmissionSet, found {len(sets)}")
    result.submission_set = sets[0]
    ids = [
        result.submission_set.id,
        *(d.id for d in result.documents),
        *(f.id for f in result.folders),
        *(a.id for a in result.associations),
    ]
    if any(not i for i in ids):
        raise _metadata_error("every registry object needs an id")
    if len(set(ids)) != len(ids):
        raise _metadata_error("an id is used twice in the submission")
    return result


# ----------------------------------------------------------------------------- ITI-18
def parse_query_value(text: str) -> list[str]:
    """Parse ebRS stored-query value syntax (ITI TF-2a 3.18.4.1.2.3.3): quoted, lists."""
    text = text.strip()
    if text.startswith("(") and text.endswith(")"):
        text = text[1:-1]
        items = _split_list(text)
    else:
        items = [text]
    values = []
    for item in items:
        item = item.strip()
        if len(item) >= 2 and item[0] == "'" and item[-1] == "'":
            item = item[1:-1].replace("''", "'")
        elif "'" in item:
            raise RegistryError(E.REGISTRY_ERROR, f"badly quoted query value {item!r}")
        if item:
            values.append(item)
    return values


def _split_list(text: str) -> list[str]:
    items, current, quoted = [], [], False
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "'":
            if quoted and i + 1 < len(text) and text[i + 1] == "'":
                current.append("''")
                i += 2
                continue
            quoted = not quoted
        if ch == "," and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    items.append("".join(current))
    return items


def parse_adhoc_query(request: etree._Element) -> StoredQueryRequest:
    option = request.find(_q("ResponseOption", ns.QUERY))
    query = request.find(_q("AdhocQuery"))
    if query is None:
        raise RegistryError(E.REGISTRY_ERROR, "AdhocQueryRequest without AdhocQuery")
    return_type = option.get("returnType", "LeafClass") if option is not None else "LeafClass"
    if return_type not in ("LeafClass", "ObjectRef"):
        raise RegistryError(E.REGISTRY_ERROR, f"returnType {return_type} is not supported")
    params: dict[str, list[list[str]]] = {}
    for slot in query.findall(_q("Slot")):
        values: list[str] = []
        for value in slot.iterfind(f"{_q('ValueList')}/{_q('Value')}"):
            values.extend(parse_query_value(value.text or ""))
        params.setdefault(slot.get("name") or "", []).append(values)
    return StoredQueryRequest(
        query_id=query.get("id") or "",
        params=params,
        return_type=return_type,
        home_community_id=query.get("home") or "",
    )


# ----------------------------------------------------------------------------- ITI-43 / 62
def parse_retrieve(request: etree._Element) -> list[DocumentRequest]:
    found = []
    for req in request.findall(_q("DocumentRequest", ns.XDS)):
        repo = (req.findtext(_q("RepositoryUniqueId", ns.XDS)) or "").strip()
        uid = (req.findtext(_q("DocumentUniqueId", ns.XDS)) or "").strip()
        home = (req.findtext(_q("HomeCommunityId", ns.XDS)) or "").strip()
        if not repo or not uid:
            raise RegistryError(
                E.REPOSITORY_ERROR, "DocumentRequest needs RepositoryUniqueId and DocumentUniqueId"
            )
        found.append(DocumentRequest(repo, uid, home))
    if not found:
        raise RegistryError(
            E.REPOSITORY_ERROR, "RetrieveDocumentSetRequest without DocumentRequest"
        )
    return found


def parse_remove_objects(request: etree._Element) -> list[str]:
    refs = request.find(_q("ObjectRefList"))
    if refs is None:
        raise _metadata_error("RemoveObjectsRequest without ObjectRefList")
    return [r.get("id") or "" for r in refs.findall(_q("ObjectRef")) if r.get("id")]
