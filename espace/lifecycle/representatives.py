"""Representatives of minors and protected adults (CSP L.1111-14: the legal representatives of
a minor, the person in charge of a protection measure; Code civil art. 371-1 and 425).

A minor has at most two legal representatives: the first invites the second, who accepts or
declines; the support desk may attach one directly (second parent, protection measure).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

from sqlalchemy import select

from espace.admin import add_representative
from espace.errors import Conflict, InvalidInput, NotFound
from espace.lifecycle.common import check_ins, space_operation, system_actor
from espace.lifecycle.model import REPRESENTATIVE_KINDS
from espace.models import SpaceRepresentative
from espace.service import Espace, Operation
from espace.spaces import is_minor
from espace.trace import Source, Target
from habilitation.model import Action, Actor, ActorKind, SpaceStatus


def _notify(op: Operation, key: str, representative: str, body: str) -> None:
    """Tell the space's person (or their representatives) about a representative change."""
    assert op.space is not None
    op.notify(
        "lifecycle",
        body,
        dedup_key=f"{key}:{op.space.id}:{representative}:{op.now.isoformat()}",
    )


def invite_representative(
    espace: Espace,
    actor: Actor,
    minor_ins: str,
    *,
    representative_ins: str,
    name: str,
    birth_date: date,
    email: str | None,
    source: Source,
) -> None:
    """The first legal representative invites the second (name, birth date, NIR)."""
    if actor.kind is not ActorKind.LEGAL_REPRESENTATIVE:
        raise InvalidInput("only a legal representative invites the other one", code="wrong_actor")
    rep_ins = check_ins(representative_ins)
    _check_nir_birth(rep_ins, birth_date)
    if not name.strip():
        raise InvalidInput("the name is required", code="name_required")
    with space_operation(
        espace,
        actor,
        minor_ins,
        event_type="representative.invite",
        source=source,
        action=Action.MANAGE_SETTINGS,
    ) as op:
        assert op.space is not None
        if rep_ins in (actor.id, op.space.ins):
            raise InvalidInput("cannot invite oneself or the minor", code="invalid_representative")
        _attach(
            op, rep_ins, name=name.strip(), birth_date=birth_date, email=email, status="invited"
        )
        _notify(
            op,
            "invite",
            rep_ins,
            f"{actor.name or 'Le représentant légal'} vous invite à gérer le profil Mon espace "
            "santé de votre enfant. Acceptez ou refusez depuis votre espace.",
        )


def _attach(
    op: Operation,
    rep_ins: str,
    *,
    name: str,
    birth_date: date | None,
    email: str | None,
    status: str,
) -> SpaceRepresentative:
    assert op.space is not None
    if not is_minor(op.space, op.now):
        raise Conflict("the person is not a minor", code="not_a_minor")
    existing = op.session.execute(
        select(SpaceRepresentative).where(
            SpaceRepresentative.space_id == op.space.id,
            SpaceRepresentative.representative_id == rep_ins,
        )
    ).scalar_one_or_none()
    if existing is not None and existing.status in ("active", "invited"):
        raise Conflict("already a representative of this minor", code="already_representative")
    if existing is not None:  # declined or ended earlier: invite again
        op.session.delete(existing)
        op.session.flush()
    row = add_representative(
        op.session,
        op.space,
        rep_ins,
        kind="legal_representative",
        now=op.now,
        name=name,
        email=email,
        status=status,
        invited_by=op.actor.id,
        birth_date=birth_date,
    )
    op.target = Target("SpaceRepresentative", rep_ins)
    op.detail = {"representative": rep_ins, "status": status}
    return row


def _check_nir_birth(nir: str, birth_date: date) -> None:
    """NIR digits 2-3 are the birth year, 4-5 the month (20-42/99: unknown month, kept)."""
    year, month = int(nir[1:3]), int(nir[3:5])
    if year != birth_date.year % 100 or (1 <= month <= 12 and month != birth_date.month):
        raise InvalidInput("the birth date does not match the NIR", code="nir_birth_mismatch")


def answer_invitation(
    espace: Espace, actor: Actor, minor_ins: str, *, accept: bool, source: Source
) -> None:
    """The invited representative accepts or declines.

    The invitee is not yet a representative, so the PDP (which only knows active
    representatives) cannot authorize them on the minor's space: the system applies the answer
    of the authenticated invitee, and the trace names the invitee (``on_behalf_of``, detail).
    """
    if actor.kind not in (ActorKind.LEGAL_REPRESENTATIVE, ActorKind.PATIENT):
        raise InvalidInput("only the invited person answers", code="wrong_actor")
    invitee = actor.id
    job = replace(system_actor("invitation"), on_behalf_of=invitee, name=actor.name or invitee)
    with space_operation(
        espace,
        job,
        minor_ins,
        event_type="representative.answer",
        source=source,
        action=Action.SYSTEM_JOB,
    ) as op:
        assert op.space is not None
        row = op.session.execute(
            select(SpaceRepresentative).where(
                SpaceRepresentative.space_id == op.space.id,
                SpaceRepresentative.representative_id == invitee,
                SpaceRepresentative.status == "invited",
            )
        ).scalar_one_or_none()
        if row is None:
            raise NotFound("no pending invitation for this person", code="no_invitation")
        if op.space.status != SpaceStatus.ACTIVE.value and accept:
            raise Conflict("the space is not open", code="wrong_status")
        row.status = "active" if accept else "declined"
        row.ended_at = None if accept else op.now
        op.target = Target("SpaceRepresentative", invitee)
        op.detail = {"representative": invitee, "accepted": accept}
        _notify(
            op,
            "invite-answer",
            invitee,
            f"{row.name or invitee} a {'accepté' if accept else 'refusé'} de gérer le profil de "
            "votre enfant.",
        )


def attach_representative(
    espace: Espace,
    agent: Actor,
    minor_ins: str,
    *,
    representative_ins: str,
    name: str,
    birth_date: date | None,
    email: str | None,
    source: Source,
    kind: str = "legal_representative",
) -> None:
    """The support desk attaches a representative directly (second parent, protection measure)."""
    if agent.kind is not ActorKind.SUPPORT_AGENT:
        raise InvalidInput("only the support desk attaches directly", code="wrong_actor")
    if kind not in REPRESENTATIVE_KINDS:
        raise InvalidInput(f"unknown representative kind {kind!r}", code="invalid_kind")
    rep_ins = check_ins(representative_ins)
    if birth_date is not None:
        _check_nir_birth(rep_ins, birth_date)
    with space_operation(
        espace, agent, minor_ins, event_type="representative.attach", source=source
    ) as op:
        assert op.space is not None
        if kind == "legal_representative":
            _attach(op, rep_ins, name=name, birth_date=birth_date, email=email, status="active")
        else:
            for old in op.session.execute(
                select(SpaceRepresentative).where(
                    SpaceRepresentative.space_id == op.space.id,
                    SpaceRepresentative.kind == kind,
                    SpaceRepresentative.status == "active",
                )
            ).scalars():
                old.status, old.ended_at = "ended", op.now
            add_representative(
                op.session,
                op.space,
                rep_ins,
                kind=kind,
                now=op.now,
                name=name,
                email=email,
                invited_by=agent.id,
                birth_date=birth_date,
            )
            op.target = Target("SpaceRepresentative", rep_ins)
            op.detail = {"representative": rep_ins, "kind": kind}
        _notify(
            op,
            "attach",
            rep_ins,
            f"{name or rep_ins} a été rattaché(e) comme représentant(e) par l'assistance.",
        )


def list_representatives(
    espace: Espace, actor: Actor, ins: str, *, source: Source
) -> list[dict[str, Any]]:
    with space_operation(
        espace,
        actor,
        ins,
        event_type="representative.list",
        source=source,
        action=Action.MANAGE_SETTINGS,
    ) as op:
        assert op.space is not None
        rows = op.session.execute(
            select(SpaceRepresentative)
            .where(SpaceRepresentative.space_id == op.space.id)
            .order_by(SpaceRepresentative.id)
        ).scalars()
        return [
            {
                "ins": r.representative_id,
                "kind": r.kind,
                "status": r.status,
                "name": r.name,
                "invited_by": r.invited_by,
            }
            for r in rows
        ]
