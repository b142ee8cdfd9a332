"""Encryption at rest of document bytes: AES-256-GCM with a key from configuration.

Each blob is ``version(1) || nonce(12) || ciphertext+tag``; the associated data binds the
ciphertext to its space and document, so a blob copied to another row does not decrypt.
"""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = b"\x01"


class DecryptionError(Exception):
    """The stored bytes were altered, or belong to another row, or the key is wrong."""


class DocumentCipher:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the document encryption key must be 32 bytes (AES-256)")
        self._aead = AESGCM(key)

    @classmethod
    def from_config_value(cls, value: str) -> DocumentCipher:
        """Build from the base64 key of ``MES_DOCUMENT_KEY`` / ``DOCUMENT_KEY``."""
        return cls(base64.b64decode(value))

    @staticmethod
    def generate_key() -> str:
        return base64.b64encode(os.urandom(32)).decode("ascii")

    def encrypt(self, plaintext: bytes, *, space_id: str, object_id: str) -> bytes:
        nonce = os.urandom(12)
        aad = f"{space_id}/{object_id}".encode()
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, aad)

    def decrypt(self, blob: bytes, *, space_id: str, object_id: str) -> bytes:
        if blob[:1] != _VERSION or len(blob) < 29:
            raise DecryptionError("unknown blob format")
        aad = f"{space_id}/{object_id}".encode()
        try:
            return self._aead.decrypt(blob[1:13], blob[13:], aad)
        except Exception as exc:  # cryptography raises InvalidTag
            raise DecryptionError("document bytes failed authentication") from exc
