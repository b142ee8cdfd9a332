"""Update Document Set (ITI-57, XDS Metadata Update) as the DMP uses it.

IHE ITI TF-2b 3.57.4.1.3 and the DMP LPS integration kit (TD3.3a-d):

- ``UpdateAvailabilityStatus`` associations (submission set -> entry, slots OriginalStatus /
  NewStatus) move an entry between Approved, ``urn:asip:ci-sis:2010:StatusType:Archived`` and
  ``...:Deleted`` (archive TD3.3d, unarchive, delete TD3.3c). OriginalStatus must be the current
  status (XDSMetadataUpdateError).
- a DocumentEntry re-submitted with the logicalId (``lid``) of a stored entry, a new entryUUID
  and a HasMember association carrying ``PreviousVersion`` creates the next version: the DMP
  uses it to change confidentialityCodes only (mask MASQUE_PS TD3.3a, unmask, make visible to
  the patient by removing INVISIBLE_PATIENT TD3.3b). PreviousVersion must be the latest
  version (XDSMetadataVersionError); the uniqueId, patient and document bytes do not change;
  the previous version becomes Deprecated.

Choice (not found in the sources): the new confidentiality codes also apply to the older
versions of the same logical document (their SQL filter column), so masking a document does
not leave its previous, unmasked version readable by whoever may read Deprecated entries.
Each change asks the policy decision point with the document's facts (e.g. PDT-INF-526 note
(8): only the author unmasks, archives or deletes; the médecin traitant for the patient's own
documents).
"""

from __future__ import annotations

from sqlalchemy import select

from espace.models import DocumentEntryRow, SubmissionSetRow, flat, unflat
from espace.registry.config import RegistryConfig
from espace.registry.model import (
    HAS_MEMBER,
    STATUS_BY_URN,
    UPDATE_AVAILABILITY_STATUS,
    Association,
    DocumentEntry,
    RegistryError,
    RegistryErrorCode,
    SubmissionRequest,
    UpdateResult,
    to_json,
)
from espace.registry.store import (
    association_row,
    document_row,
    entry_from_row,
    is_uuid,
    new_uuid,
    parse_cx,
)
from espace.registry.submit import _move_folder_memberships
from espace.registry.valuesets import affinity_domain
from espace.service import Operation
from espace.spaces import INS_OIDS
from espace.store import document_facts, visibility_clause
from espace.trace import Target
from habilitation.model import (
    INVISIBLE_TO_LEGAL_REPRESENTATIVES,
    INVISIBLE_TO_PATIENT,
    MASKED_TO_PROFESSIONALS,
    Action,
    DocumentStatus,
)

E = RegistryErrorCode

_STATUS_ACTIONS: dict[tuple[str, str], Action] = {
    ("Approved", "Archived"): Action.ARCHIVE_DOCUMENT,
    ("Archived", "Approved"): Action.UNARCHIVE_DOCUMENT,
    ("Approved", "Deleted"): Action.DELETE_DOCUMENT,
    ("Archived", "Deleted"): Action.DELETE_DOCUMENT,
}


def status_action(original_urn: str, new_urn: str) -> Action | None:
    """The DMP transaction of a status change (None: not a DMP status change)."""
    return _STATUS_ACTIONS.get(
        (STATUS_BY_URN.get(original_urn, ""), STATUS_BY_URN.get(new_urn, ""))
    )


def visibility_actions(old: frozenset[str], new: frozenset[str]) -> list[Action]:
    """The DMP transactions a confidentialityCode change amounts to (TD3.3a/b)."""
    added, removed = new - old, old - new
    actions: list[Action] = []
    if MASKED_TO_PROFESSIONALS in added:
        actions.append(Action.MASK_DOCUMENT)
    if MASKED_TO_PROFESSIONALS in removed:
        actions.append(Action.UNMASK_DOCUMENT)
    if removed & {INVISIBLE_TO_PATIENT, INVISIBLE_TO_LEGAL_REPRESENTATIVES}:
        actions.append(Action.MAKE_VISIBLE_TO_PATIENT)
    return actions


def planned_action(request: SubmissionRequest, current_codes: dict[str, frozenset[str]]) -> Action:
    """The operation-level action of an ITI-57 request (its first change).

    ``current_codes`` maps logicalIds to the stored codes, for re-submissions.
    """
    for assoc in request.associations:
        if assoc.type == UPDATE_AVAILABILITY_STATUS:
            action = status_action(assoc.slot("OriginalStatus"), assoc.slot("NewStatus"))
            if action is not None:
                return action
    for doc in request.documents:
        old = current_codes.get(doc.logical_id)
        if old is not None:
            actions = visibility_actions(old, frozenset(c.code for c in doc.confidentiality_codes))
            if actions:
                return actions[0]
    return Action.MASK_DOCUMENT


def _visible_row(
    op: Operation, entry_uuid: str = "", logical_id: str = ""
) -> DocumentEntryRow | None:
    assert op.space is not None
    query = select(DocumentEntryRow).where(
        DocumentEntryRow.space_id == op.space.id, visibility_clause(op.visibility())
    )
    if entry_uuid:
        query = query.where(DocumentEntryRow.entry_uuid == entry_uuid)
    else:
        query = query.where(
            DocumentEntryRow.logical_id == logical_id,
            DocumentEntryRow.status != DocumentStatus.DEPRECATED.value,
        )
    return op.session.execute(
        query.order_by(DocumentEntryRow.version.desc()).limit(1)
    ).scalar_one_or_none()


def update_document_set(
    op: Operation, request: SubmissionRequest, *, config: RegistryConfig
) -> UpdateResult:
    """Apply one ITI-57 request, all-or-nothing, in ``op``'s transaction."""
    space = op.space
    if space is None or space.status != "active":
        raise RegistryError(E.UNKNOWN_PATIENT_ID, "no active patient space")
    ss = request.submission_set
    pid, oid = parse_cx(ss.patient_id)
    if pid != space.ins or oid not in INS_OIDS:
        raise RegistryError(
            E.PATIENT_ID_DOES_NOT_MATCH,
            "submission set patient is not the patient",
            location=ss.patient_id,
        )
    if not ss.unique_id:
        raise RegistryError(E.REGISTRY_METADATA_ERROR, "SubmissionSet: uniqueId is required")
    if op.session.execute(
        select(SubmissionSetRow.entry_uuid).where(SubmissionSetRow.unique_id == ss.unique_id)
    ).first():
        raise RegistryError(
            E.DUPLICATE_UNIQUE_ID_IN_REGISTRY,
            "submission set uniqueId already used",
            location=ss.unique_id,
        )
    if request.folders:
        raise RegistryError(E.METADATA_UPDATE_OPERATION_ERROR, "folder updates are not supported")
    now = op.now
    result = UpdateResult()
    ss_ref = ss.id
    ss_uuid = ss.id if is_uuid(ss.id) else new_uuid()
    ss.id = ss_uuid
    op.session.add(
        SubmissionSetRow(
            entry_uuid=ss_uuid,
            space_id=space.id,
            unique_id=ss.unique_id,
            source_id=ss.source_id,
            submission_time=now,
            content_type_code=ss.content_type_code.code if ss.content_type_code else "",
            author_ids=flat(a.person_id for a in ss.authors),
            status="Approved",
            metadata_json=to_json(ss),
        )
    )
    by_doc = {d.id: d for d in request.documents}
    handled_docs: set[str] = set()
    for assoc in request.associations:
        if assoc.type == UPDATE_AVAILABILITY_STATUS:
            _status_change(op, assoc, result)
            op.session.add(
                association_row(
                    Association(new_uuid(), assoc.type, ss_uuid, assoc.target, assoc.slots),
                    space_id=space.id,
                )
            )
        elif assoc.type == HAS_MEMBER and assoc.source in (ss_ref, ss_uuid):
            doc = by_doc.get(assoc.target)
            if doc is None:
                raise RegistryError(
                    E.METADATA_UPDATE_OPERATION_ERROR,
                    f"{assoc.id}: only new DocumentEntry versions may be submitted",
                    location=assoc.id,
                )
            new_uuid_ = _new_version(op, doc, assoc, ss_uuid, result, config)
            handled_docs.add(assoc.target)
            op.session.add(
                association_row(
                    Association(new_uuid(), HAS_MEMBER, ss_uuid, new_uuid_, assoc.slots),
                    space_id=space.id,
                )
            )
        else:
            raise RegistryError(
                E.METADATA_UPDATE_OPERATION_ERROR,
                f"association type {assoc.type} is not supported",
                location=assoc.id,
            )
    orphans = sorted(set(by_doc) - handled_docs)
    if orphans:
        raise RegistryError(
            E.METADATA_UPDATE_ERROR,
            f"{orphans[0]} has no HasMember/PreviousVersion",
            location=orphans[0],
        )
    if not result.status_changes and not result.new_versions:
        raise RegistryError(E.METADATA_UPDATE_ERROR, "the request changes nothing")
    op.detail.update({"status_changes": result.status_changes, "new_versions": result.new_versions})
    return result


def _status_change(op: Operation, assoc: Association, result: UpdateResult) -> None:
    original, new = assoc.slot("OriginalStatus"), assoc.slot("NewStatus")
    action = status_action(original, new)
    if action is None:
        raise RegistryError(
            E.METADATA_UPDATE_OPERATION_ERROR,
            f"status change {original} -> {new} is not allowed",
            location=assoc.id,
        )
    row = _visible_row(op, entry_uuid=assoc.target)
    if row is None:
        raise RegistryError(
            E.UNRESOLVED_REFERENCE, f"unknown entry {assoc.target}", location=assoc.target
        )
    if row.status != STATUS_BY_URN[original]:
        raise RegistryError(
            E.METADATA_UPDATE_ERROR,
            f"{assoc.target} is {row.status}, not {STATUS_BY_URN[original]}",
            location=assoc.target,
        )
    op.authorize(action, document_facts(row))
    row.status = STATUS_BY_URN[new]
    row.updated_at = op.now
    result.status_changes[row.entry_uuid] = row.status
    op.target = Target("DocumentEntry", row.unique_id, row.type_code)


def _new_version(
    op: Operation,
    doc: DocumentEntry,
    assoc: Association,
    ss_uuid: str,
    result: UpdateResult,
    config: RegistryConfig,
) -> str:
    assert op.space is not None
    previous = assoc.slot("PreviousVersion")
    if not doc.logical_id or not previous:
        raise RegistryError(
            E.METADATA_UPDATE_ERROR,
            f"{doc.id}: lid and PreviousVersion are required",
            location=doc.id,
        )
    current = _visible_row(op, logical_id=doc.logical_id)
    if current is None:
        raise RegistryError(
            E.UNRESOLVED_REFERENCE, f"unknown logicalId {doc.logical_id}", location=doc.logical_id
        )
    if str(current.version) != previous.strip():
        raise RegistryError(
            E.METADATA_VERSION_ERROR,
            f"PreviousVersion {previous} is not the latest version {current.version}",
            location=doc.logical_id,
        )
    if doc.unique_id and doc.unique_id != current.unique_id:
        raise RegistryError(
            E.METADATA_UPDATE_ERROR,
            "the uniqueId of a document cannot change",
            location=doc.unique_id,
        )
    pid, _ = parse_cx(doc.patient_id) if doc.patient_id else (op.space.ins, "")
    if pid != op.space.ins:
        raise RegistryError(
            E.PATIENT_ID_DOES_NOT_MATCH,
            "the patient of a document cannot change",
            location=doc.patient_id,
        )
    old_codes = unflat(current.confidentiality_codes)
    new_codes = frozenset(c.code for c in doc.confidentiality_codes)
    if not new_codes:
        raise RegistryError(
            E.REGISTRY_METADATA_ERROR, f"{doc.id}: confidentialityCode is required", location=doc.id
        )
    if (new_codes - old_codes) & {INVISIBLE_TO_PATIENT, INVISIBLE_TO_LEGAL_REPRESENTATIVES}:
        raise RegistryError(
            E.METADATA_UPDATE_OPERATION_ERROR,
            "a document made visible to the patient cannot be hidden again",
            location=doc.id,
        )
    # Only the confidentialityCodes change (the DMP's use of ITI-57): every other attribute,
    # the authors included (they decide who is exempt from masking), stays as stored.
    submitted_codes, submitted_id = list(doc.confidentiality_codes), doc.id
    doc = entry_from_row(current)
    doc.confidentiality_codes = submitted_codes
    issues = affinity_domain(config.affinity_domain).check_document(doc)
    if issues:
        first = issues[0]
        raise RegistryError(
            first.code, first.message, location=first.location, more=tuple(issues[1:])
        )
    actions = visibility_actions(old_codes, new_codes)
    if not actions:
        raise RegistryError(
            E.METADATA_UPDATE_OPERATION_ERROR,
            "the DMP only updates the visibility (confidentialityCode) of an entry",
            location=doc.id,
        )
    facts = document_facts(current)
    for action in actions:
        op.authorize(action, facts)
    stored_uuid = submitted_id if is_uuid(submitted_id) else new_uuid()
    if op.session.get(DocumentEntryRow, stored_uuid) is not None:
        raise RegistryError(
            E.REGISTRY_METADATA_ERROR, f"entryUUID {stored_uuid} already used", location=stored_uuid
        )
    # the bytes, their hash, size and repository stay those of the stored document
    doc.unique_id = current.unique_id
    doc.hash, doc.size = current.hash, current.size
    doc.repository_unique_id = current.repository_unique_id
    doc.logical_id = current.logical_id
    doc.version = str(current.version + 1)
    doc.status = "Approved"
    row = document_row(
        doc,
        entry_uuid=stored_uuid,
        space_id=op.space.id,
        now=op.now,
        submission_set_uuid=ss_uuid,
        origin=current.origin,
        added_by_patient=current.added_by_patient,
    )
    row.submission_time = current.submission_time
    op.session.add(row)
    for older in op.session.execute(
        select(DocumentEntryRow).where(
            DocumentEntryRow.space_id == op.space.id,
            DocumentEntryRow.logical_id == current.logical_id,
        )
    ).scalars():
        older.confidentiality_codes = row.confidentiality_codes
    current.status = DocumentStatus.DEPRECATED.value
    current.updated_at = op.now
    op.session.flush()
    _move_folder_memberships(op, current.entry_uuid, stored_uuid, ss_uuid)
    result.new_versions[current.entry_uuid] = stored_uuid
    op.target = Target("DocumentEntry", current.unique_id, current.type_code)
    op.detail["visibility_changes"] = [a.value for a in actions]
    if Action.MAKE_VISIBLE_TO_PATIENT in actions and INVISIBLE_TO_PATIENT not in new_codes:
        label = doc.title or (doc.type_code.display if doc.type_code else "") or "document"
        op.notify(
            "new_document",
            f"Un document « {label} » de votre dossier médical vous est désormais accessible "
            f"(le {op.now:%d/%m/%Y}).",
            dedup_key=f"new_document:{op.space.id}:{current.unique_id}:visible",
        )
    return stored_uuid
