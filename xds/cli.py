"""Commands of the XDS face, mounted on ``mes`` by ``mes.cli``.

mes xds check FILE [--affinity dmp|connectathon] [--register]
    check a SubmitObjectsRequest / ProvideAndRegisterDocumentSetRequest / SOAP envelope offline:
    structure, required attributes (ITI TF-3 4.2.3) and affinity-domain codes; exit 1 on errors
mes xds transactions
    list the SOAP Actions the endpoint accepts, with their transaction and audit event
"""

from __future__ import annotations

from pathlib import Path

import click

from espace.registry import RegistryError, RegistryIssue, affinity_domain
from espace.registry.submit import _required
from habilitation.model import AccessMode, AuthenticationMode
from mes.config import load_settings
from xds import ns


@click.group("xds")
def xds_group() -> None:
    """The IHE XDS.b face (DMP web services)."""


@xds_group.command("check")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--affinity",
    type=click.Choice(["dmp", "connectathon"]),
    default=None,
    help="value sets (default: the AFFINITY_DOMAIN setting)",
)
@click.option("--register", is_flag=True, help="ITI-42 rules: hash, size, repository required")
def check(file: Path, affinity: str | None, register: bool) -> None:
    """Check the metadata of a submission file without storing anything."""
    from xds.ebxml.parse import parse_submit_objects
    from xds.xml import XmlSecurityError, parse_xml

    try:
        root = parse_xml(file.read_bytes())
    except XmlSecurityError as exc:
        raise click.ClickException(f"not accepted XML: {exc.message}") from None
    submit = (
        root
        if root.tag == f"{{{ns.LCM}}}SubmitObjectsRequest"
        else next(root.iter(f"{{{ns.LCM}}}SubmitObjectsRequest"), None)
    )
    if submit is None:
        raise click.ClickException("no lcm:SubmitObjectsRequest in the file")
    domain = affinity_domain(affinity or str(load_settings().get("AFFINITY_DOMAIN") or "dmp"))
    issues: list[RegistryIssue] = []
    try:
        request = parse_submit_objects(submit)
    except RegistryError as exc:
        issues.extend(exc.issues)
    else:
        issues += domain.check_submission_set(request.submission_set)
        for doc in request.documents:
            issues += _required(doc, provide=not register)
            issues += domain.check_document(doc)
        for folder in request.folders:
            issues += domain.check_folder(folder)
        click.echo(
            f"{len(request.documents)} document(s), {len(request.folders)} folder(s), "
            f"{len(request.associations)} association(s); value sets: {domain.name}"
        )
    for issue in issues:
        click.echo(f"{issue.code}\t{issue.location}\t{issue.message}")
    if issues:
        raise SystemExit(1)
    click.echo("OK")


@xds_group.command("transactions")
def transactions() -> None:
    """List the accepted SOAP Actions."""
    from xds.transactions import TRANSACTIONS

    for action, transaction in sorted(TRANSACTIONS.items()):
        services = ",".join(sorted(transaction.services))
        click.echo(f"{transaction.name}\t{services}\t{transaction.atna_event}\t{action}")


commands: list[click.Command] = [xds_group]


@xds_group.command("vihf")
@click.option("--ps", "professional_id", required=True, help="PS_IdNat (8 + RPPS), the NameID")
@click.option("--profession", default="10", show_default=True, help="TRE_G15 code (role #1)")
@click.option("--specialty", default=None, help="TRE_R01 / G05 code (role #2; required for 10, 21)")
@click.option("--patient", "patient_ins", required=True, help="the patient's matricule INS")
@click.option("--patient-oid", default="1.2.250.1.213.1.4.10", show_default=True)
@click.option(
    "--mode",
    type=click.Choice([m.value for m in AccessMode]),
    default="normal",
    show_default=True,
    help="purposeofuse (TRE_R248)",
)
@click.option(
    "--auth",
    type=click.Choice(["DIRECTE", "INDIRECTE", "INDIRECTE_RENFORCEE"]),
    default="DIRECTE",
    show_default=True,
)
@click.option("--structure", default=None, help="Identifiant_Structure (default: the test PKI's)")
@click.option("--name", default=None, help="subject-id (required in indirect modes)")
@click.option("--secret", is_flag=True, help="confidentiality-code INVISIBLE_REPRESENTANTS_LEGAUX")
@click.option("--minutes", default=60, show_default=True, help="validity of the assertion")
@click.option("--header", is_flag=True, help="print a whole wsse:Security header")
def vihf(
    professional_id: str,
    profession: str,
    specialty: str | None,
    patient_ins: str,
    patient_oid: str,
    mode: str,
    auth: str,
    structure: str | None,
    name: str | None,
    secret: bool,
    minutes: int,
    header: bool,
) -> None:
    """Print a VIHF assertion signed with the server's test PKI (development and test kits).

    The assertion is signed with ``<PKI_DIR>/signing.key.pem``, which the server trusts, so
    an EHR or a test harness can call the XDS endpoints of a ``make run`` server with it.
    """
    from datetime import UTC, datetime, timedelta

    from lxml import etree

    from mes.pki import generate_test_pki
    from xds.vihf import build_vihf, certificate_dn, sign_vihf, wrap_in_security_header

    pki = generate_test_pki(Path(str(load_settings()["PKI_DIR"])))
    cert_pem = pki.signing_cert.read_bytes()
    assertion = build_vihf(
        professional_id=professional_id,
        profession=profession,
        specialty=specialty,
        structure_id=structure or pki.structure_id,
        issuer=certificate_dn(cert_pem),
        issue_instant=datetime.now(UTC),
        patient_ins=patient_ins,
        patient_ins_oid=patient_oid,
        authentication_mode=AuthenticationMode(auth),
        access_mode=AccessMode(mode),
        subject_name=name or f"PS {professional_id}",
        secret_connection=secret,
        lifetime=timedelta(minutes=minutes),
    )
    signed = sign_vihf(assertion, pki.signing_key.read_bytes(), cert_pem)
    element = wrap_in_security_header(signed) if header else signed
    click.echo(etree.tostring(element, encoding="unicode"))
