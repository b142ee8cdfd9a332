"""XDS.b messages as a DMP-compatible LPS sends them: ITI-41 (MTOM, signed VIHF), ITI-18
FindDocuments, ITI-43 Retrieve (IHE ITI TF-2b 3.41, 3.18, 3.43; ANS CI-SIS DMP TD2.1/3.1/3.2).

The ebRIM metadata uses the DMP value sets (JDV_J07/J57..J66), as the official TD2.1 example of
``reference/dmp/messages`` does. VIHF assertions are built and signed up front (client-side cost,
outside the measured window): each request carries its own assertion ID, as real LPS do.
"""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from lxml import etree

from espace.registry.config import DEFAULT_REPOSITORY_UNIQUE_ID
from xds import ns
from xds.mtom import build_mtom_request
from xds.vihf import build_soap_envelope, build_vihf, certificate_dn, sign_vihf

ITI41 = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
ITI18 = "urn:ihe:iti:2007:RegistryStoredQuery"
ITI43 = "urn:ihe:iti:2007:RetrieveDocumentSet"
FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
INS_OID = "1.2.250.1.213.1.4.10"
STRUCTURE = "499900063480001"
PS_OID, ST_OID = "1.2.250.1.71.4.2.1", "1.2.250.1.71.4.2.2"
AUTHOR = "899900063480"  # the test PKI's professional (a médecin, SM26)


@dataclass(frozen=True, slots=True)
class Signer:
    key_pem: bytes
    cert_pem: bytes

    @classmethod
    def from_pki(cls, pki: Any) -> Signer:
        return cls(pki.signing_key.read_bytes(), pki.signing_cert.read_bytes())


def signed_vihf(
    signer: Signer, *, patient_ins: str, now: datetime, professional_id: str = AUTHOR
) -> etree._Element:
    """A VIHF 3.0 assertion of a médecin (SM26) in direct mode, signed by the structure key."""
    assertion = build_vihf(
        professional_id=professional_id,
        profession="10",
        specialty="SM26",
        structure_id=STRUCTURE,
        issuer=certificate_dn(signer.cert_pem),
        issue_instant=now,
        patient_ins=patient_ins,
        patient_ins_oid=INS_OID,
        lifetime=timedelta(minutes=55),
    )
    return sign_vihf(assertion, signer.key_pem, signer.cert_pem)


def envelope(action: str, body: etree._Element, assertion: etree._Element | None) -> bytes:
    data: bytes = etree.tostring(
        build_soap_envelope(action, body, assertion), xml_declaration=True, encoding="UTF-8"
    )
    return data


def cda(ins: str, size: int) -> bytes:
    """A CDA R2 N1 document (CI-SIS structured header, unstructured body) of about ``size``
    bytes, for patient ``ins`` (recordTarget must match the submission's patientId)."""
    head = f"""<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3">
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>
  <id root="1.2.250.1.999.1.{uuid.uuid4().int % 10**9}"/>
  <code code="11502-2" codeSystem="2.16.840.1.113883.6.1"/>
  <title>CR d'examens biologiques</title>
  <confidentialityCode code="N" codeSystem="2.16.840.1.113883.5.25"/>
  <recordTarget><patientRole><id extension="{ins}" root="{INS_OID}"/></patientRole></recordTarget>
  <component><nonXMLBody><text mediaType="application/pdf" representation="B64">"""
    tail = "</text></nonXMLBody></component>\n</ClinicalDocument>\n"
    raw = max(0, (size - len(head) - len(tail)) * 3 // 4)
    body = base64.encodebytes(os.urandom(raw)).decode()
    return (head + body + tail).encode()


def _slot(name: str, *values: str) -> str:
    inner = "".join(f"<Value>{v}</Value>" for v in values)
    return f'<Slot name="{name}"><ValueList>{inner}</ValueList></Slot>'


def _classification(scheme: str, owner: str, code: str, coding: str, name: str) -> str:
    return (
        f'<Classification classificationScheme="{scheme}" classifiedObject="{owner}" '
        f'id="cl{uuid.uuid4().hex[:12]}" nodeRepresentation="{code}">'
        f"{_slot('codingScheme', coding)}<Name><LocalizedString value=\"{name}\"/></Name>"
        "</Classification>"
    )


def _author(scheme: str, owner: str) -> str:
    return (
        f'<Classification classificationScheme="{scheme}" classifiedObject="{owner}" '
        f'id="cl{uuid.uuid4().hex[:12]}" nodeRepresentation="">'
        + _slot("authorPerson", f"{AUTHOR}^LIBRE^MAX^^^^^^&amp;{PS_OID}&amp;ISO^D^^^IDNPS")
        + _slot("authorInstitution", f"CABINET^^^^^&amp;{ST_OID}&amp;ISO^IDNST^^^{STRUCTURE}")
        + _slot("authorSpecialty", "G15_10/SM26^Médecin - Médecine générale^1.2.250.1.213.1.1.4.5")
        + "</Classification>"
    )


def _external(owner: str, scheme: str, value: str, name: str) -> str:
    return (
        f'<ExternalIdentifier id="ei{uuid.uuid4().hex[:12]}" registryObject="{owner}" '
        f'identificationScheme="{scheme}" value="{value}"><Name><LocalizedString value="{name}"/>'
        "</Name></ExternalIdentifier>"
    )


def provide_and_register(ins: str, content: bytes) -> tuple[etree._Element, dict[str, Any], str]:
    """ITI-41 body for one document of ``ins``; returns (body, MTOM attachments, uniqueId)."""
    pid = f"{ins}^^^&amp;{INS_OID}&amp;ISO^NH"
    uid = f"1.2.250.1.999.3.{uuid.uuid4().int % 10**15}"
    ss_uid = f"1.2.250.1.999.4.{uuid.uuid4().int % 10**15}"
    doc, ss = "Document01", "SubmissionSet01"
    objects = (
        f'<RegistryPackage id="{ss}">'
        + _slot("submissionTime", datetime.now().strftime("%Y%m%d%H%M%S"))
        + '<Name><LocalizedString value="Lot"/></Name>'
        + _author("urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d", ss)
        + _classification("urn:uuid:aa543740-bdda-424e-8c96-df4873be8500", ss, "04",
                          "1.2.250.1.213.2.2", "Hospitalisation de jour")
        + f'<Classification classificationNode="urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd" '
        f'classifiedObject="{ss}" id="cl{uuid.uuid4().hex[:12]}"/>'
        + _external(ss, "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446", pid,
                    "XDSSubmissionSet.patientId")
        + _external(ss, "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832", "1.2.250.1.999.1.1.7898",
                    "XDSSubmissionSet.sourceId")
        + _external(ss, "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8", ss_uid,
                    "XDSSubmissionSet.uniqueId")
        + "</RegistryPackage>"
        + f'<ExtrinsicObject id="{doc}" mimeType="text/xml" '
        'objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1">'
        + _slot("creationTime", "20260105080000")
        + _slot("languageCode", "fr-FR")
        + _slot("serviceStartTime", "20260105070000")
        + _slot("sourcePatientId", pid)
        + '<Name><LocalizedString value="CR d\'examens biologiques"/></Name>'
        + _author("urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d", doc)
        + _classification("urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a", doc, "10",
                          "1.2.250.1.213.1.1.4.1", "Compte rendu")
        + _classification("urn:uuid:f0306f51-975f-434e-a61c-c59651d33983", doc, "11502-2",
                          "2.16.840.1.113883.6.1", "CR d'examens biologiques")
        + _classification("urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f", doc, "N",
                          "2.16.840.1.113883.5.25", "Normal")
        + _classification("urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d", doc,
                          "urn:ihe:iti:xds-sd:text:2008", "1.3.6.1.4.1.19376.1.2.3", "format")
        + _classification("urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1", doc, "SA07",
                          "1.2.250.1.71.4.2.4", "Cabinet individuel")
        + _classification("urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead", doc, "ETABLISSEMENT",
                          "1.2.250.1.213.1.1.4.9", "Etablissement de santé")
        + _external(doc, "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427", pid,
                    "XDSDocumentEntry.patientId")
        + _external(doc, "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab", uid,
                    "XDSDocumentEntry.uniqueId")
        + "</ExtrinsicObject>"
        + f'<Association associationType="urn:oasis:names:tc:ebxml-regrep:AssociationType:'
        f'HasMember" id="as{uuid.uuid4().hex[:12]}" sourceObject="{ss}" targetObject="{doc}">'
        + _slot("SubmissionSetStatus", "Original")
        + "</Association>"
    )
    xml = (
        f'<xds:ProvideAndRegisterDocumentSetRequest xmlns:xds="{ns.XDS}">'
        f'<lcm:SubmitObjectsRequest xmlns:lcm="{ns.LCM}" xmlns="{ns.RIM}">'
        f"<RegistryObjectList>{objects}</RegistryObjectList></lcm:SubmitObjectsRequest>"
        f'<xds:Document id="{doc}"><xop:Include xmlns:xop="{ns.XOP}" href="cid:doc1@bench"/>'
        "</xds:Document></xds:ProvideAndRegisterDocumentSetRequest>"
    )
    return etree.fromstring(xml.encode()), {"doc1@bench": (content, "text/xml")}, uid


def iti41_request(
    signer: Signer, ins: str, content: bytes, now: datetime
) -> tuple[bytes, str, str, bytes]:
    """(MTOM body, Content-Type, document uniqueId, SOAP envelope) of one ITI-41."""
    body, attachments, uid = provide_and_register(ins, content)
    env = envelope(ITI41, body, signed_vihf(signer, patient_ins=ins, now=now))
    payload, content_type = build_mtom_request(env, attachments, action=ITI41)
    return payload, content_type, uid, env


def find_documents(ins: str) -> etree._Element:
    status = "('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')"
    xml = (
        f'<query:AdhocQueryRequest xmlns:query="{ns.QUERY}" xmlns="{ns.RIM}">'
        '<query:ResponseOption returnComposedObjects="true" returnType="LeafClass"/>'
        f'<AdhocQuery id="{FIND_DOCUMENTS}">'
        + _slot("$XDSDocumentEntryPatientId", f"'{ins}^^^&amp;{INS_OID}&amp;ISO^NH'")
        + _slot("$XDSDocumentEntryStatus", status)
        + "</AdhocQuery></query:AdhocQueryRequest>"
    )
    return etree.fromstring(xml.encode())


def iti18_request(signer: Signer, ins: str, now: datetime) -> tuple[bytes, str]:
    env = envelope(ITI18, find_documents(ins), signed_vihf(signer, patient_ins=ins, now=now))
    return env, f'application/soap+xml; charset=UTF-8; action="{ITI18}"'


def iti43_request(signer: Signer, ins: str, unique_id: str, now: datetime) -> tuple[bytes, str]:
    xml = (
        f'<RetrieveDocumentSetRequest xmlns="{ns.XDS}"><DocumentRequest>'
        f"<RepositoryUniqueId>{DEFAULT_REPOSITORY_UNIQUE_ID}</RepositoryUniqueId>"
        f"<DocumentUniqueId>{unique_id}</DocumentUniqueId></DocumentRequest>"
        "</RetrieveDocumentSetRequest>"
    )
    body = etree.fromstring(xml.encode())
    env = envelope(ITI43, body, signed_vihf(signer, patient_ins=ins, now=now))
    return env, f'application/soap+xml; charset=UTF-8; action="{ITI43}"'


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def registry_status(response: bytes) -> str:
    """``Success``/``Failure``/... of a RegistryResponse (or ``Fault``), without a full parse."""
    marker = b"urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:"
    at = response.find(marker)
    if at < 0:
        return "Fault" if b"Fault" in response else "?"
    end = response.find(b'"', at)
    return response[at + len(marker) : end].decode()


def error_codes(response: bytes) -> list[str]:
    codes: list[str] = []
    start = 0
    while True:
        at = response.find(b'errorCode="', start)
        if at < 0:
            return codes
        end = response.find(b'"', at + 11)
        codes.append(response[at + 11 : end].decode())
        start = end
