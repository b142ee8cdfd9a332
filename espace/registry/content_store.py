"""Writing the repository's encrypted bytes (``document_content``) without holding them whole.

Issue #8: a 50 MB ITI-41 document used to be encrypted into a second 50 MB buffer, which the
database driver then copied once more into its INSERT message (libpq's output buffer, SQLite's
bound parameter and record). Here the ciphertext goes to the one ``encrypted`` column piece by
piece while it is encrypted (``DocumentCipher.encrypt_pieces``, about 1 MiB each), in the
session's transaction, on both databases:

- **PostgreSQL** (psycopg 3): ``COPY document_content (...) FROM STDIN (FORMAT BINARY)`` on the
  session's connection. The row is written in the binary COPY format (PostgreSQL docs, "COPY",
  *Binary Format*): the small columns dumped by psycopg's own binary dumpers, then the ``bytea``
  field's length and its bytes as they come, so neither psycopg nor libpq ever holds more than
  one piece (psycopg's ``LibpqWriter`` flushes every 128 KiB).
- **SQLite**: ``INSERT ... encrypted = zeroblob(n)``, then incremental blob I/O
  (``sqlite3.Connection.blobopen``, https://sqlite.org/c3ref/blob_open.html) writes the pieces
  in place through the page cache.
- any other driver: one ``INSERT`` of the whole ciphertext (the pre-issue-#8 way).

The read side is ``espace.registry.retrieve.stored_pieces``; the stored bytes are the same v2
blob either way, so rows written before this change read as before.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final, cast

from sqlalchemy import CursorResult, func, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from espace.models import DocumentContent

_COPY_SIGNATURE: Final = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_COPY_TRAILER: Final = struct.pack(">h", -1)
#: the columns written besides ``encrypted`` (the id comes from its sequence)
_COLUMNS: Final = (
    "space_id",
    "repository_unique_id",
    "unique_id",
    "mime_type",
    "hash",
    "size",
    "stored_at",
)
_COLUMN_TYPES: Final = (*(["varchar"] * 5), "int8", "timestamptz")


def insert_content(
    session: Session,
    values: Mapping[str, Any],
    *,
    blob_size: int,
    pieces: Iterable[bytes | bytearray | memoryview],
) -> None:
    """Insert one ``document_content`` row whose ``encrypted`` column is the concatenation of
    ``pieces`` (``blob_size`` bytes in all), streamed as described in the module docstring.

    ``values`` holds the other columns (:data:`_COLUMNS`). A unique-constraint violation is
    raised as SQLAlchemy's :class:`~sqlalchemy.exc.IntegrityError` on every driver.
    """
    pieces = _sized(pieces, blob_size)
    connection = session.connection()
    driver_name = connection.dialect.driver
    driver = connection.connection.driver_connection
    if driver_name == "psycopg":
        _copy_psycopg(driver, values, blob_size, pieces)
    elif driver_name == "pysqlite" and hasattr(driver, "blobopen"):
        _sqlite_blob(session, driver, values, blob_size, pieces)
    else:
        blob = b"".join(pieces)
        session.execute(insert(DocumentContent).values(**dict(values), encrypted=blob))


def _copy_psycopg(
    driver: Any,
    values: Mapping[str, Any],
    blob_size: int,
    pieces: Iterable[bytes | bytearray | memoryview],
) -> None:
    import psycopg
    from psycopg.adapt import PyFormat, Transformer
    from psycopg.pq import Format

    table = DocumentContent.__tablename__
    columns = ", ".join(f'"{c}"' for c in (*_COLUMNS, DocumentContent.encrypted.key))
    statement = f'COPY "{table}" ({columns}) FROM STDIN (FORMAT BINARY)'
    row = [values[c] for c in _COLUMNS]
    # the small fields through psycopg's binary dumpers for the columns' own types (what
    # ``Copy.set_types`` does): a binary COPY field must be in its column's representation
    transformer = Transformer(driver)
    registry = driver.adapters.types
    oids = [registry.get_oid(name) for name in _COLUMN_TYPES]
    transformer.set_dumper_types(oids, Format.BINARY)
    dumped = transformer.dump_sequence(row, [PyFormat.BINARY] * len(row))
    head = bytearray(_COPY_SIGNATURE)
    head += struct.pack(">h", len(row) + 1)
    for field in dumped:
        if field is None:
            head += struct.pack(">i", -1)
        else:
            head += struct.pack(">i", len(field))
            head += field
    head += struct.pack(">i", blob_size)
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            copy.write(bytes(head))
            for piece in pieces:
                copy.write(piece)
            copy.write(_COPY_TRAILER)
    except psycopg.IntegrityError as exc:
        raise IntegrityError(statement, None, exc) from None


def _sqlite_blob(
    session: Session,
    driver: Any,
    values: Mapping[str, Any],
    blob_size: int,
    pieces: Iterable[bytes | bytearray | memoryview],
) -> None:
    result = cast(
        "CursorResult[Any]",
        session.execute(
            insert(DocumentContent).values(**dict(values), encrypted=func.zeroblob(blob_size))
        ),
    )
    (content_id,) = result.inserted_primary_key or (None,)
    table, column = DocumentContent.__tablename__, DocumentContent.encrypted.key
    with driver.blobopen(table, column, content_id, readonly=False) as blob:
        for piece in pieces:
            blob.write(piece)


def _sized(
    pieces: Iterable[bytes | bytearray | memoryview], blob_size: int
) -> Iterator[bytes | bytearray | memoryview]:
    """``pieces`` as they come, refused (``ValueError``) as soon as they exceed ``blob_size``
    or when they end short of it: before the row could be completed."""
    written = 0
    for piece in pieces:
        written += len(piece)
        if written > blob_size:
            raise ValueError("the pieces exceed blob_size")
        yield piece
    if written != blob_size:
        raise ValueError("the pieces do not add up to blob_size")
