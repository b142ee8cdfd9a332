"""XML namespace URIs of the XDS face, as constants (zeep's ``ns.py``).

Use them in Clark notation (``f"{{{SOAP12}}}Envelope"``) or in the :data:`NSMAP` prefixes for
XPath. Nothing else in the XDS face spells a namespace URI.
"""

from __future__ import annotations

from typing import Final

# SOAP 1.2 (W3C SOAP 1.2 Part 1) and SOAP 1.1 (seen in the DMP kit's TD2.1 example)
SOAP12: Final = "http://www.w3.org/2003/05/soap-envelope"
SOAP11: Final = "http://schemas.xmlsoap.org/soap/envelope/"
# WS-Addressing 1.0 (2005/08)
WSA: Final = "http://www.w3.org/2005/08/addressing"
WSA_ANONYMOUS: Final = "http://www.w3.org/2005/08/addressing/anonymous"
# WS-Security 1.0/1.1 (OASIS 2004/01)
WSSE: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
WSSE11: Final = "http://docs.oasis-open.org/wss/oasis-wss-wssecurity-secext-1.1.xsd"
# SAML 2.0 assertion, XML-DSig, exclusive c14n
SAML2: Final = "urn:oasis:names:tc:SAML:2.0:assertion"
DS: Final = "http://www.w3.org/2000/09/xmldsig#"
EXC_C14N: Final = "http://www.w3.org/2001/10/xml-exc-c14n#"
# XOP / MTOM
XOP: Final = "http://www.w3.org/2004/08/xop/include"
XMIME: Final = "http://www.w3.org/2005/05/xmlmime"
# ebXML RegRep 3.0 (ebRIM / ebRS)
RIM: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
LCM: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
QUERY: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
RS: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
# IHE XDS.b
XDS: Final = "urn:ihe:iti:xds-b:2007"
# HL7 v3 (VIHF Role / PurposeOfUse, CDA, PRPA messages)
HL7: Final = "urn:hl7-org:v3"
# XML Schema
XSI: Final = "http://www.w3.org/2001/XMLSchema-instance"
XS: Final = "http://www.w3.org/2001/XMLSchema"
XML: Final = "http://www.w3.org/XML/1998/namespace"

#: Prefixes used for XPath and for the documents this server writes.
NSMAP: Final[dict[str, str]] = {
    "soap": SOAP12,
    "soap11": SOAP11,
    "wsa": WSA,
    "wsse": WSSE,
    "wsu": WSU,
    "saml2": SAML2,
    "ds": DS,
    "xop": XOP,
    "rim": RIM,
    "lcm": LCM,
    "query": QUERY,
    "rs": RS,
    "xds": XDS,
    "hl7": HL7,
    "xsi": XSI,
    "xs": XS,
}


def qname(namespace: str, local: str) -> str:
    """Return ``{namespace}local`` (Clark notation)."""
    return f"{{{namespace}}}{local}"
