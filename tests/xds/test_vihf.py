"""VIHF verification: the happy path per authentication mode, then every refusal one by one."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from lxml import etree
from reference_data import REFERENCE

from habilitation.model import AccessMode, ActorKind, AuthenticationMode
from mes.pki import CertificateProfile, TestPki, issue_test_certificate
from security.xsw import make_evil, unsigned_copy
from xds import ns
from xds.vihf import (
    ATTR_RESOURCE_ID,
    CodedValue,
    InMemoryReplayCache,
    VerifiedVihf,
    VihfError,
    VihfErrorCode,
    actor_from_vihf,
    read_vihf_attributes,
    verify_vihf,
)
from xds.xml import parse_xml

# Same values as the make_envelope fixture of conftest.py (conftest modules are not importable).
PATIENT_A = "207058575627097"
PATIENT_B = "190012345678901"
MEDECIN_ID = "899900063480"
ATTACKER_ID = "899999999999"
EnvelopeFactory = Callable[..., etree._Element]
VIHF_DIR = REFERENCE / "dmp" / "vihf"
ATTACKS = REFERENCE / "security" / "xml-attacks"
SAML = f"{{{ns.SAML2}}}"
DS = f"{{{ns.DS}}}"


@pytest.fixture
def now(vihf_now: datetime) -> datetime:
    return vihf_now


def wire(element: etree._Element) -> etree._Element:
    return parse_xml(etree.tostring(element))


def verify(
    envelope: etree._Element, trusted: list[bytes], now: datetime, **kwargs: object
) -> VerifiedVihf:
    return verify_vihf(envelope, trusted_ca_pems=trusted, now=now, **kwargs)  # type: ignore[arg-type]


def refused(code: VihfErrorCode, call: Callable[[], object]) -> VihfError:
    with pytest.raises(VihfError) as caught:
        call()
    assert caught.value.code is code, caught.value
    return caught.value


def assertion_of(envelope: etree._Element) -> etree._Element:
    found = envelope.find(f".//{SAML}Assertion")
    assert found is not None
    return found


# --------------------------------------------------------------------------- happy paths


@pytest.mark.parametrize(
    ("mode", "subject_name", "signer"),
    [
        (AuthenticationMode.DIRECT, None, "ps_signature"),
        (AuthenticationMode.INDIRECT, "DUPONT Jean", "signing"),
        (AuthenticationMode.INDIRECT_REINFORCED, "DUPONT Jean (cardiologie)", "signing"),
    ],
)
def test_verified_vihf_gives_actor_and_patient(
    make_envelope: EnvelopeFactory,
    pki: TestPki,
    trusted: list[bytes],
    now: datetime,
    mode: AuthenticationMode,
    subject_name: str | None,
    signer: str,
) -> None:
    cert = getattr(pki, f"{signer}_cert").read_bytes()
    key = getattr(pki, f"{signer}_key").read_bytes()
    envelope = make_envelope(
        cert=cert,
        key=key,
        authentication_mode=mode,
        subject_name=subject_name,
        software_name="Mon LPS",
        software_version="4.2",
    )
    result = verify(envelope, trusted, now)
    actor = result.actor
    assert actor.kind is ActorKind.PROFESSIONAL
    assert (actor.id, actor.profession, actor.specialty) == (MEDECIN_ID, "10", "SM26")
    assert actor.authentication_mode is mode
    assert actor.structure_id == pki.structure_id
    assert actor.activity_sector == "SA07"
    assert actor.access_mode is AccessMode.NORMAL
    assert actor.software == "Mon LPS 4.2"
    assert actor.name == (subject_name or "")
    assert actor.secret_connection is False
    assert (result.patient_ins, result.patient_ins_oid) == (PATIENT_A, "1.2.250.1.213.1.4.10")
    assert result.assertion_id == assertion_of(envelope).get("ID")
    assert "OU=499900063480001" in result.signing_certificate_subject or signer == "ps_signature"


@pytest.mark.parametrize("access_mode", list(AccessMode))
def test_access_mode_comes_from_purposeofuse(
    make_envelope: EnvelopeFactory, trusted: list[bytes], now: datetime, access_mode: AccessMode
) -> None:
    assert (
        verify(make_envelope(access_mode=access_mode), trusted, now).actor.access_mode
        is access_mode
    )


def test_secret_connection_from_confidentiality_code(
    make_envelope: EnvelopeFactory, trusted: list[bytes], now: datetime
) -> None:
    assert (
        verify(make_envelope(secret_connection=True), trusted, now).actor.secret_connection is True
    )


def test_nurse_needs_no_specialty_and_non_ps_role_has_no_profession(
    make_envelope: EnvelopeFactory, trusted: list[bytes], now: datetime
) -> None:
    nurse = verify(make_envelope(profession="60", specialty=None), trusted, now).actor
    assert (nurse.profession, nurse.specialty) == ("60", None)
    robot = verify(
        make_envelope(
            profession="AUTOMATE",
            profession_system="1.2.250.1.213.1.1.4.6",
            specialty=None,
            authentication_mode=AuthenticationMode.INDIRECT,
            subject_name="EVOSIPS, PFI, Labo",
        ),
        trusted,
        now,
    ).actor
    assert robot.profession is None


def test_pharmacist_specialty_is_g05(
    make_envelope: EnvelopeFactory, trusted: list[bytes], now: datetime
) -> None:
    actor = verify(make_envelope(profession="21", specialty="G"), trusted, now).actor
    assert (actor.profession, actor.specialty) == ("21", "G")


def test_assertion_without_patient_is_accepted_with_patient_none(
    make_envelope: EnvelopeFactory, trusted: list[bytes], now: datetime
) -> None:
    result = verify(make_envelope(patient_ins=None), trusted, now)
    assert result.patient_ins is None and result.patient_ins_oid is None


def test_clock_skew_tolerated(
    make_envelope: EnvelopeFactory, trusted: list[bytes], now: datetime
) -> None:
    envelope = make_envelope()
    verify(envelope, trusted, now + timedelta(minutes=9))  # NotOnOrAfter = +5 min, skew 5 min
    verify(envelope, trusted, now - timedelta(minutes=4))


def test_identity_is_read_from_signed_bytes_not_split_text(
    make_envelope: EnvelopeFactory, trusted: list[bytes], now: datetime
) -> None:
    """CVE-2017-11427 family (xml-attacks/10): a comment splits NameID before signing."""

    def split_name_id(assertion: etree._Element) -> None:
        name_id = assertion.find(f"{SAML}Subject/{SAML}NameID")
        assert name_id is not None
        name_id.text = "8999"
        comment = etree.Comment("")
        comment.tail = "00063480"
        name_id.append(comment)

    envelope = make_envelope(tamper=split_name_id)
    name_id = envelope.find(f".//{SAML}NameID")
    assert name_id is not None and name_id.text == "8999"  # what a naive reader would take
    assert verify(envelope, trusted, now).actor.id == "899900063480"


# --------------------------------------------------------------------------- refusals: time


def test_expired_assertion(
    make_envelope: EnvelopeFactory, trusted: list[bytes], now: datetime
) -> None:
    envelope = make_envelope()
    refused(VihfErrorCode.EXPIRED, lambda: verify(envelope, trusted, now + timedelta(minutes=11)))


def test_not_yet_valid_assertion(
    make_envelope: EnvelopeFactory, trusted: list[bytes], now: datetime
) -> None:
    envelope = make_envelope()
    refused(
        VihfErrorCode.NOT_YET_VALID, lambda: verify(envelope, trusted, now - timedelta(minutes=6))
    )


def test_assertion_without_conditions_expires_after_max_age(
    make_envelope: EnvelopeFactory, trusted: list[bytes], now: datetime
) -> None:
    envelope = make_envelope(lifetime=None)
    verify(envelope, trusted, now + timedelta(minutes=30))
    refused(VihfErrorCode.EXPIRED, lambda: verify(envelope, trusted, now + timedelta(hours=2)))
    refused(
        VihfErrorCode.NOT_YET_VALID, lambda: verify(envelope, trusted, now - timedelta(minutes=10))
    )


def test_replayed_assertion(
    make_envelope: EnvelopeFactory, trusted: list[bytes], now: datetime
) -> None:
    cache = InMemoryReplayCache()
    first, second = make_envelope(), make_envelope()
    verify(first, trusted, now, replay_cache=cache)
    verify(second, trusted, now, replay_cache=cache)
    refused(VihfErrorCode.REPLAYED, lambda: verify(first, trusted, now, replay_cache=cache))
    assert cache.add("x", expires_at=now, now=now - timedelta(seconds=1))
    assert cache.add("x", expires_at=now + timedelta(minutes=1), now=now + timedelta(seconds=1))


# --------------------------------------------------------------------------- refusals: certificate


def test_untrusted_ca(
    make_envelope: EnvelopeFactory, pki: TestPki, trusted: list[bytes], now: datetime
) -> None:
    envelope = make_envelope(
        cert=pki.untrusted_signing_cert.read_bytes(), key=pki.untrusted_signing_key.read_bytes()
    )
    refused(VihfErrorCode.UNTRUSTED_CERTIFICATE, lambda: verify(envelope, trusted, now))
    # trusting the other CA makes the same message valid: the refusal was about trust
    verify(envelope, [pki.untrusted_ca_cert.read_bytes()], now)


def test_empty_trust_store_fails_closed(make_envelope: EnvelopeFactory, now: datetime) -> None:
    envelope = make_envelope()
    refused(VihfErrorCode.UNTRUSTED_CERTIFICATE, lambda: verify(envelope, [], now))


def test_authentication_certificate_is_not_a_vihf_signer(
    make_envelope: EnvelopeFactory, pki: TestPki, trusted: list[bytes], now: datetime
) -> None:
    envelope = make_envelope(cert=pki.auth_cert.read_bytes(), key=pki.auth_key.read_bytes())
    refused(VihfErrorCode.NOT_SIGNATURE_CERTIFICATE, lambda: verify(envelope, trusted, now))


@pytest.mark.parametrize("window", ["expired", "not_yet_valid"])
def test_signing_certificate_outside_its_validity(
    make_envelope: EnvelopeFactory, pki: TestPki, trusted: list[bytes], now: datetime, window: str
) -> None:
    if window == "expired":
        bounds = (now - timedelta(days=30), now - timedelta(days=1))
    else:
        bounds = (now + timedelta(days=1), now + timedelta(days=30))
    cert, key = issue_test_certificate(
        pki.ca_cert.read_bytes(),
        pki.ca_key.read_bytes(),
        subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "out of validity")]),
        profile=CertificateProfile.SIGNATURE,
        not_before=bounds[0],
        not_after=bounds[1],
    )
    envelope = make_envelope(cert=cert, key=key)
    refused(VihfErrorCode.CERTIFICATE_EXPIRED, lambda: verify(envelope, trusted, now))


def test_ca_certificate_cannot_sign(
    make_envelope: EnvelopeFactory, pki: TestPki, trusted: list[bytes], now: datetime
) -> None:
    envelope = make_envelope(cert=pki.ca_cert.read_bytes(), key=pki.ca_key.read_bytes())
    refused(VihfErrorCode.NOT_SIGNATURE_CERTIFICATE, lambda: verify(envelope, trusted, now))


# --------------------------------------------------------------------------- refusals: signature


def test_sha1_refused_unless_legacy_mode(
    make_envelope: EnvelopeFactory, trusted: list[bytes], now: datetime
) -> None:
    envelope = make_envelope(digest="sha1")
    refused(VihfErrorCode.WEAK_ALGORITHM, lambda: verify(envelope, trusted, now))
    assert verify(envelope, trusted, now, allow_sha1=True).actor.id == MEDECIN_ID


def test_tampered_attribute_breaks_the_signature(
    make_envelope: EnvelopeFactory, trusted: list[bytes], now: datetime
) -> None:
    envelope = make_envelope()
    for attribute in envelope.iter(f"{SAML}Attribute"):
        if attribute.get("Name") == ATTR_RESOURCE_ID:
            value = attribute.find(f"{SAML}AttributeValue")
            assert value is not None
            value.text = f"{PATIENT_B}^^^&1.2.250.1.213.1.4.10&ISO^NH"
    refused(VihfErrorCode.BAD_SIGNATURE, lambda: verify(envelope, trusted, now))


def test_unsigned_assertion_refused(
    make_envelope: EnvelopeFactory, trusted: list[bytes], now: datetime
) -> None:
    refused(
        VihfErrorCode.MISSING_SIGNATURE, lambda: verify(make_envelope(sign=False), trusted, now)
    )
    exclusion = parse_xml((ATTACKS / "13_signature_exclusion.xml").read_bytes())
    refused(VihfErrorCode.MISSING_SIGNATURE, lambda: verify(exclusion, trusted, now))


def test_signature_over_another_element_refused(
    make_envelope: EnvelopeFactory, pki: TestPki, trusted: list[bytes], now: datetime
) -> None:
    """A valid signature whose only Reference is the Subject, not the assertion."""
    from signxml.algorithms import CanonicalizationMethod
    from signxml.signer import XMLSigner

    envelope = make_envelope(sign=False)
    assertion = assertion_of(envelope)
    subject = assertion.find(f"{SAML}Subject")
    assert subject is not None
    subject.set("ID", "_subject")
    placeholder = etree.SubElement(assertion, f"{DS}Signature", Id="placeholder")
    assertion.find(f"{SAML}Issuer").addnext(placeholder)
    signer = XMLSigner(c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0)
    signed = signer.sign(
        assertion,
        key=pki.signing_key.read_bytes(),
        cert=pki.signing_cert.read_bytes().decode(),
        reference_uri="#_subject",
    )
    security = assertion.getparent()
    assert security is not None
    security.replace(assertion, signed)
    refused(VihfErrorCode.WRONG_REFERENCE, lambda: verify(wire(envelope), trusted, now))


def test_xslt_transform_refused_before_any_crypto(
    make_envelope: EnvelopeFactory, trusted: list[bytes], now: datetime
) -> None:
    envelope = make_envelope(sign=False)
    assertion = assertion_of(envelope)
    hostile = parse_xml((ATTACKS / "12_xslt_transform_in_signature.xml").read_bytes())
    security = assertion.getparent()
    assert security is not None
    security.replace(assertion, hostile)
    refused(VihfErrorCode.FORBIDDEN_TRANSFORM, lambda: verify(wire(envelope), trusted, now))


def test_missing_security_header(trusted: list[bytes], now: datetime) -> None:
    envelope = parse_xml(
        f'<s:Envelope xmlns:s="{ns.SOAP12}"><s:Header/><s:Body/></s:Envelope>'.encode()
    )
    refused(VihfErrorCode.MISSING_SECURITY_HEADER, lambda: verify(envelope, trusted, now))


# --------------------------------------------------------------------------- refusals: attributes


@pytest.mark.parametrize("profession", ["10", "21"])
def test_specialty_mandatory_for_medecin_and_pharmacien(
    make_envelope: EnvelopeFactory, trusted: list[bytes], now: datetime, profession: str
) -> None:
    envelope = make_envelope(profession=profession, specialty=None)
    refused(VihfErrorCode.MISSING_SPECIALTY, lambda: verify(envelope, trusted, now))


def test_medecin_with_a_pharmacist_section_is_refused(
    make_envelope: EnvelopeFactory, trusted: list[bytes], now: datetime
) -> None:
    envelope = make_envelope(specialty="G", specialty_system="1.2.250.1.71.4.2.6")
    refused(VihfErrorCode.MISSING_SPECIALTY, lambda: verify(envelope, trusted, now))


def test_indirect_mode_requires_subject_id(
    make_envelope: EnvelopeFactory, trusted: list[bytes], now: datetime
) -> None:
    envelope = make_envelope(authentication_mode=AuthenticationMode.INDIRECT, subject_name=None)
    refused(VihfErrorCode.MISSING_ATTRIBUTE, lambda: verify(envelope, trusted, now))


def test_missing_structure_refused(
    make_envelope: EnvelopeFactory, trusted: list[bytes], now: datetime
) -> None:
    def drop_structure(assertion: etree._Element) -> None:
        for attribute in assertion.iter(f"{SAML}Attribute"):
            if attribute.get("Name") == "Identifiant_Structure":
                attribute.getparent().remove(attribute)

    envelope = make_envelope(tamper=drop_structure)
    refused(VihfErrorCode.MISSING_ATTRIBUTE, lambda: verify(envelope, trusted, now))


def test_malformed_resource_id_refused(
    make_envelope: EnvelopeFactory, trusted: list[bytes], now: datetime
) -> None:
    envelope = make_envelope(patient_ins_oid="not&an&oid")
    refused(VihfErrorCode.INVALID_ATTRIBUTE, lambda: verify(envelope, trusted, now))


def test_extra_roles_are_kept_in_attributes(
    make_envelope: EnvelopeFactory, trusted: list[bytes], now: datetime
) -> None:
    extra = CodedValue("MEDECIN_TRAITANT", "1.2.250.1.213.1.1.4.85")
    result = verify(make_envelope(extra_roles=[extra]), trusted, now)
    assert [r.code for r in result.attributes.roles] == ["10", "SM26", "MEDECIN_TRAITANT"]


# ------------------------------------------------------------ XSW (reference/security/xsw)


def _make_evil(
    assertion: etree._Element, *, new_id: str | None, keep_signature: bool
) -> etree._Element:
    """The evil copy of ``security.xsw``: the attacker's NameID, patient B as resource."""
    return make_evil(assertion, attacker=ATTACKER_ID, patient=PATIENT_B,
                     oid="1.2.250.1.213.1.4.10", new_id=new_id, keep_signature=keep_signature)


def xsw3(envelope: etree._Element) -> None:
    legit = assertion_of(envelope)
    legit.addprevious(_make_evil(legit, new_id="_evil", keep_signature=False))


def xsw4(envelope: etree._Element) -> None:
    legit = assertion_of(envelope)
    evil = _make_evil(legit, new_id="_evil", keep_signature=False)
    legit.getparent().replace(legit, evil)
    evil.append(legit)


def xsw5(envelope: etree._Element) -> None:
    legit = assertion_of(envelope)
    original = unsigned_copy(legit)
    evil = _make_evil(legit, new_id="_evil", keep_signature=True)
    security = legit.getparent()
    assert security is not None
    security.replace(legit, evil)
    security.append(original)


def xsw6(envelope: etree._Element) -> None:
    legit = assertion_of(envelope)
    original = unsigned_copy(legit)
    evil = _make_evil(legit, new_id="_evil", keep_signature=True)
    legit.getparent().replace(legit, evil)
    signature = evil.find(f"{DS}Signature")
    assert signature is not None
    signature.append(original)


def xsw7(envelope: etree._Element) -> None:
    legit = assertion_of(envelope)
    extensions = etree.Element("Extensions")
    extensions.append(_make_evil(legit, new_id=None, keep_signature=False))
    legit.addprevious(extensions)


def xsw8(envelope: etree._Element) -> None:
    legit = assertion_of(envelope)
    original = unsigned_copy(legit)
    evil = _make_evil(legit, new_id=None, keep_signature=True)
    legit.getparent().replace(legit, evil)
    signature = evil.find(f"{DS}Signature")
    assert signature is not None
    obj = etree.SubElement(signature, f"{DS}Object")
    obj.append(original)


def wss_duplicate_assertion_id(envelope: etree._Element) -> None:
    legit = assertion_of(envelope)
    legit.addnext(_make_evil(legit, new_id=None, keep_signature=False))


def wss_signed_body_moved_to_header(envelope: etree._Element) -> None:
    body = envelope.find(f"{{{ns.SOAP12}}}Body")
    assert body is not None
    body.set(f"{{{ns.WSU}}}Id", "body")
    assertion_of(envelope).addnext(copy.deepcopy(body))
    body[0].append(etree.Comment(" evil: FindDocuments for PATIENT-B "))


def evil_assertion_only_in_body(envelope: etree._Element) -> None:
    """Not in the templates: the legit assertion kept, an evil one hidden in the Body."""
    legit = assertion_of(envelope)
    body = envelope.find(f"{{{ns.SOAP12}}}Body")
    assert body is not None
    body.append(_make_evil(legit, new_id="_evil", keep_signature=True))


XSW_CASES = {
    "xsw3_evil_sibling_before": (xsw3, {VihfErrorCode.MULTIPLE_ASSERTIONS}),
    "xsw4_original_wrapped_in_evil": (xsw4, {VihfErrorCode.MULTIPLE_ASSERTIONS}),
    "xsw5_evil_keeps_signature_legit_copy_appended": (xsw5, {VihfErrorCode.MULTIPLE_ASSERTIONS}),
    "xsw6_legit_copy_inside_signature": (xsw6, {VihfErrorCode.MULTIPLE_ASSERTIONS}),
    "xsw7_evil_in_extensions_same_id": (xsw7, {VihfErrorCode.MULTIPLE_ASSERTIONS}),
    "xsw8_legit_copy_in_signature_object": (xsw8, {VihfErrorCode.MULTIPLE_ASSERTIONS}),
    "wss_duplicate_assertion_id": (wss_duplicate_assertion_id, {VihfErrorCode.MULTIPLE_ASSERTIONS}),
    "wss_signed_body_moved_to_header": (
        wss_signed_body_moved_to_header,
        {VihfErrorCode.DUPLICATE_ID},
    ),
    "evil_assertion_only_in_body": (
        evil_assertion_only_in_body,
        {VihfErrorCode.MULTIPLE_ASSERTIONS},
    ),
}


def test_every_xsw_template_has_a_case() -> None:
    templates = {p.stem for p in (REFERENCE / "security" / "xsw").glob("*.xml")}
    assertion_level = {t for t in templates if not t.startswith(("00_", "xsw1", "xsw2"))}
    assert assertion_level <= set(XSW_CASES)


@pytest.mark.parametrize("case", sorted(XSW_CASES))
def test_xsw_variants_are_refused(
    make_envelope: EnvelopeFactory, trusted: list[bytes], now: datetime, case: str
) -> None:
    transform, codes = XSW_CASES[case]
    envelope = make_envelope()
    assert verify(envelope, trusted, now).patient_ins == PATIENT_A  # the untouched message is valid
    transform(envelope)
    with pytest.raises(VihfError) as caught:
        result = verify(wire(envelope), trusted, now)
        # never reached if refused; if it were, it must still be the signed identity
        assert (result.actor.id, result.patient_ins) == (MEDECIN_ID, PATIENT_A)
    assert caught.value.code in codes


@pytest.mark.parametrize("case", ["xsw5", "xsw8"])
def test_xsw_refused_by_signature_alone_when_structure_checks_pass(
    make_envelope: EnvelopeFactory, trusted: list[bytes], now: datetime, case: str
) -> None:
    """Without the unsigned legit copy: one evil assertion, signature kept; crypto catches it."""
    envelope = make_envelope()
    legit = assertion_of(envelope)
    evil = _make_evil(legit, new_id="_evil" if case == "xsw5" else None, keep_signature=True)
    legit.getparent().replace(legit, evil)
    expected = VihfErrorCode.WRONG_REFERENCE if case == "xsw5" else VihfErrorCode.BAD_SIGNATURE
    refused(expected, lambda: verify(wire(envelope), trusted, now))


def test_duplicate_wsu_id_anywhere_refused(
    make_envelope: EnvelopeFactory, trusted: list[bytes], now: datetime
) -> None:
    envelope = make_envelope()
    body = envelope.find(f"{{{ns.SOAP12}}}Body")
    assert body is not None
    body.set(f"{{{ns.WSU}}}Id", assertion_of(envelope).get("ID", ""))
    refused(VihfErrorCode.DUPLICATE_ID, lambda: verify(wire(envelope), trusted, now))


def test_lowercase_ebrim_ids_may_repeat_outside_the_security_header(
    make_envelope: EnvelopeFactory, trusted: list[bytes], now: datetime
) -> None:
    """ITI-41: xdsb:Document/@id equals its ExtrinsicObject/@id."""
    envelope = make_envelope()
    body = envelope.find(f"{{{ns.SOAP12}}}Body")
    assert body is not None
    etree.SubElement(body[0], f"{{{ns.RIM}}}ExtrinsicObject", id="Document01")
    etree.SubElement(body[0], f"{{{ns.XDS}}}Document", id="Document01")
    verify(wire(envelope), trusted, now)


# --------------------------------------------------------------------------- ANS examples


def _ans(name: str) -> etree._Element:
    return parse_xml((VIHF_DIR / name).read_bytes(), encoding="iso-8859-1")


def test_read_ans_direct_unsigned_example() -> None:
    attributes = read_vihf_attributes(_ans("VIHF_DIRECTE_non_signe.xml"))
    assert attributes.assertion_id == "_ce088e5a-e31d-42d0-ba37-fda5fcbc889d"
    assert attributes.name_id == "899900063480"
    assert (attributes.patient_ins, attributes.patient_ins_oid) == (
        "207058575627097",
        "1.2.250.1.213.1.4.10",
    )
    assert attributes.authn_context == "urn:oasis:names:tc:SAML:2.0:ac:classes:SmartcardPKI"
    assert attributes.purpose_of_use.display_name == "Accès normal"
    actor = actor_from_vihf(attributes)
    assert actor.authentication_mode is AuthenticationMode.DIRECT
    assert (actor.profession, actor.specialty, actor.structure_id, actor.activity_sector) == (
        "10",
        "SM26",
        "499900063480001",
        "SA07",
    )
    assert actor.software == "LPS GIE-SV 1"
    assert actor.access_mode is AccessMode.NORMAL


@pytest.mark.parametrize(
    ("name", "mode", "structure", "subject"),
    [
        ("VIHF_DIRECTE_signe.xml", AuthenticationMode.DIRECT, "499900063480001", ""),
        ("VIHF_INDIRECTE_signe.xml", AuthenticationMode.INDIRECT, None, None),
        (
            "VIHF_INDIRECTE_RENFORCEE_signe.xml",
            AuthenticationMode.INDIRECT_REINFORCED,
            "10B0127189",
            "MAX LIBRE",
        ),
    ],
)
def test_read_ans_signed_examples(
    name: str, mode: AuthenticationMode, structure: str | None, subject: str | None
) -> None:
    actor = actor_from_vihf(read_vihf_attributes(_ans(name)))
    assert actor.authentication_mode is mode
    assert (actor.id, actor.profession) == ("899900063480", "10")
    if structure is not None:
        assert actor.structure_id == structure
    if subject is not None:
        assert actor.name == subject


def test_read_ans_automate_example() -> None:
    security = _ans("VIHF_INDIRECTE_automate_PFI_exemple.xml")
    attributes = read_vihf_attributes(security[0])
    assert attributes.authentication_mode == "INDIRECTE"  # spelled Authentification_Mode there
    assert attributes.roles[0] == CodedValue("AUTOMATE", "1.2.250.1.213.1.1.4.6", "AUTOMATE")
    actor = actor_from_vihf(attributes)
    assert actor.profession is None and actor.name == "XX,XX, XX"
    assert attributes.patient_ins == "XXXXXXX"


def test_ans_signed_example_is_not_trusted(trusted: list[bytes], now: datetime) -> None:
    envelope = parse_xml(
        f'<s:Envelope xmlns:s="{ns.SOAP12}"><s:Header/><s:Body/></s:Envelope>'.encode()
    )
    security = etree.SubElement(envelope[0], f"{{{ns.WSSE}}}Security")
    security.append(_ans("VIHF_INDIRECTE_signe.xml"))
    refused(VihfErrorCode.WEAK_ALGORITHM, lambda: verify(wire(envelope), trusted, now))
    refused(
        VihfErrorCode.CERTIFICATE_EXPIRED,
        lambda: verify(wire(envelope), trusted, now, allow_sha1=True),
    )


def test_fault_subcodes_follow_ws_security() -> None:
    assert VihfErrorCode.BAD_SIGNATURE.fault_subcode == "FailedCheck"
    assert VihfErrorCode.UNTRUSTED_CERTIFICATE.fault_subcode == "FailedAuthentication"
    assert VihfErrorCode.MULTIPLE_ASSERTIONS.fault_subcode == "InvalidSecurity"
    assert VihfErrorCode.WEAK_ALGORITHM.fault_subcode == "UnsupportedAlgorithm"
    assert VihfErrorCode.MISSING_ATTRIBUTE.fault_subcode == "InvalidSecurityToken"


@pytest.mark.parametrize(
    "attribute",
    [f"{{{ns.WSU}}}Id", "{urn:example:other}ID", "Id", f"{{{ns.XML}}}id", "id"],
)
def test_assertion_id_reused_by_any_id_attribute_is_refused(
    make_envelope: EnvelopeFactory, trusted: list[bytes], now: datetime, attribute: str
) -> None:
    envelope = make_envelope()
    body = envelope.find(f"{{{ns.SOAP12}}}Body")
    assert body is not None
    body[0].set(attribute, assertion_of(envelope).get("ID", ""))
    refused(VihfErrorCode.DUPLICATE_ID, lambda: verify(wire(envelope), trusted, now))


def test_security_header_without_assertion(trusted: list[bytes], now: datetime) -> None:
    envelope = parse_xml(
        f'<s:Envelope xmlns:s="{ns.SOAP12}" xmlns:wsse="{ns.WSSE}">'
        "<s:Header><wsse:Security/></s:Header><s:Body/></s:Envelope>".encode()
    )
    refused(VihfErrorCode.MISSING_ASSERTION, lambda: verify(envelope, trusted, now))


def test_assertion_outside_the_security_header(
    make_envelope: EnvelopeFactory, trusted: list[bytes], now: datetime
) -> None:
    envelope = make_envelope()
    body = envelope.find(f"{{{ns.SOAP12}}}Body")
    assert body is not None
    body.append(assertion_of(envelope))  # moved: the Security header is now empty
    refused(VihfErrorCode.MISSING_ASSERTION, lambda: verify(wire(envelope), trusted, now))


def test_two_security_headers_refused(
    make_envelope: EnvelopeFactory, trusted: list[bytes], now: datetime
) -> None:
    envelope = make_envelope()
    security = assertion_of(envelope).getparent()
    assert security is not None
    security.addnext(etree.Element(f"{{{ns.WSSE}}}Security"))
    refused(VihfErrorCode.MISSING_SECURITY_HEADER, lambda: verify(wire(envelope), trusted, now))


def test_naive_now_is_a_programming_error(
    make_envelope: EnvelopeFactory, trusted: list[bytes]
) -> None:
    with pytest.raises(ValueError):
        verify(make_envelope(), trusted, datetime(2026, 1, 1))


@pytest.fixture
def signed_reference_base(pki: TestPki, now: datetime) -> tuple[etree._Element, datetime]:
    """reference/security/xsw/00_base signed with the test key, its dates moved to today."""
    from signxml.algorithms import CanonicalizationMethod
    from signxml.signer import XMLSigner

    text = Path(
        REFERENCE / "security" / "xsw" / "00_base_legit_signed_assertion.xml"
    ).read_text()
    text = text.replace("2026-01-15", now.date().isoformat())
    envelope = parse_xml(text.encode())
    assertion = assertion_of(envelope)
    template_signature = assertion.find(f"{DS}Signature")
    assert template_signature is not None
    placeholder = etree.Element(f"{DS}Signature", Id="placeholder", nsmap={"ds": ns.DS})
    assertion.replace(template_signature, placeholder)
    signer = XMLSigner(c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0)
    signed = signer.sign(
        assertion, key=pki.signing_key.read_bytes(), cert=pki.signing_cert.read_bytes().decode()
    )
    security = assertion.getparent()
    assert security is not None
    security.replace(assertion, signed)
    moment = datetime.fromisoformat(f"{now.date().isoformat()}T10:01:00+00:00")
    return wire(envelope), moment


@pytest.mark.parametrize("case", sorted(XSW_CASES))
def test_reference_xsw_templates_on_the_signed_base(
    signed_reference_base: tuple[etree._Element, datetime], trusted: list[bytes], case: str
) -> None:
    """The template base is not a VIHF: untouched, it passes signature and certificate checks
    and fails only on its attributes; every XSW variant of it fails earlier, structurally."""
    envelope, moment = signed_reference_base
    refused(VihfErrorCode.MISSING_ATTRIBUTE, lambda: verify(envelope, trusted, moment))
    transform, codes = XSW_CASES[case]
    transform(envelope)
    with pytest.raises(VihfError) as caught:
        verify(wire(envelope), trusted, moment)
    assert caught.value.code in codes


def test_envelope_builder_keeps_the_signed_bytes(
    pki: TestPki, trusted: list[bytes], now: datetime
) -> None:
    """signxml may leave two prefixes for the ds namespace (a placeholder without nsmap);
    appending such an element into another lxml tree renames a prefix and breaks the
    signature, so build_soap_envelope splices bytes instead."""
    from signxml.algorithms import CanonicalizationMethod
    from signxml.signer import XMLSigner

    from xds.vihf import build_soap_envelope, build_vihf, certificate_dn

    cert = pki.signing_cert.read_bytes()
    assertion = build_vihf(
        professional_id=MEDECIN_ID,
        profession="60",
        structure_id=pki.structure_id,
        issuer=certificate_dn(cert),
        issue_instant=now,
        patient_ins=PATIENT_A,
    )
    assertion.find(f"{SAML}Issuer").addnext(etree.Element(f"{DS}Signature", Id="placeholder"))
    signer = XMLSigner(c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0)
    signed = signer.sign(assertion, key=pki.signing_key.read_bytes(), cert=cert.decode())
    body = etree.Element(f"{{{ns.QUERY}}}AdhocQueryRequest")
    envelope = build_soap_envelope("urn:ihe:iti:2007:RegistryStoredQuery", body, signed)
    assert verify(wire(envelope), trusted, now).patient_ins == PATIENT_A

    moved = etree.Element(f"{{{ns.WSSE}}}Security")
    moved.append(signed)  # what the builder avoids
    naive = build_soap_envelope("urn:ihe:iti:2007:RegistryStoredQuery", body, None)
    naive[0].append(moved)
    refused(VihfErrorCode.BAD_SIGNATURE, lambda: verify(wire(naive), trusted, now))
