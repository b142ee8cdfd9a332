"""The test PKI: profiles of each certificate, chains, idempotence."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from cryptography.x509 import verification as x509v
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mes.pki import MSSANTE_OPERATOR_DOMAIN, TEST_STRUCTURE_ID, TestPki, generate_test_pki
from xds.vihf import is_signature_certificate


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return generate_test_pki(tmp_path_factory.mktemp("pki"))


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _ekus(cert: x509.Certificate) -> set[x509.ObjectIdentifier]:
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def _chains(leaf: Path, ca: Path) -> bool:
    verifier = (
        x509v.PolicyBuilder()
        .store(x509v.Store([_cert(ca)]))
        .time(datetime.now(UTC))
        .extension_policies(
            ca_policy=x509v.ExtensionPolicy.webpki_defaults_ca(),
            ee_policy=x509v.ExtensionPolicy.permit_all(),
        )
        .build_client_verifier()
    )
    try:
        verifier.verify(_cert(leaf), [])
    except x509v.VerificationError:
        return False
    return True


def test_every_file_exists_with_private_keys_protected(pki: TestPki) -> None:
    for name in TestPki.__dataclass_fields__:
        value = getattr(pki, name)
        if isinstance(value, Path) and name != "directory":
            assert value.is_file(), name
            if name.endswith("_key"):
                assert stat.S_IMODE(value.stat().st_mode) == 0o600
                key = load_pem_private_key(value.read_bytes(), password=None)
                assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048


def test_ca_is_self_signed_mes_test_ca(pki: TestPki) -> None:
    ca = _cert(pki.ca_cert)
    assert ca.subject == ca.issuer
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "MES Test CA"
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_signing_certificates_are_signature_profile(pki: TestPki) -> None:
    for path in (pki.signing_cert, pki.ps_signature_cert):
        cert = _cert(path)
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        assert usage.digital_signature and usage.content_commitment
        assert is_signature_certificate(cert)
        assert _chains(path, pki.ca_cert)
    assert TEST_STRUCTURE_ID in _cert(pki.signing_cert).subject.rfc4514_string()


def test_authentication_certificate_is_not_a_signature_certificate(pki: TestPki) -> None:
    cert = _cert(pki.auth_cert)
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.content_commitment
    assert _ekus(cert) == {ExtendedKeyUsageOID.CLIENT_AUTH}
    assert not is_signature_certificate(cert)
    assert _chains(pki.auth_cert, pki.ca_cert)


def test_tls_server_certificate_for_localhost(pki: TestPki) -> None:
    cert = _cert(pki.tls_server_cert)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert "127.0.0.1" in {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
    assert _ekus(cert) == {ExtendedKeyUsageOID.SERVER_AUTH}
    verifier = (
        x509v.PolicyBuilder()
        .store(x509v.Store([_cert(pki.ca_cert)]))
        .time(datetime.now(UTC))
        .build_server_verifier(x509.DNSName("localhost"))
    )
    verifier.verify(cert, [])


def test_mssante_operator_client_certificate(pki: TestPki) -> None:
    cert = _cert(pki.mssante_client_cert)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [MSSANTE_OPERATOR_DOMAIN]
    assert _ekus(cert) == {ExtendedKeyUsageOID.CLIENT_AUTH}
    assert (
        x509v.PolicyBuilder()
        .store(x509v.Store([_cert(pki.ca_cert)]))
        .time(datetime.now(UTC))
        .build_client_verifier()
        .verify(cert, [])
        .subjects
    )


def test_untrusted_chain_is_separate(pki: TestPki) -> None:
    assert _chains(pki.untrusted_signing_cert, pki.untrusted_ca_cert)
    assert not _chains(pki.untrusted_signing_cert, pki.ca_cert)
    assert not _chains(pki.signing_cert, pki.untrusted_ca_cert)


def test_idempotent_unless_overwrite(tmp_path: Path) -> None:
    first = generate_test_pki(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    generate_test_pki(tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    first.tls_server_cert.unlink()
    first.tls_server_key.unlink()
    generate_test_pki(tmp_path)
    assert first.signing_cert.read_bytes() == before["signing.cert.pem"]
    assert _chains(first.tls_server_cert, first.ca_cert)
    generate_test_pki(tmp_path, overwrite=True)
    assert first.ca_cert.read_bytes() != before["ca.cert.pem"]
    assert _chains(first.signing_cert, first.ca_cert)


def test_new_ca_reissues_every_leaf(tmp_path: Path) -> None:
    pki = generate_test_pki(tmp_path)
    pki.ca_cert.unlink()
    generate_test_pki(tmp_path)
    assert _chains(pki.signing_cert, pki.ca_cert)
    assert _chains(pki.mssante_client_cert, pki.ca_cert)
