"""Pushing the PDP's visibility predicate into SQL, before paging.

``visibility_clause`` is the SQL twin of ``DocumentVisibility.matches``: a property test keeps
the two equal, so a hidden entry is neither returned nor counted by any face.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, false, not_, or_, true
from sqlalchemy.orm import InstrumentedAttribute

from espace.models import DocumentEntryRow, unflat
from habilitation.model import DocumentFacts, DocumentStatus, DocumentVisibility


def _contains_any(
    column: InstrumentedAttribute[str], values: frozenset[str]
) -> ColumnElement[bool]:
    """True when the flat ``|a|b|`` column holds any of ``values``."""
    return or_(*(column.like(f"%|{_escape(v)}|%", escape="\\") for v in sorted(values)))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def visibility_clause(vis: DocumentVisibility) -> ColumnElement[bool]:
    """The WHERE clause selecting exactly the entries ``vis.matches`` accepts."""
    entry = DocumentEntryRow
    if vis.nothing or not vis.statuses:
        return false()
    parts: list[ColumnElement[bool]] = [entry.status.in_(sorted(str(s) for s in vis.statuses))]
    type_terms: list[ColumnElement[bool]] = []
    if vis.allowed_type_codes is not None:
        type_terms.append(
            entry.type_code.in_(sorted(vis.allowed_type_codes))
            if vis.allowed_type_codes
            else false()
        )
    if vis.denied_type_codes:
        type_terms.append(entry.type_code.not_in(sorted(vis.denied_type_codes)))
    if type_terms:
        readable_type = and_(*type_terms)
        if vis.type_codes_exempt_authors:
            readable_type = or_(
                readable_type, _contains_any(entry.author_ids, vis.type_codes_exempt_authors)
            )
        parts.append(readable_type)
    if vis.hidden_confidentiality_codes:
        hidden = _contains_any(entry.confidentiality_codes, vis.hidden_confidentiality_codes)
        exempt: list[ColumnElement[bool]] = []
        if vis.hidden_codes_exempt_authors:
            exempt.append(_contains_any(entry.author_ids, vis.hidden_codes_exempt_authors))
        if vis.hidden_codes_exempt_structures:
            exempt.append(
                _contains_any(entry.author_structure_ids, vis.hidden_codes_exempt_structures)
            )
        parts.append(or_(not_(hidden), *exempt) if exempt else not_(hidden))
    if vis.only_authors is not None:
        allowed: list[ColumnElement[bool]] = []
        if vis.only_authors:
            allowed.append(_contains_any(entry.author_ids, vis.only_authors))
        if vis.only_author_structures:
            allowed.append(_contains_any(entry.author_structure_ids, vis.only_author_structures))
        parts.append(or_(*allowed) if allowed else false())
    return and_(true(), *parts)


def document_facts(row: DocumentEntryRow) -> DocumentFacts:
    """The PDP's view of one stored entry."""
    return DocumentFacts(
        entry_id=row.entry_uuid,
        type_code=row.type_code,
        confidentiality_codes=unflat(row.confidentiality_codes),
        author_ids=unflat(row.author_ids),
        author_structure_ids=unflat(row.author_structure_ids),
        status=DocumentStatus(row.status),
        added_by_patient=row.added_by_patient,
    )
