"""Retrieve Document Set (ITI-43): the bytes of documents the caller may see.

IHE ITI TF-2b 3.43.4.2.3: each DocumentRequest is answered or gets its own RegistryError
(XDSUnknownRepositoryId, XDSDocumentUniqueIdError); the response is Success, PartialSuccess or
Failure. A document the policy hides is answered exactly like a missing one, so its existence
is not disclosed.
"""

from __future__ import annotations

from sqlalchemy import select

from espace.crypto import DecryptionError
from espace.models import DocumentContent, DocumentEntryRow
from espace.registry.config import RegistryConfig
from espace.registry.model import (
    DocumentRequest,
    RegistryError,
    RegistryErrorCode,
    RegistryIssue,
    RetrievedDocument,
    RetrieveResult,
)
from espace.service import Operation
from espace.store import visibility_clause
from espace.trace import Target


def visible_entry(op: Operation, unique_id: str) -> DocumentEntryRow | None:
    """The latest version of ``unique_id`` in this space that the caller may see."""
    assert op.space is not None
    return op.session.execute(
        select(DocumentEntryRow)
        .where(
            DocumentEntryRow.space_id == op.space.id,
            DocumentEntryRow.unique_id == unique_id,
            visibility_clause(op.visibility()),
        )
        .order_by(DocumentEntryRow.version.desc())
        .limit(1)
    ).scalar_one_or_none()


def retrieve_documents(
    op: Operation, requests: list[DocumentRequest], *, config: RegistryConfig
) -> RetrieveResult:
    """Answer each request in ``op``'s transaction (ITI TF-2b 3.43.4.2)."""
    if op.space is None:
        raise RegistryError(RegistryErrorCode.UNKNOWN_PATIENT_ID, "no patient space")
    if not requests:
        raise RegistryError(RegistryErrorCode.REPOSITORY_ERROR, "no DocumentRequest")
    result = RetrieveResult()
    for request in requests:
        if request.repository_unique_id != config.repository_unique_id:
            result.issues.append(
                RegistryIssue(
                    RegistryErrorCode.UNKNOWN_REPOSITORY_ID,
                    f"unknown repository {request.repository_unique_id}",
                    request.repository_unique_id,
                )
            )
            continue
        row = visible_entry(op, request.document_unique_id)
        content = None
        if row is not None:
            content = op.session.execute(
                select(DocumentContent).where(
                    DocumentContent.space_id == op.space.id,
                    DocumentContent.repository_unique_id == request.repository_unique_id,
                    DocumentContent.unique_id == request.document_unique_id,
                )
            ).scalar_one_or_none()
        if row is None or content is None:
            result.issues.append(
                RegistryIssue(
                    RegistryErrorCode.DOCUMENT_UNIQUE_ID_ERROR,
                    f"document {request.document_unique_id} is not available",
                    request.document_unique_id,
                )
            )
            continue
        try:
            data = op.espace.cipher.decrypt(
                content.encrypted, space_id=op.space.id, object_id=content.unique_id
            )
        except DecryptionError:
            result.issues.append(
                RegistryIssue(
                    RegistryErrorCode.REPOSITORY_ERROR,
                    f"document {request.document_unique_id} failed its integrity check",
                    request.document_unique_id,
                )
            )
            continue
        result.documents.append(
            RetrievedDocument(
                repository_unique_id=request.repository_unique_id,
                document_unique_id=request.document_unique_id,
                mime_type=content.mime_type or row.mime_type,
                content=data,
                home_community_id=request.home_community_id,
            )
        )
        if op.target.id == "":
            op.target = Target("DocumentEntry", row.unique_id, row.type_code)
    op.detail.update(
        {
            "retrieved": [d.document_unique_id for d in result.documents],
            "refused": [i.location for i in result.issues],
        }
    )
    if not result.documents:
        op.outcome = "failure"
        op.error_code = str(result.issues[0].code)
    return result
