"""The one hardened XML entry point of the server (zeep's ``loader.parse_xml``).

Every XML document that comes from the network (SOAP envelopes, MTOM root parts, VIHF
assertions, CDA documents) goes through :func:`parse_xml`:

- a DOCTYPE is refused outright, whatever it contains. The check is ours: a first pass runs
  libxml2 over the prolog only, with a parser *target* whose ``doctype()`` callback fires on
  the ``<!DOCTYPE`` event and whose ``start()`` stops at the root element. Because libxml2
  decodes the bytes itself (BOM, UTF-16, ``encoding=`` declaration), the check cannot be
  fooled by an encoding the way a byte-string search can. The docinfo of the built tree is
  checked again afterwards;
- no entity substitution, no DTD loading, no network access, no XInclude, no attribute
  defaults, no ``huge_tree`` (libxml2 keeps its 10 MB text-node limit, so a large document
  must travel as an MTOM part, as IHE ITI TF-2b 3.41.4.1.3 requires anyway);
- a size limit (checked before any parsing) and a depth limit (checked while parsing,
  chunk by chunk, before the whole tree is built).

Failures raise :class:`XmlSecurityError` (a ``ValueError``) carrying an :class:`XmlRefusal`
code, so callers render a SOAP Fault (sender) and never a 500.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum
from typing import Final

from lxml import etree

DEFAULT_MAX_BYTES: Final = 16 * 1024 * 1024
DEFAULT_MAX_DEPTH: Final = 100
_CHUNK: Final = 64 * 1024


class XmlRefusal(StrEnum):
    DOCTYPE = "doctype"
    TOO_LARGE = "too_large"
    TOO_DEEP = "too_deep"
    MALFORMED = "malformed"
    NOT_BYTES = "not_bytes"


class XmlSecurityError(ValueError):
    """An XML input refused by :func:`parse_xml`."""

    def __init__(self, refusal: XmlRefusal, message: str) -> None:
        super().__init__(message)
        self.refusal = refusal
        self.message = message


class _DoctypeFound(Exception):
    pass


class _RootReached(Exception):
    pass


class _PrologProbe:
    """Parser target that reports a DOCTYPE and stops at the first start tag."""

    def doctype(self, name: str | None, pubid: str | None, system: str | None) -> None:
        raise _DoctypeFound(name or "")

    def start(self, tag: str, attrib: object, nsmap: object = None) -> None:
        raise _RootReached

    def end(self, tag: str) -> None:  # pragma: no cover - never reached
        pass

    def data(self, data: str) -> None:
        pass

    def comment(self, text: str) -> None:
        pass

    def pi(self, target: str, data: str | None = None) -> None:
        pass

    def close(self) -> None:
        return None


def parser_options(encoding: str | None) -> dict[str, object]:
    return {
        "resolve_entities": False,
        "no_network": True,
        "load_dtd": False,
        "dtd_validation": False,
        "attribute_defaults": False,
        "huge_tree": False,
        "recover": False,
        "collect_ids": False,
        "encoding": encoding,
    }


def refuse_doctype(pieces: Iterable[bytes], encoding: str | None = None) -> None:
    """Run the prolog probe over the document's first ``pieces`` (it stops at the root
    element): a DOCTYPE, or XML broken before the root, is refused."""
    parser = etree.XMLParser(target=_PrologProbe(), **parser_options(encoding))
    try:
        for piece in pieces:
            parser.feed(piece)
        parser.close()
    except _DoctypeFound as found:
        raise XmlSecurityError(
            XmlRefusal.DOCTYPE, f"DOCTYPE declarations are forbidden (found <!DOCTYPE {found}>)"
        ) from None
    except _RootReached:
        return
    except etree.XMLSyntaxError as exc:
        raise XmlSecurityError(XmlRefusal.MALFORMED, f"XML is not well-formed: {exc}") from None


def syntax_refusal(exc: etree.XMLSyntaxError, max_depth: int) -> XmlSecurityError:
    """The refusal for a libxml2 syntax error met while building the tree."""
    if "Excessive depth" in str(exc):  # libxml2's own limit (256) fired within one chunk
        return XmlSecurityError(XmlRefusal.TOO_DEEP, f"XML nesting deeper than {max_depth} levels")
    return XmlSecurityError(XmlRefusal.MALFORMED, f"XML is not well-formed: {exc}")


def refuse_entities(element: etree._Element) -> None:
    for _entity in element.iter(etree.Entity):
        raise XmlSecurityError(XmlRefusal.MALFORMED, "entity references are forbidden")


def check_built_tree(root: etree._Element) -> None:
    """The checks after parsing: no DOCTYPE in the docinfo, no entity reference left."""
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise XmlSecurityError(XmlRefusal.DOCTYPE, "DOCTYPE declarations are forbidden")
    refuse_entities(root)


def parse_xml(
    data: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    encoding: str | None = None,
) -> etree._Element:
    """Parse untrusted XML bytes into an element, refusing DTDs, entities and oversized input.

    ``encoding`` overrides the document's own declaration; use ``"iso-8859-1"`` for the ANS
    VIHF examples, which are latin-1 without an XML declaration. A latin-1 document *with*
    an ``<?xml ... encoding="ISO-8859-1"?>`` declaration needs no override.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise XmlSecurityError(XmlRefusal.NOT_BYTES, "parse_xml() takes bytes, not text")
    data = bytes(data)
    if len(data) > max_bytes:
        raise XmlSecurityError(
            XmlRefusal.TOO_LARGE, f"XML document of {len(data)} bytes exceeds {max_bytes} bytes"
        )
    if not data.strip():
        raise XmlSecurityError(XmlRefusal.MALFORMED, "empty XML document")
    refuse_doctype((data,), encoding)

    parser = etree.XMLPullParser(events=("start", "end"), **parser_options(encoding))
    depth = 0
    try:
        for offset in range(0, len(data), _CHUNK):
            parser.feed(data[offset : offset + _CHUNK])
            for event, _element in parser.read_events():
                if event == "start":
                    depth += 1
                    if depth > max_depth:
                        raise XmlSecurityError(
                            XmlRefusal.TOO_DEEP, f"XML nesting deeper than {max_depth} levels"
                        )
                else:
                    depth -= 1
        root: etree._Element = parser.close()
    except etree.XMLSyntaxError as exc:
        raise syntax_refusal(exc, max_depth) from None
    check_built_tree(root)
    return root


# XML 1.0 section 2.2 Char: no C0 controls but TAB/LF/CR, no surrogates, no U+FFFE/U+FFFF
_NOT_XML_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe_text(value: str) -> str:
    """``value`` with every character XML 1.0 cannot carry shown as ``\\xNN`` (fault texts,
    error contexts: they may quote what a hostile sender put in a certificate or a header)."""
    return _NOT_XML_CHAR.sub(lambda m: f"\\x{ord(m.group()):02x}", value)

