"""Creation (automatic after six weeks, or voluntary with a code) and activation of a space:
contact e-mail and phone, acceptance of the terms of use (CSP L.1111-14, R.1111-30 to R.1111-32).

A created space is fed by the professionals; an activated one is also read by its person.
"""

from __future__ import annotations

from espace.errors import Conflict, InvalidInput
from espace.lifecycle.codes import code_operation, consume_code
from espace.lifecycle.common import (
    fmt_day,
    lifecycle_notice,
    lifecycle_row,
    locked_space,
    require_patient_side_or_agent,
    require_status,
    set_status,
    space_operation,
    state_of,
)
from espace.lifecycle.model import PATIENT_SIDE, TERMS_VERSION, SpaceState
from espace.service import Espace, Operation
from espace.trace import Source, Target
from habilitation.model import Actor, SpaceStatus


def create_space(op: Operation, how: str) -> None:
    """Turn the PENDING or OPPOSED space of ``op`` ACTIVE (``how``: automatic | voluntary)."""
    space = op.space
    assert space is not None
    set_status(space, SpaceStatus.ACTIVE, op.now)
    space.created_at = op.now
    lifecycle_row(op.session, space).created_how = how
    op.target = Target("PatientSpace", space.id)
    op.detail = {"created": how}
    lifecycle_notice(
        op,
        "created",
        f"Votre profil Mon espace santé a été créé le {fmt_day(op.now)}. Les professionnels qui "
        "vous soignent peuvent y déposer vos documents ; activez-le pour y accéder.",
    )


def create_voluntarily(
    espace: Espace, actor: Actor, ins: str, *, code: str, source: Source
) -> SpaceState:
    """Create one's space with a code: before the end of the window, or after an opposition."""
    require_patient_side_or_agent(actor)
    with code_operation(
        espace, actor, ins, code, event_type="lifecycle.create", source=source
    ) as op:
        space = locked_space(op)
        require_status(space, SpaceStatus.PENDING, SpaceStatus.OPPOSED)
        consume_code(op, code)
        create_space(op, "voluntary")
        return state_of(op.session, space, espace)


def activate(
    espace: Espace,
    actor: Actor,
    ins: str,
    *,
    email: str,
    phone: str,
    accept_terms: bool,
    source: Source,
    code: str | None = None,
) -> SpaceState:
    """Create one's access: contact e-mail and phone, acceptance of the terms of use.

    With a code, a PENDING space is created at once (voluntary creation + activation).
    """
    if actor.kind not in PATIENT_SIDE:
        raise InvalidInput("only the person or a representative activates", code="wrong_actor")
    if not accept_terms:
        raise InvalidInput("the terms of use must be accepted", code="terms_not_accepted")
    email, phone = check_email(email), check_phone(phone)
    with code_operation(
        espace, actor, ins, code, event_type="lifecycle.activate", source=source
    ) as op:
        space = locked_space(op)
        if space.status in (SpaceStatus.PENDING.value, SpaceStatus.OPPOSED.value):
            if not code:
                raise InvalidInput("the one-time code is required", code="code_required")
            consume_code(op, code)
            create_space(op, "voluntary")
        else:
            require_status(space, SpaceStatus.ACTIVE)
            if code:
                consume_code(op, code)
        if space.activated_at is not None:
            raise Conflict("the space is already activated", code="already_activated")
        space.email, space.phone, space.activated_at = email, phone, op.now
        life = lifecycle_row(op.session, space)
        life.terms_version = str(espace.settings.get("TERMS_VERSION", TERMS_VERSION))
        life.terms_accepted_at = op.now
        op.target = Target("PatientSpace", space.id)
        op.detail = {**op.detail, "activated": True, "terms_version": life.terms_version}
        lifecycle_notice(
            op,
            "activated",
            f"Votre profil Mon espace santé est activé depuis le {fmt_day(op.now)}.",
        )
        return state_of(op.session, space, espace)


def check_email(email: str) -> str:
    """A contact e-mail address (RFC 5321 length limit; a light syntactic check)."""
    email = email.strip()
    local, _, domain = email.partition("@")
    if not local or "." not in domain or len(email) > 320 or any(c.isspace() for c in email):
        raise InvalidInput("invalid e-mail address", code="invalid_email")
    return email


def check_phone(phone: str) -> str:
    """A contact phone number (E.164: at most 15 digits, an optional leading +)."""
    digits = phone.replace(" ", "").replace(".", "")
    body = digits[1:] if digits.startswith("+") else digits
    if not body.isdigit() or not 8 <= len(body) <= 15:
        raise InvalidInput("invalid phone number", code="invalid_phone")
    return digits


def space_state(espace: Espace, actor: Actor, ins: str, *, source: Source) -> SpaceState:
    """The status of a space as its person sees it (a traced lifecycle read)."""
    with space_operation(espace, actor, ins, event_type="lifecycle.read", source=source) as op:
        assert op.space is not None
        op.target = Target("PatientSpace", op.space.id)
        return state_of(op.session, op.space, espace)
