"""Fixtures of the XDS security tests: a test PKI (once per session) and a VIHF factory."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from lxml import etree

from mes.pki import TestPki, generate_test_pki
from xds import ns
from xds.vihf import build_soap_envelope, build_vihf, certificate_dn, sign_vihf
from xds.xml import parse_xml

PATIENT_A = "207058575627097"
PATIENT_B = "190012345678901"
MEDECIN_ID = "899900063480"
ATTACKER_ID = "899999999999"

EnvelopeFactory = Callable[..., etree._Element]


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return generate_test_pki(tmp_path_factory.mktemp("xds-pki"))


@pytest.fixture(scope="session")
def trusted(pki: TestPki) -> list[bytes]:
    return [pki.ca_cert.read_bytes()]


@pytest.fixture(scope="session")
def vihf_now() -> datetime:
    """The instant the VIHF fixtures are issued at (test modules alias it as ``now``)."""
    return datetime.now(UTC).replace(microsecond=0)


def wire(element: etree._Element) -> etree._Element:
    """Serialize and re-parse through the hardened parser, as the endpoint would receive it."""
    return parse_xml(etree.tostring(element))


@pytest.fixture(scope="session")
def make_envelope(pki: TestPki, vihf_now: datetime) -> EnvelopeFactory:
    """Build a signed SOAP 1.2 envelope; keyword arguments override build_vihf's."""

    def factory(
        *,
        cert: bytes | None = None,
        key: bytes | None = None,
        digest: str = "sha256",
        sign: bool = True,
        tamper: Callable[[etree._Element], None] | None = None,
        **overrides: Any,
    ) -> etree._Element:
        cert_pem = cert if cert is not None else pki.signing_cert.read_bytes()
        key_pem = key if key is not None else pki.signing_key.read_bytes()
        claims: dict[str, Any] = {
            "professional_id": MEDECIN_ID,
            "profession": "10",
            "specialty": "SM26",
            "structure_id": pki.structure_id,
            "issuer": certificate_dn(cert_pem),
            "issue_instant": vihf_now,
            "patient_ins": PATIENT_A,
            "lifetime": timedelta(minutes=5),
        }
        claims.update(overrides)
        assertion = build_vihf(**claims)
        if tamper is not None:
            tamper(assertion)
        if sign:
            assertion = sign_vihf(assertion, key_pem, cert_pem, digest=digest)
        body = etree.Element(f"{{{ns.QUERY}}}AdhocQueryRequest", nsmap={"query": ns.QUERY})
        envelope = build_soap_envelope("urn:ihe:iti:2007:RegistryStoredQuery", body, assertion)
        return wire(envelope)

    return factory
