"""Rows <-> registry dataclasses, XDS times, patient-id (CX) helpers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Integer, String, literal, select, union_all
from sqlalchemy.orm import Session

from espace.models import (
    AssociationRow,
    DocumentEntryRow,
    FolderRow,
    SubmissionSetRow,
    flat,
    unflat,
)
from espace.registry.model import (
    Association,
    Code,
    DocumentEntry,
    Folder,
    SubmissionSet,
    document_from_json,
    folder_from_json,
    submission_set_from_json,
    to_json,
)


def new_uuid() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def is_uuid(value: str) -> bool:
    """``urn:uuid:`` + a UUID (ITI TF-3 4.2.3.1.1: other ids are symbolic)."""
    if not value.startswith("urn:uuid:"):
        return False
    try:
        uuid.UUID(value[9:])
    except ValueError:
        return False
    return True


def parse_dtm(value: str) -> datetime | None:
    """An XDS DTM (YYYY[MM[DD[hh[mm[ss]]]]], UTC; ITI TF-3 Table 4.2.3.1.7-2) -> datetime."""
    value = (value or "").strip()
    if not value:
        return None
    digits = value.split(".")[0]
    if not digits.isdigit() or len(digits) not in (4, 6, 8, 10, 12, 14):
        raise ValueError(f"not an XDS DTM: {value!r}")
    padded = digits + "0101000000"[len(digits) - 4 :] if len(digits) < 14 else digits
    return datetime.strptime(padded[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)


def format_dtm(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%S")


def parse_cx(value: str) -> tuple[str, str]:
    """``id^^^&OID&ISO`` (HL7 v2 CX) -> (id, assigning authority OID); ('', '') if malformed."""
    parts = (value or "").strip().split("^")
    if len(parts) < 4 or not parts[0]:
        return "", ""
    authority = parts[3].split("&")
    oid = authority[1] if len(authority) >= 2 else ""
    if len(authority) >= 3 and authority[2] and authority[2] != "ISO":
        return "", ""
    return parts[0], oid


def _dt(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def document_row(
    entry: DocumentEntry,
    *,
    entry_uuid: str,
    space_id: str,
    now: datetime,
    submission_set_uuid: str | None,
    origin: str,
    added_by_patient: bool = False,
) -> DocumentEntryRow:
    entry.id = entry_uuid
    type_code = entry.type_code or Code("")
    return DocumentEntryRow(
        entry_uuid=entry_uuid,
        space_id=space_id,
        logical_id=entry.logical_id or entry_uuid,
        version=int(entry.version or 1),
        unique_id=entry.unique_id,
        repository_unique_id=entry.repository_unique_id,
        status=entry.status,
        type_code=type_code.code,
        type_code_system=type_code.scheme,
        class_code=entry.class_code.code if entry.class_code else "",
        format_code=entry.format_code.code if entry.format_code else "",
        practice_setting_code=(
            entry.practice_setting_code.code if entry.practice_setting_code else ""
        ),
        healthcare_facility_type_code=(
            entry.healthcare_facility_type_code.code if entry.healthcare_facility_type_code else ""
        ),
        confidentiality_codes=flat(c.code for c in entry.confidentiality_codes),
        event_codes=flat(c.key() for c in entry.event_codes),
        author_ids=flat(entry.author_ids),
        author_structure_ids=flat(entry.author_structure_ids),
        author_persons=flat(a.person for a in entry.authors),
        creation_time=parse_dtm(entry.creation_time),
        service_start_time=parse_dtm(entry.service_start_time),
        service_stop_time=parse_dtm(entry.service_stop_time),
        submission_time=now,
        updated_at=now,
        mime_type=entry.mime_type,
        hash=entry.hash,
        size=entry.size or 0,
        title=entry.title[:400],
        language_code=entry.language_code[:16],
        object_type=entry.object_type,
        added_by_patient=added_by_patient,
        origin=origin,
        submission_set_uuid=submission_set_uuid,
        metadata_json=to_json(entry),
    )


def entry_from_row(row: DocumentEntryRow) -> DocumentEntry:
    """The stored entry, with the registry-owned attributes taken from the row."""
    entry = document_from_json(dict(row.metadata_json or {}))
    entry.id = row.entry_uuid
    entry.logical_id = row.logical_id
    entry.version = str(row.version)
    entry.status = row.status
    entry.hash = row.hash
    entry.size = row.size
    entry.repository_unique_id = row.repository_unique_id
    entry.unique_id = row.unique_id
    return entry


def submission_set_from_row(row: SubmissionSetRow) -> SubmissionSet:
    ss = submission_set_from_json(dict(row.metadata_json or {}))
    ss.id = row.entry_uuid
    ss.status = row.status
    return ss


def folder_from_row(row: FolderRow) -> Folder:
    folder = folder_from_json(dict(row.metadata_json or {}))
    folder.id = row.entry_uuid
    folder.status = row.status
    folder.logical_id = row.logical_id or row.entry_uuid
    folder.version = str(row.version)
    folder.last_update_time = format_dtm(_dt(row.last_update_time) or datetime.now(UTC))
    return folder


def association_from_row(row: AssociationRow) -> Association:
    data: dict[str, Any] = dict(row.metadata_json or {})
    return Association(
        id=row.entry_uuid,
        type=row.association_type,
        source=row.source_uuid,
        target=row.target_uuid,
        slots={k: list(v) for k, v in (data.get("slots") or {}).items()},
        status=row.status,
    )


def association_row(assoc: Association, *, space_id: str) -> AssociationRow:
    return AssociationRow(
        entry_uuid=assoc.id,
        space_id=space_id,
        association_type=assoc.type,
        source_uuid=assoc.source,
        target_uuid=assoc.target,
        status=assoc.status,
        metadata_json={"slots": assoc.slots},
    )


def latest_by_unique_id(session: Session, unique_id: str) -> DocumentEntryRow | None:
    return session.execute(
        select(DocumentEntryRow)
        .where(DocumentEntryRow.unique_id == unique_id)
        .order_by(DocumentEntryRow.version.desc())
        .limit(1)
    ).scalar_one_or_none()


@dataclass(frozen=True, slots=True)
class KnownEntry:
    """What the registry already holds under a document uniqueId (its latest version)."""

    entry_uuid: str
    space_id: str
    hash: str
    size: int
    version: int


@dataclass(slots=True)
class KnownUniqueIds:
    """The uniqueIds of a submission that the registry already holds (ITI TF-3 4.2.4.1)."""

    documents: dict[str, KnownEntry] = field(default_factory=dict)
    submission_set: tuple[str, str] | None = None  # (entryUUID, space id)
    folders: set[str] = field(default_factory=set)


def known_unique_ids(
    session: Session,
    *,
    documents: list[str],
    submission_set: str,
    folders: list[str],
) -> KnownUniqueIds:
    """Look every uniqueId of one submission up in one statement (``UNION ALL`` of the
    DocumentEntry, SubmissionSet and Folder tables); a document uniqueId answers its latest
    version, as ``latest_by_unique_id`` does."""
    entry, ss, folder = DocumentEntryRow, SubmissionSetRow, FolderRow
    parts = [
        select(
            literal("ss").label("kind"),
            ss.unique_id,
            ss.entry_uuid,
            ss.space_id,
            literal("", String).label("hash"),
            literal(0, Integer).label("size"),
            literal(0, Integer).label("version"),
        ).where(ss.unique_id == submission_set)
    ]
    if documents:
        parts.append(
            select(
                literal("doc"),
                entry.unique_id,
                entry.entry_uuid,
                entry.space_id,
                entry.hash,
                entry.size,
                entry.version,
            ).where(entry.unique_id.in_(sorted(set(documents))))
        )
    if folders:
        parts.append(
            select(
                literal("folder"),
                folder.unique_id,
                folder.entry_uuid,
                folder.space_id,
                literal("", String),
                literal(0, Integer),
                literal(0, Integer),
            ).where(folder.unique_id.in_(sorted(set(folders))))
        )
    known = KnownUniqueIds()
    for kind, unique_id, entry_uuid, space_id, hash_, size, version in session.execute(
        union_all(*parts)
    ).all():
        if kind == "ss":
            known.submission_set = (entry_uuid, space_id)
        elif kind == "folder":
            known.folders.add(unique_id)
        else:
            current = known.documents.get(unique_id)
            if current is None or int(version) > current.version:
                known.documents[unique_id] = KnownEntry(
                    entry_uuid, space_id, hash_, int(size or 0), int(version)
                )
    return known


def existing_entry_uuids(session: Session, values: list[str]) -> set[str]:
    """Which of ``values`` already name a registry object (entry, set, folder, association),
    in one statement."""
    if not values:
        return set()
    wanted = sorted(set(values))
    return set(
        session.execute(
            union_all(
                *(
                    select(model.entry_uuid).where(model.entry_uuid.in_(wanted))
                    for model in (DocumentEntryRow, SubmissionSetRow, FolderRow, AssociationRow)
                )
            )
        ).scalars()
    )


def flat_codes(row_value: str) -> frozenset[str]:
    return unflat(row_value)
