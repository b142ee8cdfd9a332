"""ITI-57 Update Document Set (IHE ITI TF-2b 3.57, XDS Metadata Update) as the DMP uses it:
TD3.3a mask/unmask, TD3.3b make visible to the patient (new version with PreviousVersion),
TD3.3c delete and TD3.3d archive/unarchive (UpdateAvailabilityStatus). The DMP WSDL names the
response Action ``urn:ihe:iti:2010:UpdateDocumentSet-Response`` (answered on the DMP path);
IHE's ``...UpdateDocumentSetResponse`` elsewhere.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from espace.models import DocumentEntryRow, PatientSpace, unflat
from espace.registry import RegistryIssue, SubmissionRequest, UpdateResult, update_document_set
from espace.registry.update import planned_action
from espace.service import Operation
from habilitation.model import Action
from xds import ns
from xds.ebxml import render
from xds.ebxml.parse import parse_submit_objects
from xds.transactions.base import REGISTRY, RequestContext, Response, Transaction

ACTION = "urn:ihe:iti:2010:UpdateDocumentSet"
RESPONSE_ACTION = "urn:ihe:iti:2010:UpdateDocumentSetResponse"
DMP_RESPONSE_ACTION = "urn:ihe:iti:2010:UpdateDocumentSet-Response"


def parse(ctx: RequestContext) -> SubmissionRequest:
    return parse_submit_objects(ctx.body)


def pdp_action(request: SubmissionRequest, ctx: RequestContext) -> Action:
    """The operation's PDT-INF-526 action; per-document rights are checked by the use case."""
    current: dict[str, frozenset[str]] = {}
    lids = [d.logical_id for d in request.documents if d.logical_id]
    if lids and ctx.espace is not None and ctx.patient_ins:
        with ctx.espace.session_factory() as session:  # read-only: classify the request
            rows = session.execute(
                select(DocumentEntryRow.logical_id, DocumentEntryRow.confidentiality_codes)
                .join(PatientSpace, PatientSpace.id == DocumentEntryRow.space_id)
                .where(PatientSpace.ins == ctx.patient_ins, DocumentEntryRow.logical_id.in_(lids))
                .order_by(DocumentEntryRow.version)
            ).all()
        current = {lid: unflat(codes) for lid, codes in rows}
    return planned_action(request, current)


def handle(op: Operation, request: SubmissionRequest, ctx: RequestContext) -> UpdateResult:
    return update_document_set(op, request, config=ctx.config)


def render_result(_result: Any, _ctx: RequestContext) -> Response:
    return Response(render.registry_response())


def render_issues(issues: list[RegistryIssue], _ctx: RequestContext) -> Response:
    return Response(render.registry_response(issues))


TRANSACTION = Transaction(
    name="ITI-57",
    action=ACTION,
    response_action=RESPONSE_ACTION,
    dmp_response_action=DMP_RESPONSE_ACTION,
    services=frozenset({REGISTRY}),
    event_type="ITI-57",
    atna_event="110107",  # DCM "Import" (ITI TF-2b 3.57.5.1.2)
    body_element=f"{{{ns.LCM}}}SubmitObjectsRequest",
    parse=parse,
    pdp_action=pdp_action,
    handle=handle,
    render=render_result,
    render_issues=render_issues,
)
