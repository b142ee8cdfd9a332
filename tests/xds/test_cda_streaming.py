"""The streamed CDA check (issue #8) answers exactly what ``parse_xml`` + ``findall`` answered:
same patients read, same documents refused (then stored as is), no copy of the bytes, and no
tree of the body kept."""

from __future__ import annotations

import pytest
from xds_support import PATIENT, PATIENT_OID, cda

from espace.registry.model import DocumentEntry
from xds import ns
from xds.cda import CdaInspector, read_header, record_target_ids
from xds.xml import XmlSecurityError, parse_xml

PATH = f"{{{ns.HL7}}}recordTarget/{{{ns.HL7}}}patientRole/{{{ns.HL7}}}id"
BIG_TEXT = "A" * 10_500_000  # over libxml2's 10 MB text-node limit (no huge_tree)


def reference(content: bytes, max_bytes: int = 64 * 1024 * 1024) -> list[tuple[str, str]] | None:
    """What CdaInspector answered before issue #8 (a whole tree through parse_xml)."""
    try:
        root = parse_xml(content, max_bytes=max_bytes)
    except XmlSecurityError:
        return None
    if root.tag != f"{{{ns.HL7}}}ClinicalDocument":
        return None
    return [(i.get("extension") or "", i.get("root") or "") for i in root.findall(PATH)]


def _entry(mime: str = "text/xml") -> DocumentEntry:
    entry = DocumentEntry(id="Document01")
    entry.mime_type = mime
    return entry


BASE = cda()
CASES = {
    "plain": BASE,
    "two_ids": BASE.replace(
        b"</patientRole>", b'<id extension="X" root="1.2.3"/></patientRole>', 1
    ),
    "two_record_targets": BASE.replace(
        b"<component>",
        b'<recordTarget><patientRole><id extension="Y" root="1.2"/></patientRole>'
        b"</recordTarget><component>",
        1,
    ),
    "other_root": b'<?xml version="1.0"?><doc xmlns="urn:hl7-org:v3"><recordTarget/></doc>',
    "no_namespace": BASE.replace(b' xmlns="urn:hl7-org:v3"', b""),
    "doctype": BASE.replace(b"<ClinicalDocument", b"<!DOCTYPE x []><ClinicalDocument", 1),
    "malformed_after_record_target": BASE.replace(b"</component>", b"</componen>", 1),
    "truncated": BASE[:-40],
    "entity": BASE.replace(b"<title>", b"<title>&lt;&amp;", 1),
    "undefined_entity": BASE.replace(b"<title>", b"<title>&nbsp;", 1),
    "empty": b"",
    "whitespace": b" \n\t\r\x0b\x0c",
    "text": b"not xml at all",
    "too_deep": BASE.replace(b"<title>", b"<a>" * 120 + b"</a>" * 120 + b"<title>", 1),
    "huge_text_node": BASE.replace(b"Compte rendu", BIG_TEXT.encode(), 1),
    "long_many_elements": BASE.replace(
        b'<text mediaType="text/plain">', b"<text>" + b"<p>ligne</p>" * 300_000, 1
    ),
    "latin1": BASE.replace(b'encoding="UTF-8"', b'encoding="ISO-8859-1"', 1).replace(
        b"Compte rendu", "Compte rendu \xe9".encode("latin-1")
    ),
    "utf16": BASE.replace(b'encoding="UTF-8"', b'encoding="UTF-16"', 1).decode().encode("utf-16"),
    "comment_and_pi_at_top": BASE.replace(b"<recordTarget>", b"<!-- c --><?pi x?><recordTarget>"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_streamed_check_answers_as_parse_xml(name: str) -> None:
    content = CASES[name]
    expected = reference(content)
    assert CdaInspector().record_target_ids(content, _entry()) == expected
    if name == "plain":
        assert expected == [(PATIENT, PATIENT_OID)]


def test_size_limit_and_mime_type_as_before() -> None:
    inspector = CdaInspector(max_bytes=len(BASE) - 1)
    assert inspector.record_target_ids(BASE, _entry()) is None
    assert reference(BASE, max_bytes=len(BASE) - 1) is None
    assert CdaInspector().record_target_ids(BASE, _entry("application/pdf")) is None
    assert CdaInspector().record_target_ids(BASE, _entry("text/xml; charset=UTF-8")) is not None
    with pytest.raises(XmlSecurityError):
        record_target_ids("<a/>", max_bytes=100)  # type: ignore[arg-type]


def test_streamed_check_keeps_no_tree_of_the_body() -> None:
    """The body's elements are emptied once parsed: the tree left holds the header only."""
    content = CASES["long_many_elements"]
    assert record_target_ids(content, max_bytes=len(content)) == [(PATIENT, PATIENT_OID)]
    root = read_header(content, max_bytes=len(content))
    assert sum(1 for _ in root.iter()) < 20
    assert sum(1 for _ in parse_xml(content, max_bytes=len(content)).iter()) > 300_000
