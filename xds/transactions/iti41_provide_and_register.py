"""ITI-41 Provide and Register Document Set-b (IHE ITI TF-2b 3.41), DMP TD2.1 "Alimentation".

The request is MTOM/XOP: ``xds:ProvideAndRegisterDocumentSetRequest`` holds the
``lcm:SubmitObjectsRequest`` and one ``xds:Document`` per entry (an ``xop:Include`` or inline
base64). A MIME part no Document points at is XDSMissingDocumentMetadata. The repository
computes size and hash and registers the set in the same transaction (no separate ITI-42 hop).
"""

from __future__ import annotations

from typing import Any

from espace.registry import (
    RegistryError,
    RegistryErrorCode,
    RegistryIssue,
    SubmissionRequest,
    SubmitResult,
    submit_document_set,
)
from espace.service import Operation
from habilitation.model import Action
from xds import ns
from xds.cda import CdaInspector
from xds.ebxml import render
from xds.ebxml.parse import parse_submit_objects
from xds.mtom import MtomError, element_content
from xds.transactions.base import REPOSITORY, RequestContext, Response, Transaction

ACTION = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
RESPONSE_ACTION = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-bResponse"


def parse(ctx: RequestContext) -> SubmissionRequest:
    submit = ctx.body.find(f"{{{ns.LCM}}}SubmitObjectsRequest")
    if submit is None:
        raise RegistryError(
            RegistryErrorCode.REPOSITORY_METADATA_ERROR,
            "ProvideAndRegisterDocumentSetRequest without SubmitObjectsRequest",
        )
    request = parse_submit_objects(submit)
    for document in ctx.body.findall(f"{{{ns.XDS}}}Document"):
        doc_id = document.get("id") or ""
        if not doc_id:
            raise RegistryError(RegistryErrorCode.MISSING_DOCUMENT_METADATA, "Document without id")
        if doc_id in request.contents:
            raise RegistryError(
                RegistryErrorCode.REPOSITORY_DUPLICATE_UNIQUE_ID_IN_MESSAGE,
                f"Document {doc_id} attached twice",
                location=doc_id,
            )
        try:
            request.contents[doc_id] = element_content(document, ctx.resolved)
        except MtomError as exc:
            raise RegistryError(
                RegistryErrorCode.REPOSITORY_ERROR, exc.message, location=doc_id
            ) from None
    request.unattached_content_ids = sorted(set(ctx.attachments) - ctx.referenced_cids)
    return request


def handle(op: Operation, request: SubmissionRequest, ctx: RequestContext) -> SubmitResult:
    return submit_document_set(
        op,
        request,
        config=ctx.config,
        provide=True,
        inspector=CdaInspector(),
        origin="xds",
        register_resubmissions=True,
    )


def render_result(_result: Any, ctx: RequestContext) -> Response:
    return Response(render.registry_response(), mtom=ctx.multipart)


def render_issues(issues: list[RegistryIssue], ctx: RequestContext) -> Response:
    return Response(render.registry_response(issues), mtom=ctx.multipart)


TRANSACTION = Transaction(
    name="ITI-41",
    action=ACTION,
    response_action=RESPONSE_ACTION,
    services=frozenset({REPOSITORY}),
    event_type="ITI-41",
    atna_event="110107",  # DCM "Import" (ITI TF-2b 3.41.5.1.2)
    body_element=f"{{{ns.XDS}}}ProvideAndRegisterDocumentSetRequest",
    parse=parse,
    pdp_action=lambda _request, _ctx: Action.SUBMIT_DOCUMENT,
    handle=handle,
    render=render_result,
    render_issues=render_issues,
)
