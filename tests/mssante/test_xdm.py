"""IHE XDM archives (ITI TF-3 §4.3): metadata, hash and size checks, hostile archives."""

from __future__ import annotations

import io
import zipfile

import pytest
from mailkit import LDL_META, MSSANTE_REF, PATIENT_INS, cda, xdm_zip

from mssante.xdm import XdmError, XdmProblem, cx_ins, read_archive


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def test_archive_metadata_and_cda_header() -> None:
    archive = read_archive(xdm_zip())
    doc = archive.documents[0]
    assert doc["unique_id"] == LDL_META["unique_id"]
    assert doc["type_code"]["code"] == "11490-0"
    assert doc["class_code"] == {
        "code": "10",
        "scheme": "1.2.250.1.213.1.1.4.1",
        "display": "Compte rendu",
    }
    assert doc["cda"]["code"] == "11490-0" and doc["cda"]["ins"] == [PATIENT_INS]
    assert archive.identified_ins == {PATIENT_INS}
    assert archive.metadata["has_index"] and archive.metadata["has_readme"]


def test_ans_drimm_metadata_fragment_is_read() -> None:
    """The ANS DRIM-M METADATA.XML is a fragment with undeclared prefixes: it is wrapped."""
    path = MSSANTE_REF / "ans_drimm_xdm_METADATA_excerpt.xml"
    if not path.is_file():
        pytest.skip("shared reference data absent")
    kos = b"\x00" * 5164  # stands for SS000001/KOS_1_1.DCM (size from the metadata)
    data = _zip(
        {"IHE_XDM/SS000001/METADATA.XML": path.read_bytes(), "IHE_XDM/SS000001/KOS_1_1.DCM": kos}
    )
    with pytest.raises(XdmError) as refused:  # our stand-in bytes do not match its SHA-1
        read_archive(data)
    assert refused.value.problem is XdmProblem.HASH_MISMATCH


def test_drimm_fragment_metadata_values() -> None:
    path = MSSANTE_REF / "ans_drimm_xdm_METADATA_excerpt.xml"
    if not path.is_file():
        pytest.skip("shared reference data absent")
    from mssante.xdm import _document, _parse_metadata

    root = _parse_metadata(path.read_bytes(), 1 << 20)
    extrinsic = next(e for e in root.iter() if str(e.tag).endswith("ExtrinsicObject"))
    doc = _document(extrinsic)
    assert doc["hash"] == "5a4009cca445f28810fd34dc8e3526cbe9814664" and doc["size"] == "5164"
    assert doc["uri"] == "SS000001/KOS_1_1.DCM"
    assert doc["type_code"]["code"] == "IMG-KOS"
    assert cx_ins(doc["patient_id"]) == "162018885045327"


@pytest.mark.parametrize(
    ("files", "problem"),
    [
        ({"README.TXT": b"x"}, XdmProblem.NO_METADATA),
        ({"../evil/METADATA.XML": b"<x/>"}, XdmProblem.UNSAFE),
        (
            {
                "IHE_XDM/S1/METADATA.XML": b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "e">]>'
                b"<x>&e;</x>"
            },
            XdmProblem.BAD_METADATA,
        ),
        ({"IHE_XDM/S1/METADATA.XML": b"<not-closed>"}, XdmProblem.BAD_METADATA),
    ],
)
def test_hostile_or_broken_archives(files: dict[str, bytes], problem: XdmProblem) -> None:
    with pytest.raises(XdmError) as refused:
        read_archive(_zip(files))
    assert refused.value.problem is problem


def test_document_missing_from_archive() -> None:
    good = zipfile.ZipFile(io.BytesIO(xdm_zip()))
    files = {n: good.read(n) for n in good.namelist() if not n.endswith("DOC0001.XML")}
    with pytest.raises(XdmError) as refused:
        read_archive(_zip(files))
    assert refused.value.problem is XdmProblem.DOCUMENT_MISSING


def test_zip_bomb_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("IHE_XDM/S1/METADATA.XML", b"<a/>")
        archive.writestr("IHE_XDM/S1/BIG.BIN", b"\x00" * (2 * 1024 * 1024))
    with pytest.raises(XdmError) as refused:
        read_archive(buffer.getvalue(), max_bytes=1024 * 1024)
    assert refused.value.problem is XdmProblem.UNSAFE


def test_cda_with_doctype_is_refused() -> None:
    hostile = (
        b'<?xml version="1.0"?><!DOCTYPE ClinicalDocument SYSTEM "file:///etc/passwd">'
        + (cda().split(b"?>", 1)[1])
    )
    with pytest.raises(XdmError) as refused:
        read_archive(xdm_zip(hostile))
    assert refused.value.problem is XdmProblem.BAD_CDA
