"""Server bug found by fuzzing the VIHF reader (test_sec_fuzz.py, ``vihf_http``), fixed; kept as
regression tests (OASIS WSS 1.1 §12 and W3C SOAP 1.2 Part 1 §5.4: a bad security
header is a SOAP Sender fault; the XDS endpoint's own contract: nothing escapes as a 500).

Bug 9: ``xds/vihf.py::_signing_certificate`` loads the ``ds:X509Certificate`` with
``x509.load_der_x509_certificate`` inside ``try/except ValueError``, but cryptography parses
the subject and the extensions lazily. A certificate whose outer DER is sound and whose
subject holds, say, invalid UTF-8 in a UTF8String loads, fails the chain check, and the error
message's ``leaf.subject.rfc4514_string()`` raises ``ValueError: error parsing asn1 value``;
one with a duplicated extension raises ``x509.DuplicateExtension`` in ``_is_ca``. Both escape
``verify_vihf`` and ``xds/endpoint.py::handle_soap``: HTTP 500 (Flask's HTML page) instead of
a fault with a ``vihf_untrusted_certificate`` trace record. ``KeyInfo`` is not covered by the
assertion's signature, so anyone can send it. Fix: read the fields the code needs (subject,
extensions) inside a ``try`` that turns ``ValueError`` and ``DuplicateExtension`` into a
``VihfError``.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from flask.testing import FlaskClient
from lxml import etree
from sec_world import PATIENTS
from soap_kit import signed_vihf
from xds_support import AUTHOR, ITI18, REGISTRY, envelope_bytes, find_documents

from espace.clock import FrozenClock
from xds import ns


def _corrupt_subject(assertion: etree._Element) -> None:
    """Put a byte that is not UTF-8 in the leaf certificate's subject CN (outer DER intact)."""
    node = assertion.find(f".//{{{ns.DS}}}X509Certificate")
    assert node is not None and node.text
    der = bytearray(base64.b64decode("".join(node.text.split())))
    cert = x509.load_der_x509_certificate(bytes(der))
    common_name = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    where = bytes(der).rindex(str(common_name).encode())  # the subject comes after the issuer
    der[where] = 0xFF
    corrupted = x509.load_der_x509_certificate(bytes(der))  # loads: the subject is parsed later
    with pytest.raises(ValueError):
        corrupted.subject.rfc4514_string()
    node.text = base64.b64encode(bytes(der)).decode()


def test_unparsable_certificate_subject_is_a_soap_fault(
    client: FlaskClient, pki: Any, clock: FrozenClock
) -> None:
    assertion = signed_vihf(pki, clock, AUTHOR, PATIENTS[0])
    _corrupt_subject(assertion)
    data = envelope_bytes(ITI18, find_documents(PATIENTS[0]), assertion)
    # the test client re-raises what the app lets out; a live server answers 500
    response = client.post(
        REGISTRY, data=data, content_type=f'application/soap+xml; action="{ITI18}"'
    )
    assert response.status_code < 500
    assert b"Fault" in response.data


def test_non_ascii_signature_value_is_a_soap_fault(
    client: FlaskClient, pki: Any, clock: FrozenClock
) -> None:
    """Bug 10 (found by ``vihf_parser``): signxml's ``verify`` base64-decodes
    ``ds:SignatureValue`` with ``base64.b64decode``, which raises a bare ``ValueError`` ("string
    argument should contain only ASCII characters") on a non-ASCII character;
    ``xds/vihf.py::verify_vihf`` does not catch ``ValueError`` around ``XMLVerifier().verify``,
    so the request answers 500. Expected: a SOAP fault, ``vihf_bad_signature``."""
    assertion = signed_vihf(pki, clock, AUTHOR, PATIENTS[0])
    value = assertion.find(f".//{{{ns.DS}}}SignatureValue")
    assert value is not None and value.text
    value.text = value.text[:10] + "\u070f" + value.text[10:]
    data = envelope_bytes(ITI18, find_documents(PATIENTS[0]), assertion)
    response = client.post(
        REGISTRY, data=data, content_type=f'application/soap+xml; action="{ITI18}"'
    )
    assert response.status_code < 500
    assert b"Fault" in response.data


def _self_signed_with_control_character() -> bytes:
    from datetime import UTC, datetime, timedelta

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "evil\x01cachet")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


def test_control_character_in_certificate_subject_is_a_soap_fault(
    client: FlaskClient, pki: Any, clock: FrozenClock
) -> None:
    """Bug 12 (found by ``vihf_http``): ``xds/endpoint.py::fault_response`` sets the fault's
    ``Reason/Text`` to the ``SoapFault`` message with lxml; the untrusted-certificate message
    quotes the certificate subject, which the sender chooses, and lxml refuses a control
    character ("All strings must be XML compatible"): the ``ValueError`` makes the fault a 500.
    Expected: the fault, with the text escaped or stripped."""
    assertion = signed_vihf(pki, clock, AUTHOR, PATIENTS[0])
    node = assertion.find(f".//{{{ns.DS}}}X509Certificate")
    assert node is not None
    node.text = base64.b64encode(_self_signed_with_control_character()).decode()
    data = envelope_bytes(ITI18, find_documents(PATIENTS[0]), assertion)
    response = client.post(
        REGISTRY, data=data, content_type=f'application/soap+xml; action="{ITI18}"'
    )
    assert response.status_code < 500
    assert b"Fault" in response.data


def test_invalid_certificate_version_is_a_soap_fault(
    client: FlaskClient, pki: Any, clock: FrozenClock
) -> None:
    """Bug 13 (found by ``vihf_parser`` at input 33,567 of the 100,000 run): a KeyInfo
    certificate whose version field is 66 makes ``load_der_x509_certificate`` raise
    ``x509.InvalidVersion``, which is not a ``ValueError``: it escaped as a 500."""
    assertion = signed_vihf(pki, clock, AUTHOR, PATIENTS[0])
    node = assertion.find(f".//{{{ns.DS}}}X509Certificate")
    assert node is not None and node.text
    der = base64.b64decode("".join(node.text.split()))
    version_v3 = bytes.fromhex("a003020102")  # tbsCertificate [0] EXPLICIT INTEGER 2 (v3)
    assert version_v3 in der
    bad = der.replace(version_v3, bytes.fromhex("a003020142"), 1)
    with pytest.raises(x509.InvalidVersion):
        x509.load_der_x509_certificate(bad)
    node.text = base64.b64encode(bad).decode()
    data = envelope_bytes(ITI18, find_documents(PATIENTS[0]), assertion)
    response = client.post(
        REGISTRY, data=data, content_type=f'application/soap+xml; action="{ITI18}"'
    )
    assert response.status_code < 500
    assert b"Fault" in response.data


def test_bit_string_subject_attribute_is_a_soap_fault(
    client: FlaskClient, pki: Any, clock: FrozenClock
) -> None:
    """Bug 14 (found by ``vihf_parser`` at input 91,675 of the 100,000 run): a subject CN
    encoded as a BIT STRING loads, then ``rfc4514_string()`` raises ``TypeError`` ("oid must be
    X500_UNIQUE_IDENTIFIER for BitString type") while the fault text is built: a 500."""
    assertion = signed_vihf(pki, clock, AUTHOR, PATIENTS[0])
    node = assertion.find(f".//{{{ns.DS}}}X509Certificate")
    assert node is not None and node.text
    der = bytearray(base64.b64decode("".join(node.text.split())))
    cert = x509.load_der_x509_certificate(bytes(der))
    common_name = str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)
    value = common_name.encode()
    where = bytes(der).rindex(value) - 2  # tag, length, value: the subject's CN
    assert der[where] in (0x0C, 0x13)  # UTF8String / PrintableString
    der[where], der[where + 2] = 0x03, 0x00  # BIT STRING, 0 unused bits
    with pytest.raises(TypeError):
        x509.load_der_x509_certificate(bytes(der)).subject.rfc4514_string()
    node.text = base64.b64encode(bytes(der)).decode()
    data = envelope_bytes(ITI18, find_documents(PATIENTS[0]), assertion)
    response = client.post(
        REGISTRY, data=data, content_type=f'application/soap+xml; action="{ITI18}"'
    )
    assert response.status_code < 500
    assert b"Fault" in response.data

