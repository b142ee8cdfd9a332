"""Back-office and scheduler commands (mounted by ``mes.cli``):

mes space enrol --ins X --family F --given G --birth YYYY-MM-DD --sex M|F [--email E]
                [--channel letter|email] [--rep-ins R --rep-email E]...   prints the one-time code
mes space bounce --ins X                        the letter / e-mail came back (no auto creation)
mes space code --ins X [--agent ID]             a new one-time code (prints it: the letter)
mes space code --ins X --agent ID --send        a new code sent to the channel on file
mes space letters [--out FILE]                  print the queued code letters (JSON lines),
                                                then erase their codes
mes space oppose --ins X (--code C [--rep-ins R] | --agent ID)  [--pdf FILE]
mes space create --ins X --code C               voluntary creation
mes space activate --ins X --code C --email E --phone P --accept-terms
mes space close --ins X (--agent ID | --code C) [--reason R] [--delete-now]
mes space reopen --ins X (--agent ID | --code C)
mes space delete --ins X (--agent ID | --code C)  immediate definitive deletion
mes space death --ins X --date YYYY-MM-DD --agent ID
mes space attach-rep --ins MINOR --rep-ins R --name N [--birth D] [--email E] --agent ID
mes space status --ins X --agent ID
mes jobs run [--no-progress]                    automatic creation, majority, purge, prevention,
                                                exports (build, expiry), notification digest
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import click

from espace import lifecycle
from espace.errors import AccessDenied, DomainError
from espace.trace import Source
from habilitation.model import Actor, ActorKind, AuthenticationMode

SOURCE = Source(face="cli")


def _espace() -> Any:
    from mes.config import load_settings
    from mes.wiring import build_espace

    return build_espace(load_settings())


def _date(_ctx: Any, _param: Any, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter("expected YYYY-MM-DD") from exc


def _who(ins: str, agent: str | None, code: str | None, rep_ins: str | None = None) -> Actor:
    if agent:
        return lifecycle.support_actor(agent)
    if not code:
        raise click.UsageError("give --agent ID (support desk) or --code (the person)")
    if rep_ins:
        return Actor(
            ActorKind.LEGAL_REPRESENTATIVE,
            rep_ins,
            authentication_mode=AuthenticationMode.PATIENT_LOGIN,
            on_behalf_of=ins,
        )
    return Actor(ActorKind.PATIENT, ins, authentication_mode=AuthenticationMode.PATIENT_LOGIN)


def _run(fn: Any) -> Any:
    """Run ``fn(espace)`` on a fresh service and release its connections afterwards."""
    service = _espace()
    try:
        return fn(service)
    except AccessDenied as exc:
        raise click.ClickException(
            f"refused ({exc.decision.rule_id}): {exc.decision.reason}"
        ) from exc
    except DomainError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from exc
    finally:
        service.session_factory.kw["bind"].dispose()


def _echo(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


@click.group("space")
def space() -> None:
    """The life of patient spaces (back office)."""


@space.command("enrol")
@click.option("--ins", required=True)
@click.option("--family", default="")
@click.option("--given", default="")
@click.option("--birth", callback=_date)
@click.option("--sex", type=click.Choice(["M", "F", "U"]), default="U")
@click.option("--email")
@click.option("--channel", type=click.Choice(["letter", "email"]), default="letter")
@click.option("--rep-ins", multiple=True, help="legal representative of a minor (at most two)")
@click.option("--rep-email", multiple=True)
@click.option("--protected-rep-ins", help="representative of a protected adult")
def enrol(
    ins: str,
    family: str,
    given: str,
    birth: date | None,
    sex: str,
    email: str | None,
    channel: str,
    rep_ins: tuple[str, ...],
    rep_email: tuple[str, ...],
    protected_rep_ins: str | None,
) -> None:
    """Send the information letter / e-mail: prints the one-time code (six weeks)."""
    emails = list(rep_email) + [None] * (len(rep_ins) - len(rep_email))
    reps = [lifecycle.Person(r, email=e) for r, e in zip(rep_ins, emails, strict=False)]
    protected = lifecycle.Person(protected_rep_ins) if protected_rep_ins else None
    person = lifecycle.Person(ins, family, given, birth, sex, email)
    result = _run(
        lambda e: lifecycle.enrol(
            e,
            person,
            source=SOURCE,
            channel=channel,
            representatives=reps,
            protected_adult_representative=protected,
        )
    )
    _echo(
        {
            "ins": result.ins,
            "code": result.code,
            "expires_at": result.expires_at,
            "opposition_deadline": result.opposition_deadline,
        }
    )


@space.command("bounce")
@click.option("--ins", required=True)
def bounce(ins: str) -> None:
    """Record that the letter / e-mail came back: the space will not be created automatically."""
    _run(lambda e: lifecycle.report_bounce(e, ins, source=SOURCE))
    click.echo("bounce recorded")


@space.command("code")
@click.option("--ins", required=True)
@click.option("--agent")
@click.option("--channel", type=click.Choice(["letter", "email"]), default="letter")
@click.option("--send", is_flag=True, help="send it to the channel on file instead (needs --agent)")
def code(ins: str, agent: str | None, channel: str, send: bool) -> None:
    """Issue a new one-time code (the previous ones stop working); prints it for the letter,
    or with --send sends it to the e-mail on file / the letters' print queue."""
    who = lifecycle.support_actor(agent) if agent else None
    if send:
        if who is None:
            raise click.UsageError("--send needs --agent ID")
        sent = _run(lambda e: lifecycle.send_new_code(e, who, ins, source=SOURCE))
        _echo({"ins": ins, "sent": True, "channel": sent.channel, "expires_at": sent.expires_at})
        return
    result = _run(
        lambda e: lifecycle.issue_new_code(e, ins, source=SOURCE, actor=who, channel=channel)
    )
    _echo({"ins": result.ins, "code": result.code, "expires_at": result.expires_at})


@space.command("letters")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="append the letters to this file (JSON lines) instead of printing them",
)
def letters(out: Path | None) -> None:
    """Hand the queued code letters to the print run (each is traced, its code then erased)."""

    def drain(espace: Any) -> int:
        count = 0
        sink = out.open("a", encoding="utf-8") if out is not None else None
        try:
            for letter in lifecycle.print_letters(espace, source=SOURCE):
                line = json.dumps(
                    {
                        "ins": letter.ins,
                        "family_name": letter.family_name,
                        "given_names": letter.given_names,
                        "code": letter.code,
                        "expires_at": letter.expires_at.isoformat(),
                    },
                    ensure_ascii=False,
                )
                if sink is not None:
                    sink.write(line + "\n")
                else:
                    click.echo(line)
                count += 1
        finally:
            if sink is not None:
                sink.close()
        return count

    count = _run(drain)
    click.echo(f"{count} letter(s)", err=True)


@space.command("oppose")
@click.option("--ins", required=True)
@click.option("--code", "code_")
@click.option("--rep-ins")
@click.option("--agent")
@click.option("--pdf", type=click.Path(dir_okay=False, path_type=Path))
def oppose(
    ins: str, code_: str | None, rep_ins: str | None, agent: str | None, pdf: Path | None
) -> None:
    """Oppose the creation (the person with the code, or a support agent)."""
    actor = _who(ins, agent, code_, rep_ins)
    receipt = _run(lambda e: lifecycle.oppose(e, actor, ins, code=code_, source=SOURCE))
    if pdf is not None:
        from patient_api.pdf import opposition_pdf

        pdf.write_bytes(opposition_pdf(receipt))
    _echo(
        {
            "reference": receipt.reference,
            "opposed_at": receipt.opposed_at,
            "agent_id": receipt.agent_id,
        }
    )


@space.command("create")
@click.option("--ins", required=True)
@click.option("--code", "code_", required=True)
def create(ins: str, code_: str) -> None:
    """Create one's space voluntarily with a code."""
    actor = _who(ins, None, code_)
    _echo(
        _run(
            lambda e: lifecycle.create_voluntarily(e, actor, ins, code=code_, source=SOURCE)
        ).as_json()
    )


@space.command("activate")
@click.option("--ins", required=True)
@click.option("--code", "code_", required=True)
@click.option("--email", required=True)
@click.option("--phone", required=True)
@click.option("--accept-terms", is_flag=True)
def activate(ins: str, code_: str, email: str, phone: str, accept_terms: bool) -> None:
    """Activate the person's access (contact e-mail, phone, acceptance of the terms)."""
    actor = _who(ins, None, code_)
    state = _run(
        lambda e: lifecycle.activate(
            e,
            actor,
            ins,
            email=email,
            phone=phone,
            accept_terms=accept_terms,
            code=code_,
            source=SOURCE,
        )
    )
    _echo(state.as_json())


@space.command("close")
@click.option("--ins", required=True)
@click.option("--agent", help="support-desk agent id (or the person's --code)")
@click.option("--code", "code_")
@click.option("--reason", type=click.Choice(sorted(lifecycle.CLOSURE_REASONS)))
@click.option("--delete-now", is_flag=True, help="definitive deletion, represented persons too")
def close(
    ins: str, agent: str | None, code_: str | None, reason: str | None, delete_now: bool
) -> None:
    """Close a space (kept ten years unless --delete-now): the support desk or the person."""
    actor = _who(ins, agent, code_)
    why = reason or ("FERMETURE_SUPPORT" if agent else "FERMETURE_DEMANDE_PATIENT")
    state = _run(
        lambda e: lifecycle.close(
            e, actor, ins, source=SOURCE, reason=why, delete_now=delete_now, code=code_
        )
    )
    _echo(state.as_json() if state else {"ins": ins, "status": "deleted"})


@space.command("reopen")
@click.option("--ins", required=True)
@click.option("--agent")
@click.option("--code", "code_")
def reopen(ins: str, agent: str | None, code_: str | None) -> None:
    """Reopen a closed space within ten years: everything comes back."""
    actor = _who(ins, agent, code_)
    _echo(_run(lambda e: lifecycle.reopen(e, actor, ins, code=code_, source=SOURCE)).as_json())


@space.command("delete")
@click.option("--ins", required=True)
@click.option("--agent", help="support-desk agent id (or the person's --code)")
@click.option("--code", "code_")
def delete(ins: str, agent: str | None, code_: str | None) -> None:
    """Delete a space and every datum now (and the spaces of the persons it represents)."""
    actor = _who(ins, agent, code_)
    deleted = _run(
        lambda e: lifecycle.delete_definitively(e, actor, ins, source=SOURCE, code=code_)
    )
    _echo({"deleted": deleted})


@space.command("death")
@click.option("--ins", required=True)
@click.option("--date", "death_date", required=True, callback=_date)
@click.option("--agent", required=True)
def death(ins: str, death_date: date, agent: str) -> None:
    """Record a death: the space closes and is kept ten years from the death."""
    actor = lifecycle.support_actor(agent)
    _echo(
        _run(
            lambda e: lifecycle.record_death(e, actor, ins, death_date=death_date, source=SOURCE)
        ).as_json()
    )


@space.command("attach-rep")
@click.option("--ins", required=True, help="the minor's (or protected adult's) INS")
@click.option("--rep-ins", required=True)
@click.option("--name", required=True)
@click.option("--birth", callback=_date)
@click.option("--email")
@click.option(
    "--kind",
    type=click.Choice(sorted(lifecycle.REPRESENTATIVE_KINDS)),
    default="legal_representative",
)
@click.option("--agent", required=True)
def attach_rep(
    ins: str, rep_ins: str, name: str, birth: date | None, email: str | None, kind: str, agent: str
) -> None:
    """Attach a representative directly (support desk)."""
    actor = lifecycle.support_actor(agent)
    _run(
        lambda e: lifecycle.attach_representative(
            e,
            actor,
            ins,
            representative_ins=rep_ins,
            name=name,
            birth_date=birth,
            email=email,
            source=SOURCE,
            kind=kind,
        )
    )
    click.echo("attached")


@space.command("status")
@click.option("--ins", required=True)
@click.option("--agent", required=True)
def status(ins: str, agent: str) -> None:
    """The lifecycle status of a space (no data)."""
    actor = lifecycle.support_actor(agent)
    _echo(_run(lambda e: lifecycle.space_state(e, actor, ins, source=SOURCE)).as_json())


@click.group("jobs")
def jobs() -> None:
    """Time-based jobs."""


def _digest(espace: Any) -> int:
    from mes.notifier import NotificationWorker

    return int(NotificationWorker(espace).run_once())


@jobs.command("run")
@click.option("--no-progress", is_flag=True)
def jobs_run(no_progress: bool) -> None:
    """Run every due time-based job once (automatic creation, majority, purge, prevention,
    export expiry, notifications and daily digest)."""
    result = _run(
        lambda e: lifecycle.run_due_jobs(
            e, progress=not no_progress, extra=[("notifications", _digest)], force_daily=True
        )
    )
    _echo(result)


commands: list[click.Command] = [space, jobs]
