from __future__ import annotations

import pytest

from espace.crypto import DecryptionError, DocumentCipher


def test_round_trip_and_binding_to_its_row() -> None:
    cipher = DocumentCipher.from_config_value(DocumentCipher.generate_key())
    blob = cipher.encrypt(b"<ClinicalDocument/>", space_id="s1", object_id="1.2.3")
    assert b"ClinicalDocument" not in blob
    assert cipher.decrypt(blob, space_id="s1", object_id="1.2.3") == b"<ClinicalDocument/>"
    with pytest.raises(DecryptionError):
        cipher.decrypt(blob, space_id="s2", object_id="1.2.3")
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(DecryptionError):
        cipher.decrypt(tampered, space_id="s1", object_id="1.2.3")


def test_wrong_key_fails() -> None:
    a = DocumentCipher.from_config_value(DocumentCipher.generate_key())
    b = DocumentCipher.from_config_value(DocumentCipher.generate_key())
    with pytest.raises(DecryptionError):
        b.decrypt(a.encrypt(b"x", space_id="s", object_id="o"), space_id="s", object_id="o")


def test_key_must_be_256_bits() -> None:
    with pytest.raises(ValueError):
        DocumentCipher(b"short")
