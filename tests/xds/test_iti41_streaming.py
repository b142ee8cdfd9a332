"""ITI-41 of large documents (issue #8): the ciphertext is written to the repository piece by
piece (never held whole), the CDA check streams, and ITI-43 returns the very bytes sent, on
SQLite and PostgreSQL (``MES_TEST_DATABASE_URL``).
"""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from xds_support import (
    AUTHOR,
    ITI41,
    ITI43,
    MEDECIN,
    PATIENT,
    REPOSITORY,
    Doc,
    cda,
    envelope_bytes,
    parse_response,
    post,
    provide_and_register,
    retrieve_request,
    setup_space,
    vihf,
)

from espace.clock import FrozenClock
from espace.crypto import DEFAULT_CHUNK_SIZE, TAG_SIZE, DocumentCipher
from espace.models import DocumentContent
from espace.service import Espace
from xds import ns
from xds.mtom import build_mtom_request

CHUNK = DEFAULT_CHUNK_SIZE


@pytest.fixture(autouse=True)
def _real_time(clock: FrozenClock) -> None:
    """The test PKI's certificates are valid from yesterday: run the clock at today's time."""
    clock.set(datetime.now(UTC).replace(microsecond=0))


def _provide(client: FlaskClient, pki: Any, clock: FrozenClock, doc: Doc) -> Any:
    body, parts = provide_and_register([doc])
    return post(client, REPOSITORY, ITI41, body, vihf(pki, clock, AUTHOR), parts)


def _retrieve(client: FlaskClient, pki: Any, clock: FrozenClock, doc: Doc) -> Any:
    data = envelope_bytes(ITI43, retrieve_request(doc.unique_id), vihf(pki, clock, MEDECIN))
    response = client.post(
        REPOSITORY,
        data=data,
        content_type=f'application/soap+xml; charset=UTF-8; action="{ITI43}"',
    )
    return parse_response(response.status_code, response.content_type or "", response.get_data())


def _retrieved_bytes(got: Any) -> bytes:
    assert got.status_value() == "Success", got.errors()
    document = got.body.find(f"{{{ns.XDS}}}DocumentResponse/{{{ns.XDS}}}Document")
    assert document is not None
    data: bytes = got.resolved[document]
    return data


def _stored(espace: Espace) -> tuple[str, int, int]:
    with espace.session_factory() as session:
        row = session.execute(
            select(
                DocumentContent.hash,
                DocumentContent.size,
                func.length(DocumentContent.encrypted),
            )
        ).one()
    return row[0], row[1], row[2]


# ----------------------------------------------------------------------------- round trips
@pytest.mark.parametrize(
    "size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 16 * CHUNK, 16 * CHUNK + 1, 3_000_000]
)
def test_iti41_then_iti43_returns_identical_bytes(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any, size: int
) -> None:
    setup_space(espace, clock)
    content = os.urandom(size)
    doc = Doc(content=content, mime_type="application/pdf")
    stored = _provide(client, pki, clock, doc)
    assert stored.status_value() == "Success", stored.errors()
    digest, stored_size, blob_size = _stored(espace)
    assert (digest, stored_size) == (hashlib.sha1(content).hexdigest(), size)
    assert blob_size == espace.cipher.encrypted_size(size)
    assert _retrieved_bytes(_retrieve(client, pki, clock, doc)) == content


def test_large_cda_is_checked_stored_and_returned(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    """A CDA of a few MB whose body is many elements (no text node over libxml2's limit): its
    recordTarget is read (streamed) and it comes back identical."""
    setup_space(espace, clock)
    rows = "".join(f"<tr><td>ligne {i}</td><td>{'x' * 40}</td></tr>" for i in range(40_000))
    big = cda().replace(
        b'<text mediaType="text/plain">', f"<text><table>{rows}</table>".encode(), 1
    )
    assert len(big) > 2_500_000
    doc = Doc(content=big)
    stored = _provide(client, pki, clock, doc)
    assert stored.status_value() == "Success", stored.errors()
    assert _retrieved_bytes(_retrieve(client, pki, clock, doc)) == big

    other = Doc(content=big.replace(PATIENT.encode(), b"190012345678901"))
    refused = _provide(client, pki, clock, other)
    assert refused.error_codes() == ["XDSPatientIdDoesNotMatch"]


@pytest.mark.parametrize("writer", ["encrypt_whole_v2", "v1"])
def test_row_written_by_the_former_whole_blob_path_is_still_retrieved(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any, writer: str
) -> None:
    """Rows stored before the streamed writes (one ``encrypt()`` blob, or v1) read as before."""
    from test_iti43_streaming import v1_blob

    setup_space(espace, clock)
    content = os.urandom(1_500_000)
    doc = Doc(content=content, mime_type="application/pdf")
    assert _provide(client, pki, clock, doc).status_value() == "Success"
    with espace.session_factory() as session:
        row = session.execute(select(DocumentContent)).scalar_one()
        if writer == "v1":
            blob = v1_blob(espace.cipher._key, content, row.space_id, row.unique_id)
        else:
            blob = espace.cipher.encrypt(content, space_id=row.space_id, object_id=row.unique_id)
        session.execute(
            update(DocumentContent).where(DocumentContent.id == row.id).values(encrypted=blob)
        )
        session.commit()
    assert _retrieved_bytes(_retrieve(client, pki, clock, doc)) == content


def test_resubmitted_document_is_not_stored_twice(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    setup_space(espace, clock)
    doc = Doc(content=os.urandom(200_000), mime_type="application/pdf")
    assert _provide(client, pki, clock, doc).status_value() == "Success"
    assert _provide(client, pki, clock, doc).status_value() == "Success"  # same set re-sent
    with espace.session_factory() as session:
        assert session.execute(select(func.count(DocumentContent.id))).scalar_one() == 1


# ----------------------------------------------------------------------------- memory
def test_iti41_python_peak_stays_near_the_document_size(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any, monkeypatch: Any
) -> None:
    """Python-level peak (tracemalloc) of one ITI-41: the received part once plus ~1 MiB
    pieces. Before issue #8 the whole ciphertext was a second buffer (>= 2x). The C buffers of
    libxml2, libpq and SQLite are not traced: ``python -m bench.upload_memory`` measures RSS."""
    setup_space(espace, clock)
    size = 6_000_000
    doc = Doc(content=os.urandom(size), mime_type="application/pdf")
    body, parts = provide_and_register([doc])
    payload, content_type = build_mtom_request(
        envelope_bytes(ITI41, body, vihf(pki, clock, AUTHOR)), parts, action=ITI41
    )
    pieces: list[int] = []
    original = DocumentCipher.encrypt_pieces

    def counting(self: DocumentCipher, *args: Any, **kwargs: Any) -> Any:
        for piece in original(self, *args, **kwargs):
            pieces.append(len(piece))
            yield piece

    def whole(*_args: Any, **_kwargs: Any) -> bytes:
        raise AssertionError("ITI-41 must not encrypt a document into one buffer")

    monkeypatch.setattr(DocumentCipher, "encrypt_pieces", counting)
    monkeypatch.setattr(DocumentCipher, "encrypt", whole)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        response = client.post(REPOSITORY, data=payload, content_type=content_type)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    got = parse_response(response.status_code, response.content_type or "", response.get_data())
    assert got.status_value() == "Success", got.errors()
    assert sum(pieces) == espace.cipher.encrypted_size(size)
    assert len(pieces) == -(-size // (16 * CHUNK))
    assert max(pieces) <= 16 * (CHUNK + TAG_SIZE) + 21
    assert peak < 1.5 * size, f"peak {peak / size:.2f}x the document"
