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
