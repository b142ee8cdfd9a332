"""A small XDS.b SOAP client: VIHF-signed SOAP 1.2 requests, MTOM when the transaction wants it.

Requests are built with :mod:`xds.vihf` (``build_vihf``/``sign_vihf``/``build_soap_envelope``)
and :func:`xds.mtom.build_mtom_request`, signed with the kit PKI; responses are read with
:func:`xds.mtom.parse_mtom` and :func:`xds.xml.parse_xml`, the same primitives the server uses,
so what the report shows is exactly what crossed the wire.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

import httpx
from lxml import etree

from conformance.model import CaseResult
from conformance.transport import Transport
from habilitation.model import AccessMode
from mes.pki import TestPki
from xds import ns
from xds.mtom import MtomError, build_mtom_request, parse_mtom, resolve_xop_includes
from xds.vihf import (
    build_soap_envelope,
    build_vihf,
    certificate_dn,
    sign_vihf,
    wrap_in_security_header,
)
from xds.xml import XmlSecurityError, parse_xml


@dataclass(frozen=True)
class Transaction:
    """One IHE transaction: its WS-Addressing action, actor side and encoding."""

    name: str
    action: str
    side: str  # "registry" | "repository"
    mtom: bool


#: ITI TF-2 (and the IPF WSDLs for ITI-57/62): request actions (tf-samples/soap_actions.csv).
TRANSACTIONS: Final = {
    "ITI-41": Transaction(
        "ITI-41", "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b", "repository", True
    ),
    "ITI-42": Transaction("ITI-42", "urn:ihe:iti:2007:RegisterDocumentSet-b", "registry", False),
    "ITI-18": Transaction("ITI-18", "urn:ihe:iti:2007:RegistryStoredQuery", "registry", False),
    "ITI-43": Transaction("ITI-43", "urn:ihe:iti:2007:RetrieveDocumentSet", "repository", True),
    "ITI-57": Transaction("ITI-57", "urn:ihe:iti:2010:UpdateDocumentSet", "registry", False),
    "ITI-62": Transaction("ITI-62", "urn:ihe:iti:2010:DeleteDocumentSet", "registry", False),
}


@dataclass(frozen=True)
class XdsEndpoints:
    """Paths (or URLs) of the registry and repository SOAP endpoints on the target."""

    registry: str = "/xds/registry"
    repository: str = "/xds/repository"

    def for_side(self, side: str) -> str:
        return self.repository if side == "repository" else self.registry


@dataclass(frozen=True)
class KitProfessional:
    """Who the kit claims to be in its VIHF: a médecin (G15 10, R01 SM26), direct CPS mode."""

    professional_id: str
    structure_id: str
    profession: str = "10"
    specialty: str = "SM26"
    subject_name: str = "Dr Conformité Kit"


@dataclass
class SoapReply:
    """A parsed response: HTTP status, SOAP body child, attachments by Content-ID."""

    status: int
    content_type: str
    envelope: etree._Element | None = None
    body_child: etree._Element | None = None
    fault_code: str = ""
    attachments: dict[str, bytes] = field(default_factory=dict)
    resolved: dict[etree._Element, bytes] = field(default_factory=dict)
    problem: str = ""

    @property
    def is_fault(self) -> bool:
        return self.body_child is not None and self.body_child.tag == f"{{{ns.SOAP12}}}Fault"


class XdsClient:
    """Send XDS.b transactions to the target with a signed VIHF (ANS CI-SIS VIHF 3.0)."""

    def __init__(
        self,
        transport: Transport,
        pki: TestPki,
        endpoints: XdsEndpoints,
        professional: KitProfessional | None = None,
    ) -> None:
        self.transport = transport
        self.pki = pki
        self.endpoints = endpoints
        self.professional = professional or KitProfessional(
            professional_id=pki.professional_id, structure_id=pki.structure_id
        )
        self._cert = pki.signing_cert.read_bytes()
        self._key = pki.signing_key.read_bytes()

    def assertion(
        self,
        patient_ins: str | None,
        patient_oid: str,
        access_mode: AccessMode = AccessMode.NORMAL,
    ) -> etree._Element:
        """A freshly signed VIHF for ``patient_ins`` (in ``access_mode``, TRE_R248)."""
        me = self.professional
        unsigned = build_vihf(
            professional_id=me.professional_id,
            profession=me.profession,
            specialty=me.specialty,
            structure_id=me.structure_id,
            subject_name=me.subject_name,
            issuer=certificate_dn(self._cert),
            issue_instant=datetime.now(UTC) - timedelta(seconds=5),
            patient_ins=patient_ins,
            patient_ins_oid=patient_oid,
            lifetime=timedelta(minutes=10),
            software_name="MES conformance kit",
            access_mode=access_mode,
        )
        return sign_vihf(unsigned, self._key, self._cert)

    def envelope(
        self,
        transaction: Transaction,
        body: etree._Element,
        *,
        patient_ins: str | None,
        patient_oid: str,
    ) -> bytes:
        to = self.transport.url(self.endpoints.for_side(transaction.side))
        envelope = build_soap_envelope(
            transaction.action,
            body,
            self.assertion(patient_ins, patient_oid),
            to=to,
        )
        return bytes(etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"))

    def call(
        self,
        case: CaseResult | None,
        label: str,
        transaction: Transaction,
        body: etree._Element,
        *,
        patient_ins: str | None,
        patient_oid: str,
        attachments: Mapping[str, tuple[bytes, str]] | None = None,
    ) -> SoapReply:
        """Send ``body`` as ``transaction``; MTOM for ITI-41/43, plain SOAP 1.2 otherwise."""
        envelope = self.envelope(
            transaction, body, patient_ins=patient_ins, patient_oid=patient_oid
        )
        if transaction.mtom:
            payload, content_type = build_mtom_request(
                envelope, dict(attachments or {}), action=transaction.action
            )
        else:
            payload = envelope
            content_type = f'application/soap+xml; charset=UTF-8; action="{transaction.action}"'
        return self.post_raw(
            case, label, self.endpoints.for_side(transaction.side), payload, content_type
        )

    def post_raw(
        self,
        case: CaseResult | None,
        label: str,
        path: str,
        payload: bytes,
        content_type: str,
    ) -> SoapReply:
        response = self.transport.send(
            case, label, "POST", path, headers={"Content-Type": content_type}, content=payload
        )
        return read_reply(response)


def read_reply(response: httpx.Response) -> SoapReply:
    """Parse a SOAP (or MTOM) response; ``problem`` says why it could not be read."""
    content_type = response.headers.get("Content-Type", "")
    reply = SoapReply(status=response.status_code, content_type=content_type)
    try:
        message = parse_mtom(response.content, content_type or "application/soap+xml")
        envelope = parse_xml(message.root_xml)
    except (MtomError, XmlSecurityError, ValueError) as exc:
        reply.problem = f"unreadable response ({content_type!r}): {exc}"
        return reply
    reply.envelope = envelope
    reply.attachments = dict(message.attachments)
    body = envelope.find(f"{{{ns.SOAP12}}}Body")
    if envelope.tag != f"{{{ns.SOAP12}}}Envelope" or body is None or len(body) == 0:
        reply.problem = f"not a SOAP 1.2 envelope with a body: root {envelope.tag}"
        return reply
    reply.body_child = body[0]
    if reply.is_fault:
        codes = reply.body_child.xpath(".//s:Code//s:Value/text()", namespaces={"s": ns.SOAP12})
        reply.fault_code = " / ".join(str(code).strip() for code in codes)
    try:
        reply.resolved = resolve_xop_includes(envelope, message.attachments)
    except MtomError as exc:
        reply.problem = f"bad XOP reference in the response: {exc}"
    return reply


_PLACEHOLDER: Final = "conformance-kit-vihf-placeholder"


def put_assertion(envelope: etree._Element, assertion: etree._Element) -> bytes:
    """Serialize ``envelope`` with ``assertion`` in a ``wsse:Security`` header, byte-exact.

    Appending a signed assertion to a tree whose ancestors declare the same namespace under
    another prefix (``xmlns:urn="urn:hl7-org:v3"`` in the DMP's HL7v3 examples) lets lxml
    rewrite ``<Role xmlns="urn:hl7-org:v3">`` as ``<urn:Role>``, which breaks the
    exclusive-c14n digest. The assertion is therefore spliced in as serialized on its own.
    """
    soap_ns = etree.QName(envelope).namespace or ns.SOAP12
    header = envelope.find(f"{{{soap_ns}}}Header")
    if header is None:
        header = etree.Element(f"{{{soap_ns}}}Header")
        envelope.insert(0, header)
    for security in header.findall(f"{{{ns.WSSE}}}Security"):
        header.remove(security)
    security = wrap_in_security_header(etree.Element("placeholder"), soap_ns=soap_ns)
    security[0].addprevious(etree.Comment(_PLACEHOLDER))
    security.remove(security[1])
    header.append(security)
    data = etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
    marker = f"<!--{_PLACEHOLDER}-->".encode()
    assertion_bytes = bytes(etree.tostring(assertion, encoding="UTF-8")).split(b"?>", 1)[-1]
    return bytes(data).replace(marker, assertion_bytes)
