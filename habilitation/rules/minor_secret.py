"""The minor's secret (CSP L.1111-5): what legal representatives must not learn.

``INVISIBLE_REPRESENTANTS_LEGAUX`` hides a document from the legal representatives (and, by
choice here, from a protected adult's representative, who is a legal representative too); the
patient, minor or not, and professionals still see it. A professional in a "secret connection"
(VIHF confidentiality code, minor consulting alone) who submits to a minor's space must mark the
document with that code: the submission is denied otherwise.
"""

from __future__ import annotations

from habilitation.context import Context
from habilitation.model import INVISIBLE_TO_LEGAL_REPRESENTATIVES, Action, ActorKind, Decision

REPRESENTATIVE_KINDS = frozenset(
    {ActorKind.LEGAL_REPRESENTATIVE, ActorKind.PROTECTED_ADULT_REPRESENTATIVE}
)


def hidden_codes(kind: ActorKind) -> frozenset[str]:
    """Confidentiality codes that hide a document from this patient-side kind."""
    if kind in REPRESENTATIVE_KINDS:
        return frozenset({INVISIBLE_TO_LEGAL_REPRESENTATIVES})
    return frozenset()


def decide(ctx: Context) -> Decision | None:
    space, doc = ctx.space, ctx.document
    if (
        not ctx.is_professional
        or not ctx.actor.secret_connection
        or ctx.action is not Action.SUBMIT_DOCUMENT
        or space is None
        or not space.is_minor
        or doc is None
    ):
        return None
    if INVISIBLE_TO_LEGAL_REPRESENTATIVES not in doc.confidentiality_codes:
        return Decision.deny(
            "minor_secret_unmarked_submission",
            "a document submitted in a secret connection must be invisible to the legal "
            "representatives",
        )
    return None
