"""The VIHF signing-certificate rule against the certificates the DMP sources name.

SEL-MP-037 EX_GEN-1450: in indirect authentication the structure signs the VIHF with its
IGC-Santé ``ORG_SIGN`` "cachet" certificate and opens TLS with its ``ORG_AUTH_CLI`` one. The
kit's indirect example is signed by an ``ORG_SIGN`` certificate (accepted); its 2019 AIR example
by an ``ORG_AUTH_CLI`` one (refused). See ``xds/vihf.py``.
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from xds_support import REFERENCE

from xds.vihf import is_signature_certificate

VIHF_EXAMPLES = REFERENCE / "dmp" / "vihf"


def certificate(
    *,
    digital_signature: bool = True,
    non_repudiation: bool = False,
    purposes: tuple[x509.ObjectIdentifier, ...] = (),
    ca: bool = False,
) -> x509.Certificate:
    """A self-signed certificate with the given KeyUsage / ExtendedKeyUsage (the rule reads
    only the extensions; chains are checked elsewhere)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "structure test")])
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=digital_signature,
                content_commitment=non_repudiation,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if purposes:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(purposes)), critical=False)
    return builder.sign(key, hashes.SHA256())


ORG_SIGN = {"non_repudiation": True, "purposes": (ExtendedKeyUsageOID.EMAIL_PROTECTION,)}
ORG_AUTH_CLI = {"purposes": (ExtendedKeyUsageOID.CLIENT_AUTH,)}


@pytest.mark.parametrize(
    ("profile", "accepted"),
    [
        (ORG_SIGN, True),  # cachet de personne morale (IGC-Santé ORG_SIGN)
        ({"non_repudiation": True}, True),  # CPS signature certificate: no EKU
        (ORG_AUTH_CLI, False),  # authentification client de personne morale
        ({"non_repudiation": True, "purposes": (ExtendedKeyUsageOID.CLIENT_AUTH,)}, False),
        (
            {
                "non_repudiation": True,
                "purposes": (ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH),
            },
            False,
        ),
        ({"non_repudiation": True, "ca": True}, False),
        ({"digital_signature": False, "non_repudiation": True}, False),
    ],
)
def test_signature_rule_by_certificate_profile(profile: dict[str, object], accepted: bool) -> None:
    assert is_signature_certificate(certificate(**profile)) is accepted  # type: ignore[arg-type]


def _example_certificate(name: str) -> x509.Certificate:
    path = VIHF_EXAMPLES / name
    if not path.is_file():
        pytest.skip("the DMP kit's VIHF examples are not available")
    text = path.read_bytes().decode("latin-1")
    found = re.search(r"X509Certificate>([^<]+)<", text)
    assert found is not None
    return x509.load_der_x509_certificate(base64.b64decode("".join(found.group(1).split())))


def test_the_kit_indirect_example_is_signed_by_an_org_sign_certificate() -> None:
    cert = _example_certificate("VIHF_INDIRECTE_signe.xml")
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment
    assert is_signature_certificate(cert)


def test_the_2019_air_example_signed_by_an_org_auth_cli_certificate_is_refused() -> None:
    cert = _example_certificate("VIHF_INDIRECTE_RENFORCEE_signe.xml")
    purposes = list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert purposes == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not is_signature_certificate(cert)
