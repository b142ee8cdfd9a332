"""The DMP registry and repository: domain use cases shared by the XDS, FHIR MHD and mail faces.

Each use case runs inside one ``Espace.operation`` (the caller's enforcement point) and takes
plain dataclasses (``espace.registry.model``), never a wire format:

- :func:`submit_document_set` (ITI-41/42, MHD ITI-65, "save attachment to DMP");
- :func:`run_stored_query` (ITI-18, MHD ITI-67 can express FindDocuments as a
  :class:`StoredQueryRequest`);
- :func:`retrieve_documents` (ITI-43, MHD ITI-68);
- :func:`update_document_set` (ITI-57), :func:`remove_metadata` (ITI-62);
- the DMP authorization services in :mod:`espace.registry.authorizations`.

The ``submit``/``find_documents``/``retrieve`` helpers below open the operation themselves, for
faces that have nothing else to do in the transaction.
"""

from __future__ import annotations

from espace.registry.authorizations import (
    AuthorizationEntry,
    ExistenceResult,
    PatientListEntry,
    authorization_action,
    list_authorizations,
    list_authorized_spaces,
    set_authorization,
    test_existence,
)
from espace.registry.config import DEFAULT_REPOSITORY_UNIQUE_ID, RegistryConfig
from espace.registry.model import (
    Association,
    Author,
    Code,
    DocumentEntry,
    DocumentRequest,
    Folder,
    QueryResult,
    RegistryError,
    RegistryErrorCode,
    RegistryIssue,
    RetrievedDocument,
    RetrieveResult,
    StoredQueryRequest,
    SubmissionRequest,
    SubmissionSet,
    SubmitResult,
    UpdateResult,
)
from espace.registry.query import FIND_DOCUMENTS, QUERIES, run_stored_query
from espace.registry.remove import remove_metadata
from espace.registry.retrieve import retrieve_documents
from espace.registry.store import format_dtm, parse_cx, parse_dtm
from espace.registry.submit import ContentInspector, submit_document_set
from espace.registry.update import update_document_set
from espace.registry.valuesets import AffinityDomain, affinity_domain
from espace.service import Espace
from espace.trace import Source
from habilitation.model import Action, Actor


def submit(
    espace: Espace,
    actor: Actor,
    request: SubmissionRequest,
    *,
    source: Source,
    event_type: str = "ITI-65",
    inspector: ContentInspector | None = None,
    origin: str = "fhir",
) -> SubmitResult:
    """Store a submission with its bytes in one traced, policy-checked operation."""
    ins, _ = parse_cx(request.submission_set.patient_id)
    with espace.operation(
        actor, Action.SUBMIT_DOCUMENT, event_type=event_type, source=source, space_ins=ins
    ) as op:
        return submit_document_set(
            op,
            request,
            config=RegistryConfig.from_settings(espace.settings),
            provide=True,
            inspector=inspector,
            origin=origin,
        )


def find_documents(
    espace: Espace,
    actor: Actor,
    request: StoredQueryRequest,
    *,
    patient_ins: str,
    source: Source,
    event_type: str = "ITI-67",
) -> QueryResult:
    """Run a stored query for ``actor`` on ``patient_ins``'s space (visibility in SQL)."""
    with espace.operation(
        actor, Action.SEARCH_METADATA, event_type=event_type, source=source, space_ins=patient_ins
    ) as op:
        return run_stored_query(op, request, config=RegistryConfig.from_settings(espace.settings))


def retrieve(
    espace: Espace,
    actor: Actor,
    requests: list[DocumentRequest],
    *,
    patient_ins: str,
    source: Source,
    event_type: str = "ITI-68",
) -> RetrieveResult:
    """Return the bytes of the requested documents the actor may read."""
    with espace.operation(
        actor, Action.READ_DOCUMENT, event_type=event_type, source=source, space_ins=patient_ins
    ) as op:
        return retrieve_documents(
            op, requests, config=RegistryConfig.from_settings(espace.settings)
        )


__all__ = [
    "DEFAULT_REPOSITORY_UNIQUE_ID",
    "FIND_DOCUMENTS",
    "QUERIES",
    "AffinityDomain",
    "Association",
    "Author",
    "AuthorizationEntry",
    "Code",
    "ContentInspector",
    "DocumentEntry",
    "DocumentRequest",
    "ExistenceResult",
    "Folder",
    "PatientListEntry",
    "QueryResult",
    "RegistryConfig",
    "RegistryError",
    "RegistryErrorCode",
    "RegistryIssue",
    "RetrieveResult",
    "RetrievedDocument",
    "StoredQueryRequest",
    "SubmissionRequest",
    "SubmissionSet",
    "SubmitResult",
    "UpdateResult",
    "affinity_domain",
    "authorization_action",
    "find_documents",
    "format_dtm",
    "list_authorizations",
    "list_authorized_spaces",
    "parse_cx",
    "parse_dtm",
    "remove_metadata",
    "retrieve",
    "retrieve_documents",
    "run_stored_query",
    "set_authorization",
    "submit",
    "submit_document_set",
    "test_existence",
    "update_document_set",
]
