"""ITI-62 Remove Metadata (IHE RMD supplement 3.62): ``lcm:RemoveObjectsRequest`` by UUID."""

from __future__ import annotations

from typing import Any

from espace.registry import RegistryIssue, remove_metadata
from espace.service import Operation
from habilitation.model import Action
from xds import ns
from xds.ebxml import render
from xds.ebxml.parse import parse_remove_objects
from xds.transactions.base import REGISTRY, RequestContext, Response, Transaction

ACTION = "urn:ihe:iti:2010:DeleteDocumentSet"
RESPONSE_ACTION = "urn:ihe:iti:2010:DeleteDocumentSetResponse"


def parse(ctx: RequestContext) -> list[str]:
    return parse_remove_objects(ctx.body)


def handle(op: Operation, uuids: list[str], _ctx: RequestContext) -> list[str]:
    return remove_metadata(op, uuids)


def render_result(_result: Any, _ctx: RequestContext) -> Response:
    return Response(render.registry_response())


def render_issues(issues: list[RegistryIssue], _ctx: RequestContext) -> Response:
    return Response(render.registry_response(issues))


TRANSACTION = Transaction(
    name="ITI-62",
    action=ACTION,
    response_action=RESPONSE_ACTION,
    services=frozenset({REGISTRY}),
    event_type="ITI-62",
    atna_event="110105",  # DCM "DICOM Study Deleted" (RMD 3.62.5.1.2)
    body_element=f"{{{ns.LCM}}}RemoveObjectsRequest",
    parse=parse,
    pdp_action=lambda _uuids, _ctx: Action.DELETE_DOCUMENT,
    handle=handle,
    render=render_result,
    render_issues=render_issues,
)
