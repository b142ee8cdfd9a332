"""ITI-43 Retrieve Document Set (IHE ITI TF-2b 3.43), DMP TD3.2 "Consultation".

The response is always MTOM/XOP (ITI TF-2b 3.43.5.1.2.1): one ``xds:DocumentResponse`` per
available document, its bytes in a MIME part; per-document errors in the RegistryResponse
(PartialSuccess when some documents are returned).
"""

from __future__ import annotations

import uuid

from lxml import etree

from espace.registry import (
    DocumentRequest,
    RegistryIssue,
    RetrieveResult,
    retrieve_documents,
)
from espace.service import Operation
from habilitation.model import Action
from xds import ns
from xds.ebxml import render
from xds.ebxml.parse import parse_retrieve
from xds.mtom import xop_include
from xds.transactions.base import REPOSITORY, RequestContext, Response, Transaction

ACTION = "urn:ihe:iti:2007:RetrieveDocumentSet"
RESPONSE_ACTION = "urn:ihe:iti:2007:RetrieveDocumentSetResponse"


def _q(local: str) -> str:
    return f"{{{ns.XDS}}}{local}"


def parse(ctx: RequestContext) -> list[DocumentRequest]:
    return parse_retrieve(ctx.body)


def handle(op: Operation, requests: list[DocumentRequest], ctx: RequestContext) -> RetrieveResult:
    return retrieve_documents(op, requests, config=ctx.config)


def _response(result: RetrieveResult | None, issues: list[RegistryIssue]) -> Response:
    root = etree.Element(_q("RetrieveDocumentSetResponse"), nsmap={"xds": ns.XDS, "rs": ns.RS})
    documents = result.documents if result is not None else []
    status = render.status_of(issues, partial=bool(documents))
    root.append(render.registry_response(issues, status=status))
    attachments: dict[str, tuple[bytes, str]] = {}
    for doc in documents:
        response = etree.SubElement(root, _q("DocumentResponse"))
        if doc.home_community_id:
            etree.SubElement(response, _q("HomeCommunityId")).text = doc.home_community_id
        etree.SubElement(response, _q("RepositoryUniqueId")).text = doc.repository_unique_id
        etree.SubElement(response, _q("DocumentUniqueId")).text = doc.document_unique_id
        etree.SubElement(response, _q("mimeType")).text = doc.mime_type
        cid = f"doc{len(attachments) + 1}.{uuid.uuid4().hex}@mes.local"
        etree.SubElement(response, _q("Document")).append(xop_include(cid))
        attachments[cid] = (doc.content, doc.mime_type or "application/octet-stream")
    return Response(root, attachments, mtom=True)


def render_result(result: RetrieveResult, _ctx: RequestContext) -> Response:
    return _response(result, result.issues)


def render_issues(issues: list[RegistryIssue], _ctx: RequestContext) -> Response:
    return _response(None, issues)


TRANSACTION = Transaction(
    name="ITI-43",
    action=ACTION,
    response_action=RESPONSE_ACTION,
    services=frozenset({REPOSITORY}),
    event_type="ITI-43",
    atna_event="110106",  # DCM "Export" (ITI TF-2b 3.43.5.1.2, repository side)
    body_element=_q("RetrieveDocumentSetRequest"),
    parse=parse,
    pdp_action=lambda _requests, _ctx: Action.READ_DOCUMENT,
    handle=handle,
    render=render_result,
    render_issues=render_issues,
)
