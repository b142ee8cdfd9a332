"""The ``mes xds`` commands."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from lxml import etree
from xds_support import Doc, provide_and_register

from xds.cli import xds_group


def test_check_accepts_a_dmp_submission_and_names_bad_codes(tmp_path: Path) -> None:
    good, _ = provide_and_register([Doc()])
    path = tmp_path / "good.xml"
    path.write_bytes(etree.tostring(good))
    runner = CliRunner()
    result = runner.invoke(xds_group, ["check", str(path), "--affinity", "dmp"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("OK")
    bad, _ = provide_and_register([Doc(type_code=("00000-0", "2.16.840.1.113883.6.1", "x"))])
    path.write_bytes(etree.tostring(bad))
    result = runner.invoke(xds_group, ["check", str(path), "--affinity", "dmp"])
    assert result.exit_code == 1
    assert "XDSRegistryMetadataError" in result.output


def test_transactions_lists_every_action() -> None:
    result = CliRunner().invoke(xds_group, ["transactions"])
    assert result.exit_code == 0
    for name in ("ITI-18", "ITI-41", "ITI-42", "ITI-43", "ITI-57", "ITI-62", "TD0.2", "TD0.4"):
        assert name in result.output
