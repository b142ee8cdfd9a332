"""IHE XDM (Cross-Enterprise Document Media Interchange) archives received by secure mail.

IHE ITI TF-1 §16 and TF-3 §4.3 (Rev 18): an ``IHE_XDM.ZIP`` holds ``INDEX.HTM``, ``README.TXT``
and ``IHE_XDM/<SUBSET>/METADATA.XML`` (an ebRS 3.0 ``SubmitObjectsRequest``) whose
DocumentEntries point at the document files through the ``URI`` slot. The Portable Media
Importer checks each file against the entry's ``size`` and SHA-1 ``hash`` (both R for the
media creator, TF-3 Table 4.3.1-3). MSSanté (ANS Référentiel socle #2, ECO.2.4) puts the CDA
documents sent to a patient in such an archive.

All XML goes through the one hardened parser :func:`xds.xml.parse_xml` (no DTD, no entities).
ANS tooling writes METADATA.XML as a fragment with undeclared prefixes (see the DRIM-M sample):
such a fragment is wrapped in an element declaring the ebXML namespaces, then parsed the same way.
Elements are matched by local name, so rim/lcm prefixes or their absence do not matter.
"""

from __future__ import annotations

import hashlib
import io
import posixpath
import re
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from lxml import etree

from espace.spaces import INS_OIDS
from xds.xml import XmlSecurityError, parse_xml

MAX_ENTRIES = 500
XDM_NAME = re.compile(r"(^|/)ihe_xdm\.zip$", re.IGNORECASE)

# ebRIM classification schemes of a DocumentEntry (ITI TF-3 Table 4.2.5-1) and SubmissionSet
SCHEMES: Mapping[str, str] = {
    "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a": "class_code",
    "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983": "type_code",
    "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d": "format_code",
    "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f": "confidentiality_codes",
    "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead": "practice_setting_code",
    "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1": "healthcare_facility_type_code",
    "urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4": "event_codes",
    "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500": "content_type_code",
}
AUTHOR_SCHEMES = frozenset(
    {
        "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d",
        "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d",
    }
)
IDENTIFIERS: Mapping[str, str] = {
    "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427": "patient_id",
    "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab": "unique_id",
    "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446": "patient_id",
    "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832": "source_id",
    "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8": "unique_id",
}
_WRAP_OPEN = (
    b'<xdm-fragment xmlns="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0" '
    b'xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0" '
    b'xmlns:lcm="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0" '
    b'xmlns:rs="urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0" '
    b'xmlns:query="urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0" '
    b'xmlns:ns1="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0" '
    b'xmlns:ns2="urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0" '
    b'xmlns:ns3="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0" '
    b'xmlns:ns4="urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0">'
)
_XML_DECL = re.compile(rb"^\s*<\?xml[^>]*\?>", re.IGNORECASE)
HL7 = "urn:hl7-org:v3"


class XdmProblem(StrEnum):
    """Why an archive is refused. The SMTP face maps each to a 5xx reply."""

    NOT_A_ZIP = "xdm_not_a_zip"
    UNSAFE = "xdm_unsafe_archive"
    NO_METADATA = "xdm_no_metadata"
    BAD_METADATA = "xdm_bad_metadata"
    DOCUMENT_MISSING = "xdm_document_missing"
    HASH_MISMATCH = "xdm_hash_mismatch"
    SIZE_MISMATCH = "xdm_size_mismatch"
    BAD_CDA = "xdm_bad_cda"


class XdmError(ValueError):
    def __init__(self, problem: XdmProblem, message: str) -> None:
        super().__init__(message)
        self.problem = problem
        self.message = message


@dataclass(frozen=True, slots=True)
class XdmArchive:
    """A checked archive: its metadata (JSON-ready) and where each document lies in the zip."""

    metadata: dict[str, Any]

    @property
    def documents(self) -> list[dict[str, Any]]:
        docs: list[dict[str, Any]] = self.metadata["documents"]
        return docs

    @property
    def identified_ins(self) -> frozenset[str]:
        return frozenset(self.metadata.get("identified_ins", ()))

    @property
    def cda_codes(self) -> list[str]:
        return [d["cda"]["code"] for d in self.documents if d.get("cda", {}).get("code")]


def is_xdm_attachment(filename: str, content_type: str) -> bool:
    return bool(XDM_NAME.search(filename or "")) or (
        content_type == "application/zip" and (filename or "").upper().startswith("IHE_XDM")
    )


def _local(element: etree._Element) -> str:
    tag = element.tag
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _children(element: etree._Element, name: str) -> list[etree._Element]:
    return [c for c in element if _local(c) == name]


def _descendants(element: etree._Element, name: str) -> list[etree._Element]:
    return [e for e in element.iter() if _local(e) == name]


def _parse_metadata(data: bytes, max_bytes: int) -> etree._Element:
    try:
        return parse_xml(data, max_bytes=max_bytes)
    except XmlSecurityError as exc:
        if exc.refusal != "malformed" or b"<!DOCTYPE" in data.upper():
            raise XdmError(
                XdmProblem.BAD_METADATA, f"METADATA.XML refused: {exc.message}"
            ) from None
    body = _XML_DECL.sub(b"", data, count=1)
    try:
        return parse_xml(_WRAP_OPEN + body + b"</xdm-fragment>", max_bytes=max_bytes + 1024)
    except XmlSecurityError as exc:
        raise XdmError(XdmProblem.BAD_METADATA, f"METADATA.XML refused: {exc.message}") from None


def _slot_values(element: etree._Element) -> dict[str, list[str]]:
    slots: dict[str, list[str]] = {}
    for slot in _children(element, "Slot"):
        values = [(v.text or "").strip() for v in _descendants(slot, "Value")]
        slots[slot.get("name", "")] = values
    return slots


def _name_of(element: etree._Element) -> str:
    for name in _children(element, "Name"):
        for loc in _descendants(name, "LocalizedString"):
            return str(loc.get("value", ""))
    return ""


def _description_of(element: etree._Element) -> str:
    for desc in _children(element, "Description"):
        for loc in _descendants(desc, "LocalizedString"):
            return str(loc.get("value", ""))
    return ""


def cx_ins(value: str) -> str | None:
    """The INS of an HL7 CX ``id^^^&oid&ISO`` whose assigning authority is an INS OID."""
    ident, _, rest = value.partition("^^^")
    parts = rest.split("&")
    if len(parts) >= 2 and parts[1] in INS_OIDS and ident:
        return ident.strip()
    return None


def xcn_id(value: str) -> str:
    return value.split("^", 1)[0].strip()


def xon_id(value: str) -> str:
    """The organization identifier (XON.10) of an ``authorInstitution`` value."""
    parts = value.split("^")
    return parts[9].strip() if len(parts) >= 10 else ""


def _object(element: etree._Element) -> dict[str, Any]:
    slots = _slot_values(element)
    out: dict[str, Any] = {
        "id": element.get("id", ""),
        "title": _name_of(element),
        "comments": _description_of(element),
        "slots": slots,
        "confidentiality_codes": [],
        "event_codes": [],
        "author_persons": [],
        "author_institutions": [],
        "author_roles": [],
        "author_specialties": [],
    }
    for cls in _children(element, "Classification"):
        scheme = cls.get("classificationScheme", "")
        if scheme in AUTHOR_SCHEMES:
            author = _slot_values(cls)
            out["author_persons"] += author.get("authorPerson", [])
            out["author_institutions"] += author.get("authorInstitution", [])
            out["author_roles"] += author.get("authorRole", [])
            out["author_specialties"] += author.get("authorSpecialty", [])
            continue
        field_name = SCHEMES.get(scheme)
        if field_name is None:
            continue
        coding = _slot_values(cls).get("codingScheme", [""])
        code = {
            "code": cls.get("nodeRepresentation", ""),
            "scheme": coding[0] if coding else "",
            "display": _name_of(cls),
        }
        if field_name in ("confidentiality_codes", "event_codes"):
            out[field_name].append(code)
        else:
            out[field_name] = code
    for ext in _children(element, "ExternalIdentifier"):
        field_name = IDENTIFIERS.get(ext.get("identificationScheme", ""))
        if field_name is not None:
            out[field_name] = ext.get("value", "")
    return out


def _document(element: etree._Element) -> dict[str, Any]:
    doc = _object(element)
    slots = doc.pop("slots")
    first = {k: (v[0] if v else "") for k, v in slots.items()}
    doc.update(
        entry_uuid=doc.pop("id"),
        mime_type=element.get("mimeType", ""),
        object_type=element.get("objectType", ""),
        uri=first.get("URI", ""),
        hash=first.get("hash", "").lower(),
        size=first.get("size", ""),
        creation_time=first.get("creationTime", ""),
        service_start_time=first.get("serviceStartTime", ""),
        service_stop_time=first.get("serviceStopTime", ""),
        language_code=first.get("languageCode", ""),
        legal_authenticator=first.get("legalAuthenticator", ""),
        source_patient_id=first.get("sourcePatientId", ""),
        source_patient_info=slots.get("sourcePatientInfo", []),
    )
    doc.setdefault("unique_id", "")
    doc.setdefault("patient_id", "")
    return doc


def _safe_name(name: str) -> bool:
    norm = posixpath.normpath(name)
    return not (name.startswith(("/", "\\")) or norm.startswith("..") or ":" in name)


def _resolve(names: Mapping[str, str], subset_dir: str, uri: str) -> str | None:
    """Find the zip member of a DocumentEntry URI (relative to its subset, or to IHE_XDM)."""
    uri = uri.replace("\\", "/").lstrip("./")
    candidates = [posixpath.join(subset_dir, uri), posixpath.join("IHE_XDM", uri), uri]
    for candidate in candidates:
        hit = names.get(posixpath.normpath(candidate).upper())
        if hit is not None:
            return hit
    return None


def cda_summary(data: bytes) -> dict[str, Any] | None:
    """The header facts of a CDA R2 document (HL7 CDA R2, ANS CI-SIS En-tête): code, INS."""
    head = data[:512].lstrip()
    if not (head.startswith(b"<") or head.startswith(b"\xef\xbb\xbf<")):
        return None
    try:
        root = parse_xml(data)
    except XmlSecurityError as exc:
        raise XdmError(XdmProblem.BAD_CDA, f"CDA document refused: {exc.message}") from None
    if root.tag != f"{{{HL7}}}ClinicalDocument":
        return None
    code = root.find(f"{{{HL7}}}code")
    title = root.find(f"{{{HL7}}}title")
    ins: list[str] = []
    for ident in root.iterfind(f"{{{HL7}}}recordTarget/{{{HL7}}}patientRole/{{{HL7}}}id"):
        if ident.get("root") in INS_OIDS and ident.get("extension"):
            ins.append(str(ident.get("extension")))
    return {
        "code": code.get("code", "") if code is not None else "",
        "code_system": code.get("codeSystem", "") if code is not None else "",
        "display": code.get("displayName", "") if code is not None else "",
        "title": (title.text or "").strip() if title is not None else "",
        "ins": ins,
    }


def cda_record_target_ids(data: bytes) -> list[tuple[str, str]] | None:
    """Every ``recordTarget/patientRole/id`` (extension, root) of a CDA; None if not a CDA."""
    try:
        root = parse_xml(data)
    except XmlSecurityError as exc:
        raise XdmError(XdmProblem.BAD_CDA, f"CDA document refused: {exc.message}") from None
    if root.tag != f"{{{HL7}}}ClinicalDocument":
        return None
    return [
        (str(i.get("extension", "")), str(i.get("root", "")))
        for i in root.iterfind(f"{{{HL7}}}recordTarget/{{{HL7}}}patientRole/{{{HL7}}}id")
    ]


def read_archive(data: bytes, *, max_bytes: int = 64 * 1024 * 1024) -> XdmArchive:
    """Open, check and describe an ``IHE_XDM.ZIP`` (ITI TF-3 §4.3; hash and size checked)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise XdmError(XdmProblem.NOT_A_ZIP, f"not a zip archive: {exc}") from None
    if len(infos) > MAX_ENTRIES:
        raise XdmError(XdmProblem.UNSAFE, f"more than {MAX_ENTRIES} entries")
    total = 0
    names: dict[str, str] = {}
    for info in infos:
        if not _safe_name(info.filename) or info.flag_bits & 0x1:
            raise XdmError(XdmProblem.UNSAFE, f"unsafe or encrypted entry {info.filename!r}")
        total += info.file_size
        if total > max_bytes:
            raise XdmError(XdmProblem.UNSAFE, "archive expands beyond the size limit")
        if not info.is_dir():
            names[posixpath.normpath(info.filename).upper()] = info.filename

    def read(member: str) -> bytes:
        try:
            with archive.open(member) as handle:
                content = handle.read(max_bytes + 1)
        except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError) as exc:
            raise XdmError(XdmProblem.NOT_A_ZIP, f"corrupt member {member}: {exc}") from None
        if len(content) > max_bytes:
            raise XdmError(XdmProblem.UNSAFE, "entry expands beyond the size limit")
        return content

    metadata_members = sorted(
        n
        for key, n in names.items()
        if key.startswith("IHE_XDM/") and key.endswith("/METADATA.XML") and key.count("/") == 2
    )
    if not metadata_members:
        raise XdmError(XdmProblem.NO_METADATA, "no IHE_XDM/<subset>/METADATA.XML in the archive")
    documents: list[dict[str, Any]] = []
    submission_sets: list[dict[str, Any]] = []
    identified: set[str] = set()
    for member in metadata_members:
        subset_dir = posixpath.dirname(member)
        root = _parse_metadata(read(member), max_bytes)
        for package in _descendants(root, "RegistryPackage"):
            ss = _object(package)
            slots = ss.pop("slots")
            ss["submission_time"] = (slots.get("submissionTime") or [""])[0]
            ss["intended_recipients"] = slots.get("intendedRecipient", [])
            submission_sets.append(ss)
            if (ins := cx_ins(ss.get("patient_id", ""))) is not None:
                identified.add(ins)
        for element in _descendants(root, "ExtrinsicObject"):
            doc = _document(element)
            doc["subset"] = subset_dir
            path = _resolve(names, subset_dir, doc["uri"]) if doc["uri"] else None
            if path is None:
                raise XdmError(
                    XdmProblem.DOCUMENT_MISSING,
                    f"document {doc['unique_id'] or doc['entry_uuid']} ({doc['uri']!r}) "
                    "is not in the archive",
                )
            content = read(path)
            if not doc["hash"] or not doc["size"]:
                raise XdmError(XdmProblem.BAD_METADATA, "a DocumentEntry lacks its hash or size")
            if str(len(content)) != doc["size"].strip():
                raise XdmError(
                    XdmProblem.SIZE_MISMATCH,
                    f"{doc['uri']}: size {len(content)} but metadata says {doc['size']}",
                )
            if hashlib.sha1(content).hexdigest() != doc["hash"]:  # noqa: S324 - XDS.b hash
                raise XdmError(XdmProblem.HASH_MISMATCH, f"{doc['uri']}: SHA-1 does not match")
            doc["path"] = path
            for value in (doc["patient_id"], doc["source_patient_id"]):
                if (ins := cx_ins(value)) is not None:
                    identified.add(ins)
            summary = cda_summary(content) if "xml" in doc["mime_type"] else None
            if summary is not None:
                doc["cda"] = summary
                identified.update(summary["ins"])
            documents.append(doc)
    if not documents:
        raise XdmError(XdmProblem.BAD_METADATA, "METADATA.XML describes no document")
    return XdmArchive(
        {
            "submission_sets": submission_sets,
            "documents": documents,
            "identified_ins": sorted(identified),
            "has_index": "INDEX.HTM" in names,
            "has_readme": "README.TXT" in names,
        }
    )


def document_content(data: bytes, document: Mapping[str, Any]) -> bytes:
    """The bytes of one checked document of an archive (re-checked against its hash)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        content = archive.read(str(document["path"]))
    if hashlib.sha1(content).hexdigest() != document["hash"]:  # noqa: S324
        raise XdmError(XdmProblem.HASH_MISMATCH, "document bytes changed since reception")
    return content


def build_archive(
    documents: list[tuple[str, bytes, Mapping[str, Any]]],
    *,
    patient_id: str,
    source_id: str = "1.2.250.1.999.1.1.8121",
    submission_unique_id: str = "1.2.250.1.999.1.1.8121.4.1",
    author_person: str = "",
    author_institution: str = "",
    subset: str = "SUBSET01",
    content_type_code: tuple[str, str, str] | None = (
        "07",
        "1.2.250.1.213.2.2",
        "Consultations soins externes",
    ),
) -> bytes:
    """Write an ``IHE_XDM.ZIP`` (Portable Media Creator, ITI TF-3 §4.3): tests, demo, bench.

    ``documents``: (file name, bytes, metadata) with metadata keys ``unique_id``, ``mime_type``,
    ``type_code``, ``class_code``, ``format_code``, ``confidentiality``, ``title``... The hash
    and size are computed here unless the metadata overrides them (negative tests).
    """
    from xml.sax.saxutils import quoteattr

    def slot(name: str, *values: str) -> str:
        vals = "".join(f"<Value>{_esc(v)}</Value>" for v in values)
        return f'<Slot name="{name}"><ValueList>{vals}</ValueList></Slot>'

    def classification(scheme: str, obj: str, code: tuple[str, str, str], n: int) -> str:
        return (
            f'<Classification classificationScheme="{scheme}" classifiedObject="{obj}" '
            f'id="cl{obj}{n}" nodeRepresentation={quoteattr(code[0])}>'
            f"{slot('codingScheme', code[1])}"
            f"<Name><LocalizedString value={quoteattr(code[2])}/></Name></Classification>"
        )

    def author(scheme: str, obj: str) -> str:
        inner = ""
        if author_person:
            inner += slot("authorPerson", author_person)
        if author_institution:
            inner += slot("authorInstitution", author_institution)
        return (
            f'<Classification classificationScheme="{scheme}" classifiedObject="{obj}" '
            f'id="au{obj}" nodeRepresentation="">{inner}</Classification>'
            if inner
            else ""
        )

    def ext(scheme: str, obj: str, value: str, n: int) -> str:
        return (
            f'<ExternalIdentifier id="ei{obj}{n}" identificationScheme="{scheme}" '
            f'registryObject="{obj}" value={quoteattr(value)}/>'
        )

    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<lcm:SubmitObjectsRequest xmlns:lcm="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0" '
        'xmlns="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"><RegistryObjectList>',
        '<RegistryPackage id="SubmissionSet01">',
        slot("submissionTime", "20260105090000"),
        author("urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d", "SubmissionSet01"),
        classification(
            "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500", "SubmissionSet01", content_type_code, 0
        )
        if content_type_code
        else "",
        ext("urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446", "SubmissionSet01", patient_id, 1),
        ext("urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832", "SubmissionSet01", source_id, 2),
        ext(
            "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8",
            "SubmissionSet01",
            submission_unique_id,
            3,
        ),
        "</RegistryPackage>",
    ]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for n, (filename, content, meta) in enumerate(documents, start=1):
            obj = f"Document{n:02d}"
            codes = {
                "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a": meta.get("class_code"),
                "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983": meta.get("type_code"),
                "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d": meta.get("format_code"),
                "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f": meta.get("confidentiality"),
                "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead": meta.get("practice_setting"),
                "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1": meta.get("facility_type"),
            }
            parts.append(
                f'<ExtrinsicObject id="{obj}" mimeType="{meta.get("mime_type", "text/xml")}" '
                'objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1">'
            )
            parts.append(slot("URI", filename))
            parts.append(slot("hash", str(meta.get("hash") or hashlib.sha1(content).hexdigest())))  # noqa: S324
            parts.append(slot("size", str(meta.get("size") or len(content))))
            parts.append(slot("creationTime", str(meta.get("creation_time", "20260105083000"))))
            parts.append(slot("languageCode", "fr-FR"))
            parts.append(slot("sourcePatientId", str(meta.get("source_patient_id", patient_id))))
            if meta.get("title"):
                title = quoteattr(str(meta["title"]))
                parts.append(f"<Name><LocalizedString value={title}/></Name>")
            parts.append(author("urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d", obj))
            for i, (scheme, code) in enumerate(codes.items()):
                if code:
                    parts.append(classification(scheme, obj, code, i))
            parts.append(
                ext(
                    "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427",
                    obj,
                    str(meta.get("patient_id", patient_id)),
                    1,
                )
            )
            parts.append(
                ext("urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab", obj, str(meta["unique_id"]), 2)
            )
            parts.append("</ExtrinsicObject>")
            parts.append(
                f'<Association associationType="urn:oasis:names:tc:ebxml-regrep:AssociationType:'
                f'HasMember" id="as{n}" sourceObject="SubmissionSet01" targetObject="{obj}">'
                f"{slot('SubmissionSetStatus', 'Original')}</Association>"
            )
            archive.writestr(f"IHE_XDM/{subset}/{filename}", content)
        parts.append("</RegistryObjectList></lcm:SubmitObjectsRequest>")
        archive.writestr(f"IHE_XDM/{subset}/METADATA.XML", "".join(parts).encode("utf-8"))
        archive.writestr("INDEX.HTM", "<html><body><a href='IHE_XDM/'>IHE_XDM</a></body></html>")
        archive.writestr("README.TXT", "IHE XDM media created by the MES test suite.\r\n")
    return buffer.getvalue()


def _esc(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
