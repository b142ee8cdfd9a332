"""A throw-away test PKI for ``make run``, demo data and the test suite.

It mimics the IGC-Santé / CPS certificate profiles closely enough for the rules that the
server applies (see :mod:`xds.vihf`):

- **signature** certificates (structure "cachet" and CPS signature) carry KeyUsage
  ``digitalSignature`` + ``nonRepudiation`` and, like the ANS examples, EKU
  ``emailProtection``. They may sign VIHF assertions;
- **authentication** certificates carry ``digitalSignature`` only and EKU ``clientAuth``.
  They authenticate a TLS client and are refused as VIHF signers;
- a TLS server certificate for ``localhost``/``127.0.0.1``, and an MSSanté operator client
  certificate (``clientAuth``) for :data:`MSSANTE_OPERATOR_DOMAIN`;
- an untrusted second CA with a signature certificate, for negative tests.

Keys are RSA 2048 (the DMP signs VIHF with RSA-SHA256). Files are PEM; private keys are
PKCS#8, unencrypted, mode 0600: never use this PKI outside tests and demos.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: Struct_IdNat of the test structure (the ANS examples' "4" + RPPS-rang form).
TEST_STRUCTURE_ID: Final = "499900063480001"
#: PS_IdNat ("8" + RPPS) of the test professional holding the CPS certificates.
TEST_PROFESSIONAL_ID: Final = "899900063480"
MSSANTE_OPERATOR_DOMAIN: Final = "operateur.test.mssante.fr"

_KEY_SIZE: Final = 2048
_LEAF_LIFETIME: Final = timedelta(days=825)
_CA_LIFETIME: Final = timedelta(days=3650)


class CertificateProfile(StrEnum):
    SIGNATURE = "signature"  # digitalSignature + nonRepudiation, EKU emailProtection
    AUTHENTICATION = "authentication"  # digitalSignature only, EKU clientAuth
    TLS_SERVER = "tls_server"
    TLS_CLIENT = "tls_client"


@dataclass(frozen=True, slots=True)
class TestPki:
    """Paths of the PEM files written by :func:`generate_test_pki`."""

    __test__ = False  # not a pytest test class

    directory: Path
    ca_cert: Path
    ca_key: Path
    signing_cert: Path  # structure signature ("cachet") certificate: signs VIHF assertions
    signing_key: Path
    ps_signature_cert: Path  # CPS signature certificate of TEST_PROFESSIONAL_ID (direct mode)
    ps_signature_key: Path
    auth_cert: Path  # CPS authentication certificate: refused as a VIHF signer
    auth_key: Path
    tls_server_cert: Path
    tls_server_key: Path
    mssante_client_cert: Path
    mssante_client_key: Path
    untrusted_ca_cert: Path
    untrusted_ca_key: Path
    untrusted_signing_cert: Path  # a signature certificate issued by the untrusted CA
    untrusted_signing_key: Path
    structure_id: str = TEST_STRUCTURE_ID
    professional_id: str = TEST_PROFESSIONAL_ID
    mssante_operator_domain: str = MSSANTE_OPERATOR_DOMAIN


def _name(*attributes: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes])


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=_KEY_SIZE)


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_usage(
    *,
    signature: bool = True,
    non_repudiation: bool = False,
    key_encipherment: bool = False,
    ca: bool = False,
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signature,
        content_commitment=non_repudiation,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _make_ca(common_name: str, now: datetime) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = _new_key()
    name = _name(
        (NameOID.COUNTRY_NAME, "FR"),
        (NameOID.ORGANIZATION_NAME, "MES TEST"),
        (NameOID.COMMON_NAME, common_name),
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + _CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(_key_usage(signature=False, ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def issue_test_certificate(
    ca_cert_pem: bytes,
    ca_key_pem: bytes,
    *,
    subject: x509.Name,
    profile: CertificateProfile,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    dns_names: Sequence[str] = (),
    ip_addresses: Sequence[str] = (),
) -> tuple[bytes, bytes]:
    """Issue a leaf certificate of ``profile`` under a CA; return ``(cert_pem, key_pem)``.

    Tests use it for certificates that :func:`generate_test_pki` does not keep on disk
    (expired, not yet valid...).
    """
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    if not isinstance(ca_key, rsa.RSAPrivateKey):
        raise TypeError("the test CA key must be RSA")
    now = datetime.now(UTC)
    key = _new_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - timedelta(days=1))
        .not_valid_after(not_after or now + _LEAF_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if profile is CertificateProfile.SIGNATURE:
        usage = _key_usage(non_repudiation=True)
        ekus = [ExtendedKeyUsageOID.EMAIL_PROTECTION]
    elif profile is CertificateProfile.AUTHENTICATION:
        usage = _key_usage()
        ekus = [ExtendedKeyUsageOID.CLIENT_AUTH]
    elif profile is CertificateProfile.TLS_SERVER:
        usage = _key_usage(key_encipherment=True)
        ekus = [ExtendedKeyUsageOID.SERVER_AUTH]
    else:
        usage = _key_usage(key_encipherment=True)
        ekus = [ExtendedKeyUsageOID.CLIENT_AUTH]
    builder = builder.add_extension(usage, critical=True).add_extension(
        x509.ExtendedKeyUsage(ekus), critical=False
    )
    alt_names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return _cert_pem(cert), _key_pem(key)


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    path.write_bytes(data)
    if private:
        os.chmod(path, 0o600)


def generate_test_pki(directory: Path, *, overwrite: bool = False) -> TestPki:
    """Write the test PKI under ``directory`` and return its paths.

    Idempotent: existing files are kept unless ``overwrite`` is true. When the CA itself
    has to be (re)created, every leaf is re-issued so that the set stays consistent.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    pki = TestPki(
        directory=directory,
        **{
            f"{stem}_{kind}": directory / f"{stem.replace('_', '-')}.{kind}.pem"
            for stem in (
                "ca",
                "signing",
                "ps_signature",
                "auth",
                "tls_server",
                "mssante_client",
                "untrusted_ca",
                "untrusted_signing",
            )
            for kind in ("cert", "key")
        },  # type: ignore[arg-type]
    )
    now = datetime.now(UTC)

    def ensure_ca(cert_path: Path, key_path: Path, common_name: str) -> tuple[bytes, bytes, bool]:
        if not overwrite and cert_path.exists() and key_path.exists():
            return cert_path.read_bytes(), key_path.read_bytes(), False
        cert, key = _make_ca(common_name, now)
        _write(cert_path, _cert_pem(cert))
        _write(key_path, _key_pem(key), private=True)
        return _cert_pem(cert), _key_pem(key), True

    def ensure_leaf(
        ca: tuple[bytes, bytes, bool],
        cert_path: Path,
        key_path: Path,
        subject: x509.Name,
        profile: CertificateProfile,
        **extra: Sequence[str],
    ) -> None:
        ca_cert_pem, ca_key_pem, ca_is_new = ca
        if not (overwrite or ca_is_new) and cert_path.exists() and key_path.exists():
            return
        cert_pem, key_pem = issue_test_certificate(
            ca_cert_pem,
            ca_key_pem,
            subject=subject,
            profile=profile,
            **extra,  # type: ignore[arg-type]
        )
        _write(cert_path, cert_pem)
        _write(key_path, key_pem, private=True)

    ca = ensure_ca(pki.ca_cert, pki.ca_key, "MES Test CA")
    ensure_leaf(
        ca,
        pki.signing_cert,
        pki.signing_key,
        _name(
            (NameOID.COUNTRY_NAME, "FR"),
            (NameOID.ORGANIZATION_NAME, "CENTRE DE SANTE MES TEST"),
            (NameOID.ORGANIZATIONAL_UNIT_NAME, TEST_STRUCTURE_ID),
            (NameOID.COMMON_NAME, f"{TEST_STRUCTURE_ID} cachet VIHF"),
        ),
        CertificateProfile.SIGNATURE,
    )
    ensure_leaf(
        ca,
        pki.ps_signature_cert,
        pki.ps_signature_key,
        _name(
            (NameOID.COUNTRY_NAME, "FR"),
            (NameOID.ORGANIZATION_NAME, "MES TEST"),
            (NameOID.ORGANIZATIONAL_UNIT_NAME, "Médecin"),
            (NameOID.COMMON_NAME, TEST_PROFESSIONAL_ID),
        ),
        CertificateProfile.SIGNATURE,
    )
    ensure_leaf(
        ca,
        pki.auth_cert,
        pki.auth_key,
        _name(
            (NameOID.COUNTRY_NAME, "FR"),
            (NameOID.ORGANIZATION_NAME, "MES TEST"),
            (NameOID.ORGANIZATIONAL_UNIT_NAME, "Médecin"),
            (NameOID.COMMON_NAME, f"{TEST_PROFESSIONAL_ID} authentification"),
        ),
        CertificateProfile.AUTHENTICATION,
    )
    ensure_leaf(
        ca,
        pki.tls_server_cert,
        pki.tls_server_key,
        _name((NameOID.COUNTRY_NAME, "FR"), (NameOID.COMMON_NAME, "localhost")),
        CertificateProfile.TLS_SERVER,
        dns_names=("localhost",),
        ip_addresses=("127.0.0.1", "::1"),
    )
    ensure_leaf(
        ca,
        pki.mssante_client_cert,
        pki.mssante_client_key,
        _name(
            (NameOID.COUNTRY_NAME, "FR"),
            (NameOID.ORGANIZATION_NAME, "OPERATEUR MSSANTE TEST"),
            (NameOID.COMMON_NAME, MSSANTE_OPERATOR_DOMAIN),
        ),
        CertificateProfile.TLS_CLIENT,
        dns_names=(MSSANTE_OPERATOR_DOMAIN,),
    )
    untrusted = ensure_ca(pki.untrusted_ca_cert, pki.untrusted_ca_key, "MES Untrusted Test CA")
    ensure_leaf(
        untrusted,
        pki.untrusted_signing_cert,
        pki.untrusted_signing_key,
        _name(
            (NameOID.COUNTRY_NAME, "FR"),
            (NameOID.ORGANIZATION_NAME, "ATTAQUANT"),
            (NameOID.ORGANIZATIONAL_UNIT_NAME, TEST_STRUCTURE_ID),
            (NameOID.COMMON_NAME, f"{TEST_STRUCTURE_ID} cachet VIHF"),
        ),
        CertificateProfile.SIGNATURE,
    )
    return pki
