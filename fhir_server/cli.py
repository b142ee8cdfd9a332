"""Commands of the FHIR face, mounted on ``mes`` by ``mes.cli``.

mes token issue --kind patient|legal_representative|protected_adult_representative|app|system
                --subject X [--patient INS] [--app ID] [--scope S] [--name N] [--ttl SECONDS]
mes app register --id ID --name NAME [--oid OID] --purpose P ... [--redirect-uri URI ...]
mes app dereference --id ID      the app loses every pairing's access at once
mes app list                     the catalogue
mes agenda notify                queue the due appointment/reminder notifications now
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import click

from habilitation.model import ActorKind, Purpose
from mes.config import load_settings

KINDS = [k.value for k in ActorKind if k is not ActorKind.PROFESSIONAL]


@contextmanager
def _espace() -> Iterator[Any]:
    """The process's Espace for one command; its connections are closed afterwards."""
    from mes.wiring import build_espace

    espace = build_espace(load_settings())
    try:
        yield espace
    finally:
        espace.session_factory.kw["bind"].dispose()


@click.group("token")
def token_group() -> None:
    """OAuth2 bearer tokens of the development issuer."""


@token_group.command("issue")
@click.option("--kind", type=click.Choice(KINDS), required=True)
@click.option("--subject", required=True, help="patient INS, representative id, app id, job")
@click.option("--patient", default=None, help="INS of the patient the caller acts for")
@click.option("--app", "app_id", default=None, help="client_id of a referenced app")
@click.option("--scope", default="", help="space-separated purposes (an upper bound only)")
@click.option("--name", default="", help="display name carried in the token")
@click.option("--ttl", default=3600, show_default=True, type=int, help="lifetime in seconds")
def issue(kind: str, subject: str, patient: str | None, app_id: str | None, scope: str,
          name: str, ttl: int) -> None:
    """Print an access token signed by the development issuer (RFC 9068 claims)."""
    from mes.tokens import issue_token

    actor_kind = ActorKind(kind)
    if actor_kind is ActorKind.APP and not (patient and (app_id or subject)):
        raise click.UsageError("an app token needs --patient and --app (or --subject)")
    if actor_kind in (ActorKind.LEGAL_REPRESENTATIVE,
                      ActorKind.PROTECTED_ADULT_REPRESENTATIVE) and not patient:
        raise click.UsageError("a representative's token needs --patient")
    if actor_kind is ActorKind.APP and app_id is None:
        app_id = subject
    click.echo(issue_token(load_settings(), subject=subject, kind=actor_kind,
                           patient=patient, app_id=app_id, scope=scope, name=name,
                           ttl_seconds=ttl))


@click.group("app")
def app_group() -> None:
    """The catalogue of referenced apps."""


@app_group.command("register")
@click.option("--id", "app_id", required=True)
@click.option("--name", required=True)
@click.option("--oid", default=None, help="the editor's solution OID (meta.source root)")
@click.option("--purpose", "purposes", multiple=True, required=True,
              type=click.Choice([p.value for p in Purpose]))
@click.option("--redirect-uri", "redirect_uris", multiple=True)
def register(app_id: str, name: str, oid: str | None, purposes: tuple[str, ...],
             redirect_uris: tuple[str, ...]) -> None:
    """Reference an app (or update its entry) with its allowed purposes."""
    from espace.admin import register_app

    with _espace() as espace, espace.session_factory() as session:
        register_app(session, app_id, name=name, allowed_purposes=list(purposes),
                     now=datetime.now(UTC), oid=oid, redirect_uris=list(redirect_uris))
        session.commit()
    click.echo(f"referenced {app_id}: {' '.join(purposes)}")


@app_group.command("dereference")
@click.option("--id", "app_id", required=True)
def dereference(app_id: str) -> None:
    """Dereference an app: every pairing stops working on its next call."""
    from espace.models import ReferencedApp

    with _espace() as espace, espace.session_factory() as session:
        row = session.get(ReferencedApp, app_id)
        if row is None:
            raise click.ClickException(f"unknown app {app_id}")
        row.status = "dereferenced"
        session.commit()
    click.echo(f"dereferenced {app_id}")


@app_group.command("list")
def list_apps() -> None:
    """Print the catalogue, one app per line."""
    from sqlalchemy import select

    from espace.models import ReferencedApp, unflat

    with _espace() as espace, espace.session_factory() as session:
        for row in session.execute(select(ReferencedApp).order_by(ReferencedApp.id)).scalars():
            purposes = " ".join(sorted(unflat(row.allowed_purposes)))
            click.echo(f"{row.id}\t{row.status}\t{row.oid or '-'}\t{row.name}\t{purposes}")


@click.group("agenda")
def agenda_group() -> None:
    """Agenda jobs."""


@agenda_group.command("notify")
def agenda_notify() -> None:
    """Queue the notifications that are due (day-before appointments, reminders)."""
    from espace.agenda import due_agenda_notifications

    with _espace() as espace:
        click.echo(f"queued {due_agenda_notifications(espace)} notification(s)")


commands: list[click.Command] = [token_group, app_group, agenda_group]
