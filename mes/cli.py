"""The ``mes`` command line: set-up, serving, workers, trace tools, and each face's commands.

mes init                 development secrets (var/secrets.json) and the test PKI (var/pki)
mes db upgrade           apply the Alembic migrations to DATABASE_URL
mes demo load            demo patients, professionals, apps (idempotent)
mes serve                HTTP 8080, HTTPS 8443, SMTP 2525 and the background workers
mes worker               the background workers only (notifications, mail queue, jobs)
mes trace verify         recompute every trace chain; name the first broken record
mes trace checkpoint     sign every chain head now
mes trace show --ins X   a space's trace, as the patient reads it
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
import threading
from pathlib import Path
from typing import Any

import click

from mes.config import load_settings, write_dev_secrets

PLUGIN_MODULES = (
    "xds.cli",
    "fhir_server.cli",
    "mssante.cli",
    "patient_api.cli",
    "conformance.cli",
)


def _setup_logging(settings: dict[str, Any]) -> None:
    handler = logging.StreamHandler()
    if settings.get("LOG_JSON"):
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)


def _espace() -> Any:
    from mes.wiring import build_espace

    return build_espace(load_settings())


@click.group()
def main() -> None:
    """Mon espace santé interoperability server."""


@main.command()
def init() -> None:
    """Create development secrets and the test PKI under VAR_DIR (idempotent)."""
    settings = load_settings()
    path = write_dev_secrets(Path(settings["VAR_DIR"]))
    from mes.pki import generate_test_pki

    pki = generate_test_pki(Path(load_settings()["PKI_DIR"]))
    click.echo(f"secrets: {path}\ntest PKI: {pki.directory}")


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply the Alembic migrations to DATABASE_URL."""
    from mes.migrate import upgrade

    settings = load_settings()
    _ensure_sqlite_dir(settings)
    upgrade(str(settings["DATABASE_URL"]), revision)
    click.echo(f"database at {revision}")


def _ensure_sqlite_dir(settings: dict[str, Any]) -> None:
    url = str(settings["DATABASE_URL"])
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)


@main.group()
def demo() -> None:
    """Demo data."""


@demo.command("load")
def demo_load() -> None:
    """Load demo patients, professionals and apps (idempotent)."""
    from mes.demo import load_demo

    summary = load_demo(_espace())
    click.echo(json.dumps(summary, indent=2, ensure_ascii=False))


@main.command()
@click.option("--no-https", is_flag=True, help="Do not open the HTTPS port.")
@click.option("--no-smtp", is_flag=True, help="Do not start the SMTP relay.")
def serve(no_https: bool, no_smtp: bool) -> None:
    """Serve every face: HTTP, HTTPS, SMTP, and the background workers."""
    from mes.app import create_app
    from mes.serve import serve as run

    settings = load_settings()
    _setup_logging(settings)
    run(create_app(), with_https=not no_https, with_smtp=not no_smtp)


@main.command()
def worker() -> None:
    """Run the background workers only (notifications, mail delivery, time-based jobs)."""
    from mes.serve import background_jobs

    settings = load_settings()
    _setup_logging(settings)
    jobs = [job.start() for job in background_jobs(_espace())]
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        for job in jobs:
            job.stop()


@main.group()
def trace() -> None:
    """The tamper-evident trace."""


@trace.command("verify")
@click.option("--ins", default=None, help="Only this patient's chain.")
def trace_verify(ins: str | None) -> None:
    """Recompute every chain and checkpoint; exit 1 naming the first broken record."""
    from espace import trace as trace_mod
    from espace.spaces import find_space_by_ins

    espace = _espace()
    with espace.session_factory() as session:
        keys = None
        if ins:
            space = find_space_by_ins(session, ins)
            if space is None:
                raise click.ClickException(f"no space for INS {ins}")
            keys = [space.id]
        breaks = trace_mod.verify_chains(session, espace.signer, keys)
    if breaks:
        for item in breaks:
            click.echo(f"BROKEN {item}", err=True)
        sys.exit(1)
    click.echo("trace intact")


@trace.command("checkpoint")
def trace_checkpoint() -> None:
    """Sign every chain head now."""
    from espace import trace as trace_mod

    espace = _espace()
    with espace.session_factory() as session:
        count = trace_mod.checkpoint_all(session, now=espace.clock.now(), signer=espace.signer)
        session.commit()
    click.echo(f"{count} chain heads signed")


@trace.command("show")
@click.option("--ins", required=True)
@click.option("--limit", default=50, show_default=True)
def trace_show(ins: str, limit: int) -> None:
    """Print a space's trace as the patient reads it (newest first, JSON lines)."""
    from espace.spaces import find_space_by_ins
    from espace.trace import trace_of_space

    espace = _espace()
    with espace.session_factory() as session:
        space = find_space_by_ins(session, ins)
        if space is None:
            raise click.ClickException(f"no space for INS {ins}")
        for rec in trace_of_space(session, space.id, limit=limit):
            click.echo(
                json.dumps(
                    {
                        "seq": rec.seq,
                        "at": rec.recorded_at.isoformat(),
                        "event": rec.event_type,
                        "action": rec.action,
                        "actor": f"{rec.actor_kind}:{rec.actor_id}",
                        "name": rec.actor_name,
                        "decision": rec.decision,
                        "rule": rec.rule_id,
                        "outcome": rec.outcome,
                        "target": rec.target_id,
                    },
                    ensure_ascii=False,
                )
            )


@main.group()
def notifications() -> None:
    """The notification outbox."""


@notifications.command("run")
def notifications_run() -> None:
    """Send the notifications due now, once."""
    from mes.notifier import NotificationWorker

    click.echo(f"{NotificationWorker(_espace()).run_once()} e-mails sent")


def _mount_plugins() -> None:
    for name in PLUGIN_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and name.startswith(exc.name):
                continue
            raise
        for command in getattr(module, "commands", []):
            if command.name in main.commands and isinstance(
                main.commands[command.name], click.Group
            ):
                existing = main.commands[command.name]
                assert isinstance(existing, click.Group)
                if isinstance(command, click.Group):
                    for sub in command.commands.values():
                        existing.add_command(sub)
                    continue
            main.add_command(command)


_mount_plugins()
