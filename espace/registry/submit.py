"""Submit a document set: ITI-41 (with bytes) and ITI-42 (metadata only), all-or-nothing.

IHE ITI TF-2b 3.41.4.1.3 / 3.42.4.1.3 and ITI TF-3 4.1-4.2: required attributes, affinity-domain
codes, one submission set, a HasMember for each entry, lifecycle associations (RPLC, APND, XFRM,
XFRM_RPLC, signs; ITI TF-3 4.2.2.2) whose replaced entry becomes Deprecated and whose folder
memberships move to the replacement (ITI TF-3 4.2.2.2.3); the replaced entry's APND/XFRM
children are deprecated with it. The repository computes size and SHA-1 hash (ITI TF-2b
3.41.4.1.3.2); a re-submitted uniqueId with the same hash never duplicates the repository
bytes (on the XDS face, a new submission set makes it a second DocumentEntry, ITI TF-3 4.1.7;
the same submission set re-sent is answered as is), with a different hash gets
XDSNonIdenticalHash. A folder or related document of another patient: XDSPatientIdDoesNotMatch.

Everything runs inside the caller's ``Espace.operation`` (one transaction, one trace record).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from espace.models import (
    AssociationRow,
    DocumentContent,
    DocumentEntryRow,
    FolderRow,
    SubmissionSetRow,
    flat,
)
from espace.registry.config import RegistryConfig
from espace.registry.content_store import insert_content
from espace.registry.model import (
    APND,
    HAS_MEMBER,
    LIFECYCLE_TYPES,
    REPLACING_TYPES,
    SIGNS,
    XFRM,
    Association,
    DocumentEntry,
    RegistryError,
    RegistryErrorCode,
    RegistryIssue,
    SubmissionRequest,
    SubmitResult,
    to_json,
)
from espace.registry.store import (
    association_row,
    document_row,
    existing_entry_uuids,
    is_uuid,
    known_unique_ids,
    new_uuid,
    parse_cx,
    parse_dtm,
)
from espace.registry.valuesets import affinity_domain
from espace.service import Operation
from espace.spaces import INS_OIDS
from espace.store import document_facts
from espace.trace import Target
from habilitation.model import (
    INVISIBLE_TO_PATIENT,
    Action,
    ActorKind,
    DocumentFacts,
    DocumentStatus,
)

Code_ = RegistryErrorCode
VACCINATION_TYPE_CODES = frozenset({"87273-9", "11369-6", "82593-5"})


class ContentInspector(Protocol):
    """Reads patient identifiers out of a document (the face that can parse XML provides it).

    Returns ``None`` when the bytes are not a CDA R2 document, else the recordTarget
    ``patientRole/id`` pairs (extension, root).
    """

    def record_target_ids(
        self, content: bytes, entry: DocumentEntry
    ) -> list[tuple[str, str]] | None: ...


def _fail(code: RegistryErrorCode, message: str, location: str = "") -> RegistryError:
    return RegistryError(code, message, location=location)


def _raise_all(issues: list[RegistryIssue]) -> None:
    errors = [i for i in issues if not i.warning]
    if errors:
        first, *rest = errors
        raise RegistryError(first.code, first.message, location=first.location, more=tuple(rest))


def _required(entry: DocumentEntry, *, provide: bool) -> list[RegistryIssue]:
    """ITI TF-3 Table 4.2.3.2-1 (R for ITI-41/42; hash/size/repository R for ITI-42 only)."""
    where = f"DocumentEntry {entry.id}"
    missing = [
        name
        for name, value in (
            ("uniqueId", entry.unique_id),
            ("patientId", entry.patient_id),
            ("mimeType", entry.mime_type),
            ("classCode", entry.class_code),
            ("typeCode", entry.type_code),
            ("formatCode", entry.format_code),
            ("healthcareFacilityTypeCode", entry.healthcare_facility_type_code),
            ("practiceSettingCode", entry.practice_setting_code),
            ("confidentialityCode", entry.confidentiality_codes),
            ("creationTime", entry.creation_time),
            ("languageCode", entry.language_code),
            ("sourcePatientId", entry.source_patient_id),
        )
        if not value
    ]
    if not provide:
        missing += [
            name
            for name, value in (
                ("hash", entry.hash),
                ("size", entry.size is not None),
                ("repositoryUniqueId", entry.repository_unique_id),
            )
            if not value
        ]
    issues = [
        RegistryIssue(Code_.REGISTRY_METADATA_ERROR, f"{where}: {name} is required", where)
        for name in missing
    ]
    for name, value in (
        ("creationTime", entry.creation_time),
        ("serviceStartTime", entry.service_start_time),
        ("serviceStopTime", entry.service_stop_time),
    ):
        try:
            parse_dtm(value)
        except ValueError:
            issues.append(
                RegistryIssue(
                    Code_.REGISTRY_METADATA_ERROR, f"{where}: bad {name} {value!r}", where
                )
            )
    return issues


def _check_patient(value: str, ins: str, where: str) -> list[RegistryIssue]:
    pid, oid = parse_cx(value)
    if not pid:
        return [RegistryIssue(Code_.REGISTRY_METADATA_ERROR, f"{where}: bad patientId", where)]
    if pid != ins or oid not in INS_OIDS:
        return [
            RegistryIssue(
                Code_.PATIENT_ID_DOES_NOT_MATCH,
                f"{where}: patientId {value} is not the patient of the request",
                value,
            )
        ]
    return []


def _contents_by_entry(request: SubmissionRequest) -> tuple[dict[str, bytes], list[str]]:
    """Pair documents with entries: exact id, else a unique case-insensitive match.

    The DMP's own TD2.1 example submits ExtrinsicObject ``DocumentME2`` with Document
    ``documentME2`` and is accepted, so ids are matched case-insensitively as a fallback.
    """
    by_entry: dict[str, bytes] = {}
    leftovers = dict(request.contents)
    ids = [d.id for d in request.documents]
    for doc_id in ids:
        if doc_id in leftovers:
            by_entry[doc_id] = leftovers.pop(doc_id)
    for doc_id in ids:
        if doc_id in by_entry:
            continue
        matches = [k for k in leftovers if k.lower() == doc_id.lower()]
        if len(matches) == 1:
            by_entry[doc_id] = leftovers.pop(matches[0])
    return by_entry, sorted(leftovers) + list(request.unattached_content_ids)


def submit_document_set(
    op: Operation,
    request: SubmissionRequest,
    *,
    config: RegistryConfig,
    provide: bool,
    inspector: ContentInspector | None = None,
    origin: str = "xds",
    register_resubmissions: bool = False,
) -> SubmitResult:
    """Validate and store one submission in ``op``'s transaction (ITI-41 when ``provide``).

    A document whose uniqueId is already registered with the same hash and size is accepted
    (ITI TF-3 4.1.7 "Document Resubmission", ITI TF-2b 3.42.4.1.3.2 XDSNonIdenticalHash
    otherwise). With ``register_resubmissions`` (the XDS face: NIST 12004 expects both copies
    in a query) and a *new* submission set, the copy becomes a second DocumentEntry (its own
    entryUUID, same uniqueId) that shares the repository bytes already stored; without it
    (mailbox, MHD) or when the same submission set is sent again (a retry), the existing entry
    answers and nothing is duplicated.
    """
    session = op.session
    space = op.space
    if space is None or space.status != "active":
        raise _fail(
            Code_.UNKNOWN_PATIENT_ID, "no active patient space", request.submission_set.patient_id
        )
    ss = request.submission_set
    docs = request.documents
    domain = affinity_domain(config.affinity_domain)
    issues: list[RegistryIssue] = []

    # -- structure, required attributes, patient identity (ITI TF-3 4.1.4, 4.2.3)
    ss_missing = [
        n
        for n, v in (
            ("uniqueId", ss.unique_id),
            ("sourceId", ss.source_id),
            ("patientId", ss.patient_id),
            ("submissionTime", ss.submission_time),
            ("contentTypeCode", ss.content_type_code),
        )
        if not v
    ]
    issues += [
        RegistryIssue(Code_.REGISTRY_METADATA_ERROR, f"SubmissionSet: {n} is required", ss.id)
        for n in ss_missing
    ]
    try:
        ss_time = parse_dtm(ss.submission_time)
    except ValueError:
        ss_time = None
        issues.append(
            RegistryIssue(
                Code_.REGISTRY_METADATA_ERROR,
                f"SubmissionSet: bad submissionTime {ss.submission_time!r}",
                ss.id,
            )
        )
    issues += _check_patient(ss.patient_id, space.ins, "SubmissionSet") if ss.patient_id else []
    for doc in docs:
        issues += _required(doc, provide=provide)
        if doc.patient_id:
            issues += _check_patient(doc.patient_id, space.ins, f"DocumentEntry {doc.id}")
        issues += domain.check_document(doc)
    for folder in request.folders:
        if not folder.unique_id or not folder.patient_id:
            issues.append(
                RegistryIssue(
                    Code_.REGISTRY_METADATA_ERROR,
                    "Folder: uniqueId and patientId required",
                    folder.id,
                )
            )
        else:
            issues += _check_patient(folder.patient_id, space.ins, f"Folder {folder.id}")
        issues += domain.check_folder(folder)
    issues += domain.check_submission_set(ss)
    # patient mismatches first: they say more than a metadata slip
    issues.sort(key=lambda i: i.code is not Code_.PATIENT_ID_DOES_NOT_MATCH)
    _raise_all(issues)

    unique_ids = (
        [ss.unique_id] + [d.unique_id for d in docs] + [f.unique_id for f in request.folders]
    )
    duplicates = sorted({u for u in unique_ids if unique_ids.count(u) > 1})
    if duplicates:
        raise _fail(
            Code_.REGISTRY_DUPLICATE_UNIQUE_ID_IN_MESSAGE,
            f"uniqueId used twice: {duplicates[0]}",
            duplicates[0],
        )

    # -- repository: bytes, size, hash (ITI TF-2b 3.41.4.1.3)
    contents: dict[str, bytes] = {}
    if provide:
        contents, orphans = _contents_by_entry(request)
        for doc in docs:
            if doc.id not in contents:
                raise _fail(Code_.MISSING_DOCUMENT, f"no document attached for {doc.id}", doc.id)
        if orphans:
            raise _fail(
                Code_.MISSING_DOCUMENT_METADATA,
                f"document {orphans[0]} has no DocumentEntry",
                orphans[0],
            )
        for doc in docs:
            data = contents[doc.id]
            digest = hashlib.sha1(data).hexdigest()  # noqa: S324 - XDS.b hash is SHA-1
            if doc.hash and doc.hash.lower() != digest:
                raise _fail(
                    Code_.REPOSITORY_METADATA_ERROR, f"hash of {doc.id} does not match", doc.id
                )
            if doc.size is not None and doc.size != len(data):
                raise _fail(
                    Code_.REPOSITORY_METADATA_ERROR, f"size of {doc.id} does not match", doc.id
                )
            doc.hash, doc.size = digest, len(data)
            doc.repository_unique_id = config.repository_unique_id
            if inspector is not None:
                targets = inspector.record_target_ids(data, doc)
                # a CDA naming patients, none of them this one, is misfiled; one naming no one
                # (schema-invalid, e.g. the ANS PDSm4DMP example's bare ClinicalDocument)
                # identifies nobody else and is stored as the source sent it
                if targets and not any(
                    ext == space.ins and root in INS_OIDS for ext, root in targets
                ):
                    raise _fail(
                        Code_.PATIENT_ID_DOES_NOT_MATCH,
                        f"the CDA recordTarget of {doc.id} is not the patient {space.ins}",
                        doc.id,
                    )

    # -- already known unique ids: idempotent re-submission or conflict. The space row is held
    # since the transaction began (Espace.operation, SERIALIZED_ACTIONS), so a concurrent copy
    # of this submission has committed or rolled back before these reads (IHE ITI TF-3 4.1.7).
    known = known_unique_ids(
        session,
        documents=[d.unique_id for d in docs],
        submission_set=ss.unique_id,
        folders=[f.unique_id for f in request.folders],
    )
    reused: dict[str, str] = {}
    for doc in docs:
        existing = known.documents.get(doc.unique_id)
        if existing is None:
            continue
        if existing.space_id != space.id:
            raise _fail(
                Code_.DUPLICATE_UNIQUE_ID_IN_REGISTRY, "uniqueId already used", doc.unique_id
            )
        if existing.hash.lower() != doc.hash.lower():
            raise _fail(
                Code_.NON_IDENTICAL_HASH, f"{doc.unique_id} exists with another hash", doc.unique_id
            )
        if doc.size is not None and existing.size != doc.size:
            raise _fail(
                Code_.NON_IDENTICAL_SIZE, f"{doc.unique_id} exists with another size", doc.unique_id
            )
        reused[doc.id] = existing.entry_uuid
    existing_ss = known.submission_set  # (entryUUID, space id)
    stored_bytes: set[str] = set()  # documents whose bytes the repository already holds
    if existing_ss is None and register_resubmissions and reused:
        for doc in docs:
            if doc.id in reused and _content_exists(op, doc):
                stored_bytes.add(doc.id)
        reused = {}
    if existing_ss is not None:
        if existing_ss[1] == space.id and docs and len(reused) == len(docs) and not request.folders:
            op.detail.update({"idempotent": True, "submission_set": ss.unique_id})
            _set_target(op, docs)
            return SubmitResult(
                existing_ss[0],
                dict(reused),
                [d.unique_id for d in docs],
                already_present=[d.unique_id for d in docs],
            )
        raise _fail(
            Code_.DUPLICATE_UNIQUE_ID_IN_REGISTRY,
            "submission set uniqueId already used",
            ss.unique_id,
        )
    for folder in request.folders:
        if folder.unique_id in known.folders:
            raise _fail(
                Code_.DUPLICATE_UNIQUE_ID_IN_REGISTRY,
                "folder uniqueId already used",
                folder.unique_id,
            )

    # -- entry UUIDs (symbolic ids get fresh UUIDs; ITI TF-3 4.2.3.1.1)
    object_ids = (
        [ss.id]
        + [d.id for d in docs]
        + [f.id for f in request.folders]
        + [a.id for a in request.associations]
    )
    # every UUID the submission names (its objects, its associations' ends) looked up at once
    in_registry = existing_entry_uuids(
        session,
        [
            v
            for v in object_ids
            + [a.source for a in request.associations]
            + [a.target for a in request.associations]
            if v not in reused and is_uuid(v)
        ],
    )
    ids: dict[str, str] = {}
    for obj_id in object_ids:
        if obj_id in reused:
            ids[obj_id] = reused[obj_id]
        elif is_uuid(obj_id):
            if obj_id in in_registry:
                raise _fail(
                    Code_.REGISTRY_METADATA_ERROR, f"entryUUID {obj_id} already in registry", obj_id
                )
            ids[obj_id] = obj_id
        else:
            ids[obj_id] = new_uuid()
    if len(set(ids.values())) != len(ids):
        raise _fail(Code_.REGISTRY_METADATA_ERROR, "an id is used by two objects")

    # -- associations
    doc_ids = {d.id for d in docs}
    folder_ids = {f.id for f in request.folders}
    members = set()
    known_folders: set[str] = set()  # folders already registered that this submission fills
    deprecate: list[DocumentEntryRow] = []
    moves: list[tuple[str, str]] = []  # (replaced uuid, new uuid)
    for assoc in request.associations:
        if assoc.source in reused:
            continue  # an idempotent entry keeps its original associations
        if assoc.source == assoc.target or (assoc.type == HAS_MEMBER and assoc.target == ss.id):
            # ITI TF-3 4.2.2: an object is not associated with itself, and a SubmissionSet is
            # the source, never the member, of a HasMember (NIST 21000)
            raise _fail(
                Code_.REGISTRY_METADATA_ERROR,
                f"{assoc.id}: association from {assoc.source} to {assoc.target}",
                assoc.id,
            )
        if assoc.type == HAS_MEMBER:
            if assoc.source == ss.id:
                if assoc.target in doc_ids:
                    status = assoc.slot("SubmissionSetStatus")
                    if status not in ("Original", "Reference"):
                        raise _fail(
                            Code_.REGISTRY_METADATA_ERROR,
                            f"{assoc.id}: SubmissionSetStatus Original|Reference required",
                            assoc.id,
                        )
                    members.add(assoc.target)
                elif not (
                    assoc.target in folder_ids or assoc.target in ids or assoc.target in in_registry
                ):
                    raise _fail(
                        Code_.REGISTRY_METADATA_ERROR, f"unresolved target {assoc.target}", assoc.id
                    )
            elif assoc.source in folder_ids or _folder_exists(op, assoc.source):
                if assoc.source not in folder_ids:
                    known_folders.add(assoc.source)
                if not (assoc.target in doc_ids or _doc_visible(op, assoc.target) is not None):
                    if _of_another_patient(op, assoc.target):
                        raise _fail(
                            Code_.PATIENT_ID_DOES_NOT_MATCH,
                            f"{assoc.id}: {assoc.target} belongs to another patient",
                            assoc.id,
                        )
                    raise _fail(
                        Code_.REGISTRY_METADATA_ERROR, f"unresolved target {assoc.target}", assoc.id
                    )
            elif _of_another_patient(op, assoc.source):
                # ITI TF-3 4.2.2.1.4 / 4.1.8: a folder and its documents share one patientId
                raise _fail(
                    Code_.PATIENT_ID_DOES_NOT_MATCH,
                    f"{assoc.id}: folder {assoc.source} belongs to another patient",
                    assoc.id,
                )
            else:
                raise _fail(
                    Code_.REGISTRY_METADATA_ERROR, f"HasMember from {assoc.source}", assoc.id
                )
        elif assoc.type in LIFECYCLE_TYPES:
            if assoc.source not in doc_ids:
                raise _fail(
                    Code_.REGISTRY_METADATA_ERROR,
                    f"{assoc.id}: source must be a new entry",
                    assoc.id,
                )
            if assoc.type == SIGNS and (assoc.target in doc_ids or assoc.target == ss.id):
                continue
            target = _doc_visible(op, assoc.target)
            if target is None and _of_another_patient(op, assoc.target):
                # ITI TF-3 4.2.2.2: the related documents share one patientId
                raise _fail(
                    Code_.PATIENT_ID_DOES_NOT_MATCH,
                    f"{assoc.id}: {assoc.target} belongs to another patient",
                    assoc.id,
                )
            if target is None:
                raise _fail(
                    Code_.REGISTRY_METADATA_ERROR,
                    f"{assoc.id}: unknown target {assoc.target}",
                    assoc.id,
                )
            if target.status != DocumentStatus.APPROVED:
                raise _fail(
                    Code_.DEPRECATED_DOCUMENT, f"{assoc.target} is {target.status}", assoc.target
                )
            if assoc.type in REPLACING_TYPES:
                deprecate.append(target)
                moves.append((target.entry_uuid, ids[assoc.source]))
        else:
            raise _fail(
                Code_.REGISTRY_METADATA_ERROR,
                f"association type {assoc.type} not allowed",
                assoc.id,
            )
    missing_members = sorted(doc_ids - members - set(reused))
    if missing_members:
        raise _fail(
            Code_.REGISTRY_METADATA_ERROR,
            f"DocumentEntry {missing_members[0]} is not a member of the submission set",
            missing_members[0],
        )

    # -- per-document policy (e.g. document types a profession may not feed)
    for doc in docs:
        if doc.id not in reused:
            op.authorize(Action.SUBMIT_DOCUMENT, _facts(doc, ids[doc.id]))

    # -- store
    now = op.now
    by_patient = op.actor.kind is not ActorKind.PROFESSIONAL
    ss_uuid = ids[ss.id]
    ss.id = ss_uuid
    session.add(
        SubmissionSetRow(
            entry_uuid=ss_uuid,
            space_id=space.id,
            unique_id=ss.unique_id,
            source_id=ss.source_id,
            # the Document Source's submissionTime (ITI TF-3 4.2.3.3.10), which FindSubmissionSets
            # compares (ITI TF-2a 3.18.4.1.2.3.7.2); the receipt time is in the trace
            submission_time=ss_time or now,
            content_type_code=ss.content_type_code.code if ss.content_type_code else "",
            author_ids=flat(a.person_id for a in ss.authors),
            status="Approved",
            metadata_json=to_json(ss),
        )
    )
    new_docs: list[DocumentEntry] = []
    to_store: list[tuple[DocumentEntry, bytes]] = []  # repository bytes, written after the flush
    for doc in docs:
        if doc.id in reused:
            continue
        original_id = doc.id
        # the registry owns status, logicalId and version of a new entry (ITI TF-3 4.1.4,
        # 4.2.3.2.13): a submitted lid must not graft the entry onto another document's lineage
        doc.status, doc.logical_id, doc.version = "Approved", "", "1"
        session.add(
            document_row(
                doc,
                entry_uuid=ids[original_id],
                space_id=space.id,
                now=now,
                submission_set_uuid=ss_uuid,
                origin=origin,
                added_by_patient=by_patient,
            )
        )
        if provide and original_id not in stored_bytes:
            to_store.append((doc, contents[original_id]))
        new_docs.append(doc)
    for folder in request.folders:
        fid = ids[folder.id]
        folder.id = fid
        session.add(
            FolderRow(
                entry_uuid=fid,
                space_id=space.id,
                unique_id=folder.unique_id,
                logical_id=fid,
                version=1,
                status="Approved",
                code_list=flat(c.key() for c in folder.codes),
                last_update_time=now,
                metadata_json=to_json(folder),
            )
        )
    try:
        session.flush()
        for doc, data in to_store:
            _store_content(op, doc, data)
    except IntegrityError:
        # a uniqueId (SubmissionSet, Folder, repository document) or entryUUID was taken by a
        # concurrent submission to another space since the checks above (same-space copies
        # are serialized on the space row): what a sequential run answers (ITI TF-3 4.2.4.1)
        raise _fail(
            Code_.DUPLICATE_UNIQUE_ID_IN_REGISTRY,
            "uniqueId already used (registered concurrently)",
            ss.unique_id,
        ) from None
    for assoc in request.associations:
        if assoc.source in reused:
            continue
        stored = Association(
            id=ids[assoc.id],
            type=assoc.type,
            source=ids.get(assoc.source, assoc.source),
            target=ids.get(assoc.target, assoc.target),
            slots=assoc.slots,
        )
        session.add(association_row(stored, space_id=space.id))
        if stored.type == HAS_MEMBER and (
            assoc.source in folder_ids or assoc.source in known_folders
        ):
            _touch_folder(op, stored.source)
    for row in deprecate + _addenda_and_transforms(op, [r.entry_uuid for r in deprecate]):
        row.status = DocumentStatus.DEPRECATED.value
        row.updated_at = now
    for replaced, replacement in moves:
        _move_folder_memberships(op, replaced, replacement, ss_uuid)

    # -- notify the patient (not of documents hidden from them)
    for doc in new_docs:
        codes = {c.code for c in doc.confidentiality_codes}
        if INVISIBLE_TO_PATIENT in codes or (doc.class_code and doc.class_code.scheme == "URN"):
            continue
        type_code = doc.type_code.code if doc.type_code else ""
        category = "vaccination_added" if type_code in VACCINATION_TYPE_CODES else "new_document"
        label = doc.title or (doc.type_code.display if doc.type_code else "") or "document"
        op.notify(
            category,
            f"Un nouveau document « {label} » a été ajouté à votre dossier médical "
            f"le {now:%d/%m/%Y}.",
            dedup_key=f"{category}:{space.id}:{doc.unique_id}",
        )
    _set_target(op, docs)
    op.detail.update(
        {
            "submission_set": ss.unique_id,
            "documents": [d.unique_id for d in docs],
            "replaced": [r.entry_uuid for r in deprecate],
        }
    )
    return SubmitResult(
        ss_uuid,
        {d_id: ids[d_id] for d_id in doc_ids},
        [d.unique_id for d in docs],
        already_present=[d.unique_id for d in docs if d.id in reused],
    )


def _store_content(op: Operation, doc: DocumentEntry, data: bytes) -> None:
    """Encrypt ``data`` into the repository row of ``doc``, piece by piece (issue #8: the
    ciphertext is never held whole, see ``espace.registry.content_store``)."""
    assert op.space is not None
    cipher = op.espace.cipher
    insert_content(
        op.session,
        {
            "space_id": op.space.id,
            "repository_unique_id": doc.repository_unique_id,
            "unique_id": doc.unique_id,
            "mime_type": doc.mime_type,
            "hash": doc.hash,
            "size": doc.size or 0,
            "stored_at": op.now,
        },
        blob_size=cipher.encrypted_size(len(data)),
        pieces=cipher.encrypt_pieces(data, space_id=op.space.id, object_id=doc.unique_id),
    )


def _set_target(op: Operation, docs: Iterable[DocumentEntry]) -> None:
    docs = list(docs)
    if docs:
        first = docs[0]
        op.target = Target(
            "DocumentEntry", first.unique_id, first.type_code.code if first.type_code else ""
        )


def _facts(doc: DocumentEntry, entry_uuid: str) -> DocumentFacts:
    return DocumentFacts(
        entry_id=entry_uuid,
        type_code=doc.type_code.code if doc.type_code else "",
        confidentiality_codes=frozenset(c.code for c in doc.confidentiality_codes),
        author_ids=doc.author_ids,
        author_structure_ids=doc.author_structure_ids,
    )


def _addenda_and_transforms(op: Operation, replaced: list[str]) -> list[DocumentEntryRow]:
    """Approved APND/XFRM children of replaced entries: deprecated with them (ITI TF-3 4.2.2.2.2).

    NIST 12022: once the original is replaced, its addenda and transformations no longer
    apply to the current version of the document.
    """
    assert op.space is not None
    if not replaced:
        return []
    children = select(AssociationRow.source_uuid).where(
        AssociationRow.space_id == op.space.id,
        AssociationRow.association_type.in_([APND, XFRM]),
        AssociationRow.target_uuid.in_(replaced),
    )
    return list(
        op.session.execute(
            select(DocumentEntryRow).where(
                DocumentEntryRow.space_id == op.space.id,
                DocumentEntryRow.entry_uuid.in_(children),
                DocumentEntryRow.status == DocumentStatus.APPROVED.value,
            )
        ).scalars()
    )


def _content_exists(op: Operation, doc: DocumentEntry) -> bool:
    """Whether the repository already holds the bytes of ``doc`` (same uniqueId)."""
    return (
        op.session.execute(
            select(DocumentContent.id).where(
                DocumentContent.repository_unique_id == doc.repository_unique_id,
                DocumentContent.unique_id == doc.unique_id,
            )
        ).first()
        is not None
    )


def _of_another_patient(op: Operation, value: str) -> bool:
    """Whether ``value`` is the entryUUID of a folder or document of another patient space."""
    assert op.space is not None
    if not is_uuid(value):
        return False
    return any(
        op.session.execute(
            select(model.entry_uuid).where(model.entry_uuid == value, model.space_id != op.space.id)
        ).first()
        is not None
        for model in (FolderRow, DocumentEntryRow)
    )


def _folder_exists(op: Operation, value: str) -> bool:
    return bool(_folder_uuids(op, [value]))


def _folder_uuids(op: Operation, values: list[str]) -> list[str]:
    assert op.space is not None
    return list(
        op.session.execute(
            select(FolderRow.entry_uuid).where(
                FolderRow.space_id == op.space.id, FolderRow.entry_uuid.in_(values)
            )
        ).scalars()
    )


def _doc_visible(op: Operation, entry_uuid: str) -> DocumentEntryRow | None:
    """An entry of this space that the actor may see (any status), else None."""
    from dataclasses import replace

    from espace.store import visibility_clause

    assert op.space is not None
    vis = op.visibility()
    vis = replace(vis, statuses=frozenset(DocumentStatus))
    return op.session.execute(
        select(DocumentEntryRow).where(
            DocumentEntryRow.space_id == op.space.id,
            DocumentEntryRow.entry_uuid == entry_uuid,
            visibility_clause(vis),
        )
    ).scalar_one_or_none()


def _touch_folder(op: Operation, folder_uuid: str) -> None:
    row = op.session.get(FolderRow, folder_uuid)
    if row is not None:
        row.last_update_time = op.now


def _move_folder_memberships(op: Operation, replaced: str, replacement: str, ss_uuid: str) -> None:
    """ITI TF-3 4.2.2.2.3: the replacement joins every folder the replaced entry was in."""
    assert op.space is not None
    rows = (
        op.session.execute(
            select(AssociationRow).where(
                AssociationRow.space_id == op.space.id,
                AssociationRow.association_type == HAS_MEMBER,
                AssociationRow.target_uuid == replaced,
            )
        )
        .scalars()
        .all()
    )
    folder_uuids = set(_folder_uuids(op, [r.source_uuid for r in rows]))
    for row in rows:
        if row.source_uuid not in folder_uuids:
            continue
        membership = Association(new_uuid(), HAS_MEMBER, row.source_uuid, replacement)
        op.session.add(association_row(membership, space_id=op.space.id))
        op.session.add(
            association_row(
                Association(new_uuid(), HAS_MEMBER, ss_uuid, membership.id), space_id=op.space.id
            )
        )
        _touch_folder(op, row.source_uuid)


__all__ = ["ContentInspector", "document_facts", "submit_document_set"]
