"""``mes conformance``: run the conformance kit, print its certificate, prepare a target.

mes conformance run [--target URL] [--suite xds|fhir|mail|all] [--report DIR]
mes conformance cert
mes conformance setup [--count N]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from conformance.baseline import BASELINE_FILE, below_baseline, load_baseline
from conformance.pki import kit_pki, kit_pki_dir
from conformance.report import pass_rate_lines
from mes.config import load_settings


def _pki_dir(explicit: str | None) -> Path:
    return Path(explicit) if explicit else kit_pki_dir(load_settings())


@click.group("conformance")
def conformance() -> None:
    """Conformance kit: NIST XDS testkit, DMP examples, FHIR profiles, mail."""


@conformance.command("run")
@click.option("--target", default=None, help="Base URL of the server (default: in process).")
@click.option(
    "--suite",
    "suite",
    type=click.Choice(["xds", "fhir", "mail", "all"]),
    default="all",
    show_default=True,
)
@click.option("--report", "report", type=click.Path(file_okay=False), default=None)
@click.option("--pki-dir", default=None, help="Kit PKI (default <VAR_DIR>/conformance-pki).")
@click.option("--insecure", is_flag=True, help="Do not verify the target's TLS certificate.")
@click.option("--patient-offset", default=0, type=int, help="First pool patient (--target).")
@click.option("--smtp", default=None, help="host:port of the target's MSSanté relay (--target).")
@click.option("--dmp-messages", default=None, help="Folder of the DMP example messages.")
@click.option("--check-baseline", is_flag=True, help="Exit 1 below conformance/baseline.json.")
def run_command(
    target: str | None,
    suite: str,
    report: str | None,
    pki_dir: str | None,
    insecure: bool,
    patient_offset: int,
    smtp: str | None,
    dmp_messages: str | None,
    check_baseline: bool,
) -> None:
    """Run the kit and print the pass rate per suite."""
    from conformance.runner import SUITES, run

    suites = list(SUITES) if suite == "all" else [suite]
    result = run(
        suites=suites,
        pki_dir=_pki_dir(pki_dir),
        target=target,
        report_dir=Path(report) if report else None,
        options={
            "verify": not insecure,
            "patient_offset": patient_offset,
            "smtp": smtp,
            "dmp_messages": dmp_messages,
        },
        progress=lambda line: click.echo(line, err=True),
    )
    for line in pass_rate_lines(result.summaries.values()):
        click.echo(line)
    if result.reports:
        click.echo(f"report: {result.reports['html']}")
    if check_baseline:
        failures = below_baseline(result.summaries, load_baseline())
        for failure in failures:
            click.echo(f"below baseline: {failure}", err=True)
        if failures:
            sys.exit(1)


@conformance.command("cert")
@click.option("--pki-dir", default=None, help="Kit PKI (default <VAR_DIR>/conformance-pki).")
def cert_command(pki_dir: str | None) -> None:
    """Print the kit's CA and VIHF signing certificates and its OAuth issuer public key (PEM).

    A target trusts the kit when the CA is among its trusted VIHF CAs (``PKI_DIR``) and the
    issuer key among ``OAUTH_PUBLIC_KEYS``.
    """
    from cryptography.hazmat.primitives import serialization

    from mes.tokens import development_private_key

    directory = _pki_dir(pki_dir)
    pki = kit_pki(directory)
    public = (
        development_private_key({"PKI_DIR": str(directory)})
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    click.echo("# kit CA (trust it for VIHF signatures)")
    click.echo(pki.ca_cert.read_text().strip())
    click.echo("# kit VIHF signing certificate")
    click.echo(pki.signing_cert.read_text().strip())
    click.echo("# kit OAuth issuer public key (ES256)")
    click.echo(public.decode().strip())


@conformance.command("setup")
@click.option("--count", default=200, show_default=True, help="Pool patients to register.")
@click.option("--pki-dir", default=None, help="Kit PKI (default <VAR_DIR>/conformance-pki).")
def setup_command(count: int, pki_dir: str | None) -> None:
    """Register the kit's patients in the configured database (before ``run --target``)."""
    from conformance.server import setup_pool
    from mes.wiring import build_espace

    espace = build_espace(load_settings())
    created = setup_pool(espace, kit_pki(_pki_dir(pki_dir)), count)
    click.echo(json.dumps({"registered": created, "baseline": str(BASELINE_FILE)}))


commands: list[click.Command] = [conformance]
