"""Remove Metadata (ITI-62, IHE RMD supplement 3.62.4.1.3): delete registry objects by UUID.

Every reference must resolve in this patient's space (UnresolvedReferenceException); an object
may not be removed while an association that is not removed with it still points at it
(ReferencesExistException), nor may the removal leave an object an association referenced
without any remaining reference (XDSUnreferencedObjectException: a submission set emptied of
its members, an entry or folder stripped of its membership; NIST 30001-30003). Removing a
document entry asks the policy decision point for
DELETE_DOCUMENT on that entry (TD3.3c). The repository bytes are left to ITI-86.
"""

from __future__ import annotations

from sqlalchemy import or_, select

from espace.models import AssociationRow, DocumentEntryRow, FolderRow, SubmissionSetRow
from espace.registry.model import RegistryError, RegistryErrorCode
from espace.service import Operation
from espace.store import document_facts, visibility_clause
from espace.trace import Target
from habilitation.model import Action

E = RegistryErrorCode


def remove_metadata(op: Operation, uuids: list[str]) -> list[str]:
    """Delete the listed objects, all-or-nothing; return the removed UUIDs."""
    if op.space is None:
        raise RegistryError(E.UNKNOWN_PATIENT_ID, "no patient space")
    if not uuids:
        raise RegistryError(E.REGISTRY_METADATA_ERROR, "ObjectRefList is empty")
    space_id = op.space.id
    session = op.session
    wanted = set(uuids)
    vis = visibility_clause(op.visibility())
    docs = {
        r.entry_uuid: r
        for r in session.execute(
            select(DocumentEntryRow).where(
                DocumentEntryRow.space_id == space_id, DocumentEntryRow.entry_uuid.in_(wanted), vis
            )
        ).scalars()
    }
    others: dict[str, SubmissionSetRow | FolderRow | AssociationRow] = {}
    for ss in session.execute(
        select(SubmissionSetRow).where(
            SubmissionSetRow.space_id == space_id, SubmissionSetRow.entry_uuid.in_(wanted)
        )
    ).scalars():
        others[ss.entry_uuid] = ss
    for folder in session.execute(
        select(FolderRow).where(FolderRow.space_id == space_id, FolderRow.entry_uuid.in_(wanted))
    ).scalars():
        others[folder.entry_uuid] = folder
    for assoc in session.execute(
        select(AssociationRow).where(
            AssociationRow.space_id == space_id, AssociationRow.entry_uuid.in_(wanted)
        )
    ).scalars():
        others[assoc.entry_uuid] = assoc
    missing = sorted(wanted - set(docs) - set(others))
    if missing:
        raise RegistryError(
            E.UNRESOLVED_REFERENCE, f"unknown object {missing[0]}", location=missing[0]
        )
    for row in docs.values():
        op.authorize(Action.DELETE_DOCUMENT, document_facts(row))
    non_assoc = set(docs) | {k for k, v in others.items() if not isinstance(v, AssociationRow)}
    referencing = (
        session.execute(
            select(AssociationRow.entry_uuid).where(
                AssociationRow.space_id == space_id,
                or_(
                    AssociationRow.source_uuid.in_(non_assoc),
                    AssociationRow.target_uuid.in_(non_assoc),
                ),
            )
        )
        .scalars()
        .all()
    )
    kept = sorted(set(referencing) - wanted)
    if kept:
        raise RegistryError(
            E.REFERENCES_EXIST,
            f"association {kept[0]} still references the objects",
            location=kept[0],
        )
    # ITI TF-2c 3.62.4.1.3: nor may it leave a remaining object that an association referenced
    # without any reference (a SubmissionSet emptied of its members, a Folder or entry
    # stripped of the HasMember that holds it): XDSUnreferencedObjectException (NIST 30001-30003)
    removed_assocs = [v for v in others.values() if isinstance(v, AssociationRow)]
    ends = {e for a in removed_assocs for e in (a.source_uuid, a.target_uuid)} - wanted
    if ends:
        remaining_refs: set[str] = set()
        for source, target in session.execute(
            select(AssociationRow.source_uuid, AssociationRow.target_uuid).where(
                AssociationRow.space_id == space_id,
                AssociationRow.entry_uuid.not_in(wanted),
                or_(AssociationRow.source_uuid.in_(ends), AssociationRow.target_uuid.in_(ends)),
            )
        ):
            remaining_refs.update((source, target))
        orphans = sorted(ends - remaining_refs)
        if orphans:
            raise RegistryError(
                E.UNREFERENCED_OBJECT,
                f"removing these objects leaves {orphans[0]} unreferenced",
                location=orphans[0],
            )
    for doc_row in docs.values():
        session.delete(doc_row)
    for other in others.values():
        session.delete(other)
    first = next(iter(docs.values()), None)
    op.target = Target(
        "DocumentEntry",
        first.unique_id if first else sorted(wanted)[0],
        first.type_code if first else "",
    )
    op.detail["removed"] = sorted(wanted)
    return sorted(wanted)
