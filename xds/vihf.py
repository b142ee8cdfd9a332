"""VIHF: the signed SAML 2.0 assertion that authenticates a DMP caller (ANS CI-SIS, "Volet
Identification des Habilitations et des Flux"), carried in the WS-Security header.

Three groups of functions:

- :func:`verify_vihf` turns a SOAP envelope into a :class:`VerifiedVihf` (an
  :class:`~habilitation.model.Actor` plus the patient INS) or raises :class:`VihfError`;
- :func:`read_vihf_attributes` and :func:`actor_from_vihf` read and interpret an assertion
  (``verify_vihf`` calls them on the element that signxml returns, never on the request tree);
- :func:`build_vihf`, :func:`sign_vihf`, :func:`wrap_in_security_header` and
  :func:`build_soap_envelope` issue assertions shaped like the ANS examples, for tests, demo
  data and the conformance kit.

Signing-certificate rule. IGC-Santé and the CPS issue one *authentication* certificate
(KeyUsage ``digitalSignature``, EKU ``clientAuth``) and one *signature* certificate (KeyUsage
``digitalSignature`` + ``nonRepudiation``); for a structure ("personne morale") these are the
``ORG_AUTH_CLI`` and the ``ORG_SIGN`` "cachet" certificates. A VIHF must be signed by a
certificate whose KeyUsage asserts both ``digitalSignature`` and ``nonRepudiation``, that is
not a CA, and whose ExtendedKeyUsage, if present, is not limited to TLS purposes
(``clientAuth``/``serverAuth``). Anything else is ``NOT_SIGNATURE_CERTIFICATE``.

Sources for indirect authentication (structure certificate), AIR included:

- DMP integration guide SEL-MP-037, requirement EX_GEN-1450 (as quoted in the DevBox-Santé
  homologation tracker, bitbucket.org/devbox-sante/homologation issue 29): the structure
  acquires two IGC-Santé "personne morale" software certificates, an authentication
  certificate (gamme élémentaire ``ORG_AUTH_CLI``) "pour établir la liaison TLS avec
  authentification mutuelle" and a "certificat de cachet" (``ORG_SIGN``) "pour réaliser la
  signature électronique du jeton VIHF";
- CNDA test 2.1-160 (same tracker, issue 68): ``ORG_AUTH_CLI`` for authentication, ``ORG_SIGN``
  for the signature, "mode nominal cible pour un LPS à partir de Mars 2017"; the AIR
  requirement EX_AIR-080 (issue 197) names the ``ORG_AUTH_CLI`` certificate for the TLS link;
- DMP LPS sample code v2.06.01 (``Dmp.cs``, ``UseAIR = true``): the VIHF is signed with the
  ``...-ORG-SIGN-....p12`` certificate (``CertificateHelper.SignatureCertificate``, also the VIHF
  Issuer), the ``...-ORG-AUTH_CLI-....p12`` one only opens TLS;
- the kit's ``VIHF_INDIRECTE_signe.xml`` is signed by an ``ORG_SIGN`` certificate
  (``digitalSignature`` + ``nonRepudiation``, EKU ``emailProtection``), which this rule accepts.

The 2019 AIR example ``VIHF_INDIRECTE_RENFORCEE_signe.xml`` ("Certificat Wizard DMP 2019-R2")
is signed with an ``ORG_AUTH_CLI`` certificate (``digitalSignature`` only, EKU ``clientAuth``):
it contradicts EX_GEN-1450 and the later sample code, so it stays refused.
"""

from __future__ import annotations

import base64
import threading
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final, Protocol

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import verification as x509v
from cryptography.x509.oid import ExtendedKeyUsageOID
from lxml import etree
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod
from signxml.exceptions import InvalidCertificate, InvalidInput, InvalidSignature
from signxml.signer import XMLSigner
from signxml.verifier import SignatureConfiguration, XMLVerifier

from habilitation.model import AccessMode, Actor, ActorKind, AuthenticationMode
from xds import ns
from xds.xml import parse_xml

# Code systems (reference/dmp/vihf/vihf_attributes.csv, terminology/csv/oids_dmp.csv)
OID_TRE_G15_PROFESSION: Final = "1.2.250.1.71.1.2.7"
OID_TRE_R01_SPECIALTY: Final = "1.2.250.1.71.4.2.5"
OID_TRE_G05_PHARMACIST_SECTION: Final = "1.2.250.1.71.4.2.6"
OID_TRE_R02_ACTIVITY_SECTOR: Final = "1.2.250.1.71.4.2.4"
OID_TRE_R248_ACCESS_MODE: Final = "1.2.250.1.213.1.1.4.248"
OID_TRE_A07_VISIBILITY: Final = "1.2.250.1.213.1.1.4.13"
OID_INS_NIR: Final = "1.2.250.1.213.1.4.8"
OID_INS_NIR_TEST: Final = "1.2.250.1.213.1.4.10"

ATTR_STRUCTURE: Final = "Identifiant_Structure"
ATTR_SECTOR: Final = "Secteur_Activite"
ATTR_SUBJECT_ID: Final = "urn:oasis:names:tc:xspa:1.0:subject:subject-id"
ATTR_ROLE: Final = "urn:oasis:names:tc:xacml:2.0:subject:role"
ATTR_VERSION: Final = "VIHF_Version"
ATTR_AUTH_MODE: Final = "Authentification_mode"
ATTR_RESOURCE_ID: Final = "urn:oasis:names:tc:xacml:2.0:resource:resource-id"
ATTR_RESOURCE_URN: Final = "Ressource_URN"
ATTR_PURPOSE: Final = "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse"
ATTR_CONFIDENTIALITY: Final = (
    "urn:oasis:names:tc:xspa:1.0:resource:patient:hl7:confidentiality-code"
)
ATTR_LPS_ID: Final = "LPS_ID"
ATTR_LPS_NAME: Final = "LPS_Nom"
ATTR_LPS_VERSION: Final = "LPS_Version"
ATTR_LPS_HOMOLOGATION: Final = "LPS_ID_HOMOLOGATION_DMP"
_ATTRIBUTE_ALIASES: Final = {"Authentification_Mode": ATTR_AUTH_MODE}

AUTHN_SMARTCARD: Final = "urn:oasis:names:tc:SAML:2.0:ac:classes:SmartcardPKI"
AUTHN_UNSPECIFIED: Final = "urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified"
ISSUER_FORMAT_X509: Final = "urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName"
SECRET_CONNECTION_CODE: Final = "INVISIBLE_REPRESENTANTS_LEGAUX"

_ENVELOPED: Final = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
_STRONG_SIGNATURES: Final = frozenset(
    {
        SignatureMethod.RSA_SHA256,
        SignatureMethod.RSA_SHA384,
        SignatureMethod.RSA_SHA512,
        SignatureMethod.ECDSA_SHA256,
        SignatureMethod.ECDSA_SHA384,
        SignatureMethod.ECDSA_SHA512,
    }
)
_STRONG_DIGESTS: Final = frozenset(
    {DigestAlgorithm.SHA256, DigestAlgorithm.SHA384, DigestAlgorithm.SHA512}
)
_XML_ID: Final = f"{{{ns.XML}}}id"
_MODES: Final = {
    "DIRECTE": AuthenticationMode.DIRECT,
    "CPE": AuthenticationMode.CPE,
    "INDIRECTE": AuthenticationMode.INDIRECT,
    "INDIRECTE_RENFORCEE": AuthenticationMode.INDIRECT_REINFORCED,
}
_SPECIALTY_SYSTEMS: Final = {"10": OID_TRE_R01_SPECIALTY, "21": OID_TRE_G05_PHARMACIST_SECTION}


class VihfErrorCode(StrEnum):
    """Why a VIHF was refused; :attr:`fault_subcode` is the WS-Security 1.1 fault (§12)."""

    MISSING_SECURITY_HEADER = "missing_security_header"
    MISSING_ASSERTION = "missing_assertion"
    MULTIPLE_ASSERTIONS = "multiple_assertions"
    DUPLICATE_ID = "duplicate_id"
    MISSING_SIGNATURE = "missing_signature"
    WRONG_REFERENCE = "wrong_reference"
    FORBIDDEN_TRANSFORM = "forbidden_transform"
    WEAK_ALGORITHM = "weak_algorithm"
    BAD_SIGNATURE = "bad_signature"
    UNTRUSTED_CERTIFICATE = "untrusted_certificate"
    CERTIFICATE_EXPIRED = "certificate_expired"
    NOT_SIGNATURE_CERTIFICATE = "not_signature_certificate"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    REPLAYED = "replayed"
    MISSING_ATTRIBUTE = "missing_attribute"
    INVALID_ATTRIBUTE = "invalid_attribute"
    MISSING_SPECIALTY = "missing_specialty"

    @property
    def fault_subcode(self) -> str:
        """The ``wsse:`` fault code local name (prefix it with :data:`xds.ns.WSSE`)."""
        return _FAULTS.get(self, "InvalidSecurityToken")


_FAULTS: Final = {
    VihfErrorCode.MISSING_SECURITY_HEADER: "InvalidSecurity",
    VihfErrorCode.MISSING_ASSERTION: "InvalidSecurity",
    VihfErrorCode.MULTIPLE_ASSERTIONS: "InvalidSecurity",
    VihfErrorCode.DUPLICATE_ID: "InvalidSecurity",
    VihfErrorCode.MISSING_SIGNATURE: "InvalidSecurity",
    VihfErrorCode.WRONG_REFERENCE: "InvalidSecurity",
    VihfErrorCode.FORBIDDEN_TRANSFORM: "InvalidSecurity",
    VihfErrorCode.WEAK_ALGORITHM: "UnsupportedAlgorithm",
    VihfErrorCode.BAD_SIGNATURE: "FailedCheck",
    VihfErrorCode.UNTRUSTED_CERTIFICATE: "FailedAuthentication",
    VihfErrorCode.CERTIFICATE_EXPIRED: "FailedAuthentication",
    VihfErrorCode.NOT_SIGNATURE_CERTIFICATE: "FailedAuthentication",
    VihfErrorCode.REPLAYED: "FailedAuthentication",
    VihfErrorCode.EXPIRED: "MessageExpired",
}


class VihfError(Exception):
    """A refused VIHF. The endpoint renders a SOAP Fault and writes a security-alert trace."""

    def __init__(self, code: VihfErrorCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class CodedValue:
    """An HL7 v3 CE (``Role``, ``PurposeOfUse``) or a ``code^codeSystem`` string."""

    code: str
    code_system: str = ""
    display_name: str = ""
    code_system_name: str = ""


@dataclass(frozen=True, slots=True)
class VihfAttributes:
    """What a VIHF assertion says, read but not yet interpreted (vihf_attributes.csv)."""

    assertion_id: str
    issue_instant: datetime
    issuer: str
    name_id: str
    authentication_mode: str
    structure_id: str
    activity_sector: CodedValue
    roles: tuple[CodedValue, ...]
    purpose_of_use: CodedValue
    vihf_version: str
    software_name: str
    software_version: str
    homologation_id: str
    resource_urn: str
    subject_id: str | None = None
    patient_ins: str | None = None
    patient_ins_oid: str | None = None
    confidentiality_codes: tuple[str, ...] = ()
    software_id: str | None = None
    not_before: datetime | None = None
    not_on_or_after: datetime | None = None
    authn_instant: datetime | None = None
    authn_context: str | None = None


@dataclass(frozen=True, slots=True)
class VerifiedVihf:
    actor: Actor
    patient_ins: str | None
    patient_ins_oid: str | None
    assertion_id: str
    signing_certificate_subject: str
    issuer: str
    expires_at: datetime
    attributes: VihfAttributes


# --------------------------------------------------------------------------- reading


def _q(namespace: str, local: str) -> str:
    return f"{{{namespace}}}{local}"


def _text(element: etree._Element | None) -> str:
    return "" if element is None else "".join(element.itertext()).strip()


def _datetime(value: str | None, what: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise VihfError(VihfErrorCode.INVALID_ATTRIBUTE, f"{what} is not an xs:dateTime") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _coded(element: etree._Element) -> CodedValue:
    return CodedValue(
        code=element.get("code", ""),
        code_system=element.get("codeSystem", ""),
        display_name=element.get("displayName", ""),
        code_system_name=element.get("codeSystemName", ""),
    )


def _caret(value: str) -> CodedValue:
    code, _, system = value.partition("^")
    return CodedValue(code=code, code_system=system)


def read_vihf_attributes(assertion: etree._Element) -> VihfAttributes:
    """Read a VIHF assertion into :class:`VihfAttributes`; raise ``VihfError`` if one is missing.

    Only call this on trusted input: the element returned by the signature verifier, or a
    fixture. It does not check the signature.
    """
    if assertion.tag != _q(ns.SAML2, "Assertion"):
        raise VihfError(
            VihfErrorCode.MISSING_ASSERTION, f"not a SAML 2.0 Assertion: {assertion.tag}"
        )
    assertion_id = assertion.get("ID")
    if not assertion_id:
        raise VihfError(VihfErrorCode.MISSING_ATTRIBUTE, "Assertion/@ID is missing")
    if assertion.get("Version") != "2.0":
        raise VihfError(VihfErrorCode.INVALID_ATTRIBUTE, "Assertion/@Version must be 2.0")
    issue_instant = _datetime(assertion.get("IssueInstant"), "IssueInstant")
    if issue_instant is None:
        raise VihfError(VihfErrorCode.MISSING_ATTRIBUTE, "Assertion/@IssueInstant is missing")
    name_ids = assertion.findall(f"{_q(ns.SAML2, 'Subject')}/{_q(ns.SAML2, 'NameID')}")
    if len(name_ids) > 1:
        raise VihfError(VihfErrorCode.INVALID_ATTRIBUTE, "several Subject/NameID")
    name_id = _text(name_ids[0]) if name_ids else ""
    if not name_id:
        raise VihfError(VihfErrorCode.MISSING_ATTRIBUTE, "Subject/NameID is missing")
    conditions = assertion.find(_q(ns.SAML2, "Conditions"))
    authn = assertion.find(_q(ns.SAML2, "AuthnStatement"))

    values: dict[str, list[etree._Element]] = {}
    for attribute in assertion.iterfind(
        f"{_q(ns.SAML2, 'AttributeStatement')}/{_q(ns.SAML2, 'Attribute')}"
    ):
        name = attribute.get("Name", "")
        name = _ATTRIBUTE_ALIASES.get(name, name)
        if name in values:
            raise VihfError(VihfErrorCode.INVALID_ATTRIBUTE, f"attribute {name} appears twice")
        values[name] = list(attribute.iterfind(_q(ns.SAML2, "AttributeValue")))

    def single(name: str, *, required: bool = True) -> str | None:
        found = values.get(name, [])
        if len(found) > 1:
            raise VihfError(VihfErrorCode.INVALID_ATTRIBUTE, f"attribute {name} has several values")
        text = _text(found[0]) if found else ""
        if not text:
            if required:
                raise VihfError(VihfErrorCode.MISSING_ATTRIBUTE, f"attribute {name} is missing")
            return None
        return text

    def required(name: str) -> str:
        return single(name) or ""  # single() raises when a required value is empty

    roles = tuple(
        _coded(role)
        for value in values.get(ATTR_ROLE, [])
        for role in value.iterfind(_q(ns.HL7, "Role"))
    )
    if not roles:
        raise VihfError(VihfErrorCode.MISSING_ATTRIBUTE, f"attribute {ATTR_ROLE} is missing")
    purposes = [
        p for v in values.get(ATTR_PURPOSE, []) for p in v.iterfind(_q(ns.HL7, "PurposeOfUse"))
    ]
    if len(purposes) != 1:
        raise VihfError(
            VihfErrorCode.MISSING_ATTRIBUTE if not purposes else VihfErrorCode.INVALID_ATTRIBUTE,
            f"attribute {ATTR_PURPOSE} needs exactly one PurposeOfUse",
        )
    confidentiality: list[str] = []
    for value in values.get(ATTR_CONFIDENTIALITY, []):
        coded = [_coded(child) for child in value if isinstance(child.tag, str)]
        confidentiality += [c.code for c in coded] if coded else [_caret(_text(value)).code]

    patient_ins = patient_oid = None
    resource = single(ATTR_RESOURCE_ID, required=False)
    if resource is not None:
        patient_ins, patient_oid = _parse_cx(resource)

    return VihfAttributes(
        assertion_id=assertion_id,
        issue_instant=issue_instant,
        issuer=_text(assertion.find(_q(ns.SAML2, "Issuer"))),
        name_id=name_id,
        authentication_mode=required(ATTR_AUTH_MODE),
        structure_id=required(ATTR_STRUCTURE),
        activity_sector=_caret(required(ATTR_SECTOR)),
        roles=roles,
        purpose_of_use=_coded(purposes[0]),
        vihf_version=required(ATTR_VERSION),
        software_name=required(ATTR_LPS_NAME),
        software_version=required(ATTR_LPS_VERSION),
        homologation_id=required(ATTR_LPS_HOMOLOGATION),
        resource_urn=required(ATTR_RESOURCE_URN),
        subject_id=single(ATTR_SUBJECT_ID, required=False),
        patient_ins=patient_ins,
        patient_ins_oid=patient_oid,
        confidentiality_codes=tuple(c for c in confidentiality if c),
        software_id=single(ATTR_LPS_ID, required=False),
        not_before=_datetime(
            conditions.get("NotBefore") if conditions is not None else None, "Conditions/@NotBefore"
        ),
        not_on_or_after=_datetime(
            conditions.get("NotOnOrAfter") if conditions is not None else None,
            "Conditions/@NotOnOrAfter",
        ),
        authn_instant=_datetime(
            authn.get("AuthnInstant") if authn is not None else None, "AuthnInstant"
        ),
        authn_context=_text(authn.find(f".//{_q(ns.SAML2, 'AuthnContextClassRef')}"))
        if authn is not None
        else None,
    )


def _parse_cx(value: str) -> tuple[str, str]:
    """Split an HL7 v2 CX ``ID^^^&OID&ISO^NH`` (the VIHF resource-id) into (id, oid)."""
    parts = value.split("^")
    authority = parts[3].split("&") if len(parts) >= 4 else []
    if (
        len(parts) != 5
        or not parts[0]
        or parts[1]
        or parts[2]
        or len(authority) != 3
        or authority[0]
        or not authority[1]
        or authority[2] != "ISO"
        or parts[4] != "NH"
    ):
        raise VihfError(
            VihfErrorCode.INVALID_ATTRIBUTE,
            f"resource-id is not an INS of the form ID^^^&OID&ISO^NH: {value!r}",
        )
    return parts[0], authority[1]


def actor_from_vihf(attributes: VihfAttributes) -> Actor:
    """Interpret VIHF attributes as a professional :class:`Actor` (DMP rules).

    Profession = role #1 when it is TRE_G15 (otherwise a non-PS role: ``profession`` None).
    Specialty = the first later role in TRE_R01 (médecins) or TRE_G05 (pharmaciens); it is
    mandatory for both, as the DMP requires (vihf_attributes.csv, row ``subject:role``).
    """
    mode = _MODES.get(attributes.authentication_mode)
    if mode is None:
        raise VihfError(
            VihfErrorCode.INVALID_ATTRIBUTE,
            f"unknown Authentification_mode {attributes.authentication_mode!r}",
        )
    if attributes.resource_urn != "urn:dmp":
        raise VihfError(VihfErrorCode.INVALID_ATTRIBUTE, "Ressource_URN must be urn:dmp")
    if mode in (AuthenticationMode.INDIRECT, AuthenticationMode.INDIRECT_REINFORCED) and not (
        attributes.subject_id
    ):
        raise VihfError(
            VihfErrorCode.MISSING_ATTRIBUTE, f"{ATTR_SUBJECT_ID} is required in {mode} mode"
        )
    purpose = attributes.purpose_of_use
    try:
        access_mode = AccessMode(purpose.code)
    except ValueError:
        raise VihfError(
            VihfErrorCode.INVALID_ATTRIBUTE, f"unknown purposeofuse {purpose.code!r}"
        ) from None
    if purpose.code_system != OID_TRE_R248_ACCESS_MODE:
        raise VihfError(VihfErrorCode.INVALID_ATTRIBUTE, "purposeofuse must be coded in TRE_R248")
    first = attributes.roles[0]
    profession = first.code if first.code_system == OID_TRE_G15_PROFESSION else None
    specialty = next(
        (
            r
            for r in attributes.roles[1:]
            if r.code_system in (OID_TRE_R01_SPECIALTY, OID_TRE_G05_PHARMACIST_SECTION)
        ),
        None,
    )
    if profession in _SPECIALTY_SYSTEMS and (
        specialty is None or specialty.code_system != _SPECIALTY_SYSTEMS[profession]
    ):
        raise VihfError(
            VihfErrorCode.MISSING_SPECIALTY,
            f"profession {profession} requires a role #2 specialty coded in "
            f"{_SPECIALTY_SYSTEMS[profession]}",
        )
    sector = attributes.activity_sector
    if sector.code_system and sector.code_system != OID_TRE_R02_ACTIVITY_SECTOR:
        raise VihfError(
            VihfErrorCode.INVALID_ATTRIBUTE, "Secteur_Activite must be coded in TRE_R02"
        )
    return Actor(
        kind=ActorKind.PROFESSIONAL,
        id=attributes.name_id,
        name=attributes.subject_id or "",
        profession=profession,
        specialty=specialty.code if specialty is not None else None,
        structure_id=attributes.structure_id,
        activity_sector=sector.code,
        authentication_mode=mode,
        access_mode=access_mode,
        software=f"{attributes.software_name} {attributes.software_version}",
        secret_connection=SECRET_CONNECTION_CODE in attributes.confidentiality_codes,
    )


# --------------------------------------------------------------------------- replay cache


class ReplayCache(Protocol):
    """Remembers assertion IDs until they expire (a port: in memory, Redis, SQL...)."""

    def add(self, assertion_id: str, *, expires_at: datetime, now: datetime) -> bool:
        """Record ``assertion_id``; return False if it is already recorded and not expired."""
        ...


class InMemoryReplayCache:
    """A process-local :class:`ReplayCache` (one node only; use a shared store behind a LB)."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._seen: dict[str, datetime] = {}
        self._lock = threading.Lock()
        self._max_entries = max_entries

    def add(self, assertion_id: str, *, expires_at: datetime, now: datetime) -> bool:
        with self._lock:
            known = self._seen.get(assertion_id)
            if known is not None and known > now:
                return False
            if len(self._seen) >= self._max_entries:
                self._seen = {k: v for k, v in self._seen.items() if v > now}
                if len(self._seen) >= self._max_entries:
                    raise VihfError(VihfErrorCode.REPLAYED, "replay cache is full")
            self._seen[assertion_id] = expires_at
            return True


# --------------------------------------------------------------------------- verification


def _fail(code: VihfErrorCode, message: str) -> VihfError:
    return VihfError(code, message)


def _security_header(envelope: etree._Element) -> etree._Element:
    if envelope.tag not in (_q(ns.SOAP12, "Envelope"), _q(ns.SOAP11, "Envelope")):
        raise _fail(VihfErrorCode.MISSING_SECURITY_HEADER, "not a SOAP envelope")
    soap = etree.QName(envelope).namespace or ns.SOAP12
    headers = envelope.findall(_q(soap, "Header"))
    securities = [s for h in headers for s in h.findall(_q(ns.WSSE, "Security"))]
    if len(headers) != 1 or len(securities) != 1:
        raise _fail(
            VihfErrorCode.MISSING_SECURITY_HEADER,
            f"expected one SOAP Header with one wsse:Security, found {len(securities)}",
        )
    return securities[0]


def _check_unique_ids(
    envelope: etree._Element, security: etree._Element, assertion_id: str
) -> None:
    """Refuse duplicate ``ID``/``Id`` (any namespace, e.g. ``wsu:Id``) and ``xml:id`` values.

    Lowercase ``id`` attributes legitimately repeat in ebRIM/XDS bodies (``xdsb:Document/@id``
    equals its ``ExtrinsicObject/@id``), so they count only inside the Security header, and
    whenever they carry the assertion's ID (signxml would resolve ``id`` too).
    """
    ids: Counter[str] = Counter()
    assertion_id_uses = 0
    for element in envelope.iter(etree.Element):
        for name, value in element.attrib.items():
            local = etree.QName(name).localname
            if local in ("ID", "Id") or name == _XML_ID:
                ids[value] += 1
            if local in ("ID", "Id", "id") and value == assertion_id:
                assertion_id_uses += 1
    for element in security.iter(etree.Element):
        for name, value in element.attrib.items():
            if etree.QName(name).localname == "id" and name != _XML_ID:
                ids[value] += 1
    duplicates = sorted(value for value, count in ids.items() if count > 1)
    if duplicates or assertion_id_uses > 1:
        raise _fail(
            VihfErrorCode.DUPLICATE_ID,
            f"duplicate ID attribute values: {duplicates or [assertion_id]}",
        )


def _check_signature_shape(signature: etree._Element, assertion_id: str, allow_sha1: bool) -> None:
    signed_info = signature.find(_q(ns.DS, "SignedInfo"))
    if signed_info is None:
        raise _fail(VihfErrorCode.BAD_SIGNATURE, "ds:SignedInfo is missing")
    if signature.find(_q(ns.DS, "Object")) is not None:
        raise _fail(VihfErrorCode.BAD_SIGNATURE, "ds:Object is not allowed in a VIHF signature")
    c14n = signed_info.find(_q(ns.DS, "CanonicalizationMethod"))
    if c14n is None or c14n.get("Algorithm") != ns.EXC_C14N:
        raise _fail(VihfErrorCode.FORBIDDEN_TRANSFORM, "SignedInfo must use exclusive c14n")
    allowed_signatures = {m.value for m in _STRONG_SIGNATURES}
    allowed_digests = {d.value for d in _STRONG_DIGESTS}
    if allow_sha1:
        allowed_signatures.add(SignatureMethod.RSA_SHA1.value)
        allowed_digests.add(DigestAlgorithm.SHA1.value)
    method = signed_info.find(_q(ns.DS, "SignatureMethod"))
    if method is None or method.get("Algorithm") not in allowed_signatures:
        raise _fail(
            VihfErrorCode.WEAK_ALGORITHM,
            f"signature method not allowed: {None if method is None else method.get('Algorithm')}",
        )
    references = signed_info.findall(_q(ns.DS, "Reference"))
    if len(references) != 1 or references[0].get("URI") != f"#{assertion_id}":
        raise _fail(
            VihfErrorCode.WRONG_REFERENCE, "the signature must reference the assertion itself, once"
        )
    transforms = [
        t.get("Algorithm") for t in references[0].iterfind(f"{_q(ns.DS, 'Transforms')}/*")
    ]
    if _ENVELOPED not in transforms or any(t not in (_ENVELOPED, ns.EXC_C14N) for t in transforms):
        raise _fail(VihfErrorCode.FORBIDDEN_TRANSFORM, f"transforms not allowed: {transforms}")
    digest = references[0].find(_q(ns.DS, "DigestMethod"))
    if digest is None or digest.get("Algorithm") not in allowed_digests:
        raise _fail(
            VihfErrorCode.WEAK_ALGORITHM,
            f"digest method not allowed: {None if digest is None else digest.get('Algorithm')}",
        )


def is_signature_certificate(certificate: x509.Certificate) -> bool:
    """Apply the signing-certificate rule of this module's docstring.

    A CPS signature certificate or a structure's ``ORG_SIGN`` "cachet" passes; an
    authentication certificate (CPS or ``ORG_AUTH_CLI``, SEL-MP-037 EX_GEN-1450) does not.
    """
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return False
    if not (usage.digital_signature and usage.content_commitment) or usage.key_cert_sign:
        return False
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
        if constraints.ca:
            return False
    except x509.ExtensionNotFound:
        pass
    try:
        purposes = set(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return True
    return not purposes <= {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH}


def _signing_certificate(
    signature: etree._Element, trusted_ca_pems: Sequence[bytes], now: datetime
) -> x509.Certificate:
    texts = [
        _text(c)
        for c in signature.iterfind(
            f"{_q(ns.DS, 'KeyInfo')}/{_q(ns.DS, 'X509Data')}/{_q(ns.DS, 'X509Certificate')}"
        )
    ]
    if not texts:
        raise _fail(VihfErrorCode.UNTRUSTED_CERTIFICATE, "no X509Certificate in ds:KeyInfo")
    try:
        certs = [
            x509.load_der_x509_certificate(base64.b64decode("".join(t.split()))) for t in texts
        ]
    except (ValueError, x509.InvalidVersion) as exc:  # InvalidVersion is no ValueError
        raise _fail(
            VihfErrorCode.UNTRUSTED_CERTIFICATE, f"unreadable X509Certificate: {exc}"
        ) from None
    try:
        return _examine_chain(certs, trusted_ca_pems, now)
    except (
        ValueError,
        x509.DuplicateExtension,
        x509.UnsupportedGeneralNameType,
        x509.InvalidVersion,
        TypeError,  # cryptography builds NameAttributes lazily and checks their ASN.1 types
    ) as exc:
        # cryptography parses subjects and extensions lazily: an unsigned, hostile KeyInfo can
        # carry a certificate whose outer DER loads and whose fields do not (WSS 1.1 §12: a bad
        # security header is a Sender fault, never a server error)
        raise _fail(
            VihfErrorCode.UNTRUSTED_CERTIFICATE, f"unreadable X509Certificate: {exc}"
        ) from None


def _examine_chain(
    certs: list[x509.Certificate], trusted_ca_pems: Sequence[bytes], now: datetime
) -> x509.Certificate:
    """Validity, chain to a trusted CA, signature usage of the leaf (may raise ValueError)."""
    leaf = next((c for c in certs if not _is_ca(c)), certs[0])
    intermediates = [c for c in certs if c is not leaf]
    if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
        raise _fail(
            VihfErrorCode.CERTIFICATE_EXPIRED,
            f"signing certificate valid {leaf.not_valid_before_utc} to {leaf.not_valid_after_utc}",
        )
    anchors = [c for pem in trusted_ca_pems for c in x509.load_pem_x509_certificates(pem)]
    if not anchors:
        raise _fail(VihfErrorCode.UNTRUSTED_CERTIFICATE, "no trusted CA configured")
    verifier = (
        x509v.PolicyBuilder()
        .store(x509v.Store(anchors))
        .time(now)
        .extension_policies(
            ca_policy=x509v.ExtensionPolicy.webpki_defaults_ca(),
            ee_policy=x509v.ExtensionPolicy.permit_all(),
        )
        .build_client_verifier()
    )
    try:
        verifier.verify(leaf, intermediates)
    except x509v.VerificationError as exc:
        raise _fail(
            VihfErrorCode.UNTRUSTED_CERTIFICATE,
            f"{subject_text(leaf)} does not chain to a trusted CA: {exc}",
        ) from None
    if not is_signature_certificate(leaf):
        raise _fail(
            VihfErrorCode.NOT_SIGNATURE_CERTIFICATE,
            f"{subject_text(leaf)} is not a signature (nonRepudiation) certificate",
        )
    return leaf


def subject_text(certificate: x509.Certificate) -> str:
    """RFC 4514 subject, printable only (it goes into fault texts and trace records)."""
    try:
        text = certificate.subject.rfc4514_string()
    except (ValueError, TypeError):  # TypeError: e.g. a BIT STRING attribute other than x500UID
        return "<unreadable subject>"
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _hardened_parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def verify_vihf(
    envelope_root: etree._Element,
    *,
    trusted_ca_pems: Sequence[bytes],
    now: datetime,
    clock_skew: timedelta = timedelta(minutes=5),
    allow_sha1: bool = False,
    replay_cache: ReplayCache | None = None,
    max_age: timedelta = timedelta(hours=1),
) -> VerifiedVihf:
    """Verify the VIHF of a SOAP envelope and return who is calling, about which patient.

    Order: structure (one wsse:Security, exactly one Assertion in the whole document, no
    duplicate ID/Id/wsu:Id/xml:id, one enveloped signature over the assertion itself with only
    enveloped + exc-c14n transforms and SHA-2 algorithms, SHA-1 only when ``allow_sha1``), then
    certificate (chains to ``trusted_ca_pems`` at ``now``, signature-certificate rule), then the
    signature (signxml, ``expect_references=1``), then validity dates (``Conditions``, or
    ``IssueInstant + max_age`` when the assertion has no ``NotOnOrAfter``) and replay. The
    identity is read only from signxml's ``signed_xml``, never from ``envelope_root`` (XSW).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    security = _security_header(envelope_root)
    assertions = list(envelope_root.iter(_q(ns.SAML2, "Assertion")))
    if not assertions:
        raise _fail(VihfErrorCode.MISSING_ASSERTION, "no SAML 2.0 assertion in wsse:Security")
    if len(assertions) > 1:
        raise _fail(
            VihfErrorCode.MULTIPLE_ASSERTIONS, f"{len(assertions)} SAML assertions in the message"
        )
    assertion = assertions[0]
    if assertion.getparent() is not security:
        raise _fail(
            VihfErrorCode.MISSING_ASSERTION, "the assertion is not a child of wsse:Security"
        )
    assertion_id = assertion.get("ID") or ""
    if not assertion_id:
        raise _fail(VihfErrorCode.MISSING_ATTRIBUTE, "Assertion/@ID is missing")
    _check_unique_ids(envelope_root, security, assertion_id)
    signatures = list(assertion.iter(_q(ns.DS, "Signature")))
    if len(signatures) != 1 or signatures[0].getparent() is not assertion:
        raise _fail(
            VihfErrorCode.MISSING_SIGNATURE, "the assertion must carry one enveloped ds:Signature"
        )
    signature = signatures[0]
    _check_signature_shape(signature, assertion_id, allow_sha1)
    certificate = _signing_certificate(signature, trusted_ca_pems, now)

    methods = set(_STRONG_SIGNATURES) | ({SignatureMethod.RSA_SHA1} if allow_sha1 else set())
    digests = set(_STRONG_DIGESTS) | ({DigestAlgorithm.SHA1} if allow_sha1 else set())
    config = SignatureConfiguration(
        require_x509=True,
        location="./",
        expect_references=1,
        signature_methods=frozenset(methods),
        digest_algorithms=frozenset(digests),
        verification_time=now,
    )
    try:
        result = XMLVerifier().verify(
            etree.tostring(assertion, with_tail=False),
            x509_cert=certificate,
            expect_config=config,
            parser=_hardened_parser(),
            id_attribute="ID",
        )
    except (
        InvalidSignature,
        InvalidInput,
        InvalidCertificate,
        etree.DocumentInvalid,
        etree.XMLSyntaxError,
        etree.C14NError,  # e.g. a relative namespace URI: not canonicalizable, so not verifiable
        ValueError,  # e.g. a non-ASCII character in ds:SignatureValue (signxml's base64 decoding)
    ) as exc:
        raise _fail(VihfErrorCode.BAD_SIGNATURE, f"signature verification failed: {exc}") from None
    assert not isinstance(result, list)
    signed = result.signed_xml
    if (
        signed is None
        or signed.tag != _q(ns.SAML2, "Assertion")
        or signed.get("ID") != assertion_id
    ):
        raise _fail(VihfErrorCode.WRONG_REFERENCE, "the signed element is not the assertion")

    attributes = read_vihf_attributes(signed)
    if attributes.issue_instant - clock_skew > now:
        raise _fail(
            VihfErrorCode.NOT_YET_VALID, f"IssueInstant {attributes.issue_instant} is in the future"
        )
    if attributes.not_before is not None and attributes.not_before - clock_skew > now:
        raise _fail(
            VihfErrorCode.NOT_YET_VALID, f"assertion not valid before {attributes.not_before}"
        )
    expires_at = attributes.not_on_or_after or attributes.issue_instant + max_age
    if expires_at + clock_skew <= now:
        raise _fail(VihfErrorCode.EXPIRED, f"assertion expired at {expires_at}")
    actor = actor_from_vihf(attributes)
    if replay_cache is not None and not replay_cache.add(
        assertion_id, expires_at=expires_at + clock_skew, now=now
    ):
        raise _fail(VihfErrorCode.REPLAYED, f"assertion {assertion_id} was already used")
    return VerifiedVihf(
        actor=actor,
        patient_ins=attributes.patient_ins,
        patient_ins_oid=attributes.patient_ins_oid,
        assertion_id=assertion_id,
        signing_certificate_subject=subject_text(certificate),
        issuer=attributes.issuer,
        expires_at=expires_at,
        attributes=attributes,
    )


# --------------------------------------------------------------------------- issuing


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_vihf(
    *,
    professional_id: str,
    profession: str,
    structure_id: str,
    issuer: str,
    issue_instant: datetime,
    specialty: str | None = None,
    patient_ins: str | None = None,
    patient_ins_oid: str = OID_INS_NIR_TEST,
    authentication_mode: AuthenticationMode = AuthenticationMode.DIRECT,
    access_mode: AccessMode = AccessMode.NORMAL,
    activity_sector: str = "SA07",
    subject_name: str | None = None,
    secret_connection: bool = False,
    profession_system: str = OID_TRE_G15_PROFESSION,
    specialty_system: str | None = None,
    extra_roles: Iterable[CodedValue] = (),
    lifetime: timedelta | None = timedelta(minutes=5),
    assertion_id: str | None = None,
    software_id: str = "01.01.01.01",
    software_name: str = "MES Test LPS",
    software_version: str = "1.0",
    homologation_id: str = "NumAutorisation",
    vihf_version: str = "3.0",
) -> etree._Element:
    """Build an unsigned VIHF assertion shaped like the ANS examples (vihf_attributes.csv).

    ``issuer`` is the DN of the signing certificate. ``lifetime`` None omits ``Conditions``
    (as the ANS examples do).
    """
    nsmap = {"saml2": ns.SAML2, "xsi": ns.XSI}
    assertion = etree.Element(
        _q(ns.SAML2, "Assertion"),
        nsmap=nsmap,
        ID=assertion_id or f"_{uuid.uuid4()}",
        IssueInstant=_iso(issue_instant),
        Version="2.0",
    )
    etree.SubElement(assertion, _q(ns.SAML2, "Issuer"), Format=ISSUER_FORMAT_X509).text = issuer
    subject = etree.SubElement(assertion, _q(ns.SAML2, "Subject"))
    etree.SubElement(subject, _q(ns.SAML2, "NameID")).text = professional_id
    if lifetime is not None:
        etree.SubElement(
            assertion,
            _q(ns.SAML2, "Conditions"),
            NotBefore=_iso(issue_instant),
            NotOnOrAfter=_iso(issue_instant + lifetime),
        )
    authn = etree.SubElement(
        assertion, _q(ns.SAML2, "AuthnStatement"), AuthnInstant=_iso(issue_instant)
    )
    context = etree.SubElement(authn, _q(ns.SAML2, "AuthnContext"))
    etree.SubElement(context, _q(ns.SAML2, "AuthnContextClassRef")).text = (
        AUTHN_SMARTCARD if authentication_mode is AuthenticationMode.DIRECT else AUTHN_UNSPECIFIED
    )
    statement = etree.SubElement(assertion, _q(ns.SAML2, "AttributeStatement"))

    def attribute(name: str) -> etree._Element:
        return etree.SubElement(statement, _q(ns.SAML2, "Attribute"), Name=name)

    def string(name: str, value: str) -> None:
        value_element = etree.SubElement(
            attribute(name), _q(ns.SAML2, "AttributeValue"), nsmap={"xs": ns.XS}
        )
        value_element.set(_q(ns.XSI, "type"), "xs:string")
        value_element.text = value

    def coded(parent: etree._Element, tag: str, value: CodedValue) -> None:
        holder = etree.SubElement(parent, _q(ns.SAML2, "AttributeValue"))
        element = etree.SubElement(holder, _q(ns.HL7, tag), nsmap={None: ns.HL7})
        element.set("code", value.code)
        element.set("codeSystem", value.code_system)
        if value.code_system_name:
            element.set("codeSystemName", value.code_system_name)
        element.set("displayName", value.display_name or value.code)
        element.set(_q(ns.XSI, "type"), "CE")

    string(ATTR_STRUCTURE, structure_id)
    string(ATTR_SECTOR, f"{activity_sector}^{OID_TRE_R02_ACTIVITY_SECTOR}")
    if subject_name is not None:
        string(ATTR_SUBJECT_ID, subject_name)
    roles = attribute(ATTR_ROLE)
    coded(roles, "Role", CodedValue(profession, profession_system))
    if specialty is not None:
        system = specialty_system or _SPECIALTY_SYSTEMS.get(profession, OID_TRE_R01_SPECIALTY)
        coded(roles, "Role", CodedValue(specialty, system))
    for extra in extra_roles:
        coded(roles, "Role", extra)
    string(ATTR_VERSION, vihf_version)
    string(ATTR_AUTH_MODE, authentication_mode.value)
    if patient_ins is not None:
        string(ATTR_RESOURCE_ID, f"{patient_ins}^^^&{patient_ins_oid}&ISO^NH")
    string(ATTR_RESOURCE_URN, "urn:dmp")
    coded(
        attribute(ATTR_PURPOSE),
        "PurposeOfUse",
        CodedValue(
            access_mode.value, OID_TRE_R248_ACCESS_MODE, code_system_name="mode acces VIHF 2.0"
        ),
    )
    if secret_connection:
        string(ATTR_CONFIDENTIALITY, f"{SECRET_CONNECTION_CODE}^{OID_TRE_A07_VISIBILITY}")
    string(ATTR_LPS_ID, software_id)
    string(ATTR_LPS_NAME, software_name)
    string(ATTR_LPS_VERSION, software_version)
    string(ATTR_LPS_HOMOLOGATION, homologation_id)
    return assertion


def build_vihf_for_actor(actor: Actor, **kwargs: object) -> etree._Element:
    """Build a VIHF for a professional :class:`Actor` (tests, demo); ``kwargs`` go to build_vihf."""
    name, _, version = (actor.software or "MES Test LPS 1.0").rpartition(" ")
    defaults: dict[str, object] = {
        "professional_id": actor.id,
        "profession": actor.profession or "10",
        "specialty": actor.specialty,
        "structure_id": actor.structure_id or "",
        "activity_sector": actor.activity_sector or "SA07",
        "authentication_mode": actor.authentication_mode or AuthenticationMode.DIRECT,
        "access_mode": actor.access_mode,
        "subject_name": actor.name or None,
        "secret_connection": actor.secret_connection,
        "software_name": name or "MES Test LPS",
        "software_version": version,
    }
    defaults.update(kwargs)
    return build_vihf(**defaults)  # type: ignore[arg-type]


class _LegacySigner(XMLSigner):
    """signxml signer that accepts SHA-1, only to produce legacy-mode test fixtures."""

    def check_deprecated_methods(self) -> None:
        return None


def certificate_dn(cert_pem: bytes) -> str:
    """The RFC 4514 subject DN of a PEM certificate (the VIHF ``Issuer`` value)."""
    return x509.load_pem_x509_certificate(cert_pem).subject.rfc4514_string()


def sign_vihf(
    assertion: etree._Element, key_pem: bytes, cert_pem: bytes, *, digest: str = "sha256"
) -> etree._Element:
    """Sign an assertion (enveloped, exc-c14n, RSA-``digest``) with ds:Signature after Issuer.

    Returns a new element. ``digest="sha1"`` produces the legacy RSA-SHA1 signatures of the
    2019-2020 ANS examples (for tests of ``allow_sha1``).
    """
    if digest not in ("sha1", "sha256", "sha384", "sha512"):
        raise ValueError(f"unsupported digest {digest!r}")
    signer_class = _LegacySigner if digest == "sha1" else XMLSigner
    signer = signer_class(
        signature_algorithm=f"rsa-{digest}",
        digest_algorithm=digest,
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    )
    signer.namespaces = {"ds": ns.DS}
    to_sign = etree.fromstring(etree.tostring(assertion), parser=_hardened_parser())
    placeholder = etree.Element(_q(ns.DS, "Signature"), Id="placeholder", nsmap={"ds": ns.DS})
    issuer = to_sign.find(_q(ns.SAML2, "Issuer"))
    if issuer is None:
        to_sign.insert(0, placeholder)
    else:
        issuer.addnext(placeholder)
    cert = x509.load_pem_x509_certificate(cert_pem).public_bytes(Encoding.PEM)
    signed: etree._Element = signer.sign(to_sign, key=key_pem, cert=cert.decode("ascii"))
    return signed


def _security_bytes(assertion: etree._Element, soap_ns: str) -> bytes:
    must = "true" if soap_ns == ns.SOAP12 else "1"
    serialized: bytes = etree.tostring(assertion, with_tail=False)
    return (
        f'<wsse:Security xmlns:wsse="{ns.WSSE}" xmlns:soap="{soap_ns}" '
        f'soap:mustUnderstand="{must}">'.encode()
        + serialized
        + b"</wsse:Security>"
    )


def wrap_in_security_header(
    assertion: etree._Element, *, soap_ns: str = ns.SOAP12
) -> etree._Element:
    """Return a new ``wsse:Security`` element (mustUnderstand) holding a copy of ``assertion``.

    The copy is re-parsed from the assertion's bytes. Beware of appending a signed element
    into another tree yourself: lxml then drops namespace declarations it deems redundant and
    may rename prefixes, which changes the canonical form and breaks the signature.
    :func:`build_soap_envelope` composes bytes for that reason.
    """
    return parse_xml(_security_bytes(assertion, soap_ns))


def build_soap_envelope(
    action: str,
    body_element: etree._Element,
    assertion: etree._Element | None,
    *,
    to: str | None = None,
    message_id: str | None = None,
) -> etree._Element:
    """Build a SOAP 1.2 request envelope with WS-Addressing Action/MessageID/To and the VIHF.

    The skeleton is serialized and the assertion and body bytes are spliced in before one
    parse, so a signed assertion keeps its exact bytes (see :func:`wrap_in_security_header`).
    """
    envelope = etree.Element(_q(ns.SOAP12, "Envelope"), nsmap={"soap": ns.SOAP12, "wsa": ns.WSA})
    header = etree.SubElement(envelope, _q(ns.SOAP12, "Header"))
    must = {_q(ns.SOAP12, "mustUnderstand"): "true"}
    etree.SubElement(header, _q(ns.WSA, "Action"), must).text = action
    etree.SubElement(header, _q(ns.WSA, "MessageID")).text = (
        message_id or f"urn:uuid:{uuid.uuid4()}"
    )
    reply_to = etree.SubElement(header, _q(ns.WSA, "ReplyTo"))
    etree.SubElement(reply_to, _q(ns.WSA, "Address")).text = ns.WSA_ANONYMOUS
    if to is not None:
        etree.SubElement(header, _q(ns.WSA, "To"), must).text = to
    header.append(etree.Comment(_SECURITY_MARK))
    etree.SubElement(envelope, _q(ns.SOAP12, "Body")).append(etree.Comment(_BODY_MARK))
    skeleton: bytes = etree.tostring(envelope)
    body: bytes = etree.tostring(body_element, with_tail=False)
    security = _security_bytes(assertion, ns.SOAP12) if assertion is not None else b""
    composed = skeleton.replace(f"<!--{_SECURITY_MARK}-->".encode(), security, 1)
    return parse_xml(composed.replace(f"<!--{_BODY_MARK}-->".encode(), body, 1))


_SECURITY_MARK: Final = "mes:wsse-security"
_BODY_MARK: Final = "mes:soap-body"
