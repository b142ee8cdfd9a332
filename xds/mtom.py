"""MTOM/XOP (W3C SOAP MTOM, XOP 1.0) for the XDS.b face: read requests, write responses.

IHE ITI TF-2b 3.41.4.1.3 / 3.43.4.1.3: ITI-41 requests and ITI-43 responses travel as
``multipart/related; type="application/xop+xml"``: the SOAP envelope is the root part and
each document is a MIME part that the envelope points at with ``<xop:Include href="cid:..."/>``.

- :func:`parse_mtom` streams the body through Werkzeug's sans-IO ``MultipartDecoder``
  (``multipart/related`` parts carry no ``Content-Disposition``, so a subclass supplies one).
  A part is refused as soon as it grows past ``max_part_bytes`` and the body as soon as it
  grows past ``max_total_bytes``: nothing over a cap is ever held whole. A plain SOAP request
  (``application/soap+xml``/``text/xml``) is accepted as a root part without attachments.
- :func:`resolve_xop_includes` maps each element that holds an ``xop:Include`` to the bytes of
  its part. Choice: a mapping, not base64 text put back into the tree, so a document is held
  once, as bytes, and never re-encoded (CXF re-inflates; we do not). Only ``cid:`` references
  to a part of the same package are accepted (CVE-2022-46364: no ``file:``/``http:``).
  :func:`element_content` gives the bytes of an ``xs:base64Binary`` element either way
  (XOP part or inline base64), so handlers need not care which form the client sent.
- :func:`build_mtom_response` writes a package as a list of byte strings (a WSGI response
  iterable, PEP 3333): the document bytes are items of their own, never joined to the envelope,
  so a retrieved document is sent from the one buffer it was decrypted into.
  :func:`build_mtom_request` joins the same items (zeep cannot send MTOM, so tests use it).

Memory (issue #8): a part is received into an ``io.BytesIO`` whose ``getvalue()`` hands its
buffer over without a copy (CPython since 3.5, bpo-22003), so an attachment is held once.
"""

from __future__ import annotations

import base64
import binascii
import io
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import IO, Final
from urllib.parse import quote, unquote

from lxml import etree
from werkzeug.datastructures import Headers
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from xds import ns

DEFAULT_MAX_PART_BYTES: Final = 64 * 1024 * 1024
DEFAULT_MAX_TOTAL_BYTES: Final = 256 * 1024 * 1024
DEFAULT_MAX_PARTS: Final = 1000
_CHUNK: Final = 64 * 1024
_MAX_HEADER_BYTES: Final = 16 * 1024
_ROOT_TYPES: Final = frozenset({"application/xop+xml", "application/soap+xml", "text/xml"})
_IDENTITY_ENCODINGS: Final = frozenset({"", "binary", "8bit", "7bit"})


class MtomErrorCode(StrEnum):
    TOO_LARGE = "too_large"  # render as HTTP 413 or a SOAP Fault
    MALFORMED = "malformed"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    BAD_XOP_REFERENCE = "bad_xop_reference"


class MtomError(ValueError):
    def __init__(self, code: MtomErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class MtomMessage:
    """A request as the XDS face sees it: the root XML and the attachments by Content-ID."""

    root_xml: bytes
    attachments: dict[str, bytes] = field(default_factory=dict)
    attachment_types: dict[str, str] = field(default_factory=dict)
    root_content_type: str = "application/soap+xml"
    multipart: bool = False


class _RelatedDecoder(MultipartDecoder):
    """Werkzeug's decoder, minus its ``multipart/form-data`` demand for Content-Disposition."""

    def _parse_headers(self, data: bytes | bytearray) -> Headers:
        try:
            headers = super()._parse_headers(data)
        except UnicodeDecodeError:
            raise MtomError(MtomErrorCode.MALFORMED, "MIME part headers are not UTF-8") from None
        if "content-disposition" not in headers:
            headers.add("Content-Disposition", "attachment")
        return headers


def _strip_cid(value: str) -> str:
    value = value.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1]
    return value.strip()


def _chunks(body: IO[bytes] | bytes, chunk_size: int) -> Iterator[bytes]:
    if isinstance(body, bytes | bytearray | memoryview):
        data = bytes(body)
        for offset in range(0, len(data), chunk_size):
            yield data[offset : offset + chunk_size]
        return
    while chunk := body.read(chunk_size):
        yield chunk


def _normalize_content_type(content_type: str) -> tuple[str, dict[str, str]]:
    folded = " ".join(content_type.split())
    mimetype, options = parse_options_header(folded)
    return mimetype.lower(), options


def parse_mtom(
    body: IO[bytes] | bytes,
    content_type: str,
    *,
    max_part_bytes: int = DEFAULT_MAX_PART_BYTES,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    max_parts: int = DEFAULT_MAX_PARTS,
) -> MtomMessage:
    """Read an MTOM/XOP package (or a plain SOAP body) into an :class:`MtomMessage`."""
    mimetype, options = _normalize_content_type(content_type)
    if mimetype in _ROOT_TYPES:
        if isinstance(body, bytes):
            if len(body) > max_total_bytes:
                raise MtomError(MtomErrorCode.TOO_LARGE, f"request exceeds {max_total_bytes} bytes")
            return MtomMessage(root_xml=body, root_content_type=mimetype)
        data = io.BytesIO()
        for chunk in _chunks(body, _CHUNK):
            data.write(chunk)
            if data.tell() > max_total_bytes:
                raise MtomError(MtomErrorCode.TOO_LARGE, f"request exceeds {max_total_bytes} bytes")
        return MtomMessage(root_xml=data.getvalue(), root_content_type=mimetype)
    if mimetype != "multipart/related":
        raise MtomError(
            MtomErrorCode.UNSUPPORTED_MEDIA_TYPE, f"unsupported content type {mimetype!r}"
        )
    boundary = options.get("boundary")
    if not boundary:
        raise MtomError(MtomErrorCode.MALFORMED, "multipart/related without a boundary")
    if options.get("type", "application/xop+xml").lower() not in _ROOT_TYPES:
        raise MtomError(
            MtomErrorCode.UNSUPPORTED_MEDIA_TYPE, f"unsupported root type {options['type']!r}"
        )

    parts = _read_parts(body, boundary, max_part_bytes, max_total_bytes, max_parts)
    if not parts:
        raise MtomError(MtomErrorCode.MALFORMED, "multipart/related package without parts")
    start = _strip_cid(options.get("start", ""))
    by_cid: dict[str, tuple[Headers, bytes]] = {}
    for index, (headers, content) in enumerate(parts):
        cid = _strip_cid(headers.get("Content-ID", ""))
        if not cid:
            if index == 0 and not start:  # the root may go without a Content-ID
                continue
            raise MtomError(MtomErrorCode.MALFORMED, "MIME part without Content-ID")
        if cid in by_cid:
            raise MtomError(MtomErrorCode.MALFORMED, f"duplicate Content-ID <{cid}>")
        by_cid[cid] = (headers, content)
    if start:
        if start not in by_cid:
            raise MtomError(MtomErrorCode.MALFORMED, f"start part <{start}> not found")
        root_headers, root_bytes = by_cid.pop(start)
    else:
        root_headers, root_bytes = parts[0]
        by_cid.pop(_strip_cid(root_headers.get("Content-ID", "")), None)
    root_type, _ = _normalize_content_type(root_headers.get("Content-Type", ""))
    if root_type not in _ROOT_TYPES:
        raise MtomError(
            MtomErrorCode.UNSUPPORTED_MEDIA_TYPE, f"unsupported root part type {root_type!r}"
        )
    return MtomMessage(
        root_xml=_decode(root_headers, root_bytes),
        attachments={cid: _decode(h, c) for cid, (h, c) in by_cid.items()},
        attachment_types={
            cid: h.get("Content-Type", "application/octet-stream") for cid, (h, _) in by_cid.items()
        },
        root_content_type=root_type,
        multipart=True,
    )


def _read_parts(
    body: IO[bytes] | bytes,
    boundary: str,
    max_part_bytes: int,
    max_total_bytes: int,
    max_parts: int,
) -> list[tuple[Headers, bytes]]:
    decoder = _RelatedDecoder(
        boundary.encode("latin-1"),
        max_form_memory_size=_CHUNK + _MAX_HEADER_BYTES,
        max_parts=max_parts,
    )
    parts: list[tuple[Headers, io.BytesIO]] = []
    total = 0
    finished = False
    chunks = _chunks(body, _CHUNK)
    try:
        while not finished:
            chunk = next(chunks, None)
            if chunk is not None:
                total += len(chunk)
                if total > max_total_bytes:
                    raise MtomError(
                        MtomErrorCode.TOO_LARGE, f"request exceeds {max_total_bytes} bytes"
                    )
            decoder.receive_data(chunk)
            while True:
                event = decoder.next_event()
                if isinstance(event, NeedData):
                    break
                if isinstance(event, Field | File):
                    parts.append((event.headers, io.BytesIO()))
                elif isinstance(event, Data):
                    content = parts[-1][1]
                    content.write(event.data)
                    if content.tell() > max_part_bytes:
                        cid = parts[-1][0].get("Content-ID", "?")
                        raise MtomError(
                            MtomErrorCode.TOO_LARGE,
                            f"MIME part {cid} exceeds {max_part_bytes} bytes",
                        )
                elif isinstance(event, Epilogue):
                    finished = True
                    break
            if chunk is None:
                finished = True
    except RequestEntityTooLarge:
        raise MtomError(
            MtomErrorCode.TOO_LARGE, "too many MIME parts or headers too long"
        ) from None
    except MtomError:
        raise
    except ValueError as exc:
        raise MtomError(
            MtomErrorCode.MALFORMED, f"malformed multipart/related body: {exc}"
        ) from None
    # getvalue() gives each BytesIO's own buffer: no second copy of an attachment
    return [(headers, content.getvalue()) for headers, content in parts]


def _decode(headers: Headers, content: bytes) -> bytes:
    encoding = headers.get("Content-Transfer-Encoding", "").strip().lower()
    if encoding in _IDENTITY_ENCODINGS:
        return content
    if encoding == "base64":
        try:
            return base64.b64decode(b"".join(content.split()), validate=True)
        except binascii.Error:
            raise MtomError(MtomErrorCode.MALFORMED, "invalid base64 MIME part") from None
    raise MtomError(MtomErrorCode.MALFORMED, f"unsupported Content-Transfer-Encoding {encoding!r}")


# --------------------------------------------------------------------------- XOP


def resolve_xop_includes(
    root: etree._Element, attachments: Mapping[str, bytes]
) -> dict[etree._Element, bytes]:
    """Map each element holding an ``xop:Include`` to the bytes of the part it names.

    The tree is left as it is. Refused (``BAD_XOP_REFERENCE``): a non-``cid:`` href, a
    Content-ID not in the package, an Include that is not the only content of its parent
    (XOP 1.0 §3), two Includes in one element.
    """
    resolved: dict[etree._Element, bytes] = {}
    for include in root.iter(f"{{{ns.XOP}}}Include"):
        href = (include.get("href") or "").strip()
        scheme, _, rest = href.partition(":")
        if scheme.lower() != "cid" or not rest:
            raise MtomError(
                MtomErrorCode.BAD_XOP_REFERENCE, f"xop:Include href must be cid:, got {href!r}"
            )
        cid = unquote(rest)
        if cid not in attachments:
            raise MtomError(
                MtomErrorCode.BAD_XOP_REFERENCE, f"no MIME part with Content-ID <{cid}>"
            )
        parent = include.getparent()
        if (
            parent is None
            or len(parent) != 1
            or (parent.text or "").strip()
            or (include.tail or "").strip()
        ):
            raise MtomError(
                MtomErrorCode.BAD_XOP_REFERENCE,
                "xop:Include must be the only content of its element",
            )
        resolved[parent] = attachments[cid]
    return resolved


def element_content(element: etree._Element, resolved: Mapping[etree._Element, bytes]) -> bytes:
    """Return the bytes of an ``xs:base64Binary`` element: its XOP part or its inline base64."""
    if element in resolved:
        return resolved[element]
    if len(element):
        raise MtomError(
            MtomErrorCode.BAD_XOP_REFERENCE, f"{element.tag} holds an unresolved element"
        )
    try:
        return base64.b64decode("".join((element.text or "").split()), validate=True)
    except binascii.Error:
        raise MtomError(MtomErrorCode.MALFORMED, f"{element.tag} is not valid base64") from None


def xop_include(content_id: str) -> etree._Element:
    """Return ``<xop:Include href="cid:..."/>`` for a Content-ID (RFC 2392 URL-encoded)."""
    include = etree.Element(f"{{{ns.XOP}}}Include", nsmap={"xop": ns.XOP})
    include.set("href", "cid:" + quote(content_id, safe="@.-_~!$&'()*+,;=:"))
    return include


# --------------------------------------------------------------------------- writing


def _check_cid(cid: str) -> None:
    if not cid or any(c in cid for c in '<>\r\n"') or cid.startswith("cid:"):
        raise ValueError(f"invalid Content-ID {cid!r} (give it without <> and without cid:)")


def _build_package(
    envelope_bytes: bytes, attachments: Mapping[str, tuple[bytes, str]], action: str | None
) -> tuple[list[bytes], str]:
    """The items of an MTOM package (the documents' own bytes among them) and its Content-Type.

    W3C XOP 1.0 §4 / SOAP MTOM §3 and IHE ITI TF-2b 3.43.5.1.2.1: ``multipart/related`` with
    ``type="application/xop+xml"``, ``start`` naming the root part and ``start-info`` the SOAP 1.2
    media type; every part is ``binary`` (no base64 round trip).
    """
    for cid in attachments:
        _check_cid(cid)
    root_cid = f"root.{uuid.uuid4().hex}@mes.local"
    contents = [envelope_bytes, *(data for data, _ in attachments.values())]
    while True:
        boundary = f"MIMEBoundary_{uuid.uuid4().hex}"
        marker = boundary.encode()
        if not any(marker in content for content in contents):
            break
    root_type = 'application/xop+xml; charset=UTF-8; type="application/soap+xml"'
    if action:
        root_type += f'; action="{action}"'

    def head(content_type: str, cid: str, first: bool) -> bytes:
        """The delimiter (RFC 2046 §5.1.1: CRLF "--" boundary) and the headers of a part."""
        delimiter = f"--{boundary}" if first else f"\r\n--{boundary}"
        return (
            f"{delimiter}\r\nContent-Type: {content_type}\r\n"
            f"Content-Transfer-Encoding: binary\r\nContent-ID: <{cid}>\r\n\r\n"
        ).encode()

    # the envelope is small: it shares one item with the headers around it; each document
    # is an item of its own, sent as is
    items: list[bytes] = [head(root_type, root_cid, True) + envelope_bytes]
    for cid, (data, mime) in attachments.items():
        items.append(head(mime, cid, False))
        if data:
            items.append(data)
    items.append(f"\r\n--{boundary}--\r\n".encode())
    content_type = (
        f'multipart/related; boundary="{boundary}"; type="application/xop+xml"; '
        f'start="<{root_cid}>"; start-info="application/soap+xml"'
    )
    if action:
        content_type += f'; action="{action}"'
    return items, content_type


def build_mtom_response(
    envelope_bytes: bytes,
    attachments: Mapping[str, tuple[bytes, str]],
    *,
    action: str | None = None,
) -> tuple[list[bytes], str]:
    """Write an MTOM package (ITI-43 response, TF-2b 3.43.5.1.2.1); return (items, Content-Type).

    ``attachments`` maps a Content-ID (no ``<>``, no ``cid:``) to ``(bytes, mime type)``;
    the envelope must already point at them with :func:`xop_include`. The items are a WSGI
    response body (PEP 3333): their concatenation is the package, and each document is one
    item, the very ``bytes`` object given, so a large document is never copied to be sent
    (a list, so Werkzeug sets Content-Length from the items' lengths).
    """
    return _build_package(envelope_bytes, attachments, action)


def build_mtom_request(
    envelope_bytes: bytes,
    attachments: Mapping[str, tuple[bytes, str]],
    *,
    action: str | None = None,
) -> tuple[bytes, str]:
    """Write an MTOM request (ITI-41) the way a DMP-compatible LPS sends it; for tests."""
    items, content_type = _build_package(envelope_bytes, attachments, action)
    return b"".join(items), content_type
