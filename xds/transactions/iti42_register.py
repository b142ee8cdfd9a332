"""ITI-42 Register Document Set-b (IHE ITI TF-2b 3.42): metadata only, hash and size given."""

from __future__ import annotations

from typing import Any

from espace.registry import RegistryIssue, SubmissionRequest, SubmitResult, submit_document_set
from espace.service import Operation
from habilitation.model import Action
from xds import ns
from xds.ebxml import render
from xds.ebxml.parse import parse_submit_objects
from xds.transactions.base import REGISTRY, RequestContext, Response, Transaction

ACTION = "urn:ihe:iti:2007:RegisterDocumentSet-b"
RESPONSE_ACTION = "urn:ihe:iti:2007:RegisterDocumentSet-bResponse"


def parse(ctx: RequestContext) -> SubmissionRequest:
    return parse_submit_objects(ctx.body)


def handle(op: Operation, request: SubmissionRequest, ctx: RequestContext) -> SubmitResult:
    return submit_document_set(
        op, request, config=ctx.config, provide=False, origin="xds", register_resubmissions=True
    )


def render_result(_result: Any, _ctx: RequestContext) -> Response:
    return Response(render.registry_response())


def render_issues(issues: list[RegistryIssue], _ctx: RequestContext) -> Response:
    return Response(render.registry_response(issues))


TRANSACTION = Transaction(
    name="ITI-42",
    action=ACTION,
    response_action=RESPONSE_ACTION,
    services=frozenset({REGISTRY}),
    event_type="ITI-42",
    atna_event="110107",  # DCM "Import" (ITI TF-2b 3.42.5.1.2)
    body_element=f"{{{ns.LCM}}}SubmitObjectsRequest",
    parse=parse,
    pdp_action=lambda _request, _ctx: Action.SUBMIT_DOCUMENT,
    handle=handle,
    render=render_result,
    render_issues=render_issues,
)
