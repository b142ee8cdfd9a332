"""Confidentiality of documents towards professionals (TRE_A07 StatutVisibiliteDocument).

``MASQUE_PS`` hides a document from professionals, except its author(s) and the médecin
traitant (PDT-INF-526 TD3.2 "documents masqués": oui for the MT, oui(6) "own documents only"
for the others). In bris de glace and centre 15 the cells are oui(7): a masked document is shown
only if the patient allowed automatic unmasking in emergency
(``SpaceFacts.auto_unmask_in_emergency``); its authors still see it (they wrote it).
``INVISIBLE_PATIENT`` documents are shown to professionals where the TD3.2 row "non visibles du
patient" says oui. Where a cell says non, the code hides the document without exemption.
"""

from __future__ import annotations

from habilitation.context import Context
from habilitation.model import INVISIBLE_TO_PATIENT, MASKED_TO_PROFESSIONALS
from habilitation.rights import ReadAspect


def hidden_codes(ctx: Context) -> tuple[frozenset[str], frozenset[str]]:
    """Return (confidentiality codes hidden from this professional, authors exempted)."""
    column = ctx.column
    if column is None:
        return frozenset({MASKED_TO_PROFESSIONALS, INVISIBLE_TO_PATIENT}), frozenset()
    hidden: set[str] = set()
    exempt: frozenset[str] = frozenset()
    masked = ctx.rights.read_cell(ReadAspect.MASKED, column)
    if not masked.allowed:
        hidden.add(MASKED_TO_PROFESSIONALS)
    elif "7" in masked.notes:
        if ctx.space is None or not ctx.space.auto_unmask_in_emergency:
            hidden.add(MASKED_TO_PROFESSIONALS)
            exempt = frozenset({ctx.actor.id})
    elif "6" in masked.notes:
        hidden.add(MASKED_TO_PROFESSIONALS)
        exempt = frozenset({ctx.actor.id})
    if not ctx.rights.read_cell(ReadAspect.INVISIBLE_TO_PATIENT, column).allowed:
        hidden.add(INVISIBLE_TO_PATIENT)
    return frozenset(hidden), exempt
