"""Deny any caller the PDP does not know.

Insurers, employers, the State... have no :class:`ActorKind`, so nothing grants them anything.
This rule also denies a known kind presenting an authentication mode that is not its own (a
patient with a CPS mode, a professional without one) and emergency access modes for anyone but
a professional. Professionals whose profession is unknown are denied by
:mod:`habilitation.rules.profession_matrix`.
"""

from __future__ import annotations

from collections.abc import Mapping

from habilitation.context import PROFESSIONAL_MODES, Context
from habilitation.model import AccessMode, ActorKind, AuthenticationMode, Decision

_PATIENT_MODES: frozenset[AuthenticationMode | None] = frozenset(
    {None, AuthenticationMode.PATIENT_LOGIN}
)
EXPECTED_AUTHENTICATION: Mapping[ActorKind, frozenset[AuthenticationMode | None]] = {
    ActorKind.PROFESSIONAL: frozenset(PROFESSIONAL_MODES),
    ActorKind.PATIENT: _PATIENT_MODES,
    ActorKind.LEGAL_REPRESENTATIVE: _PATIENT_MODES,
    ActorKind.PROTECTED_ADULT_REPRESENTATIVE: _PATIENT_MODES,
    ActorKind.APP: frozenset({None, AuthenticationMode.APP_TOKEN}),
    ActorKind.SYSTEM: frozenset({None, AuthenticationMode.SYSTEM}),
    # back-office users log in like patients (OAuth2) or run as service accounts
    ActorKind.SUPPORT_AGENT: frozenset(
        {None, AuthenticationMode.PATIENT_LOGIN, AuthenticationMode.SYSTEM}
    ),
}


def decide(ctx: Context) -> Decision | None:
    actor = ctx.actor
    expected = EXPECTED_AUTHENTICATION.get(actor.kind)
    if expected is None:
        return Decision.deny("unknown_role", f"no rule knows the role {actor.kind!r}")
    if actor.authentication_mode not in expected:
        mode = actor.authentication_mode.value if actor.authentication_mode else "none"
        return Decision.deny(
            "authentication_mode_mismatch",
            f"a {actor.kind.value} cannot act with authentication mode {mode}",
        )
    if actor.kind is not ActorKind.PROFESSIONAL and actor.access_mode is not AccessMode.NORMAL:
        return Decision.deny(
            "emergency_mode_professionals_only",
            f"only professionals use the {actor.access_mode.value} access mode",
        )
    return None
