"""ITI-18 Registry Stored Query (IHE ITI TF-2a 3.18), DMP TD3.1 "Recherche".

All 14 stored queries (``espace.registry.query``); LeafClass or ObjectRef; the result cap is
``XDS_MAX_QUERY_RESULTS`` (XDSTooManyResults). Visibility is applied in SQL by the use case.

Rendering (issue 8: ITI-18 p50 <= 5 ms for 200 entries). Measured on the bench's 173-entry
answer (1.1 MB), in one process, same machine and load (a shared 2-CPU VM, load average ~12):
lxml trees + ``tostring`` (the former ``render.adhoc_query_response``) 560 ms; the string
writer ``xds.ebxml.writer`` 150 ms (3.7x); concatenating entries pre-rendered by that writer
1.9 ms (80x the writer). Both options are used: each DocumentEntry's ExtrinsicObject is
rendered by the writer once per change and kept with its row (``espace.registry.prerender``,
installed below), so a LeafClass answer is one SQL statement plus concatenation; submission
sets, folders, associations and any entry whose stored form is missing or stale are written
by the writer at query time (stale ones are written back).
"""

from __future__ import annotations

from espace.registry import (
    QueryResult,
    RegistryIssue,
    StoredQueryRequest,
    run_stored_query,
)
from espace.registry.prerender import install_entry_renderer
from espace.service import Operation
from habilitation.model import Action
from xds import ns
from xds.ebxml import writer
from xds.ebxml.parse import parse_adhoc_query
from xds.transactions.base import REGISTRY, RequestContext, Response, Transaction

ACTION = "urn:ihe:iti:2007:RegistryStoredQuery"
RESPONSE_ACTION = "urn:ihe:iti:2007:RegistryStoredQueryResponse"


def parse(ctx: RequestContext) -> StoredQueryRequest:
    return parse_adhoc_query(ctx.body)


def pdp_action(request: StoredQueryRequest, _ctx: RequestContext) -> Action:
    """PDT-INF-526 TD3.1: ObjectRef queries search references, LeafClass ones metadata."""
    if request.return_type == "ObjectRef":
        return Action.SEARCH_REFERENCE
    return Action.SEARCH_METADATA


install_entry_renderer(writer.document_entry, writer.RENDER_TAG)


def handle(op: Operation, request: StoredQueryRequest, ctx: RequestContext) -> QueryResult:
    return run_stored_query(op, request, config=ctx.config, prerendered=True)


def render_result(result: QueryResult, ctx: RequestContext) -> Response:
    return Response(
        writer.adhoc_query_response(
            result,
            home=ctx.config.home_community_id,
            entry_fragments=result.entry_fragments,
        )
    )


def render_issues(issues: list[RegistryIssue], _ctx: RequestContext) -> Response:
    return Response(writer.adhoc_query_response(None, issues))


TRANSACTION = Transaction(
    name="ITI-18",
    action=ACTION,
    response_action=RESPONSE_ACTION,
    services=frozenset({REGISTRY}),
    event_type="ITI-18",
    atna_event="110112",  # DCM "Query" (ITI TF-2a 3.18.5.1.2)
    body_element=f"{{{ns.QUERY}}}AdhocQueryRequest",
    parse=parse,
    pdp_action=pdp_action,
    handle=handle,
    render=render_result,
    render_issues=render_issues,
)
