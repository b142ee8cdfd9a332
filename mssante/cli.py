"""``mes mail ...``: back-office commands of the secure-mail face.

- ``mes mail pharmacy-history add|list``: the patient's reimbursement history of community
  pharmacies (who the patient may write to first);
- ``mes mail close-conversation`` / ``mes mail block-patient``: a professional's request, relayed
  by their operator's support, to end a conversation or block an abusive patient;
- ``mes mail prevention``: a prevention message from the service (cannot be answered);
- ``mes mail outbound-run``: one pass of the outbound queue; ``mes mail purge``: retention.

Every command runs in one ``Espace.operation`` (policy-checked and traced).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import click

from espace import mailbox as mb
from espace.service import Espace
from espace.trace import Source, Target
from habilitation.model import Action, Actor, ActorKind, AuthenticationMode

SYSTEM = Actor(
    kind=ActorKind.SYSTEM,
    id="mes-mail-cli",
    name="mes mail",
    authentication_mode=AuthenticationMode.SYSTEM,
)
SOURCE = Source(face="cli", software="mes mail")


@contextmanager
def _espace() -> Iterator[Espace]:
    """The service for one command; its connection pool is closed when the command ends."""
    from mes.config import load_settings
    from mes.wiring import build_espace

    espace = build_espace(load_settings())
    try:
        yield espace
    finally:
        espace.session_factory.kw["bind"].dispose()


def _mail(espace: Espace) -> mb.MailSettings:
    return mb.MailSettings.from_mapping(espace.settings)


def _professional(espace: Espace, address: str) -> Actor:
    from mssante.smtp_server import MailIntake

    return MailIntake(espace, espace.settings).actor_for(address, "", {"cli"}, "mes mail")


def add_pharmacy(
    espace: Espace, ins: str, address: str, name: str, dispensed_on: date, structure_id: str = ""
) -> int:
    with espace.operation(
        SYSTEM, Action.SYSTEM_JOB, event_type="mail.pharmacy_history", source=SOURCE, space_ins=ins
    ) as op:
        assert op.space is not None
        row = mb.add_pharmacy_visit(
            op.session,
            op.space,
            pharmacy_address=address,
            pharmacy_name=name,
            dispensed_on=dispensed_on,
            now=op.now,
            structure_id=structure_id,
        )
        op.session.flush()
        op.target = Target("PharmacyVisit", str(row.id))
        return row.id


def close_conversation(espace: Espace, ins: str, conversation_id: str, by: str) -> None:
    with espace.operation(
        _professional(espace, by),
        Action.DELIVER_MESSAGE,
        event_type="mail.close_conversation",
        source=SOURCE,
        space_ins=ins,
        target=Target("MailConversation", conversation_id),
    ) as op:
        assert op.space is not None
        mb.end_conversation(
            op.session,
            op.space,
            conversation_id,
            by_address=by,
            cipher=espace.cipher,
            settings=_mail(espace),
            now=op.now,
        )
        op.notify(
            "new_message",
            f"{by} a clôturé une conversation de votre messagerie.",
            dedup_key=f"mail_closed:{conversation_id}",
        )


def block_patient(espace: Espace, ins: str, by: str, reason: str) -> None:
    with espace.operation(
        _professional(espace, by),
        Action.DELIVER_MESSAGE,
        event_type="mail.block_patient",
        source=SOURCE,
        space_ins=ins,
        target=Target("MailBlock", by),
    ) as op:
        assert op.space is not None
        mb.block_patient(
            op.session,
            op.space,
            by_address=by,
            reason=reason,
            cipher=espace.cipher,
            settings=_mail(espace),
            now=op.now,
        )
        op.notify(
            "new_message",
            f"{by} ne souhaite plus recevoir vos messages.",
            dedup_key=f"mail_blocked:{op.space.id}:{by.lower()}",
        )


def send_prevention(espace: Espace, ins: str, subject: str, body: str) -> str:
    """A prevention message from the service (the PDP refuses it if the patient opposed)."""
    with espace.operation(
        SYSTEM, Action.DELIVER_MESSAGE, event_type="mail.prevention", source=SOURCE, space_ins=ins
    ) as op:
        assert op.space is not None
        row = mb.add_system_message(
            op.session,
            op.space,
            subject=subject,
            body=body,
            cipher=espace.cipher,
            settings=_mail(espace),
            now=op.now,
            reason="prevention",
        )
        op.target = Target("MailMessage", row.id)
        op.notify(
            "new_message",
            "Vous avez reçu un message de prévention de Mon espace santé.",
            dedup_key=f"prevention:{row.id}",
        )
        return row.id


def purge(espace: Espace) -> int:
    with espace.operation(SYSTEM, Action.SYSTEM_JOB, event_type="mail.purge", source=SOURCE) as op:
        count = mb.purge_expired(op.session, op.now)
        op.detail["purged"] = count
        return count


@click.group("mail")
def mail() -> None:
    """MSSanté secure mail: pharmacy history, conversations, prevention, queue."""


@mail.group("pharmacy-history")
def pharmacy_history() -> None:
    """The patient's community pharmacies (reimbursement history)."""


@pharmacy_history.command("add")
@click.option("--ins", required=True, help="Matricule INS of the patient.")
@click.option("--pharmacy", "address", required=True, help="The pharmacy's MSSanté address.")
@click.option("--name", default="", help="The pharmacy's name.")
@click.option(
    "--date",
    "dispensed_on",
    required=True,
    type=click.DateTime(["%Y-%m-%d"]),
    help="Dispensation date (YYYY-MM-DD).",
)
@click.option("--structure-id", default="", help="FINESS / Struct_IdNat.")
def pharmacy_add(ins: str, address: str, name: str, dispensed_on: Any, structure_id: str) -> None:
    """Record a dispensation by a community pharmacy."""
    with _espace() as espace:
        add_pharmacy(espace, ins, address, name, dispensed_on.date(), structure_id)
    click.echo(f"recorded {address} for {ins}")


@pharmacy_history.command("list")
@click.option("--ins", required=True)
def pharmacy_list(ins: str) -> None:
    """List the pharmacies the patient may write to (last 12 months)."""
    with (
        _espace() as espace,
        espace.operation(
            SYSTEM,
            Action.SYSTEM_JOB,
            event_type="mail.pharmacy_history",
            source=SOURCE,
            space_ins=ins,
        ) as op,
    ):
        assert op.space is not None
        rows = mb.eligible_pharmacies(op.session, op.space.id, op.now)
        out = [
            {
                "address": r.pharmacy_address,
                "name": r.pharmacy_name,
                "last_dispensation": r.dispensed_on.isoformat(),
            }
            for r in rows
        ]
    click.echo(json.dumps(out, indent=2, ensure_ascii=False))


@mail.command("close-conversation")
@click.option("--ins", required=True)
@click.option("--conversation", "conversation_id", required=True)
@click.option("--by", required=True, help="The professional's MSSanté address.")
def close_conversation_cmd(ins: str, conversation_id: str, by: str) -> None:
    """End a conversation at the professional's request (the patient can no longer reply)."""
    with _espace() as espace:
        close_conversation(espace, ins, conversation_id, by)
    click.echo("closed")


@mail.command("block-patient")
@click.option("--ins", required=True)
@click.option("--by", required=True, help="The professional's MSSanté address.")
@click.option("--reason", default="")
def block_patient_cmd(ins: str, by: str, reason: str) -> None:
    """Block a patient who abuses the channel (the patient is told)."""
    with _espace() as espace:
        block_patient(espace, ins, by, reason)
    click.echo("blocked")


@mail.command("prevention")
@click.option("--ins", required=True)
@click.option("--subject", required=True)
@click.option("--body", required=True)
def prevention_cmd(ins: str, subject: str, body: str) -> None:
    """Put a prevention message in the patient's mailbox (no reply possible)."""
    with _espace() as espace:
        click.echo(send_prevention(espace, ins, subject, body))


@mail.command("outbound-run")
def outbound_run() -> None:
    """Send what the outbound queue holds (one pass)."""
    from mssante.outbound import run_outbound_once

    with _espace() as espace:
        click.echo(f"{run_outbound_once(espace)} message(s) attempted")


@mail.command("purge")
def purge_cmd() -> None:
    """Delete messages past their retention (MAIL_RETENTION_YEARS, 10 by default)."""
    with _espace() as espace:
        click.echo(f"{purge(espace)} message(s) purged")


commands: list[click.Command] = [mail]
