"""Literal MTOM bodies of the testkit (``HttpTransaction``), made acceptable to a DMP.

Only the root part changes: the toolkit's files carry no VIHF, use Connectathon patient ids
and fixed uniqueIds. The boundary, the part headers and the attachments are kept, so what is
tested (XOP with URL-encoded ``cid:``, non-optimized base64, boundaries with ``+`` and ``=``)
is still what the file holds. Line ends become CRLF (RFC 2046 §5.1.1; the files have LF).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lxml import etree

from conformance.xds.nist.metadata import Prepared, prepare_submission
from conformance.xds.soap import put_assertion
from xds import ns
from xds.mtom import MtomError, MtomErrorCode
from xds.xml import parse_xml

if TYPE_CHECKING:
    from conformance.xds.soap import XdsClient


def _boundary(content_type: str) -> str:
    for parameter in content_type.split(";")[1:]:
        key, _, value = parameter.strip().partition("=")
        if key.strip().lower() == "boundary":
            return value.strip().strip('"')
    raise MtomError(MtomErrorCode.MALFORMED, "no boundary in the test's Content-Type")


def resign_root_part(
    body: bytes,
    content_type: str,
    client: XdsClient,
    *,
    patient_cx: str | None,
    patient_oid: str,
    patient_ins: str | None = None,
) -> tuple[bytes, Prepared | None]:
    """Return ``body`` with a signed VIHF, the kit's patient and fresh uniqueIds in its root.

    ``patient_cx`` None keeps the patient ids of the file; the VIHF then names
    ``patient_ins``.
    """
    body = body.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    delimiter = b"--" + _boundary(content_type).encode()
    first = body.index(delimiter)
    start = first + len(delimiter) + 2
    end = body.index(b"\r\n" + delimiter, start)
    part = body[start:end]
    headers, _, xml = part.partition(b"\r\n\r\n")
    envelope = parse_xml(xml.strip())
    request = envelope.find(f".//{{{ns.LCM}}}SubmitObjectsRequest")
    prepared = None
    if request is not None:
        prepared = prepare_submission(
            request,
            patient_id=patient_cx,
            assign_uids=True,
            no_assign_uid_ids=frozenset(),
            assign_uuids=False,
        )
    soap_ns = etree.QName(envelope).namespace or ns.SOAP12
    header = envelope.find(f"{{{soap_ns}}}Header")
    to = header.find(f"{{{ns.WSA}}}To") if header is not None else None
    if to is not None:
        to.text = client.transport.url(client.endpoints.repository)
    ins = patient_ins or (patient_cx or "").split("^", 1)[0]
    new_xml = put_assertion(envelope, client.assertion(ins, patient_oid))
    return body[:start] + headers + b"\r\n\r\n" + new_xml + body[end:], prepared
