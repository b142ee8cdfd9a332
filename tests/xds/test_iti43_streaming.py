"""ITI-43 of large documents (issue #8): chunked encryption at rest (v2, v1 still read), pieces
read from the database, checks on retrieve, the MTOM response sent without copying the document.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import tracemalloc
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask.testing import FlaskClient
from sqlalchemy import select, update
from xds_support import (
    AUTHOR,
    ITI41,
    ITI43,
    MEDECIN,
    REPOSITORY,
    Doc,
    parse_response,
    post,
    provide_and_register,
    retrieve_request,
    setup_space,
    vihf,
)

from espace.clock import FrozenClock
from espace.crypto import MAX_HEADER_SIZE, DecryptionError, DocumentCipher, blob_plaintext_size
from espace.models import DocumentContent
from espace.service import Espace
from xds import ns
from xds.transactions.iti43_retrieve import ACTION

KEY = bytes(range(32))
# the module, not the ``espace.registry.retrieve`` function that shadows it on the package
retrieve_module = importlib.import_module("espace.registry.retrieve")


def v1_blob(key: bytes, plaintext: bytes, space_id: str, object_id: str) -> bytes:
    """A blob as written before issue #8: 0x01 || nonce || AES-GCM(whole document)."""
    nonce = os.urandom(12)
    return (
        b"\x01" + nonce + AESGCM(key).encrypt(nonce, plaintext, f"{space_id}/{object_id}".encode())
    )


# ----------------------------------------------------------------------------- the cipher
@pytest.mark.parametrize("size", [0, 1, 1023, 1024, 1025, 3 * 1024, 10_000])
def test_v2_round_trip_whole_and_in_pieces(size: int) -> None:
    cipher = DocumentCipher(KEY, chunk_size=1024)
    plaintext = os.urandom(size)
    blob = cipher.encrypt(plaintext, space_id="s", object_id="o")
    assert blob[0] == 2
    if size >= 16:  # a shorter plaintext may occur in random bytes by chance
        assert plaintext[:64] not in blob
    assert blob_plaintext_size(len(blob), blob[:MAX_HEADER_SIZE]) == size
    assert cipher.decrypt(blob, space_id="s", object_id="o") == plaintext
    for piece in (1, 100, 1040, 4096):
        decryptor = cipher.decryptor(
            blob_size=len(blob), header=blob[:MAX_HEADER_SIZE], space_id="s", object_id="o"
        )
        for offset in range(0, len(blob), piece):
            decryptor.update(blob[offset : offset + piece])
        assert decryptor.finish() == plaintext


@pytest.mark.parametrize("size", [0, 5, 70_000])
def test_v1_blobs_written_before_still_decrypt(size: int) -> None:
    plaintext = os.urandom(size)
    blob = v1_blob(KEY, plaintext, "s", "o")
    cipher = DocumentCipher(KEY)
    assert cipher.decrypt(blob, space_id="s", object_id="o") == plaintext
    decryptor = cipher.decryptor(
        blob_size=len(blob), header=blob[:MAX_HEADER_SIZE], space_id="s", object_id="o"
    )
    for offset in range(0, len(blob), 1000):
        decryptor.update(blob[offset : offset + 1000])
    assert decryptor.finish() == plaintext
    bad = bytearray(blob)
    bad[-1] ^= 1
    with pytest.raises(DecryptionError):
        cipher.decrypt(bytes(bad), space_id="s", object_id="o")


def _v2(size: int = 5000) -> tuple[DocumentCipher, bytes, bytes]:
    cipher = DocumentCipher(KEY, chunk_size=1024)
    plaintext = os.urandom(size)
    return cipher, plaintext, cipher.encrypt(plaintext, space_id="s", object_id="o")


def test_v2_refuses_another_row_a_flipped_bit_and_an_unknown_version() -> None:
    cipher, _, blob = _v2()
    with pytest.raises(DecryptionError):
        cipher.decrypt(blob, space_id="s", object_id="other")
    with pytest.raises(DecryptionError):
        DocumentCipher(bytes(32), chunk_size=1024).decrypt(blob, space_id="s", object_id="o")
    for position in (5, 30, len(blob) // 2, len(blob) - 1):  # salt, chunk, middle, last tag
        bad = bytearray(blob)
        bad[position] ^= 0x40
        with pytest.raises(DecryptionError):
            cipher.decrypt(bytes(bad), space_id="s", object_id="o")
    with pytest.raises(DecryptionError):
        cipher.decrypt(b"\x07" + blob[1:], space_id="s", object_id="o")
    with pytest.raises(DecryptionError):
        cipher.decrypt(b"", space_id="s", object_id="o")


def test_v2_refuses_truncation_reordering_and_extension() -> None:
    cipher, _, blob = _v2(5000)  # 5 chunks of 1024 + 1 of 904
    header, stride = blob[:21], 1024 + 16
    chunks = [blob[21 + i * stride : 21 + (i + 1) * stride] for i in range(5)]
    truncated = header + b"".join(chunks[:3])  # ends on a chunk boundary: last flag missing
    swapped = header + chunks[1] + chunks[0] + blob[21 + 2 * stride :]
    for forged in (truncated, swapped, blob + chunks[0], blob[:-3]):
        with pytest.raises(DecryptionError):
            cipher.decrypt(forged, space_id="s", object_id="o")


def test_decryptor_refuses_too_many_or_too_few_bytes() -> None:
    cipher, _, blob = _v2(3000)
    short = cipher.decryptor(
        blob_size=len(blob), header=blob[:MAX_HEADER_SIZE], space_id="s", object_id="o"
    )
    short.update(blob[:-16])
    with pytest.raises(DecryptionError):
        short.finish()
    extra = cipher.decryptor(
        blob_size=len(blob), header=blob[:MAX_HEADER_SIZE], space_id="s", object_id="o"
    )
    with pytest.raises(DecryptionError):
        extra.update(blob + b"x")


# ----------------------------------------------------------------------------- ITI-43 face
@pytest.fixture(autouse=True)
def _real_time(clock: FrozenClock) -> None:
    """The test PKI's certificates are valid from yesterday: run the clock at today's time."""
    clock.set(datetime.now(UTC).replace(microsecond=0))


def _store(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any, content: bytes
) -> Doc:
    setup_space(espace, clock)
    doc = Doc(content=content, mime_type="application/pdf")
    body, parts = provide_and_register([doc])
    stored = post(client, REPOSITORY, ITI41, body, vihf(pki, clock, AUTHOR), parts)
    assert stored.status_value() == "Success", stored.errors()
    return doc


def _retrieve(client: FlaskClient, pki: Any, clock: FrozenClock, doc: Doc) -> Any:
    from xds_support import envelope_bytes

    data = envelope_bytes(ITI43, retrieve_request(doc.unique_id), vihf(pki, clock, MEDECIN))
    return client.post(
        REPOSITORY,
        data=data,
        content_type=f'application/soap+xml; charset=UTF-8; action="{ACTION}"',
    )


def test_large_document_is_read_in_pieces_and_returned_whole(
    client: FlaskClient,
    espace: Espace,
    clock: FrozenClock,
    pki: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    content = os.urandom(2_600_000)  # three database reads, 40 v2 chunks
    doc = _store(client, espace, clock, pki, content)
    with espace.session_factory() as session:
        row = session.execute(select(DocumentContent)).scalar_one()
        assert row.encrypted[0] == 2 and content[:1000] not in row.encrypted
    reads: list[int] = []
    original = retrieve_module.stored_pieces

    def counting(*args: Any, **kwargs: Any) -> Any:
        for piece in original(*args, **kwargs):
            reads.append(len(piece))
            yield piece

    monkeypatch.setattr(retrieve_module, "stored_pieces", counting)
    response = _retrieve(client, pki, clock, doc)
    assert response.status_code == 200
    assert len(reads) == 3 and max(reads) <= retrieve_module.READ_SIZE + MAX_HEADER_SIZE
    body = response.get_data()
    assert response.headers["Content-Length"] == str(len(body))
    got = parse_response(response.status_code, response.content_type or "", body)
    assert got.status_value() == "Success"
    document = got.body.find(f"{{{ns.XDS}}}DocumentResponse/{{{ns.XDS}}}Document")
    assert document is not None and got.resolved[document] == content
    assert got.body.findtext(f"{{{ns.XDS}}}DocumentResponse/{{{ns.XDS}}}mimeType") == (
        "application/pdf"
    )


def test_document_stored_in_the_v1_format_is_still_retrieved(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    content = os.urandom(150_000)
    doc = _store(client, espace, clock, pki, content)
    key = espace.cipher._key
    with espace.session_factory() as session:
        row = session.execute(select(DocumentContent)).scalar_one()
        row.encrypted = v1_blob(key, content, row.space_id, row.unique_id)
        session.commit()
    got = parse_response(*_wire(_retrieve(client, pki, clock, doc)))
    assert got.status_value() == "Success"
    assert list(got.attachments.values()) == [content]


def _wire(response: Any) -> tuple[int, str, bytes]:
    return response.status_code, response.content_type or "", response.get_data()


@pytest.mark.parametrize("damage", ["ciphertext", "hash", "size", "other_row"])
def test_damaged_stored_document_is_a_repository_error(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any, damage: str
) -> None:
    content = os.urandom(200_000)
    doc = _store(client, espace, clock, pki, content)
    with espace.session_factory() as session:
        row = session.execute(select(DocumentContent)).scalar_one()
        if damage == "ciphertext":
            blob = bytearray(row.encrypted)
            blob[len(blob) // 2] ^= 1
            values: dict[str, Any] = {"encrypted": bytes(blob)}
        elif damage == "hash":
            values = {"hash": hashlib.sha1(b"another").hexdigest()}
        elif damage == "size":
            values = {"size": len(content) + 1}
        else:  # a blob of another document pasted in this row
            other = espace.cipher.encrypt(content, space_id=row.space_id, object_id="1.2.3")
            values = {"encrypted": other}
        session.execute(update(DocumentContent).where(DocumentContent.id == row.id).values(values))
        session.commit()
    response = _retrieve(client, pki, clock, doc)
    got = parse_response(*_wire(response))
    assert response.status_code == 200
    assert got.status_value() == "Failure"
    assert got.error_codes() == ["XDSRepositoryError"]
    assert got.attachments == {}


def test_retrieve_peak_python_memory_stays_near_the_document_size(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    """Python-level peak (tracemalloc) of one ITI-43: the plaintext once plus ~1 MiB pieces,
    not ciphertext + plaintext + joined response (the C buffers of a PostgreSQL driver are
    not traced; bench/ measures the process RSS)."""
    size = 6_000_000
    doc = _store(client, espace, clock, pki, os.urandom(size))
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        response = _retrieve(client, pki, clock, doc)
        items = list(response.response)  # the WSGI items, as a server sends them
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 200
    assert sum(len(i) for i in items) == int(response.headers["Content-Length"])
    assert max(len(i) for i in items) == size  # the document is one item, not joined
    assert peak < 1.6 * size, f"peak {peak / size:.2f}x the document"
