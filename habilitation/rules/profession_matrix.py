"""The habilitation matrix (arrêté of 26 October 2023): profession x typeCode -> may read.

A professional whose profession is absent or unknown to the matrix is denied everything (a
CPE holder is non-PS by definition and is placed by PDT-INF-526, not by profession). The
médecin du travail never reads a document, whatever the data file says.
"""

from __future__ import annotations

from habilitation.context import Context, is_medecin_du_travail
from habilitation.matrix import HabilitationMatrix
from habilitation.model import Actor, AuthenticationMode, Decision


def readable_type_codes(actor: Actor, matrix: HabilitationMatrix) -> frozenset[str] | None:
    """Return the typeCodes the professional may read; None when the profession is unknown."""
    if is_medecin_du_travail(actor):
        return frozenset()
    return matrix.readable_type_codes(actor.profession, actor.specialty)


def decide(ctx: Context) -> Decision | None:
    actor = ctx.actor
    if not ctx.is_professional or actor.authentication_mode is AuthenticationMode.CPE:
        return None
    if actor.profession is None or actor.profession not in ctx.matrix.known_professions:
        return Decision.deny(
            "unknown_profession",
            f"profession {actor.profession or '(absent)'} is not in the habilitation matrix",
        )
    return None
