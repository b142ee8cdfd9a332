"""Reading the patient of a CDA R2 document (HL7 CDA R2 ``recordTarget/patientRole/id``).

ANS CI-SIS "Volet Structuration minimale": the recordTarget carries the INS (root
1.2.250.1.213.1.4.8 / .10 / .11) of the patient; the registry checks it against the
submission's patientId (``espace.registry.submit.ContentInspector``).

Memory (issue #8): a CDA may be tens of megabytes. It is read the way ``xds.xml.parse_xml``
reads XML (same hardened libxml2 options, same DOCTYPE, size, depth and entity refusals, fed in
the same 64 KiB pieces, so the same documents are refused), but streamed: the document bytes are
never copied (``parse_xml`` copies them into the prolog probe and ``bytes.strip``), and each
child of ``ClinicalDocument`` other than ``recordTarget`` is emptied once parsed, so the tree
held is a shell of the header, not the body.
"""

from __future__ import annotations

import re
from typing import Final

from lxml import etree

from espace.registry.model import DocumentEntry
from xds import ns
from xds.xml import (
    DEFAULT_MAX_DEPTH,
    XmlRefusal,
    XmlSecurityError,
    check_built_tree,
    parser_options,
    refuse_doctype,
    refuse_entities,
    syntax_refusal,
)

CDA_MIME_TYPES = frozenset({"text/xml", "application/xml", "application/hl7-v3+xml"})
_CHUNK: Final = 64 * 1024
_RECORD_TARGET: Final = f"{{{ns.HL7}}}recordTarget"
_PATIENT_IDS: Final = f"{_RECORD_TARGET}/{{{ns.HL7}}}patientRole/{{{ns.HL7}}}id"
_NOT_WHITESPACE: Final = re.compile(rb"[^ \t\n\r\x0b\x0c]")  # what bytes.strip() keeps


class CdaInspector:
    """The XDS face's ``ContentInspector``: reads XML documents as ``parse_xml`` would."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes

    def record_target_ids(
        self, content: bytes, entry: DocumentEntry
    ) -> list[tuple[str, str]] | None:
        if entry.mime_type.split(";")[0].strip().lower() not in CDA_MIME_TYPES:
            return None
        try:
            return record_target_ids(content, max_bytes=self.max_bytes)
        except XmlSecurityError:
            return None  # not an XML document we can read: the repository stores bytes as is


def _pieces(view: memoryview) -> list[memoryview]:
    return [view[offset : offset + _CHUNK] for offset in range(0, len(view), _CHUNK)]


def record_target_ids(
    data: bytes, *, max_bytes: int, max_depth: int = DEFAULT_MAX_DEPTH
) -> list[tuple[str, str]] | None:
    """The (extension, root) of each ``recordTarget/patientRole/id``; ``None`` when the root is
    not ``ClinicalDocument``. Raises :class:`XmlSecurityError` where ``parse_xml`` would."""
    root = read_header(data, max_bytes=max_bytes, max_depth=max_depth)
    if root.tag != f"{{{ns.HL7}}}ClinicalDocument":
        return None
    return [(i.get("extension") or "", i.get("root") or "") for i in root.findall(_PATIENT_IDS)]


def read_header(
    data: bytes, *, max_bytes: int, max_depth: int = DEFAULT_MAX_DEPTH
) -> etree._Element:
    """Parse ``data`` as ``parse_xml`` does, streamed; return the root element with every child
    but ``recordTarget`` emptied (its tag, tail and place kept)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise XmlSecurityError(XmlRefusal.NOT_BYTES, "parse_xml() takes bytes, not text")
    view = memoryview(data).cast("B")
    if len(view) > max_bytes:
        raise XmlSecurityError(
            XmlRefusal.TOO_LARGE, f"XML document of {len(view)} bytes exceeds {max_bytes} bytes"
        )
    if _NOT_WHITESPACE.search(view) is None:
        raise XmlSecurityError(XmlRefusal.MALFORMED, "empty XML document")
    refuse_doctype(bytes(piece) for piece in _pieces(view))

    parser = etree.XMLPullParser(events=("start", "end"), **parser_options(None))
    depth = 0
    try:
        for piece in _pieces(view):
            parser.feed(bytes(piece))
            for event, element in parser.read_events():
                if event == "start":
                    depth += 1
                    if depth > max_depth:
                        raise XmlSecurityError(
                            XmlRefusal.TOO_DEEP, f"XML nesting deeper than {max_depth} levels"
                        )
                    continue
                depth -= 1
                if depth == 1 and element.tag != _RECORD_TARGET:
                    # a child of the root read whole: check it as parse_xml would, then drop it
                    refuse_entities(element)
                    element.clear(keep_tail=True)  # lxml's iterparse idiom, safe on "end"
        root: etree._Element = parser.close()
    except etree.XMLSyntaxError as exc:
        raise syntax_refusal(exc, max_depth) from None
    check_built_tree(root)
    return root
