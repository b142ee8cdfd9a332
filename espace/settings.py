"""The patient's settings and rights over their space, as domain functions on an Operation.

Each function runs inside the caller's one ``Espace.operation`` (the face opens it with the
right action: ``MANAGE_SETTINGS``, or ``MASK_DOCUMENT``/``UNMASK_DOCUMENT`` with the document's
facts so that the PDP checks the patient side can see it), changes the rows and fills the
operation's trace target and detail. Sources: CSP L.1111-15 and L.1111-17 (the patient masks
information, blocks a professional, opposes emergency access), R.1111-42 (DMP access by
professionals), DMP TRE_A07 ``MASQUE_PS`` (ANS CI-SIS, volet partage de documents de santé).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from espace.admin import link_professional, unlink_professional
from espace.errors import InvalidInput, NotFound
from espace.models import (
    DocumentEntryRow,
    Professional,
    SpaceProfessionalLink,
    flat,
    unflat,
)
from espace.service import Operation
from espace.store import visibility_clause
from espace.trace import Target
from habilitation.model import MASKED_TO_PROFESSIONALS

BOOLEAN_SETTINGS = {
    "break_glass_allowed": "break_glass_allowed",
    "regulation_allowed": "regulation_allowed",
    "auto_unmask_in_emergency": "auto_unmask_in_emergency",
    "prevention_opposed": "prevention_opposed",
}


def _space(op: Operation) -> Any:
    if op.space is None:
        raise NotFound("no space", code="unknown_space")
    return op.space


def check_professional_id(professional_id: str) -> str:
    """PS_IdNat: ``8`` + RPPS (11 digits) or ``0`` + ADELI (9 digits) and a few variants."""
    value = professional_id.strip()
    if not (2 <= len(value) <= 64 and value.isalnum()):
        raise InvalidInput(f"not a PS_IdNat: {professional_id!r}", code="invalid_professional")
    return value


# --------------------------------------------------------------------------- professionals
def block_professional(op: Operation, professional_id: str) -> None:
    """Block a professional (read and write); a declared authorization of theirs ends."""
    space = _space(op)
    pid = check_professional_id(professional_id)
    link_professional(op.session, space, pid, "blocked", declared_by=op.actor.id, now=op.now)
    unlink_professional(op.session, space, pid, "authorized")
    if space.medecin_traitant_id == pid:
        space.medecin_traitant_id = None
    op.target = Target("Professional", pid)
    op.detail = {"setting": "blocked", "value": True}


def unblock_professional(op: Operation, professional_id: str) -> None:
    space = _space(op)
    pid = check_professional_id(professional_id)
    if not unlink_professional(op.session, space, pid, "blocked"):
        raise NotFound("this professional is not blocked", code="not_blocked")
    op.target = Target("Professional", pid)
    op.detail = {"setting": "blocked", "value": False}


def set_feeding_opposed(op: Operation, professional_id: str, opposed: bool) -> None:
    """Oppose (or allow again) a professional's feeding of the DMP (CSP L.1111-15)."""
    space = _space(op)
    pid = check_professional_id(professional_id)
    if opposed:
        link_professional(
            op.session, space, pid, "feeding_opposed", declared_by=op.actor.id, now=op.now
        )
    elif not unlink_professional(op.session, space, pid, "feeding_opposed"):
        raise NotFound("no feeding opposition for this professional", code="not_opposed")
    op.target = Target("Professional", pid)
    op.detail = {"setting": "feeding_opposed", "value": opposed}


def set_medecin_traitant(op: Operation, professional_id: str | None) -> None:
    """Designate (or remove, with None) the médecin traitant."""
    space = _space(op)
    if professional_id is None:
        if space.medecin_traitant_id is None:
            raise NotFound("no médecin traitant designated", code="no_medecin_traitant")
        previous = space.medecin_traitant_id
        space.medecin_traitant_id = None
        op.target = Target("Professional", previous)
        op.detail = {"setting": "medecin_traitant", "value": None}
        return
    pid = check_professional_id(professional_id)
    blocked = op.session.execute(
        select(SpaceProfessionalLink.id).where(
            SpaceProfessionalLink.space_id == space.id,
            SpaceProfessionalLink.professional_id == pid,
            SpaceProfessionalLink.kind == "blocked",
        )
    ).first()
    if blocked is not None:
        raise InvalidInput("unblock this professional first", code="professional_blocked")
    known = op.session.get(Professional, pid)
    if known is not None and known.profession not in (None, "10"):
        raise InvalidInput("the médecin traitant is a médecin", code="not_a_medecin")
    space.medecin_traitant_id = pid
    op.target = Target("Professional", pid)
    op.detail = {"setting": "medecin_traitant", "value": pid}


# --------------------------------------------------------------------------- flags, contact
def set_flags(op: Operation, values: Mapping[str, bool]) -> dict[str, bool]:
    """Emergency access (``bris_de_glace``), regulation (``centre_15``), auto-unmask in an
    emergency, opposition to personalised prevention."""
    space = _space(op)
    unknown = set(values) - set(BOOLEAN_SETTINGS)
    if unknown:
        raise InvalidInput(f"unknown settings: {sorted(unknown)}", code="unknown_field")
    for key, value in values.items():
        if not isinstance(value, bool):
            raise InvalidInput(f"{key} must be true or false", code="invalid_value")
        setattr(space, BOOLEAN_SETTINGS[key], value)
    op.target = Target("PatientSpace", space.id)
    op.detail = {"settings": dict(values)}
    return current_flags(op)


def current_flags(op: Operation) -> dict[str, bool]:
    space = _space(op)
    return {key: bool(getattr(space, column)) for key, column in BOOLEAN_SETTINGS.items()}


def change_contact(op: Operation, *, email: str | None, phone: str | None) -> dict[str, Any]:
    """Change the contact e-mail or phone; identity traits come from the INS (not editable)."""
    from espace.lifecycle import _check_email, _check_phone

    space = _space(op)
    if email is None and phone is None:
        raise InvalidInput("nothing to change", code="empty_change")
    if email is not None:
        space.email = _check_email(email)
    if phone is not None:
        space.phone = _check_phone(phone)
    op.target = Target("PatientSpace", space.id)
    op.detail = {"changed": [k for k, v in (("email", email), ("phone", phone)) if v is not None]}
    return {"email": space.email, "phone": space.phone}


def overview(op: Operation) -> dict[str, Any]:
    """Everything the patient set: flags, contact, blocks, feeding oppositions, MT."""
    space = _space(op)
    links = op.session.execute(
        select(SpaceProfessionalLink.kind, SpaceProfessionalLink.professional_id).where(
            SpaceProfessionalLink.space_id == space.id
        )
    ).all()
    by_kind: dict[str, list[str]] = {}
    for kind, pid in links:
        by_kind.setdefault(kind, []).append(pid)
    return {
        **current_flags(op),
        "email": space.email,
        "phone": space.phone,
        "medecin_traitant": space.medecin_traitant_id,
        "blocked_professionals": sorted(by_kind.get("blocked", [])),
        "feeding_opposed_professionals": sorted(by_kind.get("feeding_opposed", [])),
        "authorized_professionals": sorted(by_kind.get("authorized", [])),
        "identity": {
            "ins": space.ins,
            "family_name": space.family_name,
            "given_names": space.given_names,
            "birth_date": space.birth_date.isoformat() if space.birth_date else None,
            "sex": space.sex,
        },
    }


# --------------------------------------------------------------------------- documents
def find_document(op: Operation, entry_id: str) -> DocumentEntryRow:
    """A document of this space the actor can see (by entryUUID or uniqueId), else NotFound.

    The visibility predicate is applied in SQL: a hidden document is indistinguishable from a
    missing one.
    """
    space = _space(op)
    row = op.session.execute(
        select(DocumentEntryRow).where(
            DocumentEntryRow.space_id == space.id,
            (DocumentEntryRow.entry_uuid == entry_id) | (DocumentEntryRow.unique_id == entry_id),
            visibility_clause(op.visibility()),
        )
        # a uniqueId may be registered twice (ITI TF-3 4.1.7): take the newest entry
        .order_by(DocumentEntryRow.version.desc(), DocumentEntryRow.submission_time.desc())
        .limit(1)
    ).scalar_one_or_none()
    if row is None:
        raise NotFound("no such document", code="unknown_document")
    return row


def set_masked(op: Operation, entry_id: str, masked: bool) -> dict[str, Any]:
    """Mask a document to professionals (``MASQUE_PS``), or unmask it (make it visible again).

    The XDS face's ITI-57 (``espace.registry.update``) does the same from the professional side
    with a new version; both change the one flat ``confidentiality_codes`` column of every
    version, so a masked document is masked on every face at once.
    """
    row = find_document(op, entry_id)
    # every version of the logical document (as the XDS face's ITI-57 does): an older,
    # Deprecated version must not stay readable unmasked
    versions = op.session.execute(
        select(DocumentEntryRow).where(
            DocumentEntryRow.space_id == row.space_id,
            DocumentEntryRow.logical_id == row.logical_id,
        )
    ).scalars()
    for version in versions:
        codes = set(unflat(version.confidentiality_codes))
        if masked:
            codes.add(MASKED_TO_PROFESSIONALS)
        else:
            codes.discard(MASKED_TO_PROFESSIONALS)
        version.confidentiality_codes = flat(codes)
        version.updated_at = op.now
    op.target = Target("DocumentEntry", row.entry_uuid, row.type_code)
    op.detail = {"masked_to_professionals": masked}
    return document_summary(row)


def document_summary(row: DocumentEntryRow) -> dict[str, Any]:
    return {
        "id": row.entry_uuid,
        "unique_id": row.unique_id,
        "title": row.title,
        "type_code": row.type_code,
        "status": row.status,
        "masked_to_professionals": MASKED_TO_PROFESSIONALS in unflat(row.confidentiality_codes),
        "added_by_patient": row.added_by_patient,
        "submission_time": row.submission_time.isoformat() if row.submission_time else None,
    }


def list_documents(op: Operation, *, offset: int = 0, limit: int = 50) -> dict[str, Any]:
    """The documents the actor sees, filtered in SQL before paging (the total never leaks)."""
    from sqlalchemy import func

    space = _space(op)
    where = (DocumentEntryRow.space_id == space.id, visibility_clause(op.visibility()))
    total = op.session.execute(select(func.count()).select_from(DocumentEntryRow).where(*where))
    rows = op.session.execute(
        select(DocumentEntryRow)
        .where(*where)
        .order_by(DocumentEntryRow.submission_time.desc(), DocumentEntryRow.entry_uuid)
        .offset(offset)
        .limit(limit)
    ).scalars()
    return {"total": int(total.scalar_one()), "documents": [document_summary(r) for r in rows]}


# --------------------------------------------------------------------------- trace
def trace_page(op: Operation, *, offset: int = 0, limit: int = 100) -> list[Any]:
    """The space's trace, newest first, as the caller may read it (``espace.trace``).

    Records about a document the caller cannot see (``INVISIBLE_PATIENT`` before its
    announcement, the minor's secret for the representatives) are left out in SQL, before
    paging: the trace must not reveal what the visibility predicate hides (CSP L.1111-5).
    """
    from espace.models import TraceRecord
    from espace.trace import visible_records_clause

    space = _space(op)
    return list(
        op.session.execute(
            select(TraceRecord)
            .where(visible_records_clause(space.id, op.visibility()))
            .order_by(TraceRecord.seq.desc())
            .offset(offset)
            .limit(limit)
        ).scalars()
    )
