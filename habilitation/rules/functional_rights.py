"""PDT-INF-526 v1.8: which DMP transaction each professional column may perform.

The column is the actor category (PS non médecin, médecin non MT, médecin du travail, médecin
traitant, non-PS CPE, structure certificate) in its access mode; a missing column means the
combination does not exist and is denied. The notes of the sheet are enforced here when the
request names the document:

- (8) TD3.3: own documents only (the actor is one of the authors);
- (9) TD3.3: the structure's documents only;
- (*) archive, unarchive, delete of a patient's own document: the médecin traitant only
  (the patient acts through :mod:`habilitation.rules.legal_representative`).

Notes (6) and (7) (masked documents) shape the visibility predicate (see
:func:`readable_statuses` and :mod:`habilitation.rules.masked_documents`); notes (1)-(5) are
scopes the store applies (authorization given to the structure, submission attributed to it,
TD0.4 result scope, reference search for a deletion) and are quoted in the reason.
"""

from __future__ import annotations

from habilitation.context import DOCUMENT_ACTIONS, Context
from habilitation.model import (
    Action,
    Decision,
    DocumentFacts,
    DocumentStatus,
    DocumentVisibility,
    SpaceFacts,
)
from habilitation.rights import ActorCategory, Column, FunctionalRights, ReadAspect

_STATUS_ASPECTS = (
    (ReadAspect.ARCHIVED, DocumentStatus.ARCHIVED),
    (ReadAspect.DEPRECATED, DocumentStatus.DEPRECATED),
    (ReadAspect.DELETED, DocumentStatus.DELETED),
)
REFERENCE_STATUSES = frozenset({DocumentStatus.APPROVED, DocumentStatus.ARCHIVED})


def is_patient_document(doc: DocumentFacts, space: SpaceFacts | None) -> bool:
    return doc.added_by_patient or (space is not None and space.ins in doc.author_ids)


def decide(ctx: Context) -> Decision | None:
    if not ctx.is_professional or ctx.action is Action.DELIVER_MESSAGE:
        return None
    if not ctx.rights.covers(ctx.action):
        return Decision.deny(
            "not_a_professional_transaction",
            f"{ctx.action.value} is not a DMP transaction of PDT-INF-526 for professionals",
        )
    if ctx.category is None or ctx.column is None:
        category = ctx.category.value if ctx.category else "unknown actor"
        return Decision.deny(
            "functional_rights_no_such_combination",
            f"PDT-INF-526 has no column for {category} in {ctx.actor.access_mode.value} access",
        )
    found = ctx.rights.cell(ctx.action, ctx.column)
    if found is None:  # pragma: no cover - covers() checked above
        return Decision.deny("not_a_professional_transaction", ctx.action.value)
    row, cell = found
    where, verdict = ctx.rights.describe(ctx.action, ctx.column)
    if not cell.allowed:
        return Decision.deny(
            "functional_rights", f"{where} in {ctx.actor.access_mode.value} access: non"
        )
    doc = ctx.document
    if doc is not None and ctx.action in DOCUMENT_ACTIONS:
        if "*" in row.row_notes and is_patient_document(doc, ctx.space):
            if ctx.category is not ActorCategory.MEDECIN_TRAITANT:
                return Decision.deny(
                    "patient_document_mt_only",
                    f"{where}: on a patient's own document only the médecin traitant may act",
                )
        elif "8" in cell.notes and ctx.actor.id not in doc.author_ids:
            return Decision.deny(
                "own_documents_only", f"{where}: note (8), own documents only (author)"
            )
        elif "9" in cell.notes and (
            ctx.actor.structure_id is None or ctx.actor.structure_id not in doc.author_structure_ids
        ):
            return Decision.deny(
                "structure_documents_only", f"{where}: note (9), the structure's documents only"
            )
    return Decision.permit("functional_rights", f"{where}: {verdict}")


def readable_statuses(rights: FunctionalRights, column: Column) -> frozenset[DocumentStatus]:
    """Approved, plus archived / deprecated / deleted where the TD3.2 rows say oui."""
    statuses = {DocumentStatus.APPROVED}
    for aspect, status in _STATUS_ASPECTS:
        if rights.read_cell(aspect, column).allowed:
            statuses.add(status)
    return frozenset(statuses)


def structure_reference_visibility(ctx: Context, rule_id: str) -> DocumentVisibility:
    """TD3.1 reference search in CPE / indirect mode (note 5): the structure's documents.

    Such actors read no content (TD3.2 non); they look up references to act on them (note 9),
    so only entries authored by their structure are listed.
    """
    structure = ctx.actor.structure_id
    if structure is None:
        return DocumentVisibility(
            nothing=True, rule_id="structure_documents_only", reason="no structure identified"
        )
    return DocumentVisibility(
        statuses=REFERENCE_STATUSES,
        only_authors=frozenset(),
        only_author_structures=frozenset({structure}),
        rule_id=rule_id,
        reason="PDT-INF-526 TD3.1 note (5): references of the structure's own documents",
    )
