"""Helpers of the XDS face tests: VIHF-signed SOAP requests, DMP-style submissions, spaces."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from flask.testing import FlaskClient
from lxml import etree
from reference_data import REFERENCE

from espace.admin import link_professional, register_space, upsert_professional
from espace.clock import FrozenClock
from espace.service import Espace
from habilitation.model import AccessMode, AuthenticationMode
from xds import ns
from xds.mtom import build_mtom_request, parse_mtom, resolve_xop_includes
from xds.vihf import build_soap_envelope, build_vihf, certificate_dn, sign_vihf
from xds.xml import parse_xml

PATIENT = "207058575627097"
PATIENT_OID = "1.2.250.1.213.1.4.10"
OTHER_PATIENT = "190012345678901"
STRUCTURE = "499900063480001"
AUTHOR = "899900063480"  # pki.professional_id: the médecin who writes
MEDECIN_TRAITANT = "810000000001"
MEDECIN = "810000000002"
NURSE = "810000000003"
PHARMACIST = "810000000004"
DENTIST = "810000000005"
EMERGENCY = "810000000006"
SAMU = "810000000007"
BLOCKED = "810000000008"
WORK_DOCTOR = "810000000009"
STRANGER = "810000000010"

REPOSITORY = "/xds/repository"
REGISTRY = "/xds/registry"
REPO_UID = "1.2.250.1.213.4.1.1.1.2"

ITI41 = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
ITI42 = "urn:ihe:iti:2007:RegisterDocumentSet-b"
ITI18 = "urn:ihe:iti:2007:RegistryStoredQuery"
ITI43 = "urn:ihe:iti:2007:RetrieveDocumentSet"
ITI57 = "urn:ihe:iti:2010:UpdateDocumentSet"
ITI62 = "urn:ihe:iti:2010:DeleteDocumentSet"
FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"


#: (profession, specialty) of each test professional
PROFILES: dict[str, tuple[str, str | None]] = {
    AUTHOR: ("10", "SM26"),
    MEDECIN_TRAITANT: ("10", "SM26"),
    MEDECIN: ("10", "SM26"),
    NURSE: ("60", None),
    PHARMACIST: ("21", "G"),
    DENTIST: ("40", None),
    EMERGENCY: ("10", "SM26"),
    SAMU: ("10", "SM26"),
    BLOCKED: ("10", "SM26"),
    WORK_DOCTOR: ("10", "SM25"),
    STRANGER: ("10", "SM26"),
}


@dataclass
class Soap:
    """A parsed SOAP response."""

    status: int
    envelope: etree._Element
    attachments: dict[str, bytes] = field(default_factory=dict)
    resolved: dict[Any, bytes] = field(default_factory=dict)

    @property
    def body(self) -> etree._Element:
        body = self.envelope.find(f"{{{ns.SOAP12}}}Body")
        assert body is not None
        return body[0]

    @property
    def action(self) -> str:
        return self.envelope.findtext(f"{{{ns.SOAP12}}}Header/{{{ns.WSA}}}Action") or ""

    def error_codes(self) -> list[str]:
        return [e.get("errorCode") or "" for e in self.body.iter(f"{{{ns.RS}}}RegistryError")]

    def errors(self) -> list[tuple[str, str]]:
        return [
            (e.get("errorCode") or "", e.get("codeContext") or "")
            for e in self.body.iter(f"{{{ns.RS}}}RegistryError")
        ]

    def status_value(self) -> str:
        node = self.body
        if node.get("status") is None:
            found = node.find(f"{{{ns.RS}}}RegistryResponse")
            node = found if found is not None else node
        return (node.get("status") or "").rsplit(":", 1)[-1]

    def fault_subcode(self) -> str:
        value = self.body.find(f"{{{ns.SOAP12}}}Code/{{{ns.SOAP12}}}Subcode/{{{ns.SOAP12}}}Value")
        return (value.text or "").split(":")[-1] if value is not None else ""


def setup_space(
    espace: Espace,
    clock: FrozenClock,
    *,
    ins: str = PATIENT,
    ins_oid: str = PATIENT_OID,
    birth_date: date | None = date(1979, 3, 28),
    medecin_traitant: str | None = MEDECIN_TRAITANT,
    authorized: tuple[str, ...] = (AUTHOR, MEDECIN, NURSE, PHARMACIST, DENTIST, WORK_DOCTOR),
    blocked: tuple[str, ...] = (BLOCKED,),
    break_glass_allowed: bool = True,
    status: str = "active",
    structures: tuple[str, ...] = (),
) -> str:
    """Create a patient space with its care team; return the space id."""
    now = clock.now()
    with espace.session_factory() as session:
        space = register_space(
            session,
            ins=ins,
            ins_oid=ins_oid,
            now=now,
            family_name="PATB-QUATRE",
            given_names="LAURENCE",
            birth_date=birth_date,
            sex="F",
            email="laurence@example.org",
            status=status,
        )
        space.medecin_traitant_id = medecin_traitant
        space.break_glass_allowed = break_glass_allowed
        for pro, (profession, specialty) in PROFILES.items():
            upsert_professional(
                session,
                pro,
                name=f"Dr {pro}",
                profession=profession,
                specialty=specialty,
                structure_id=STRUCTURE,
            )
        for pro in authorized:
            link_professional(session, space, pro, "authorized", declared_by=pro, now=now)
        for pro in blocked:
            link_professional(session, space, pro, "blocked", declared_by=ins, now=now)
        for structure in structures:
            link_professional(
                session, space, structure, "authorized_structure", declared_by=ins, now=now
            )
        session.commit()
        return space.id


def vihf(
    pki: Any,
    clock: FrozenClock,
    professional_id: str = AUTHOR,
    *,
    patient_ins: str | None = PATIENT,
    access_mode: AccessMode = AccessMode.NORMAL,
    authentication_mode: AuthenticationMode = AuthenticationMode.DIRECT,
    profession: str | None = None,
    specialty: str | None = "",
    **overrides: Any,
) -> etree._Element:
    """A VIHF signed with the test PKI's structure certificate, issued at the clock's now."""
    default_profession, default_specialty = PROFILES.get(professional_id, ("10", "SM26"))
    cert = pki.signing_cert.read_bytes()
    spec = default_specialty if specialty == "" else specialty
    claims: dict[str, Any] = {
        "professional_id": professional_id,
        "profession": profession or default_profession,
        "specialty": spec,
        "structure_id": STRUCTURE,
        "issuer": certificate_dn(cert),
        "issue_instant": clock.now(),
        "patient_ins": patient_ins,
        "patient_ins_oid": PATIENT_OID,
        "access_mode": access_mode,
        "authentication_mode": authentication_mode,
        "lifetime": timedelta(minutes=5),
    }
    if authentication_mode is not AuthenticationMode.DIRECT:
        claims.setdefault("subject_name", f"Dr {professional_id}")
    claims.update(overrides)
    return sign_vihf(build_vihf(**claims), pki.signing_key.read_bytes(), cert)


def envelope_bytes(action: str, body: etree._Element, assertion: etree._Element | None) -> bytes:
    return etree.tostring(
        build_soap_envelope(action, body, assertion), xml_declaration=True, encoding="UTF-8"
    )


def parse_response(status: int, content_type: str, data: bytes) -> Soap:
    message = parse_mtom(data, content_type)
    root = parse_xml(message.root_xml)
    resolved = resolve_xop_includes(root, message.attachments) if message.attachments else {}
    return Soap(status, root, dict(message.attachments), dict(resolved))


def post(
    client: FlaskClient,
    path: str,
    action: str,
    body: etree._Element,
    assertion: etree._Element | None,
    attachments: dict[str, tuple[bytes, str]] | None = None,
) -> Soap:
    data = envelope_bytes(action, body, assertion)
    if attachments is not None:
        payload, content_type = build_mtom_request(data, attachments, action=action)
    else:
        payload, content_type = data, f'application/soap+xml; charset=UTF-8; action="{action}"'
    response = client.post(path, data=payload, content_type=content_type)
    return parse_response(response.status_code, response.content_type or "", response.data)


# ----------------------------------------------------------------------------- documents
def cda(
    ins: str = PATIENT,
    oid: str = PATIENT_OID,
    type_code: str = "11488-4",
    text: str = "Compte rendu de consultation",
) -> bytes:
    """A minimal CDA R2 N1 document (CI-SIS structure) for patient ``ins``."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3">
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>
  <id root="1.2.250.1.999.1.{uuid.uuid4().int % 10**9}"/>
  <code code="{type_code}" codeSystem="2.16.840.1.113883.6.1"/>
  <title>{text}</title>
  <confidentialityCode code="N" codeSystem="2.16.840.1.113883.5.25"/>
  <recordTarget><patientRole><id extension="{ins}" root="{oid}"/></patientRole></recordTarget>
  <component><nonXMLBody><text mediaType="text/plain">{text}</text></nonXMLBody></component>
</ClinicalDocument>""".encode()


@dataclass
class Doc:
    """One DocumentEntry of a test submission (DMP value sets by default)."""

    content: bytes = field(default_factory=cda)
    symbolic_id: str = "Document01"
    unique_id: str = field(default_factory=lambda: f"1.2.250.1.999.1.1.{uuid.uuid4().int % 10**12}")
    type_code: tuple[str, str, str] = (
        "11488-4",
        "2.16.840.1.113883.6.1",
        "CR ou fiche de consultation ou de visite",
    )
    class_code: tuple[str, str, str] = ("10", "1.2.250.1.213.1.1.4.1", "Compte rendu")
    confidentiality: tuple[tuple[str, str], ...] = (("N", "2.16.840.1.113883.5.25"),)
    format_code: tuple[str, str] = ("urn:ihe:iti:xds-sd:text:2008", "1.3.6.1.4.1.19376.1.2.3")
    facility: tuple[str, str] = ("SA07", "1.2.250.1.71.4.2.4")
    practice: tuple[str, str] = ("ETABLISSEMENT", "1.2.250.1.213.1.1.4.9")
    mime_type: str = "text/xml"
    author: str = AUTHOR
    patient: str = PATIENT
    hash: str | None = None
    size: int | None = None
    lid: str | None = None
    entry_id: str | None = None

    @property
    def sha1(self) -> str:
        return hashlib.sha1(self.content).hexdigest()


def _classification(scheme: str, owner: str, code: str, coding_scheme: str, name: str) -> str:
    return (
        f'<Classification classificationScheme="{scheme}" classifiedObject="{owner}" '
        f'id="cl{uuid.uuid4().hex[:8]}" nodeRepresentation="{code}">'
        f'<Slot name="codingScheme"><ValueList><Value>{coding_scheme}</Value></ValueList></Slot>'
        f'<Name><LocalizedString value="{name}"/></Name></Classification>'
    )


def _slot(name: str, *values: str) -> str:
    inner = "".join(f"<Value>{v}</Value>" for v in values)
    return f'<Slot name="{name}"><ValueList>{inner}</ValueList></Slot>'


def _author(scheme: str, owner: str, pro: str) -> str:
    return (
        f'<Classification classificationScheme="{scheme}" classifiedObject="{owner}" '
        f'id="cl{uuid.uuid4().hex[:8]}" nodeRepresentation="">'
        + _slot("authorPerson", f"{pro}^DOC^TEST^^^^^^&amp;1.2.250.1.71.4.2.1&amp;ISO^D^^^IDNPS")
        + _slot(
            "authorInstitution", f"CABINET^^^^^&amp;1.2.250.1.71.4.2.2&amp;ISO^IDNST^^^{STRUCTURE}"
        )
        + _slot("authorSpecialty", "G15_10/SM26^Médecin - Médecine générale^1.2.250.1.213.1.1.4.5")
        + "</Classification>"
    )


def extrinsic_object(doc: Doc, *, with_hash: bool = False) -> str:
    owner = doc.entry_id or doc.symbolic_id
    pid = f"{doc.patient}^^^&amp;{PATIENT_OID}&amp;ISO^NH"
    lid = f' lid="{doc.lid}"' if doc.lid else ""
    parts = [
        f'<ExtrinsicObject id="{owner}" mimeType="{doc.mime_type}"{lid} '
        'objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1">',
        _slot("creationTime", "20260105080000"),
        _slot("languageCode", "fr-FR"),
        _slot("serviceStartTime", "20260105070000"),
        _slot("sourcePatientId", pid),
    ]
    if with_hash or doc.hash is not None:
        parts.append(_slot("hash", doc.hash if doc.hash is not None else doc.sha1))
    if with_hash or doc.size is not None:
        parts.append(_slot("size", str(doc.size if doc.size is not None else len(doc.content))))
    if with_hash:
        parts.append(_slot("repositoryUniqueId", REPO_UID))
    parts.append('<Name><LocalizedString value="Compte rendu de consultation"/></Name>')
    parts.append(_author("urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d", owner, doc.author))
    parts.append(
        _classification("urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a", owner, *doc.class_code)
    )
    parts.append(
        _classification("urn:uuid:f0306f51-975f-434e-a61c-c59651d33983", owner, *doc.type_code)
    )
    for code, scheme in doc.confidentiality:
        parts.append(
            _classification(
                "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f", owner, code, scheme, code
            )
        )
    parts.append(
        _classification(
            "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d", owner, *doc.format_code, "format"
        )
    )
    parts.append(
        _classification(
            "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1", owner, *doc.facility, "facility"
        )
    )
    parts.append(
        _classification(
            "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead", owner, *doc.practice, "practice"
        )
    )
    parts.append(
        f'<ExternalIdentifier id="ei{uuid.uuid4().hex[:8]}" registryObject="{owner}" '
        f'identificationScheme="urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427" value="{pid}">'
        '<Name><LocalizedString value="XDSDocumentEntry.patientId"/></Name></ExternalIdentifier>'
    )
    parts.append(
        f'<ExternalIdentifier id="ei{uuid.uuid4().hex[:8]}" registryObject="{owner}" '
        f'identificationScheme="urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab" '
        f'value="{doc.unique_id}">'
        '<Name><LocalizedString value="XDSDocumentEntry.uniqueId"/></Name></ExternalIdentifier>'
    )
    parts.append("</ExtrinsicObject>")
    return "".join(parts)


def submission_set(
    *,
    patient: str = PATIENT,
    author: str = AUTHOR,
    unique_id: str | None = None,
    owner: str = "SubmissionSet01",
    content_type: tuple[str, str] = ("04", "1.2.250.1.213.2.2"),
) -> str:
    pid = f"{patient}^^^&amp;{PATIENT_OID}&amp;ISO^NH"
    uid = unique_id or f"1.2.250.1.999.1.2.{uuid.uuid4().int % 10**12}"
    return (
        f'<RegistryPackage id="{owner}">'
        + _slot("submissionTime", "20260105090000")
        + '<Name><LocalizedString value="Lot"/></Name>'
        + _author("urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d", owner, author)
        + _classification(
            "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500",
            owner,
            *content_type,
            "contentType",
        )
        + f'<Classification classificationNode="urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd" '
        f'classifiedObject="{owner}" id="cl{uuid.uuid4().hex[:8]}"/>'
        + f'<ExternalIdentifier id="ei{uuid.uuid4().hex[:8]}" registryObject="{owner}" '
        f'identificationScheme="urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446" value="{pid}">'
        '<Name><LocalizedString value="XDSSubmissionSet.patientId"/></Name></ExternalIdentifier>'
        + f'<ExternalIdentifier id="ei{uuid.uuid4().hex[:8]}" registryObject="{owner}" '
        'identificationScheme="urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832" '
        'value="1.2.250.1.999.1.1.7898">'
        '<Name><LocalizedString value="XDSSubmissionSet.sourceId"/></Name></ExternalIdentifier>'
        + f'<ExternalIdentifier id="ei{uuid.uuid4().hex[:8]}" registryObject="{owner}" '
        f'identificationScheme="urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8" value="{uid}">'
        '<Name><LocalizedString value="XDSSubmissionSet.uniqueId"/></Name></ExternalIdentifier>'
        + "</RegistryPackage>"
    )


def association(kind: str, source: str, target: str, **slots: str) -> str:
    inner = "".join(_slot(k, v) for k, v in slots.items())
    return (
        f'<Association associationType="{kind}" id="as{uuid.uuid4().hex[:8]}" '
        f'sourceObject="{source}" targetObject="{target}">{inner}</Association>'
    )


HAS_MEMBER = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"


def submit_objects(objects: str) -> str:
    return (
        f'<lcm:SubmitObjectsRequest xmlns:lcm="{ns.LCM}" xmlns="{ns.RIM}">'
        f"<RegistryObjectList>{objects}</RegistryObjectList></lcm:SubmitObjectsRequest>"
    )


def provide_and_register(
    docs: list[Doc],
    *,
    ss_unique_id: str | None = None,
    extra: str = "",
    author: str | None = None,
    patient: str = PATIENT,
    content_type: tuple[str, str] = ("04", "1.2.250.1.213.2.2"),
) -> tuple[etree._Element, dict[str, tuple[bytes, str]]]:
    """An ITI-41 body with one MTOM part per document."""
    objects = submission_set(
        unique_id=ss_unique_id,
        author=author or docs[0].author,
        patient=patient,
        content_type=content_type,
    )
    objects += "".join(extrinsic_object(d) for d in docs)
    objects += "".join(
        association(
            HAS_MEMBER,
            "SubmissionSet01",
            d.entry_id or d.symbolic_id,
            SubmissionSetStatus="Original",
        )
        for d in docs
    )
    objects += extra
    documents = "".join(
        f'<xds:Document id="{d.entry_id or d.symbolic_id}"><xop:Include xmlns:xop="{ns.XOP}" '
        f'href="cid:{d.symbolic_id}@test"/></xds:Document>'
        for d in docs
    )
    xml = (
        f'<xds:ProvideAndRegisterDocumentSetRequest xmlns:xds="{ns.XDS}">'
        f"{submit_objects(objects)}{documents}</xds:ProvideAndRegisterDocumentSetRequest>"
    )
    attachments = {f"{d.symbolic_id}@test": (d.content, d.mime_type) for d in docs}
    return etree.fromstring(xml.encode()), attachments


def find_documents(
    patient: str = PATIENT,
    statuses: tuple[str, ...] = ("Approved",),
    return_type: str = "LeafClass",
    extra: str = "",
) -> etree._Element:
    values = ",".join(f"'urn:oasis:names:tc:ebxml-regrep:StatusType:{s}'" for s in statuses)
    xml = (
        f'<query:AdhocQueryRequest xmlns:query="{ns.QUERY}" xmlns="{ns.RIM}">'
        f'<query:ResponseOption returnComposedObjects="true" returnType="{return_type}"/>'
        f'<AdhocQuery id="{FIND_DOCUMENTS}">'
        + _slot("$XDSDocumentEntryPatientId", f"'{patient}^^^&amp;{PATIENT_OID}&amp;ISO^NH'")
        + _slot("$XDSDocumentEntryStatus", f"({values})")
        + extra
        + "</AdhocQuery></query:AdhocQueryRequest>"
    )
    return etree.fromstring(xml.encode())


def retrieve_request(*unique_ids: str, repository: str = REPO_UID) -> etree._Element:
    inner = "".join(
        f"<DocumentRequest><RepositoryUniqueId>{repository}</RepositoryUniqueId>"
        f"<DocumentUniqueId>{uid}</DocumentUniqueId></DocumentRequest>"
        for uid in unique_ids
    )
    xml = f'<RetrieveDocumentSetRequest xmlns="{ns.XDS}">{inner}</RetrieveDocumentSetRequest>'
    return etree.fromstring(xml.encode())


def entries(response: Soap) -> list[etree._Element]:
    return list(response.body.iter(f"{{{ns.RIM}}}ExtrinsicObject"))


def unique_ids(response: Soap) -> set[str]:
    found = set()
    for eo in entries(response):
        for ei in eo.findall(f"{{{ns.RIM}}}ExternalIdentifier"):
            if ei.get("identificationScheme") == "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab":
                found.add(ei.get("value") or "")
    return found


# ----------------------------------------------------------------------------- schema checks
_SCHEMA: list[etree.XMLSchema] = []


def nist_schema() -> etree.XMLSchema | None:
    """ebRS 3.0 + XDS.b schemas of the NIST toolkit (``reference/xds/nist-schema-v3``)."""
    if _SCHEMA:
        return _SCHEMA[0]
    folder = (REFERENCE / "xds" / "nist-schema-v3").resolve()
    if not folder.exists():
        return None
    imports = "".join(
        f'<xs:import namespace="{namespace}" schemaLocation="{(folder / name).as_uri()}"/>'
        for namespace, name in (
            (ns.XDS, "XDS.b_DocumentRepository.xsd"),
            (ns.LCM, "lcm.xsd"),
            (ns.QUERY, "query.xsd"),
            (ns.RS, "rs.xsd"),
        )
    )
    driver = (
        f'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">{imports}</xs:schema>'
    ).encode()
    schema = etree.XMLSchema(etree.fromstring(driver, etree.XMLParser(no_network=True)))
    _SCHEMA.append(schema)
    return schema


def assert_schema_valid(element: etree._Element) -> None:
    """Validate a response body element (skip when the reference schemas are absent)."""
    import pytest

    schema = nist_schema()
    if schema is None:
        pytest.skip("reference/xds/nist-schema-v3 not found next to the clone")
    document = etree.fromstring(etree.tostring(element))
    for include in list(document.iter(f"{{{ns.XOP}}}Include")):  # the XOP infoset is base64
        parent = include.getparent()
        assert parent is not None
        parent.remove(include)
        parent.text = "AA=="
    assert schema.validate(document), schema.error_log
