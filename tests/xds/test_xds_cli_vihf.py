"""``mes xds vihf`` prints an assertion the server's own verifier accepts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner
from lxml import etree

from habilitation.model import AccessMode
from mes.cli import main
from xds.vihf import build_soap_envelope, verify_vihf


def test_minted_vihf_verifies_against_the_test_pki(
    pki: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("MES_PKI_DIR", str(pki.directory))
    monkeypatch.setenv("MES_VAR_DIR", str(tmp_path))
    result = CliRunner().invoke(
        main,
        [
            "xds",
            "vihf",
            "--ps",
            "810000000099",
            "--specialty",
            "SM18",
            "--patient",
            "207058575627097",
            "--mode",
            "bris_de_glace",
        ],
    )
    assert result.exit_code == 0, result.output
    assertion = etree.fromstring(result.output.strip().encode())
    envelope = build_soap_envelope(
        "urn:ihe:iti:2007:RegistryStoredQuery", etree.Element("Body"), assertion
    )
    verified = verify_vihf(
        envelope, trusted_ca_pems=[pki.ca_cert.read_bytes()], now=datetime.now(UTC)
    )
    assert verified.patient_ins == "207058575627097"
    assert verified.actor.id == "810000000099"
    assert verified.actor.access_mode is AccessMode.BREAK_GLASS
