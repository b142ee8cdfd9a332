"""Enrolment: the person is informed (letter or e-mail with a one-time code) and the six-week
opposition window opens (CSP L.1111-14, décret 2021-1048, CSP R.1111-28).

A minor's code goes to the legal representatives (at most two); a protected adult's
representative is attached at once. A letter that comes back blocks the automatic creation.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from espace.admin import add_representative
from espace.clock import as_utc
from espace.errors import Conflict, InvalidInput
from espace.lifecycle.codes import issue_code
from espace.lifecycle.common import (
    action_of,
    check_ins,
    fmt_day,
    lifecycle_notice,
    lifecycle_row,
    opposition_period,
    require_status,
    space_operation,
    system_actor,
)
from espace.lifecycle.model import Enrolment, Person
from espace.models import PatientSpace
from espace.service import Espace, Operation
from espace.spaces import INS_OIDS, find_space_by_ins, is_minor
from espace.trace import Source, Target
from habilitation.model import Actor, SpaceStatus


def _check_person(person: Person, reps: list[Person], protected: Person | None) -> str:
    """Validate the identity traits before any transaction; returns the checked INS."""
    ins = check_ins(person.ins)
    if person.ins_oid not in INS_OIDS:
        raise InvalidInput(f"unknown INS OID {person.ins_oid}", code="invalid_ins")
    if person.sex not in ("M", "F", "U"):
        raise InvalidInput("sex must be M, F or U", code="invalid_sex")
    if len(reps) > 2:
        raise InvalidInput(
            "a minor has at most two legal representatives", code="too_many_representatives"
        )
    for rep in reps + ([protected] if protected else []):
        check_ins(rep.ins)
    return ins


def _attach_person(op: Operation, space: PatientSpace, rep: Person, kind: str) -> None:
    """Attach a representative named at enrolment (a protected adult's has no birth date)."""
    add_representative(
        op.session,
        space,
        rep.ins,
        kind=kind,
        now=op.now,
        name=f"{rep.given_names} {rep.family_name}".strip(),
        email=rep.email,
        birth_date=rep.birth_date if kind == "legal_representative" else None,
    )


def enrol(
    espace: Espace,
    person: Person,
    *,
    source: Source,
    channel: str = "letter",
    actor: Actor | None = None,
    representatives: Iterable[Person] = (),
    protected_adult_representative: Person | None = None,
) -> Enrolment:
    """Inform a person (letter or e-mail with a one-time code): opens the six-week window.

    The space row exists from now on with status PENDING: nothing can be read or fed until it
    is created (``habilitation.rules.space_status``). A person whose earlier space was purged
    gets a new, empty space. A minor's code goes to the legal representatives (at most two).
    """
    if channel not in ("letter", "email"):
        raise InvalidInput("channel must be letter or email", code="invalid_channel")
    reps = list(representatives)
    ins = _check_person(person, reps, protected_adult_representative)
    who = actor or system_actor("enrolment")
    with espace.operation(
        who,
        action_of(who),
        event_type="lifecycle.enrol",
        source=source,
        require_space=False,
    ) as op:
        now = op.now
        if find_space_by_ins(op.session, ins) is not None:
            raise Conflict(f"a space already exists for INS {ins}", code="space_exists")
        space = PatientSpace(
            id=uuid.uuid4().hex,
            ins=ins,
            ins_oid=person.ins_oid,
            family_name=person.family_name,
            given_names=person.given_names,
            birth_date=person.birth_date,
            sex=person.sex,
            email=person.email,
            status=SpaceStatus.PENDING.value,
            created_at=now,
            status_changed_at=now,
            enrolment_sent_at=now,
            enrolment_bounced=False,
        )
        op.session.add(space)
        op.session.flush()
        op.space = space
        minor = is_minor(space, now)
        if reps and not minor:
            raise InvalidInput("legal representatives are for minors", code="not_a_minor")
        for rep in reps:
            _attach_person(op, space, rep, "legal_representative")
        if protected_adult_representative is not None:
            _attach_person(
                op, space, protected_adult_representative, "protected_adult_representative"
            )
        op.session.flush()
        life = lifecycle_row(op.session, space)
        life.channel = channel
        life.enrolled_as_minor = minor
        code, row = issue_code(op.session, space, now, channel)
        deadline = now + opposition_period(espace)
        op.target = Target("PatientSpace", space.id)
        op.detail = {
            "channel": channel,
            "minor": minor,
            "opposition_deadline": deadline.isoformat(),
        }
        lifecycle_notice(
            op,
            "enrolled",
            "Votre profil Mon espace santé va être créé. Vous pouvez vous y opposer jusqu'au "
            f"{fmt_day(deadline)} avec le code reçu par "
            f"{'courrier' if channel == 'letter' else 'e-mail'}.",
        )
        op.space_id = space.id  # the record starts the new space's chain
        return Enrolment(space.id, ins, code, as_utc(row.expires_at), deadline)


def report_bounce(espace: Espace, ins: str, *, source: Source, actor: Actor | None = None) -> None:
    """The letter or e-mail came back: no information, so no automatic creation."""
    who = actor or system_actor("enrolment")
    with space_operation(
        espace, who, ins, event_type="lifecycle.bounce", source=source, action=action_of(who)
    ) as op:
        assert op.space is not None
        require_status(op.space, SpaceStatus.PENDING)
        op.space.enrolment_bounced = True
        op.target = Target("PatientSpace", op.space.id)
