"""Requests of the SOAP attack tests: VIHFs signed with any certificate, raw posts over real
HTTP, and the checks every refused request must pass (no 5xx, a SOAP fault or an XDS error,
no canary echoed, a trace record)."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from lxml import etree
from sqlalchemy import func, select
from xds_support import PATIENT_OID, PROFILES, STRUCTURE, Soap, envelope_bytes, parse_response

from espace.clock import FrozenClock
from espace.models import DocumentContent, DocumentEntryRow, TraceRecord
from espace.service import Espace
from xds import ns
from xds.vihf import build_vihf, certificate_dn, sign_vihf

SOAP_CT = 'application/soap+xml; charset=UTF-8; action="{action}"'


def signed_vihf(
    pki: Any,
    clock: FrozenClock,
    professional_id: str,
    patient_ins: str | None,
    *,
    cert: bytes | None = None,
    key: bytes | None = None,
    digest: str = "sha256",
    tamper: Callable[[etree._Element], None] | None = None,
    **claims: Any,
) -> etree._Element:
    cert_pem = cert if cert is not None else pki.signing_cert.read_bytes()
    key_pem = key if key is not None else pki.signing_key.read_bytes()
    profession, specialty = PROFILES.get(professional_id, ("10", "SM26"))
    values: dict[str, Any] = {
        "professional_id": professional_id,
        "profession": profession,
        "specialty": specialty,
        "structure_id": STRUCTURE,
        "issuer": certificate_dn(cert_pem),
        "issue_instant": clock.now(),
        "patient_ins": patient_ins,
        "patient_ins_oid": PATIENT_OID,
        "lifetime": timedelta(minutes=5),
    }
    values.update(claims)
    assertion = build_vihf(**values)
    if tamper is not None:
        tamper(assertion)
    return sign_vihf(assertion, key_pem, cert_pem, digest=digest)


@dataclass
class Sent:
    status: int
    content_type: str
    data: bytes
    seconds: float
    peak_bytes: int
    cpu_seconds: float = 0.0  # CPU time of this process (client + in-process server threads)

    def soap(self) -> Soap:
        return parse_response(self.status, self.content_type, self.data)

    def is_fault(self) -> bool:
        return bool(self.soap().body.tag == f"{{{ns.SOAP12}}}Fault")

    def refused(self) -> bool:
        """A SOAP fault, or an ebXML response with status Failure and at least one error."""
        soap = self.soap()
        if soap.body.tag == f"{{{ns.SOAP12}}}Fault":
            return True
        return soap.status_value() == "Failure" and bool(soap.error_codes())


def send(http: Any, path: str, data: bytes, content_type: str) -> Sent:
    """POST raw bytes; measure time and the peak Python allocation while the server works."""
    tracing = tracemalloc.is_tracing()
    if tracing:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
    started, cpu_started = time.perf_counter(), time.process_time()
    response = http.http.post(path, content=data, headers={"Content-Type": content_type})
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    peak = tracemalloc.get_traced_memory()[1] - base if tracing else 0
    return Sent(
        response.status_code,
        response.headers.get("content-type", ""),
        response.content,
        seconds,
        peak,
        cpu_seconds,
    )


def send_envelope(
    http: Any, path: str, action: str, body: etree._Element, assertion: etree._Element | None
) -> Sent:
    return send(http, path, envelope_bytes(action, body, assertion), SOAP_CT.format(action=action))


def trace_count(espace: Espace, **where: str) -> int:
    with espace.session_factory() as session:
        query = select(func.count(TraceRecord.id))
        for name, value in where.items():
            column = getattr(TraceRecord, name)
            query = query.where(column.like(value) if "%" in value else column == value)
        return int(session.execute(query).scalar_one())


def stored_counts(espace: Espace) -> tuple[int, int]:
    with espace.session_factory() as session:
        return (
            int(session.execute(select(func.count(DocumentEntryRow.entry_uuid))).scalar_one()),
            int(session.execute(select(func.count()).select_from(DocumentContent)).scalar_one()),
        )
