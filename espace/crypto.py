"""Encryption at rest of document bytes: AES-256-GCM with a key from configuration.

The associated data binds each ciphertext to its space and document, so a blob copied to
another row does not decrypt. The first byte of a blob is its format version:

- **v1** (read only, blobs written before issue #8): ``0x01 || nonce(12) || ciphertext || tag(16)``,
  one AES-GCM message (NIST SP 800-38D) over the whole document, associated data
  ``"<space>/<object>"``.
- **v2** (written now): the STREAM online-AEAD construction (Hoang, Reyhanitabar, Rogaway, Vizár,
  "Online Authenticated-Encryption and its Nonce-Reuse Misuse-Resistance", CRYPTO 2015), laid out
  as Tink's AES-GCM-HKDF streaming AEAD and age's payload:
  ``0x02 || salt(16) || chunk_size(4, big-endian) || chunk_0 || ... || chunk_n-1`` where each
  chunk is ``AES-GCM(k, nonce_i, plaintext_i, aad=header)`` (``ciphertext || tag``), every chunk
  holds ``chunk_size`` plaintext bytes except the last (0 to ``chunk_size``; an empty document is
  one empty last chunk). ``k = HKDF-SHA256(key, salt, "mes-document-v2|<space>/<object>")``
  (RFC 5869) is unique per blob, so chunk nonces are counters: ``nonce_i = i (11 bytes, big-endian)
  || last`` with ``last = 1`` on the final chunk only, which makes truncation, reordering and
  splicing fail authentication.

Why v2: each chunk is authenticated on its own, so a document is encrypted and decrypted piece by
piece, straight from and into one buffer of the final size (no ``version + nonce + ciphertext``
concatenation, no ciphertext slice), and the stored bytes can be read from the database in
pieces (``espace.registry.retrieve``) without ever holding the whole ciphertext.

Memory: :meth:`DocumentCipher.encrypt_pieces` yields the v2 blob ~1 MiB at a time, so the
repository writes a document as it is encrypted (``espace.registry.content_store``) and never
holds the ciphertext whole. :meth:`DocumentCipher.encrypt` and :meth:`DocumentCipher.decrypt`
allocate their result once, at its final size, inside an ``io.BytesIO`` whose ``getvalue()``
hands its own buffer over without copying (CPython since 3.5, bpo-22003), so the result is real
``bytes`` built without a second copy.
"""

from __future__ import annotations

import abc
import base64
import io
import os
import struct
from collections.abc import Iterator
from typing import Final, TypeAlias

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

V1: Final = 1
V2: Final = 2
TAG_SIZE: Final = 16
V1_HEADER_SIZE: Final = 13  # version + nonce
V2_HEADER_SIZE: Final = 21  # version + salt + chunk size
#: plaintext bytes per v2 chunk (age and Tink use 64 KiB: a chunk stays in the CPU caches)
DEFAULT_CHUNK_SIZE: Final = 64 * 1024
_MIN_CHUNK_SIZE: Final = 1024
_MAX_CHUNK_SIZE: Final = 16 * 1024 * 1024
_SALT_SIZE: Final = 16
_HKDF_INFO: Final = b"mes-document-v2|"
#: longest header of any version: read this many bytes to learn a blob's format
MAX_HEADER_SIZE: Final = V2_HEADER_SIZE

BytesLike: TypeAlias = bytes | bytearray | memoryview


class DecryptionError(Exception):
    """The stored bytes were altered, or belong to another row, or the key is wrong."""


def _aad(space_id: str, object_id: str) -> bytes:
    return f"{space_id}/{object_id}".encode()


def _nonce(index: int, last: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def _chunk_count(plaintext_size: int, chunk_size: int) -> int:
    return max(1, -(-plaintext_size // chunk_size))


def _allocate(size: int, slack: int = 0) -> io.BytesIO:
    """A BytesIO holding ``size + slack`` zero bytes in one allocation (see the module doc)."""
    out = io.BytesIO()
    if size + slack:
        out.seek(size + slack - 1)
        out.write(b"\0")
    return out


def _hand_over(out: io.BytesIO, size: int) -> bytes:
    """The first ``size`` bytes of ``out`` as ``bytes``, without a copy (the buffer is given)."""
    out.truncate(size)
    data = out.getvalue()
    out.close()
    return data


def blob_plaintext_size(blob_size: int, header: bytes) -> int:
    """The plaintext size of a blob of ``blob_size`` bytes that starts with ``header``.

    ``header`` holds at least the first :data:`MAX_HEADER_SIZE` bytes (or the whole blob).
    Raises :class:`DecryptionError` for an unknown version or an impossible size.
    """
    version = header[0] if header else 0
    if version == V1:
        if blob_size < V1_HEADER_SIZE + TAG_SIZE:
            raise DecryptionError("truncated blob")
        return blob_size - V1_HEADER_SIZE - TAG_SIZE
    if version == V2:
        if len(header) < V2_HEADER_SIZE or blob_size < V2_HEADER_SIZE + TAG_SIZE:
            raise DecryptionError("truncated blob")
        chunk_size = _v2_chunk_size(header)
        stride = chunk_size + TAG_SIZE
        full, rest = divmod(blob_size - V2_HEADER_SIZE, stride)
        if rest == 0:
            return full * chunk_size
        if rest < TAG_SIZE:
            raise DecryptionError("truncated blob")
        return full * chunk_size + rest - TAG_SIZE
    raise DecryptionError("unknown blob format")


def _v2_chunk_size(header: bytes) -> int:
    (chunk_size,) = struct.unpack_from(">I", header, 1 + _SALT_SIZE)
    if not _MIN_CHUNK_SIZE <= chunk_size <= _MAX_CHUNK_SIZE:
        raise DecryptionError("invalid chunk size")
    return int(chunk_size)


class DocumentCipher:
    """AES-256-GCM for document bytes at rest: writes v2, reads v1 and v2 (module doc)."""

    def __init__(self, key: bytes, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        if len(key) != 32:
            raise ValueError("the document encryption key must be 32 bytes (AES-256)")
        if not _MIN_CHUNK_SIZE <= chunk_size <= _MAX_CHUNK_SIZE:
            raise ValueError(f"chunk size must be {_MIN_CHUNK_SIZE}..{_MAX_CHUNK_SIZE} bytes")
        self._key = key
        self._aead = AESGCM(key)
        self._chunk_size = chunk_size

    @classmethod
    def from_config_value(cls, value: str) -> DocumentCipher:
        """Build from the base64 key of ``MES_DOCUMENT_KEY`` / ``DOCUMENT_KEY``."""
        return cls(base64.b64decode(value))

    @staticmethod
    def generate_key() -> str:
        return base64.b64encode(os.urandom(32)).decode("ascii")

    def _blob_key(self, salt: bytes, aad: bytes) -> AESGCM:
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_HKDF_INFO + aad)
        return AESGCM(hkdf.derive(self._key))

    # ------------------------------------------------------------------ writing (v2)
    def encrypt(self, plaintext: BytesLike, *, space_id: str, object_id: str) -> bytes:
        """Encrypt ``plaintext`` in the v2 format; the result is allocated once, at its size."""
        blob = _BlobWriter(self, plaintext, space_id, object_id)
        total = self.encrypted_size(blob.size)
        out = _allocate(total)
        with out.getbuffer() as target:
            target[:V2_HEADER_SIZE] = blob.header
            blob.seal(0, blob.count, target, V2_HEADER_SIZE)
        return _hand_over(out, total)

    def encrypted_size(self, plaintext_size: int) -> int:
        """The size of the v2 blob :meth:`encrypt` and :meth:`encrypt_pieces` write."""
        return (
            V2_HEADER_SIZE
            + plaintext_size
            + _chunk_count(plaintext_size, self._chunk_size) * TAG_SIZE
        )

    def encrypt_pieces(
        self,
        plaintext: BytesLike,
        *,
        space_id: str,
        object_id: str,
        chunks_per_piece: int = 16,
    ) -> Iterator[bytearray]:
        """Encrypt ``plaintext`` in the v2 format, yielding the blob in consecutive pieces.

        Each piece holds ``chunks_per_piece`` sealed chunks (the first one the header too), so a
        document is written to the database while it is encrypted: peak memory is one piece
        (about 1 MiB), never the whole ciphertext. The pieces joined are an :meth:`encrypt`
        blob of :meth:`encrypted_size` bytes (another salt, so other bytes).
        """
        if chunks_per_piece < 1:
            raise ValueError("chunks_per_piece must be at least 1")
        blob = _BlobWriter(self, plaintext, space_id, object_id)
        chunk = self._chunk_size
        for first in range(0, blob.count, chunks_per_piece):
            last = min(first + chunks_per_piece, blob.count)
            body = min(last * chunk, blob.size) - first * chunk + (last - first) * TAG_SIZE
            prefix = blob.header if first == 0 else b""
            piece = bytearray(len(prefix) + body)
            piece[: len(prefix)] = prefix
            with memoryview(piece) as target:
                blob.seal(first, last, target, len(prefix))
            yield piece

    # ------------------------------------------------------------------ reading (v1, v2)
    def decrypt(self, blob: BytesLike, *, space_id: str, object_id: str) -> bytes:
        """Decrypt a whole blob of either version (see :meth:`decryptor` for pieces)."""
        view = memoryview(blob).cast("B")
        decryptor = self.decryptor(
            blob_size=len(view),
            header=bytes(view[:MAX_HEADER_SIZE]),
            space_id=space_id,
            object_id=object_id,
        )
        decryptor.update(view)
        return decryptor.finish()

    def decryptor(
        self, *, blob_size: int, header: bytes, space_id: str, object_id: str
    ) -> BlobDecryptor:
        """An incremental decryptor for a blob of ``blob_size`` bytes starting with ``header``.

        Feed it the blob's bytes in order, in pieces of any size, with
        :meth:`BlobDecryptor.update`; :meth:`BlobDecryptor.finish` returns the plaintext once
        every byte was fed and authenticated. Peak memory: the plaintext plus one piece.
        """
        if len(header) < min(blob_size, MAX_HEADER_SIZE):
            raise ValueError(f"give the first {MAX_HEADER_SIZE} bytes of the blob as its header")
        size = blob_plaintext_size(blob_size, header)
        aad = _aad(space_id, object_id)
        if header[0] == V1:
            return _V1Decryptor(self._key, header, blob_size, size, aad)
        chunk_size = _v2_chunk_size(header)
        aead = self._blob_key(header[1 : 1 + _SALT_SIZE], aad)
        return _V2Decryptor(aead, header[:V2_HEADER_SIZE], blob_size, size, chunk_size)


class BlobDecryptor(abc.ABC):
    """Decrypt a blob fed in pieces into one output buffer of the plaintext's size."""

    def __init__(self, blob_size: int, plaintext_size: int, slack: int = 0) -> None:
        self.blob_size = blob_size
        self.plaintext_size = plaintext_size
        self._out = _allocate(plaintext_size, slack)
        self._target = self._out.getbuffer()
        self._fed = 0  # blob bytes received
        self._done = False

    def update(self, data: BytesLike) -> None:
        """Feed the next bytes of the blob."""
        view = memoryview(data).cast("B")
        if self._done:
            raise DecryptionError("decryptor already finished")
        if self._fed + len(view) > self.blob_size:
            self._fail()
            raise DecryptionError("more bytes than the blob holds")
        try:
            self._consume(view)
        except InvalidTag:
            self._fail()
            raise DecryptionError("document bytes failed authentication") from None
        self._fed += len(view)

    def finish(self) -> bytes:
        """The plaintext, once the whole blob was fed and authenticated."""
        if self._done:
            raise DecryptionError("decryptor already finished")
        try:
            if self._fed != self.blob_size:
                raise DecryptionError("truncated blob")
            self._finalize()
        except InvalidTag:
            self._fail()
            raise DecryptionError("document bytes failed authentication") from None
        except DecryptionError:
            self._fail()
            raise
        self._done = True
        self._target.release()
        return _hand_over(self._out, self.plaintext_size)

    def _fail(self) -> None:
        """Drop the partial plaintext (freed with the last view of it; never handed out)."""
        self._done = True
        self._target.release()
        self._out = io.BytesIO()

    @abc.abstractmethod
    def _consume(self, view: memoryview) -> None:
        """Decrypt ``view`` (the next blob bytes) into the output buffer."""

    @abc.abstractmethod
    def _finalize(self) -> None:
        """Check the last tag once every blob byte has been fed."""


class _V1Decryptor(BlobDecryptor):
    """One GCM message: ``update_into`` writes in place, the tag is checked at the end."""

    def __init__(
        self, key: bytes, header: bytes, blob_size: int, plaintext_size: int, aad: bytes
    ) -> None:
        # GCM's update_into wants len(data) + 15 bytes of room: keep a block of slack
        super().__init__(blob_size, plaintext_size, slack=TAG_SIZE)
        nonce = bytes(header[1:V1_HEADER_SIZE])
        self._gcm = Cipher(algorithms.AES(key), modes.GCM(nonce)).decryptor()
        self._gcm.authenticate_additional_data(aad)
        self._tag = bytearray()
        self._written = 0

    def _consume(self, view: memoryview) -> None:
        start = self._fed
        ct_start, ct_end = V1_HEADER_SIZE, self.blob_size - TAG_SIZE
        lo, hi = max(start, ct_start), min(start + len(view), ct_end)
        if hi > lo:
            piece = view[lo - start : hi - start]
            out = self._target[self._written : self._written + len(piece) + TAG_SIZE - 1]
            self._written += self._gcm.update_into(piece, out)
        if start + len(view) > ct_end:
            self._tag += view[max(ct_end - start, 0) :]

    def _finalize(self) -> None:
        self._gcm.finalize_with_tag(bytes(self._tag))


class _V2Decryptor(BlobDecryptor):
    """STREAM chunks: each chunk is decrypted (and authenticated) straight into the output."""

    def __init__(
        self, aead: AESGCM, header: bytes, blob_size: int, plaintext_size: int, chunk_size: int
    ) -> None:
        super().__init__(blob_size, plaintext_size)
        self._aead = aead
        self._header = bytes(header)
        self._chunk = chunk_size
        self._count = _chunk_count(plaintext_size, chunk_size)
        self._index = 0
        self._carry = bytearray()  # a chunk split across two pieces

    def _chunk_length(self, index: int) -> int:
        if index == self._count - 1:
            return self.plaintext_size - index * self._chunk + TAG_SIZE
        return self._chunk + TAG_SIZE

    def _open(self, sealed: memoryview | bytearray) -> None:
        index = self._index
        start = index * self._chunk
        out = self._target[start : start + len(sealed) - TAG_SIZE]
        nonce = _nonce(index, index == self._count - 1)
        self._aead.decrypt_into(nonce, sealed, self._header, out)
        self._index += 1

    def _consume(self, view: memoryview) -> None:
        position = self._fed
        if position < V2_HEADER_SIZE:  # the header was read from the first bytes already
            skip = min(V2_HEADER_SIZE - position, len(view))
            if bytes(view[:skip]) != self._header[position : position + skip]:
                raise DecryptionError("blob header changed while reading")
            view = view[skip:]
        while view and self._index < self._count:
            need = self._chunk_length(self._index)
            if self._carry:
                take = min(need - len(self._carry), len(view))
                self._carry += view[:take]
                view = view[take:]
                if len(self._carry) == need:
                    self._open(self._carry)
                    self._carry = bytearray()
            elif len(view) >= need:
                self._open(view[:need])
                view = view[need:]
            else:
                self._carry += view
                view = view[len(view) :]

    def _finalize(self) -> None:
        if self._index != self._count or self._carry:
            raise DecryptionError("truncated blob")


class _BlobWriter:
    """One v2 blob being written: its salt and header, its key, and the sealing of chunks."""

    def __init__(
        self, cipher: DocumentCipher, plaintext: BytesLike, space_id: str, object_id: str
    ) -> None:
        self.source = memoryview(plaintext).cast("B")
        self.size = len(self.source)
        self.chunk = cipher._chunk_size
        self.count = _chunk_count(self.size, self.chunk)
        salt = os.urandom(_SALT_SIZE)
        self.header = bytes([V2]) + salt + struct.pack(">I", self.chunk)
        self.aead = cipher._blob_key(salt, _aad(space_id, object_id))

    def seal(self, first: int, last: int, target: memoryview, position: int) -> None:
        """Seal chunks ``first`` to ``last`` (excluded) into ``target`` from ``position``."""
        for index in range(first, last):
            plain = self.source[index * self.chunk : (index + 1) * self.chunk]
            end = position + len(plain) + TAG_SIZE
            nonce = _nonce(index, index == self.count - 1)
            self.aead.encrypt_into(nonce, plain, self.header, target[position:end])
            position = end
