"""The hardened XML entry point against reference/security/xml-attacks and encodings."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from reference_data import REFERENCE

from xds.xml import XmlRefusal, XmlSecurityError, parse_xml

ATTACKS = REFERENCE / "security" / "xml-attacks"
VIHF_DIR = REFERENCE / "dmp" / "vihf"

DOCTYPE_ATTACKS = [
    "01_billion_laughs.xml",
    "02_quadratic_blowup.xml",
    "03_xxe_local_file.xml",
    "04_xxe_ssrf_loopback.xml",
    "05_xxe_external_parameter_entity.xml",
    "06_external_dtd.xml",
    "08_cyclic_entities.xml",
    "09_doctype_attlist_default_attribute.xml",
]


@pytest.mark.parametrize("name", DOCTYPE_ATTACKS)
def test_any_doctype_is_refused(name: str) -> None:
    with pytest.raises(XmlSecurityError) as caught:
        parse_xml((ATTACKS / name).read_bytes())
    assert caught.value.refusal is XmlRefusal.DOCTYPE
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-16-le"])
def test_doctype_found_whatever_the_encoding(encoding: str) -> None:
    """A byte search for b'<!DOCTYPE' misses these; the parser event does not."""
    declaration = f'<?xml version="1.0" encoding="{encoding.upper()}"?>'
    text = declaration + '<!DOCTYPE r [<!ENTITY a "b">]><r>&a;</r>'
    data = text.encode(encoding)
    assert b"<!DOCTYPE" not in data
    with pytest.raises(XmlSecurityError) as caught:
        parse_xml(data)
    assert caught.value.refusal is XmlRefusal.DOCTYPE


def test_undeclared_entity_is_refused() -> None:
    with pytest.raises(XmlSecurityError) as caught:
        parse_xml(b"<r>&xxe;</r>")
    assert caught.value.refusal is XmlRefusal.MALFORMED


def test_predefined_and_character_references_still_work() -> None:
    assert parse_xml(b"<r>&amp;&lt;&#65;&#x42;</r>").text == "&<AB"


@pytest.fixture
def loopback_listener() -> Iterator[list[bytes]]:
    """A listener on 127.0.0.1: any connection attempt from the parser would be recorded."""
    received: list[bytes] = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.5)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            received.append(conn.recv(1024))
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    received.append(str(server.getsockname()[1]).encode())
    yield received
    stop.set()
    thread.join(timeout=2)
    server.close()


def test_no_network_access_for_external_dtd_or_entity(loopback_listener: list[bytes]) -> None:
    port = loopback_listener[0].decode()
    for doc in (
        f'<!DOCTYPE r SYSTEM "http://127.0.0.1:{port}/evil.dtd"><r/>',
        f'<!DOCTYPE r [<!ENTITY x SYSTEM "http://127.0.0.1:{port}/x">]><r>&x;</r>',
        f'<?xml-stylesheet type="text/xsl" href="http://127.0.0.1:{port}/evil.xsl"?><r/>',
    ):
        try:
            parse_xml(doc.encode())
        except XmlSecurityError:
            pass
    assert loopback_listener == [port.encode()]


def test_xinclude_is_never_processed() -> None:
    root = parse_xml((ATTACKS / "07_xinclude_local_file.xml").read_bytes())
    assert "root:" not in "".join(root.itertext())
    assert root[0].tag == "{http://www.w3.org/2001/XInclude}include"


def test_stylesheet_pi_is_inert() -> None:
    assert parse_xml((ATTACKS / "15_xml_stylesheet_pi.xml").read_bytes()).text == "x"


def test_deep_nesting_is_refused() -> None:
    with pytest.raises(XmlSecurityError) as caught:
        parse_xml((ATTACKS / "14_deep_nesting.xml").read_bytes())
    assert caught.value.refusal is XmlRefusal.TOO_DEEP


def test_depth_limit_is_ours() -> None:
    nested = b"<a>" * 20 + b"</a>" * 20
    assert parse_xml(nested, max_depth=20) is not None
    with pytest.raises(XmlSecurityError) as caught:
        parse_xml(nested, max_depth=19)
    assert caught.value.refusal is XmlRefusal.TOO_DEEP


def test_size_limit_checked_before_parsing() -> None:
    with pytest.raises(XmlSecurityError) as caught:
        parse_xml(b"<r>" + b"x" * 2000 + b"</r>", max_bytes=1000)
    assert caught.value.refusal is XmlRefusal.TOO_LARGE


@pytest.mark.parametrize("data", [b"", b"   ", b"<r>", b"not xml", b"<a></b>"])
def test_malformed_input(data: bytes) -> None:
    with pytest.raises(XmlSecurityError) as caught:
        parse_xml(data)
    assert caught.value.refusal is XmlRefusal.MALFORMED


def test_text_is_refused() -> None:
    with pytest.raises(XmlSecurityError):
        parse_xml("<r/>")  # type: ignore[arg-type]


def test_latin1_with_declaration() -> None:
    data = '<?xml version="1.0" encoding="ISO-8859-1"?><r>Accès Médecin</r>'.encode("latin-1")
    assert parse_xml(data).text == "Accès Médecin"


def test_latin1_without_declaration_needs_the_override() -> None:
    data = (VIHF_DIR / "VIHF_DIRECTE_non_signe.xml").read_bytes()
    with pytest.raises(XmlSecurityError):
        parse_xml(data)
    root = parse_xml(data, encoding="iso-8859-1")
    assert root.get("ID") == "_ce088e5a-e31d-42d0-ba37-fda5fcbc889d"


def test_comments_are_kept_for_the_signature_layer() -> None:
    root = parse_xml((ATTACKS / "10_saml_nameid_comment_injection.xml").read_bytes())
    name_id = root.find(".//{urn:oasis:names:tc:SAML:2.0:assertion}NameID")
    assert name_id is not None
    assert "".join(name_id.itertext()) == "victim@example.test.attacker.example"
