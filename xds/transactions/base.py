"""What a transaction module declares (IPF's ``WsTransactionConfiguration``): its Action, the
services it is offered on, its audit event type, the PDT-INF-526 action it asks the PDP for,
and ``parse -> handle -> render``. The endpoint (``xds/endpoint.py``) does everything else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from espace.registry import RegistryConfig, RegistryIssue
from espace.service import Espace, Operation
from habilitation.model import Action

# Services (one per endpoint path family)
REPOSITORY = "repository"
REGISTRY = "registry"
HABILITATIONS = "habilitations"
PATIENTS = "patients"
GDP = "gdp"  # GestionDossierPatientPartage (HL7v3 PRPA)


@dataclass
class RequestContext:
    """One parsed, authenticated SOAP request."""

    envelope: etree._Element
    body: etree._Element  # the first element child of soap:Body
    resolved: Mapping[etree._Element, bytes]
    attachments: Mapping[str, bytes]
    referenced_cids: frozenset[str]
    patient_ins: str | None
    patient_ins_oid: str | None
    config: RegistryConfig
    settings: Mapping[str, Any]
    multipart: bool
    service: str
    dmp_path: bool
    espace: Espace | None = None


@dataclass
class Response:
    """A response body element and the MTOM parts it points at.

    ``body`` may also be the element already serialized (UTF-8, no XML declaration, every
    namespace it uses declared on it): large query responses are written as text
    (``xds.ebxml.writer``) and spliced into the envelope as they are.
    """

    body: etree._Element | bytes
    attachments: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    mtom: bool = False


@dataclass(frozen=True)
class Transaction:
    name: str
    action: str  # WS-Addressing Action of the request
    response_action: str
    services: frozenset[str]
    event_type: str  # trace event type (IHE transaction)
    atna_event: str  # DICOM EventID of the ATNA record (ITI TF-2 per transaction)
    body_element: str  # Clark name of the expected soap:Body child
    parse: Callable[[RequestContext], Any]
    pdp_action: Callable[[Any, RequestContext], Action]
    handle: Callable[[Operation, Any, RequestContext], Any]
    render: Callable[[Any, RequestContext], Response]
    render_issues: Callable[[list[RegistryIssue], RequestContext], Response]
    space_ins: Callable[[Any, RequestContext], str | None] = lambda _p, ctx: ctx.patient_ins
    soap_faults: bool = False  # DMP web services outside ebXML answer errors as SOAP faults
    requires_space: bool = True
    dmp_response_action: str = ""  # when the DMP WSDL names another response Action
    # answer for a patient with no space (TD0.2 says "not found" instead of failing)
    on_unknown_space: Callable[[RequestContext], Response] | None = None
    aliases: tuple[str, ...] = ()  # other Actions seen for the same operation (WSDL soapAction)

    def response_action_for(self, ctx: RequestContext) -> str:
        if ctx.dmp_path and self.dmp_response_action:
            return self.dmp_response_action
        return self.response_action
