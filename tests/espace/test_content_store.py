"""Streamed writes of the repository's ciphertext (issue #8): ``DocumentCipher.encrypt_pieces``
and ``espace.registry.content_store.insert_content`` on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from espace.admin import register_space
from espace.crypto import MAX_HEADER_SIZE, DocumentCipher, blob_plaintext_size
from espace.models import DocumentContent
from espace.registry.content_store import insert_content
from espace.service import Espace

KEY = bytes(range(32))


@pytest.mark.parametrize("size", [0, 1, 1023, 1024, 1025, 4 * 1024, 4 * 1024 + 1, 10_000])
@pytest.mark.parametrize("per_piece", [1, 3])
def test_pieces_join_into_a_v2_blob(size: int, per_piece: int) -> None:
    cipher = DocumentCipher(KEY, chunk_size=1024)
    plaintext = os.urandom(size)
    pieces = list(
        cipher.encrypt_pieces(plaintext, space_id="s", object_id="o", chunks_per_piece=per_piece)
    )
    blob = b"".join(pieces)
    assert (
        len(blob)
        == cipher.encrypted_size(size)
        == len(cipher.encrypt(plaintext, space_id="s", object_id="o"))
    )
    assert blob_plaintext_size(len(blob), blob[:MAX_HEADER_SIZE]) == size
    assert len(pieces) == max(1, -(-size // (1024 * per_piece)))
    assert cipher.decrypt(blob, space_id="s", object_id="o") == plaintext
    with pytest.raises(Exception):  # noqa: B017 - DecryptionError: bound to its row
        cipher.decrypt(blob, space_id="s", object_id="other")


def _values(space_id: str, unique_id: str = "1.2.3.4") -> dict[str, Any]:
    return {
        "space_id": space_id,
        "repository_unique_id": "1.2.250.1.213.4.1.1.1.2",
        "unique_id": unique_id,
        "mime_type": "application/pdf",
        "hash": "0" * 40,
        "size": 7,
        "stored_at": datetime(2026, 1, 5, 8, 0, tzinfo=UTC),
    }


def _space(espace: Espace) -> str:
    with espace.session_factory() as session:
        space = register_space(session, ins="207058575627097", now=datetime.now(UTC))
        session.commit()
        return space.id


def test_insert_content_writes_the_pieces_in_order(espace: Espace) -> None:
    space_id = _space(espace)
    pieces = [os.urandom(n) for n in (21, 70_000, 1, 300_000)]
    with espace.session_factory() as session:
        insert_content(
            session, _values(space_id), blob_size=sum(map(len, pieces)), pieces=iter(pieces)
        )
        session.commit()
    with espace.session_factory() as session:
        row = session.execute(select(DocumentContent)).scalar_one()
        assert bytes(row.encrypted) == b"".join(pieces)
        assert (row.space_id, row.size, row.hash, row.mime_type) == (
            space_id,
            7,
            "0" * 40,
            "application/pdf",
        )
        assert row.stored_at.replace(tzinfo=UTC) == datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def test_insert_content_duplicate_is_an_integrity_error(espace: Espace) -> None:
    space_id = _space(espace)
    with espace.session_factory() as session:
        insert_content(session, _values(space_id), blob_size=3, pieces=[b"abc"])
        session.commit()
    with espace.session_factory() as session, pytest.raises(IntegrityError):
        insert_content(session, _values(space_id), blob_size=3, pieces=[b"abc"])


@pytest.mark.parametrize("pieces", [[b"ab"], [b"abc", b"d"]])
def test_insert_content_refuses_pieces_of_another_size(espace: Espace, pieces: list[bytes]) -> None:
    space_id = _space(espace)
    with espace.session_factory() as session, pytest.raises(ValueError):
        insert_content(session, _values(space_id), blob_size=3, pieces=pieces)
