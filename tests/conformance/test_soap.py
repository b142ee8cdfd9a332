"""The kit's SOAP client: a VIHF it signs survives any envelope the DMP examples use."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from lxml import etree

from conformance.transport import Transport
from conformance.xds.soap import XdsClient, XdsEndpoints, put_assertion
from xds.vihf import verify_vihf
from xds.xml import parse_xml

HL7 = "urn:hl7-org:v3"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"


def _envelope() -> etree._Element:
    """Like TD0.2: the HL7v3 namespace declared with a prefix on the root element."""
    return etree.fromstring(
        f'<soap:Envelope xmlns:soap="{SOAP12}" xmlns:urn="{HL7}"><soap:Header/>'
        f'<soap:Body><PRPA_IN201307UV02 xmlns="{HL7}"/></soap:Body></soap:Envelope>'
    )


def test_spliced_assertion_keeps_its_signature(pki: Any) -> None:
    transport = Transport("http://127.0.0.1")
    try:
        assertion = XdsClient(transport, pki, XdsEndpoints()).assertion(
            "207058575627097", "1.2.250.1.213.1.4.10"
        )
    finally:
        transport.close()
    trusted = [pki.ca_cert.read_bytes()]
    now = datetime.now(UTC)
    verified = verify_vihf(
        parse_xml(put_assertion(_envelope(), assertion)), trusted_ca_pems=trusted, now=now
    )
    assert verified.patient_ins == "207058575627097"
