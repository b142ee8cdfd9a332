"""Explain why a :class:`~habilitation.model.DocumentVisibility` excludes a document.

:func:`explain_exclusion` walks the same clauses as ``DocumentVisibility.matches`` and names
the rule behind the first one that fails, so ``can_see_document`` gives the same answer as
``visible_documents(...).matches`` with a rule id. The property test keeps them equal.
"""

from __future__ import annotations

from collections.abc import Mapping

from habilitation.model import (
    INVISIBLE_TO_LEGAL_REPRESENTATIVES,
    INVISIBLE_TO_PATIENT,
    MASKED_TO_PROFESSIONALS,
    DocumentFacts,
    DocumentStatus,
    DocumentVisibility,
)

DEFAULT_SEARCH_STATUSES = frozenset({DocumentStatus.APPROVED})
"""Statuses a search returns when the query names none (XDS FindDocuments: Approved)."""

HIDDEN_CODE_RULES: Mapping[str, str] = {
    MASKED_TO_PROFESSIONALS: "masked_documents",
    INVISIBLE_TO_PATIENT: "invisible_to_patient",
    INVISIBLE_TO_LEGAL_REPRESENTATIVES: "minor_secret",
}


def search_statuses(
    visibility: DocumentVisibility, requested: frozenset[DocumentStatus] | None = None
) -> frozenset[DocumentStatus]:
    """Statuses a search may return: the requested ones (default Approved) the actor may see."""
    return (requested if requested is not None else DEFAULT_SEARCH_STATUSES) & visibility.statuses


def explain_exclusion(vis: DocumentVisibility, doc: DocumentFacts) -> tuple[str, str] | None:
    """Return (rule_id, reason) for the first clause excluding ``doc``; None if it matches."""
    if vis.nothing:
        return vis.rule_id or "default_deny", vis.reason or "nothing is visible"
    if doc.status not in vis.statuses:
        return "document_status", f"{doc.status.value} entries are not visible to this actor"
    if (
        (vis.allowed_type_codes is not None and doc.type_code not in vis.allowed_type_codes)
        or doc.type_code in vis.denied_type_codes
    ) and not doc.author_ids & vis.type_codes_exempt_authors:
        return "profession_matrix", f"typeCode {doc.type_code} is not readable by this profession"
    hidden = doc.confidentiality_codes & vis.hidden_confidentiality_codes
    if hidden and not (
        doc.author_ids & vis.hidden_codes_exempt_authors
        or doc.author_structure_ids & vis.hidden_codes_exempt_structures
    ):
        code = min(hidden)
        return HIDDEN_CODE_RULES.get(code, "confidentiality"), f"the document is {code}"
    if vis.only_authors is not None and not (
        doc.author_ids & vis.only_authors or doc.author_structure_ids & vis.only_author_structures
    ):
        return "structure_documents_only", "only documents of the actor's structure are listed"
    return None
