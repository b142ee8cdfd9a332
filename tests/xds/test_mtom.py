"""MTOM/XOP reading and writing: DMP kit and IHE TF wire samples, caps, XOP references."""

from __future__ import annotations

import base64
import io

import pytest
from lxml import etree
from reference_data import REFERENCE

from xds import ns
from xds.mtom import (
    MtomError,
    MtomErrorCode,
    build_mtom_request,
    build_mtom_response,
    element_content,
    parse_mtom,
    resolve_xop_includes,
    xop_include,
)
from xds.xml import parse_xml

MESSAGES = REFERENCE / "dmp" / "messages"
TF = REFERENCE / "xds" / "tf-samples"
ATTACKS = REFERENCE / "security" / "xml-attacks"
TD21_CONTENT_TYPE = (
    'multipart/related; boundary="----=_Part_9_20030738.1554380517598"; '
    'type="application/xop+xml"; '
    'start="<rootpart@soapui.org>"; start-info="application/soap+xml"'
)
DOCUMENT = f"{{{ns.XDS}}}Document"


class CountingReader(io.BytesIO):
    """A request stream that records how many bytes were pulled from it."""

    consumed = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.consumed += len(chunk)
        return chunk


def _wire_sample(name: str) -> tuple[str, bytes]:
    """Split a TF wire transcription into (Content-Type, body); '#' lines are comments."""
    lines = [line for line in (TF / name).read_text().splitlines() if not line.startswith("#")]
    blank = lines.index("")
    headers, body = lines[1:blank], lines[blank + 1 :]
    content_type, collecting = "", False
    for line in headers:
        if line.lower().startswith("content-type:"):
            content_type, collecting = line.split(":", 1)[1], True
        elif collecting and line[:1] in (" ", "\t"):
            content_type += " " + line.strip()
        else:
            collecting = False
    return content_type.strip(), ("\n".join(body).strip() + "\n").encode()


def test_dmp_kit_td21_provide_and_register() -> None:
    message = parse_mtom(
        (MESSAGES / "TD2.1_Alimentation_requete.xml").read_bytes(), TD21_CONTENT_TYPE
    )
    assert message.multipart and message.root_content_type == "application/xop+xml"
    assert set(message.attachments) == {
        "WS_DMP_TD2.1-DocumentME2.xml",
        "WS_DMP_TD2.1-SignatureXades.xml",
    }
    root = parse_xml(message.root_xml)
    resolved = resolve_xop_includes(root, message.attachments)
    documents = list(root.iter(DOCUMENT))
    assert len(documents) == 2 and set(resolved) == set(documents)
    cda = element_content(documents[0], resolved)
    assert cda.startswith(b"<ClinicalDocument") and cda.rstrip().endswith(b"</ClinicalDocument>")
    expected = (
        (MESSAGES / "TD2.1-DocumentME2.xml")
        .read_bytes()
        .replace(b"\r\n", b"\n")
        .removeprefix(b"\xef\xbb\xbf")
    )
    assert cda.strip() == expected.strip()
    assert element_content(documents[1], resolved).lstrip().startswith(b"<")


def test_tf_iti43_response_wire_sample() -> None:
    content_type, body = _wire_sample("ITI-43_response_MTOM_wire.txt")
    message = parse_mtom(body, content_type)  # start= without angle brackets
    root = parse_xml(message.root_xml)
    resolved = resolve_xop_includes(root, message.attachments)
    (document,) = root.iter(DOCUMENT)
    assert element_content(document, resolved).startswith(b"Four score and seven years ago")
    assert (
        message.attachment_types["1.urn:uuid:E910375860336E2B8F1289514978312@apache.org"]
        == "text/plain"
    )


def test_tf_iti43_request_wire_sample_has_only_a_root() -> None:
    content_type, body = _wire_sample("ITI-43_request_MTOM_wire.txt")
    message = parse_mtom(io.BytesIO(body), content_type)
    assert message.attachments == {}
    assert parse_xml(message.root_xml).tag == f"{{{ns.SOAP12}}}Envelope"


def _envelope_with_documents(*hrefs_or_inline: etree._Element | str) -> bytes:
    envelope = etree.Element(f"{{{ns.SOAP12}}}Envelope", nsmap={"s": ns.SOAP12})
    body = etree.SubElement(envelope, f"{{{ns.SOAP12}}}Body")
    request = etree.SubElement(body, f"{{{ns.XDS}}}ProvideAndRegisterDocumentSetRequest")
    for index, content in enumerate(hrefs_or_inline):
        document = etree.SubElement(request, DOCUMENT, id=f"Document{index:02}")
        if isinstance(content, str):
            document.text = content
        else:
            document.append(content)
    data: bytes = etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
    return data


def test_round_trip_of_binary_attachments() -> None:
    payloads = {
        "doc 1@mes.test": bytes(range(256)) * 10,
        "doc2@mes.test": b"--MIMEBoundary_fake\r\n\r\n--\r\nContent-ID: <x>\r\n",
        "empty@mes.test": b"",
    }
    envelope = _envelope_with_documents(*(xop_include(cid) for cid in payloads))
    body, content_type = build_mtom_request(
        envelope,
        {cid: (data, "application/octet-stream") for cid, data in payloads.items()},
        action="urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b",
    )
    assert (
        content_type.startswith("multipart/related;")
        and 'type="application/xop+xml"' in content_type
    )
    message = parse_mtom(CountingReader(body), content_type)
    assert message.attachments == payloads
    root = parse_xml(message.root_xml)
    resolved = resolve_xop_includes(root, message.attachments)
    assert [element_content(d, resolved) for d in root.iter(DOCUMENT)] == list(payloads.values())
    assert 'href="cid:doc%201@mes.test"' in message.root_xml.decode()


def test_response_builder_matches_iti43_shape() -> None:
    envelope = _envelope_with_documents(xop_include("1.doc@mes.test"))
    document = b"%PDF-1.4"
    items, content_type = build_mtom_response(
        envelope, {"1.doc@mes.test": (document, "application/pdf")}
    )
    assert any(item is document for item in items)  # sent as given, never copied
    body = b"".join(items)
    assert 'start-info="application/soap+xml"' in content_type
    assert (
        b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: binary\r\n"
        b"Content-ID: <1.doc@mes.test>" in body
    )
    assert parse_mtom(body, content_type).attachments == {"1.doc@mes.test": b"%PDF-1.4"}
    with pytest.raises(ValueError):
        build_mtom_response(envelope, {"<bad>": (b"", "text/plain")})


def test_plain_soap_with_inline_base64_document() -> None:
    envelope = _envelope_with_documents(base64.b64encode(b"<ClinicalDocument/>").decode())
    message = parse_mtom(envelope, 'application/soap+xml; charset=UTF-8; action="urn:x"')
    assert not message.multipart and message.attachments == {}
    root = parse_xml(message.root_xml)
    (document,) = root.iter(DOCUMENT)
    assert element_content(document, resolve_xop_includes(root, {})) == b"<ClinicalDocument/>"


def test_invalid_inline_base64_is_refused() -> None:
    root = parse_xml(_envelope_with_documents("not base64 !"))
    with pytest.raises(MtomError) as caught:
        element_content(next(root.iter(DOCUMENT)), {})
    assert caught.value.code is MtomErrorCode.MALFORMED


@pytest.mark.parametrize(
    "href",
    [
        "file:///etc/passwd",
        "http://127.0.0.1:9/doc",
        "https://example.test/doc",
        "cid:part-that-does-not-exist@example.test",
        "",
        "doc1@mes.test",
    ],
)
def test_only_cid_references_to_parts_of_the_package(href: str) -> None:
    include = etree.Element(f"{{{ns.XOP}}}Include", href=href)
    root = parse_xml(_envelope_with_documents(include))
    with pytest.raises(MtomError) as caught:
        resolve_xop_includes(root, {"doc1@mes.test": b"x"})
    assert caught.value.code is MtomErrorCode.BAD_XOP_REFERENCE


def test_reference_attack_sample_is_refused() -> None:
    root = parse_xml((ATTACKS / "11_mtom_xop_include_non_cid_href.xml").read_bytes())
    with pytest.raises(MtomError) as caught:
        resolve_xop_includes(root, {})
    assert caught.value.code is MtomErrorCode.BAD_XOP_REFERENCE


def test_include_must_be_alone_in_its_element() -> None:
    envelope = _envelope_with_documents(xop_include("doc1@mes.test"))
    root = parse_xml(envelope)
    document = next(root.iter(DOCUMENT))
    document.text = "QUJD"
    with pytest.raises(MtomError):
        resolve_xop_includes(root, {"doc1@mes.test": b"x"})


def test_oversized_part_refused_before_reading_the_whole_body() -> None:
    big = b"A" * (2 * 1024 * 1024)
    envelope = _envelope_with_documents(xop_include("big@mes.test"))
    body, content_type = build_mtom_request(envelope, {"big@mes.test": (big, "text/plain")})
    reader = CountingReader(body)
    with pytest.raises(MtomError) as caught:
        parse_mtom(reader, content_type, max_part_bytes=256 * 1024)
    assert caught.value.code is MtomErrorCode.TOO_LARGE
    assert reader.consumed < 512 * 1024 < len(body)


def test_oversized_request_refused() -> None:
    envelope = _envelope_with_documents(xop_include("a@mes.test"), xop_include("b@mes.test"))
    parts = {cid: (b"B" * 300_000, "text/plain") for cid in ("a@mes.test", "b@mes.test")}
    body, content_type = build_mtom_request(envelope, parts)
    reader = CountingReader(body)
    with pytest.raises(MtomError) as caught:
        parse_mtom(reader, content_type, max_total_bytes=400_000)
    assert caught.value.code is MtomErrorCode.TOO_LARGE
    assert reader.consumed < len(body)
    with pytest.raises(MtomError):
        parse_mtom(b"<x/>" * 1000, "application/soap+xml", max_total_bytes=100)


def test_base64_transfer_encoding_is_decoded() -> None:
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Type: application/xop+xml; type="application/soap+xml"\r\n'
        f"Content-ID: <root>\r\n\r\n<e/>\r\n"
        f"--{boundary}\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n"
        f"Content-ID: <doc>\r\n\r\naGVs\r\nbG8=\r\n--{boundary}--\r\n"
    ).encode()
    message = parse_mtom(
        body, f'multipart/related; boundary={boundary}; type="application/xop+xml"'
    )
    assert message.attachments == {"doc": b"hello"}


@pytest.mark.parametrize(
    ("content_type", "body", "code"),
    [
        ("application/json", b"{}", MtomErrorCode.UNSUPPORTED_MEDIA_TYPE),
        ('multipart/related; type="application/xop+xml"', b"", MtomErrorCode.MALFORMED),
        (
            'multipart/related; boundary=b; type="image/png"',
            b"",
            MtomErrorCode.UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "multipart/related; boundary=b",
            b"--b\r\nContent-ID: <r>\r\n\r\n<e/>",
            MtomErrorCode.MALFORMED,
        ),
        (
            'multipart/related; boundary=b; start="<missing>"',
            b"--b\r\nContent-Type: application/xop+xml\r\nContent-ID: <r>\r\n\r\n<e/>\r\n--b--\r\n",
            MtomErrorCode.MALFORMED,
        ),
        (
            "multipart/related; boundary=b",
            b"--b\r\nContent-Type: application/xop+xml\r\nContent-ID: <r>\r\n\r\n<e/>\r\n"
            b"--b\r\nContent-ID: <r>\r\n\r\nx\r\n--b--\r\n",
            MtomErrorCode.MALFORMED,
        ),
        (
            "multipart/related; boundary=b",
            b"--b\r\nContent-Type: application/xop+xml\r\nContent-ID: <r>\r\n\r\n<e/>\r\n"
            b"--b\r\nContent-ID: <d>\r\nContent-Transfer-Encoding: quoted-printable\r\n"
            b"\r\nx\r\n--b--\r\n",
            MtomErrorCode.MALFORMED,
        ),
        (
            "multipart/related; boundary=b",
            b"--b\r\nContent-Type: image/png\r\nContent-ID: <r>\r\n\r\nx\r\n--b--\r\n",
            MtomErrorCode.UNSUPPORTED_MEDIA_TYPE,
        ),
    ],
)
def test_malformed_packages(content_type: str, body: bytes, code: MtomErrorCode) -> None:
    with pytest.raises(MtomError) as caught:
        parse_mtom(body, content_type)
    assert caught.value.code is code


def test_root_without_content_id_when_no_start_parameter() -> None:
    body = (
        b"--b\r\nContent-Type: application/xop+xml\r\n\r\n<e/>\r\n"
        b"--b\r\nContent-Type: text/plain\r\nContent-ID: <d@x>\r\n\r\nhi\r\n--b--\r\n"
    )
    message = parse_mtom(body, 'multipart/related; boundary=b; type="application/xop+xml"')
    assert (message.root_xml, message.attachments) == (b"<e/>", {"d@x": b"hi"})
    with pytest.raises(MtomError):
        parse_mtom(body.replace(b"Content-ID: <d@x>\r\n", b""), "multipart/related; boundary=b")
