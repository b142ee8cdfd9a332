"""Server bugs found by fuzzing the VIHF reader end to end, kept as strict xfails until fixed
(W3C SOAP 1.2 Part 1 §5.4, OASIS WSS 1.1 §12: a bad security header is a SOAP fault; the XDS
endpoint's own contract: no exception escapes as an HTTP 500)."""

from __future__ import annotations

from typing import Any

from sec_world import PATIENTS
from soap_kit import SOAP_CT, send, signed_vihf
from xds_support import AUTHOR, ITI18, REGISTRY, envelope_bytes, find_documents

from espace.clock import FrozenClock


def _relative_namespace_vihf(pki: Any, clock: FrozenClock) -> bytes:
    assertion = signed_vihf(pki, clock, AUTHOR, PATIENTS[0])
    data: bytes = envelope_bytes(ITI18, find_documents(PATIENTS[0]), assertion)
    # a relative namespace URI declared inside the signed assertion (C14N 1.0 refuses those)
    return data.replace(b"<saml2:Issuer", b'<saml2:Issuer xmlns:x="relative"', 1)


def test_relative_namespace_in_vihf_is_a_soap_fault(
    http: Any, pki: Any, clock: FrozenClock
) -> None:
    sent = send(http, REGISTRY, _relative_namespace_vihf(pki, clock), SOAP_CT.format(action=ITI18))
    assert sent.status < 500, sent.status
    assert sent.is_fault()
