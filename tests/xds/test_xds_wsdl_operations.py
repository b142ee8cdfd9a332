"""The served WSDLs describe exactly the operations we implement, at the address they are served
from, and a real SOAP client (zeep) built from each of them can call every operation.

IHE ITI TF-2b naming: ``DocumentRegistry_Service`` (ITI-42, ITI-18, ITI-57, ITI-62 RMD) and
``DocumentRepository_Service`` (ITI-41, ITI-43), both on the IHE path and the DMP path. The
registry served on the DMP path announces the DMP's ITI-57 response Action.

zeep renders members of the ebRIM ``rim:Identifiable`` substitution group as
``rim:Identifiable xsi:type="..."`` (it does not emit substitution-group element names), which
ebXML registries do not read: for the three operations carrying a ``SubmitObjectsRequest``
(ITI-41, ITI-42, ITI-57) a zeep plugin swaps in a prepared ``SubmitObjectsRequest`` (and the
PDQ test its HL7v3 query); the operation, its address, its Action, the rest of the body (the
ITI-41 document) and the parsing of the answer are zeep's, from the served WSDL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from flask.testing import FlaskClient
from lxml import etree
from sqlalchemy import select
from xds_support import (
    AUTHOR,
    PATIENT,
    PATIENT_OID,
    REPO_UID,
    Doc,
    association,
    extrinsic_object,
    submission_set,
    submit_objects,
    vihf,
)

from espace.clock import FrozenClock
from espace.models import AssociationRow, DocumentEntryRow
from espace.service import Espace
from xds import ns
from xds.vihf import wrap_in_security_header
from xds.xml import parse_xml

zeep = pytest.importorskip("zeep")

DMP = "/si-dmp-server/v2/services"
REGISTRY_OPERATIONS = {
    "DocumentRegistry_RegisterDocumentSet-b": (
        "urn:ihe:iti:2007:RegisterDocumentSet-b",
        "urn:ihe:iti:2007:RegisterDocumentSet-bResponse",
    ),
    "DocumentRegistry_RegistryStoredQuery": (
        "urn:ihe:iti:2007:RegistryStoredQuery",
        "urn:ihe:iti:2007:RegistryStoredQueryResponse",
    ),
    "DocumentRegistry_UpdateDocumentSet": (
        "urn:ihe:iti:2010:UpdateDocumentSet",
        "urn:ihe:iti:2010:UpdateDocumentSetResponse",
    ),
    "DocumentRegistry_DeleteDocumentSet": (
        "urn:ihe:iti:2010:DeleteDocumentSet",
        "urn:ihe:iti:2010:DeleteDocumentSetResponse",
    ),
}
DMP_REGISTRY_OPERATIONS = {
    **REGISTRY_OPERATIONS,
    "DocumentRegistry_UpdateDocumentSet": (
        "urn:ihe:iti:2010:UpdateDocumentSet",
        "urn:ihe:iti:2010:UpdateDocumentSet-Response",
    ),
}
REPOSITORY_OPERATIONS = {
    "DocumentRepository_ProvideAndRegisterDocumentSet-b": (
        "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b",
        "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-bResponse",
    ),
    "DocumentRepository_RetrieveDocumentSet": (
        "urn:ihe:iti:2007:RetrieveDocumentSet",
        "urn:ihe:iti:2007:RetrieveDocumentSetResponse",
    ),
}
PDQ_OPERATIONS = {
    "findCandidatesQuery": ("urn:hl7-org:v3:PRPA_IN201305UV02", "urn:hl7-org:v3:PRPA_IN201306UV02")
}
RIM = ns.RIM


@pytest.fixture(autouse=True)
def _real_time(clock: FrozenClock) -> None:
    clock.set(datetime.now(UTC).replace(microsecond=0))


class BodyPlugin(zeep.Plugin):  # type: ignore[misc]
    """Put a prepared ebXML element in zeep's envelope (in place of the one zeep rendered)."""

    def __init__(self) -> None:
        self.bodies: dict[str, etree._Element] = {}
        self.sent_actions: list[str] = []

    def egress(self, envelope: Any, http_headers: Any, operation: Any, binding_options: Any) -> Any:
        body = envelope.find(f"{{{ns.SOAP12}}}Body")
        prepared = self.bodies.pop(operation.name, None)
        if prepared is not None:  # replace zeep's element of the same name
            (rendered,) = [e for e in body.iter(prepared.tag)]
            rendered.getparent().replace(rendered, prepared)
        self.sent_actions.append(envelope.findtext(f".//{{{ns.WSA}}}Action") or "")
        return envelope, http_headers


def client_for(live_server: str, path: str) -> tuple[Any, BodyPlugin]:
    from zeep.wsa import WsAddressingPlugin

    wsdl = f"{live_server}{path}?wsdl"
    assert httpx.get(wsdl).status_code == 200
    plugin = BodyPlugin()
    soap = zeep.Client(
        wsdl, plugins=[WsAddressingPlugin(), plugin], settings=zeep.Settings(strict=False)
    )
    return soap, plugin


WSDL = "http://schemas.xmlsoap.org/wsdl/"
WSAW = "http://www.w3.org/2006/05/addressing/wsdl"


def port_type_actions(wsdl: bytes) -> dict[str, tuple[str, str]]:
    """{operation: (input wsaw:Action, output wsaw:Action)} read from the WSDL's portType."""
    root = parse_xml(wsdl)
    actions = {}
    for operation in root.iterfind(f"{{{WSDL}}}portType/{{{WSDL}}}operation"):
        given = operation.find(f"{{{WSDL}}}input")
        answered = operation.find(f"{{{WSDL}}}output")
        assert given is not None and answered is not None
        actions[operation.get("name", "")] = (
            given.get(f"{{{WSAW}}}Action", ""),
            answered.get(f"{{{WSAW}}}Action", ""),
        )
    return actions


@pytest.mark.parametrize(
    ("path", "service", "operations"),
    [
        ("/xds/registry", "DocumentRegistry_Service", REGISTRY_OPERATIONS),
        (f"{DMP}/DocumentRegistry_Service", "DocumentRegistry_Service", DMP_REGISTRY_OPERATIONS),
        ("/xds/repository", "DocumentRepository_Service", REPOSITORY_OPERATIONS),
        (f"{DMP}/DocumentRepository_Service", "DocumentRepository_Service", REPOSITORY_OPERATIONS),
        ("/xds/pdq", "PDQSupplier_Service", PDQ_OPERATIONS),
        (f"{DMP}/PDQSupplier_Service", "PDQSupplier_Service", PDQ_OPERATIONS),
    ],
)
def test_wsdl_names_exactly_the_operations_served_there(
    live_server: str, path: str, service: str, operations: dict[str, tuple[str, str]]
) -> None:
    soap, _ = client_for(live_server, path)
    (found,) = soap.wsdl.services.values()
    assert found.name == service
    bound: dict[str, str] = {}
    for port in found.ports.values():
        assert port.binding_options["address"] == f"{live_server}{path}"
        for name, operation in port.binding._operations.items():
            bound[name] = operation.abstract.wsa_action
    assert bound == {name: actions[0] for name, actions in operations.items()}
    assert port_type_actions(httpx.get(f"{live_server}{path}?wsdl").content) == operations


def _security(pki: Any, clock: FrozenClock) -> Any:
    return wrap_in_security_header(vihf(pki, clock, AUTHOR))


def _entry_rows(espace: Espace, unique_id: str) -> tuple[str, list[tuple[str, str]]]:
    with espace.session_factory() as session:
        entry = session.execute(
            select(DocumentEntryRow.entry_uuid).where(DocumentEntryRow.unique_id == unique_id)
        ).scalar_one()
        links = session.execute(
            select(AssociationRow.entry_uuid, AssociationRow.source_uuid).where(
                AssociationRow.target_uuid == entry
            )
        ).all()
    return entry, [(a, s) for a, s in links]


def _status(espace: Espace, unique_id: str) -> str | None:
    with espace.session_factory() as session:
        return session.execute(
            select(DocumentEntryRow.status).where(DocumentEntryRow.unique_id == unique_id)
        ).scalar_one_or_none()


@pytest.mark.parametrize("path", ["/xds/registry", f"{DMP}/DocumentRegistry_Service"])
def test_zeep_calls_every_registry_operation(
    live_server: str, espace: Espace, clock: FrozenClock, pki: Any, path: str
) -> None:
    from xds_support import setup_space

    setup_space(espace, clock)
    soap, plugin = client_for(live_server, path)
    service = soap.service
    rim = soap.type_factory(RIM)
    query_types = soap.type_factory(ns.QUERY)
    kept, removed = Doc(), Doc()

    # ITI-42 Register Document Set-b, twice
    for doc in (kept, removed):
        objects = submission_set(author=AUTHOR) + extrinsic_object(doc, with_hash=True)
        objects += association(
            "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember",
            "SubmissionSet01",
            doc.symbolic_id,
            SubmissionSetStatus="Original",
        )
        plugin.bodies["DocumentRegistry_RegisterDocumentSet-b"] = etree.fromstring(
            submit_objects(objects).encode()
        )
        registered = service["DocumentRegistry_RegisterDocumentSet-b"](
            RegistryObjectList=rim.RegistryObjectListType(),
            _soapheaders=[_security(pki, clock)],
        )
        assert registered.status.endswith(":Success"), registered

    # ITI-18 Registry Stored Query (typed by zeep)
    def slot(name: str, value: str) -> Any:
        return rim.SlotType1(name=name, ValueList=rim.ValueListType(_value_1=[{"Value": value}]))

    found = service.DocumentRegistry_RegistryStoredQuery(
        ResponseOption=query_types.ResponseOptionType(returnType="ObjectRef"),
        AdhocQuery=rim.AdhocQueryType(
            id="urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d",
            Slot=[
                slot("$XDSDocumentEntryPatientId", f"'{PATIENT}^^^&{PATIENT_OID}&ISO^NH'"),
                slot(
                    "$XDSDocumentEntryStatus",
                    "('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')",
                ),
            ],
        ),
        _soapheaders=[_security(pki, clock)],
    )
    assert found.status.endswith(":Success")
    refs = {r.get("id") for r in found.RegistryObjectList._raw_elements}
    kept_uuid, _ = _entry_rows(espace, kept.unique_id)
    removed_uuid, removed_links = _entry_rows(espace, removed.unique_id)
    assert {kept_uuid, removed_uuid} <= refs

    # ITI-57 Update Document Set: archive the first document (DMP TD3.3d)
    update = submission_set(author=AUTHOR) + association(
        "urn:ihe:iti:2010:AssociationType:UpdateAvailabilityStatus",
        "SubmissionSet01",
        kept_uuid,
        OriginalStatus="urn:oasis:names:tc:ebxml-regrep:StatusType:Approved",
        NewStatus="urn:asip:ci-sis:2010:StatusType:Archived",
    )
    plugin.bodies["DocumentRegistry_UpdateDocumentSet"] = etree.fromstring(
        submit_objects(update).encode()
    )
    updated = service.DocumentRegistry_UpdateDocumentSet(
        RegistryObjectList=rim.RegistryObjectListType(), _soapheaders=[_security(pki, clock)]
    )
    assert updated.status.endswith(":Success"), updated
    assert _status(espace, kept.unique_id) == "Archived"

    # ITI-62 Delete Document Set (typed by zeep): the second submission, whole
    (association_uuid, submission_uuid), *_ = removed_links
    deleted = service.DocumentRegistry_DeleteDocumentSet(
        ObjectRefList=rim.ObjectRefListType(
            _value_1=[
                {"ObjectRef": rim.ObjectRefType(id=uuid)}
                for uuid in (association_uuid, removed_uuid, submission_uuid)
            ]
        ),
        _soapheaders=[_security(pki, clock)],
    )
    assert deleted.status.endswith(":Success"), deleted
    assert _status(espace, removed.unique_id) is None
    expected = REGISTRY_OPERATIONS if path == "/xds/registry" else DMP_REGISTRY_OPERATIONS
    assert plugin.sent_actions == [
        expected["DocumentRegistry_RegisterDocumentSet-b"][0],
        expected["DocumentRegistry_RegisterDocumentSet-b"][0],
        expected["DocumentRegistry_RegistryStoredQuery"][0],
        expected["DocumentRegistry_UpdateDocumentSet"][0],
        expected["DocumentRegistry_DeleteDocumentSet"][0],
    ]


@pytest.mark.parametrize("path", ["/xds/repository", f"{DMP}/DocumentRepository_Service"])
def test_zeep_calls_every_repository_operation(
    live_server: str, client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any, path: str
) -> None:
    from xds_support import setup_space

    setup_space(espace, clock)
    soap, plugin = client_for(live_server, path)
    service = soap.service
    doc = Doc()

    # ITI-41 Provide and Register Document Set-b (zeep sends the document inline, not MTOM)
    objects = submission_set(author=AUTHOR) + extrinsic_object(doc)
    objects += association(
        "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember",
        "SubmissionSet01",
        doc.symbolic_id,
        SubmissionSetStatus="Original",
    )
    plugin.bodies["DocumentRepository_ProvideAndRegisterDocumentSet-b"] = etree.fromstring(
        submit_objects(objects).encode()
    )
    submit = soap.get_element(f"{{{ns.LCM}}}SubmitObjectsRequest")
    rim = soap.type_factory(RIM)
    stored = service["DocumentRepository_ProvideAndRegisterDocumentSet-b"](
        SubmitObjectsRequest=submit(RegistryObjectList=rim.RegistryObjectListType()),
        Document=[{"_value_1": doc.content, "id": doc.symbolic_id}],
        _soapheaders=[_security(pki, clock)],
    )
    assert stored.status.endswith(":Success"), stored

    # ITI-43 Retrieve Document Set (typed by zeep; the answer is MTOM)
    retrieved = service.DocumentRepository_RetrieveDocumentSet(
        DocumentRequest=[{"RepositoryUniqueId": REPO_UID, "DocumentUniqueId": doc.unique_id}],
        _soapheaders=[_security(pki, clock)],
    )
    assert retrieved.RegistryResponse.status.endswith(":Success")
    (response,) = retrieved.DocumentResponse
    assert response.DocumentUniqueId == doc.unique_id
    assert response.Document == doc.content
    assert plugin.sent_actions == [
        REPOSITORY_OPERATIONS["DocumentRepository_ProvideAndRegisterDocumentSet-b"][0],
        REPOSITORY_OPERATIONS["DocumentRepository_RetrieveDocumentSet"][0],
    ]


@pytest.mark.parametrize("path", ["/xds/pdq", f"{DMP}/PDQSupplier_Service"])
def test_zeep_calls_the_pdq_operation(
    live_server: str, espace: Espace, clock: FrozenClock, pki: Any, path: str
) -> None:
    from test_xds_td05_patient_search import query
    from xds_support import SAMU, setup_space

    from habilitation.model import AccessMode

    setup_space(espace, clock)
    soap, plugin = client_for(live_server, path)
    body = query(family="PATB-QUATRE")
    plugin.bodies["findCandidatesQuery"] = body
    security = wrap_in_security_header(vihf(pki, clock, SAMU, access_mode=AccessMode.REGULATION))
    answer = soap.service.findCandidatesQuery(_soapheaders=[security])
    elements = answer._value_1 if hasattr(answer, "_value_1") else answer
    text = b"".join(etree.tostring(e) for e in elements if isinstance(e, etree._Element))
    assert PATIENT.encode() in text
    assert plugin.sent_actions == [PDQ_OPERATIONS["findCandidatesQuery"][0]]
