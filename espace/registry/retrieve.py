"""Retrieve Document Set (ITI-43): the bytes of documents the caller may see.

IHE ITI TF-2b 3.43.4.2.3: each DocumentRequest is answered or gets its own RegistryError
(XDSUnknownRepositoryId, XDSDocumentUniqueIdError); the response is Success, PartialSuccess or
Failure. A document the policy hides is answered exactly like a missing one, so its existence
is not disclosed.

The returned bytes are checked against the repository's size and SHA-1 hash (ITI TF-3 4.2.3.2.18,
4.2.3.2.26: the values the registry publishes) besides the AES-GCM tags (``espace.crypto``); a
mismatch is an XDSRepositoryError, never a wrong document.

Throughput and memory (issue #8): one statement reads the entry's versions with their content's
metadata (not the bytes) and the policy picks the latest visible one; the stored blob is then
read in pieces of about 1 MiB in the database's binary format (PostgreSQL: psycopg
``binary=True``, not hex text twice the size; SQLite: incremental blob I/O), each piece
decrypted straight into the one buffer of the plaintext (``DocumentCipher.decryptor``). Peak
memory: the document plus one piece, never the whole ciphertext.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from espace.crypto import DEFAULT_CHUNK_SIZE, MAX_HEADER_SIZE, TAG_SIZE, DecryptionError
from espace.models import DocumentContent, DocumentEntryRow, unflat
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
from habilitation.model import DocumentFacts, DocumentStatus

#: bytes per read of a stored blob: the v2 header and 16 whole chunks (~1 MiB), then 16 chunks
READ_SIZE: Final = 16 * (DEFAULT_CHUNK_SIZE + TAG_SIZE)
_FIRST_READ_SIZE: Final = MAX_HEADER_SIZE + READ_SIZE


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


@dataclass(frozen=True, slots=True)
class _StoredDocument:
    unique_id: str
    type_code: str
    mime_type: str
    content_id: int
    sha1: str
    size: int | None
    blob_size: int


def _visible_content(
    op: Operation, repository_unique_id: str, unique_id: str
) -> _StoredDocument | None:
    """The latest version of ``unique_id`` the caller may see, with its stored content's
    metadata (not the bytes), in one statement.

    The versions of one uniqueId are few, so the policy's predicate is applied in Python
    (``DocumentVisibility.matches``, the twin of ``visibility_clause`` that a property test keeps
    equal to it) rather than as SQL with one bound parameter per readable type code, which costs
    more to build and send than the lookup itself (HAPI's ``canSeeResource`` on a read).
    """
    assert op.space is not None
    entry, content = DocumentEntryRow, DocumentContent
    rows = op.session.execute(
        select(
            entry.entry_uuid,
            entry.type_code,
            entry.confidentiality_codes,
            entry.author_ids,
            entry.author_structure_ids,
            entry.status,
            entry.added_by_patient,
            entry.mime_type,
            content.id,
            content.mime_type,
            content.hash,
            content.size,
            func.length(content.encrypted),
        )
        .join(
            content,
            and_(
                content.space_id == entry.space_id,
                content.repository_unique_id == repository_unique_id,
                content.unique_id == entry.unique_id,
            ),
        )
        .where(entry.space_id == op.space.id, entry.unique_id == unique_id)
        .order_by(entry.version.desc())
    ).all()
    visibility = op.visibility()
    for row in rows:
        facts = DocumentFacts(
            entry_id=row[0],
            type_code=row[1],
            confidentiality_codes=unflat(row[2]),
            author_ids=unflat(row[3]),
            author_structure_ids=unflat(row[4]),
            status=DocumentStatus(row[5]),
            added_by_patient=row[6],
        )
        if visibility.matches(facts) and row[12] is not None:
            return _StoredDocument(
                unique_id=unique_id,
                type_code=row[1],
                mime_type=row[9] or row[7],
                content_id=row[8],
                sha1=row[10] or "",
                size=row[11],
                blob_size=int(row[12]),
            )
    return None


# ----------------------------------------------------------------------------- blob reads
def _driver(session: Session) -> tuple[str, Any]:
    connection = session.connection()
    return connection.dialect.driver, connection.connection.driver_connection


def _read_sizes(blob_size: int) -> Iterator[tuple[int, int]]:
    """(offset, length) of each read: header + 16 chunks, then 16 chunks at a time."""
    offset, length = 0, _FIRST_READ_SIZE
    while offset < blob_size:
        yield offset, min(length, blob_size - offset)
        offset += length
        length = READ_SIZE


def _psycopg_pieces(driver: Any, content_id: int, blob_size: int) -> Iterator[bytes]:
    table, column = DocumentContent.__tablename__, DocumentContent.encrypted.key
    whole = f'SELECT "{column}" FROM "{table}" WHERE id = %s'
    part = f'SELECT substring("{column}" FROM %s FOR %s) FROM "{table}" WHERE id = %s'
    with driver.cursor(binary=True) as cursor:  # bytea as raw bytes, not hex text
        for offset, length in _read_sizes(blob_size):
            if offset == 0 and length == blob_size:
                cursor.execute(whole, (content_id,))
            else:
                cursor.execute(part, (offset + 1, length, content_id))
            row = cursor.fetchone()
            if row is None or row[0] is None:
                raise DecryptionError("the stored bytes disappeared while reading")
            yield bytes(row[0])


def _sqlite_pieces(driver: Any, content_id: int, blob_size: int) -> Iterator[bytes]:
    table, column = DocumentContent.__tablename__, DocumentContent.encrypted.key
    with driver.blobopen(table, column, content_id, readonly=True) as blob:
        for _, length in _read_sizes(blob_size):
            yield blob.read(length)


def stored_pieces(session: Session, content_id: int, blob_size: int) -> Iterator[bytes]:
    """The stored (encrypted) bytes of one ``document_content`` row, in order, in pieces of
    about 1 MiB, read in the session's transaction."""
    driver_name, driver = _driver(session)
    if driver_name == "psycopg":
        yield from _psycopg_pieces(driver, content_id, blob_size)
    elif driver_name == "pysqlite" and hasattr(driver, "blobopen"):
        yield from _sqlite_pieces(driver, content_id, blob_size)
    else:  # any other driver: the whole value, as SQLAlchemy returns it
        yield session.execute(
            select(DocumentContent.encrypted).where(DocumentContent.id == content_id)
        ).scalar_one()


def read_document(
    op: Operation,
    *,
    content_id: int,
    blob_size: int,
    object_id: str,
    expected_size: int | None,
    expected_sha1: str,
) -> bytes:
    """Read, decrypt and check the bytes of one stored document (see the module docstring).

    Raises :class:`DecryptionError` when a tag, the size or the SHA-1 hash does not match.
    """
    assert op.space is not None
    pieces = stored_pieces(op.session, content_id, blob_size)
    first = next(pieces, b"")
    if len(first) < min(blob_size, MAX_HEADER_SIZE):
        raise DecryptionError("the stored bytes are shorter than their length")
    decryptor = op.espace.cipher.decryptor(
        blob_size=blob_size,
        header=first[:MAX_HEADER_SIZE],
        space_id=op.space.id,
        object_id=object_id,
    )
    if expected_size is not None and decryptor.plaintext_size != expected_size:
        raise DecryptionError("stored size does not match the registry's")
    decryptor.update(first)
    del first
    for piece in pieces:
        decryptor.update(piece)
    data = decryptor.finish()
    if expected_sha1 and hashlib.sha1(data).hexdigest() != expected_sha1.lower():  # noqa: S324
        raise DecryptionError("SHA-1 of the document does not match the registry's")
    return data


# ----------------------------------------------------------------------------- ITI-43
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
        found = _visible_content(op, request.repository_unique_id, request.document_unique_id)
        if found is None:
            result.issues.append(
                RegistryIssue(
                    RegistryErrorCode.DOCUMENT_UNIQUE_ID_ERROR,
                    f"document {request.document_unique_id} is not available",
                    request.document_unique_id,
                )
            )
            continue
        try:
            data = read_document(
                op,
                content_id=found.content_id,
                blob_size=found.blob_size,
                object_id=found.unique_id,
                expected_size=found.size,
                expected_sha1=found.sha1,
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
                mime_type=found.mime_type,
                content=data,
                home_community_id=request.home_community_id,
            )
        )
        if op.target.id == "":
            op.target = Target("DocumentEntry", found.unique_id, found.type_code)
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
