"""Plain dataclasses of the DMP registry (IHE ITI TF-3 4.1 metadata model), with no wire format.

The XDS face maps ebRIM to these (``xds/ebxml``), the FHIR MHD face maps DocumentReference /
List / Bundle to them, the mail face builds them from an XDM package. Errors carry the IHE
error code of ITI TF-3 Table 4.2.4.1-2 (IPF's ``ValidationMessage``/``ErrorCode`` pairing), so
each face renders its own wire error from one code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from espace.errors import DomainError

# ITI TF-3 4.2.5 (metadata_uuids.csv)
STABLE_ENTRY = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
ON_DEMAND_ENTRY = "urn:uuid:34268e47-fdf5-41a6-ba33-82133c465248"
HAS_MEMBER = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
RPLC = "urn:ihe:iti:2007:AssociationType:RPLC"
APND = "urn:ihe:iti:2007:AssociationType:APND"
XFRM = "urn:ihe:iti:2007:AssociationType:XFRM"
XFRM_RPLC = "urn:ihe:iti:2007:AssociationType:XFRM_RPLC"
SIGNS = "urn:ihe:iti:2007:AssociationType:signs"
IS_SNAPSHOT_OF = "urn:ihe:iti:2010:AssociationType:IsSnapshotOf"
UPDATE_AVAILABILITY_STATUS = "urn:ihe:iti:2010:AssociationType:UpdateAvailabilityStatus"
SUBMIT_ASSOCIATION = "urn:ihe:iti:2010:AssociationType:SubmitAssociation"
LIFECYCLE_TYPES = frozenset({RPLC, APND, XFRM, XFRM_RPLC, SIGNS, IS_SNAPSHOT_OF})
REPLACING_TYPES = frozenset({RPLC, XFRM_RPLC})
ASSOCIATION_TYPES = LIFECYCLE_TYPES | {HAS_MEMBER}

STATUS_PREFIX = "urn:oasis:names:tc:ebxml-regrep:StatusType:"
DMP_STATUS_PREFIX = "urn:asip:ci-sis:2010:StatusType:"
STATUS_URNS = {
    "Approved": STATUS_PREFIX + "Approved",
    "Deprecated": STATUS_PREFIX + "Deprecated",
    "Archived": DMP_STATUS_PREFIX + "Archived",
    "Deleted": DMP_STATUS_PREFIX + "Deleted",
    "Submitted": STATUS_PREFIX + "Submitted",
}
STATUS_BY_URN = {urn: name for name, urn in STATUS_URNS.items()}


class RegistryErrorCode(StrEnum):
    """IHE ITI TF-3 Table 4.2.4.1-2 codes (plus the ITI-57/62 ones) a use case can raise."""

    REGISTRY_ERROR = "XDSRegistryError"
    REPOSITORY_ERROR = "XDSRepositoryError"
    UNKNOWN_PATIENT_ID = "XDSUnknownPatientId"
    PATIENT_ID_DOES_NOT_MATCH = "XDSPatientIdDoesNotMatch"
    NON_IDENTICAL_HASH = "XDSNonIdenticalHash"
    NON_IDENTICAL_SIZE = "XDSNonIdenticalSize"
    REGISTRY_METADATA_ERROR = "XDSRegistryMetadataError"
    REPOSITORY_METADATA_ERROR = "XDSRepositoryMetadataError"
    MISSING_DOCUMENT = "XDSMissingDocument"
    MISSING_DOCUMENT_METADATA = "XDSMissingDocumentMetadata"
    DUPLICATE_UNIQUE_ID_IN_REGISTRY = "XDSDuplicateUniqueIdInRegistry"
    REGISTRY_DUPLICATE_UNIQUE_ID_IN_MESSAGE = "XDSRegistryDuplicateUniqueIdInMessage"
    REPOSITORY_DUPLICATE_UNIQUE_ID_IN_MESSAGE = "XDSRepositoryDuplicateUniqueIdInMessage"
    DEPRECATED_DOCUMENT = "XDSRegistryDeprecatedDocumentError"
    UNKNOWN_STORED_QUERY = "XDSUnknownStoredQuery"
    STORED_QUERY_MISSING_PARAM = "XDSStoredQueryMissingParam"
    STORED_QUERY_PARAM_NUMBER = "XDSStoredQueryParamNumber"
    TOO_MANY_RESULTS = "XDSTooManyResults"
    RESULT_NOT_SINGLE_PATIENT = "XDSResultNotSinglePatient"
    DOCUMENT_UNIQUE_ID_ERROR = "XDSDocumentUniqueIdError"
    UNKNOWN_REPOSITORY_ID = "XDSUnknownRepositoryId"
    METADATA_VERSION_ERROR = "XDSMetadataVersionError"
    METADATA_UPDATE_ERROR = "XDSMetadataUpdateError"
    METADATA_UPDATE_OPERATION_ERROR = "XDSMetadataUpdateOperationError"
    UNRESOLVED_REFERENCE = "UnresolvedReferenceException"
    REFERENCES_EXIST = "ReferencesExistException"
    UNREFERENCED_OBJECT = "XDSUnreferencedObjectException"
    EXTRA_METADATA_NOT_SAVED = "XDSExtraMetadataNotSaved"  # a warning


@dataclass(frozen=True, slots=True)
class RegistryIssue:
    code: RegistryErrorCode
    message: str
    location: str = ""
    warning: bool = False


class RegistryError(DomainError):
    """A refused registry/repository request; ``issues`` are rendered as RegistryErrors."""

    def __init__(
        self,
        code: RegistryErrorCode,
        message: str,
        *,
        location: str = "",
        more: tuple[RegistryIssue, ...] = (),
    ) -> None:
        super().__init__(message, code=str(code))
        self.issues: tuple[RegistryIssue, ...] = (RegistryIssue(code, message, location), *more)

    @property
    def error_code(self) -> RegistryErrorCode:
        return self.issues[0].code


@dataclass(frozen=True, slots=True)
class Code:
    """A coded value (ebRIM Classification: nodeRepresentation + codingScheme slot + Name)."""

    code: str
    scheme: str = ""
    display: str = ""

    def key(self) -> str:
        return f"{self.code}^^{self.scheme}" if self.scheme else self.code


@dataclass(slots=True)
class Author:
    """XDS author (ITI TF-3 4.2.3.1.4): XCN person, XON institutions, roles, specialties."""

    person: str = ""
    institutions: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    specialties: list[str] = field(default_factory=list)
    telecoms: list[str] = field(default_factory=list)

    @property
    def person_id(self) -> str:
        """XCN.1, the identifier (PS_IdNat for the DMP, or the patient's INS)."""
        return self.person.split("^", 1)[0].strip()

    @property
    def institution_ids(self) -> list[str]:
        """XON.10 of each institution (Struct_IdNat for the DMP)."""
        ids = []
        for xon in self.institutions:
            parts = xon.split("^")
            if len(parts) >= 10 and parts[9].strip():
                ids.append(parts[9].strip())
        return ids


@dataclass(slots=True)
class DocumentEntry:
    """XDSDocumentEntry (ITI TF-3 4.2.3.2). ``id`` is the submitted id (symbolic or UUID)."""

    id: str
    unique_id: str = ""
    patient_id: str = ""
    mime_type: str = ""
    object_type: str = STABLE_ENTRY
    class_code: Code | None = None
    type_code: Code | None = None
    format_code: Code | None = None
    practice_setting_code: Code | None = None
    healthcare_facility_type_code: Code | None = None
    confidentiality_codes: list[Code] = field(default_factory=list)
    event_codes: list[Code] = field(default_factory=list)
    authors: list[Author] = field(default_factory=list)
    creation_time: str = ""
    service_start_time: str = ""
    service_stop_time: str = ""
    title: str = ""
    comments: str = ""
    language_code: str = ""
    legal_authenticator: str = ""
    source_patient_id: str = ""
    source_patient_info: list[str] = field(default_factory=list)
    reference_ids: list[str] = field(default_factory=list)
    hash: str = ""
    size: int | None = None
    repository_unique_id: str = ""
    home_community_id: str = ""
    logical_id: str = ""
    version: str = ""
    status: str = "Approved"
    extra_slots: dict[str, list[str]] = field(default_factory=dict)

    @property
    def author_ids(self) -> frozenset[str]:
        return frozenset(a.person_id for a in self.authors if a.person_id)

    @property
    def author_structure_ids(self) -> frozenset[str]:
        return frozenset(i for a in self.authors for i in a.institution_ids)


@dataclass(slots=True)
class SubmissionSet:
    """XDSSubmissionSet (ITI TF-3 4.2.3.3)."""

    id: str
    unique_id: str = ""
    source_id: str = ""
    patient_id: str = ""
    submission_time: str = ""
    content_type_code: Code | None = None
    authors: list[Author] = field(default_factory=list)
    intended_recipients: list[str] = field(default_factory=list)
    title: str = ""
    comments: str = ""
    status: str = "Approved"
    home_community_id: str = ""
    extra_slots: dict[str, list[str]] = field(default_factory=dict)


@dataclass(slots=True)
class Folder:
    """XDSFolder (ITI TF-3 4.2.3.4)."""

    id: str
    unique_id: str = ""
    patient_id: str = ""
    codes: list[Code] = field(default_factory=list)
    title: str = ""
    comments: str = ""
    last_update_time: str = ""
    logical_id: str = ""
    version: str = ""
    status: str = "Approved"
    home_community_id: str = ""
    extra_slots: dict[str, list[str]] = field(default_factory=dict)


@dataclass(slots=True)
class Association:
    """An ebRIM Association: HasMember, lifecycle (RPLC...) or Metadata Update types."""

    id: str
    type: str
    source: str
    target: str
    slots: dict[str, list[str]] = field(default_factory=dict)
    status: str = "Approved"
    documentation: Code | None = None

    def slot(self, name: str) -> str:
        values = self.slots.get(name) or [""]
        return values[0]


@dataclass(slots=True)
class SubmissionRequest:
    """One ITI-41/42/57 submission: all-or-nothing.

    ``contents`` maps DocumentEntry ids to their bytes (ITI-41 and MHD); empty for ITI-42/57.
    """

    submission_set: SubmissionSet
    documents: list[DocumentEntry] = field(default_factory=list)
    folders: list[Folder] = field(default_factory=list)
    associations: list[Association] = field(default_factory=list)
    contents: dict[str, bytes] = field(default_factory=dict)
    unattached_content_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class SubmitResult:
    submission_set_uuid: str
    document_uuids: dict[str, str]  # submitted id -> entryUUID
    unique_ids: list[str]
    already_present: list[str] = field(default_factory=list)  # idempotent re-submissions
    warnings: list[RegistryIssue] = field(default_factory=list)


@dataclass(slots=True)
class StoredQueryRequest:
    """ITI-18: a query id and its parameters; each slot is one list (OR), slots AND."""

    query_id: str
    params: dict[str, list[list[str]]] = field(default_factory=dict)
    return_type: str = "LeafClass"  # | ObjectRef
    home_community_id: str = ""


@dataclass(slots=True)
class QueryResult:
    """What a stored query returns.

    ``entry_fragments``, when not ``None``, holds the pre-rendered wire form of every entry
    of the answer, in order (``espace.registry.prerender``); ``documents`` may then be empty
    (the query did not need to build them). Only callers that asked for fragments
    (``run_stored_query(..., prerendered=True)``) get them.
    """

    documents: list[DocumentEntry] = field(default_factory=list)
    submission_sets: list[SubmissionSet] = field(default_factory=list)
    folders: list[Folder] = field(default_factory=list)
    associations: list[Association] = field(default_factory=list)
    object_refs: list[str] = field(default_factory=list)
    return_type: str = "LeafClass"
    entry_fragments: list[str] | None = None


@dataclass(frozen=True, slots=True)
class DocumentRequest:
    """ITI-43 DocumentRequest."""

    repository_unique_id: str
    document_unique_id: str
    home_community_id: str = ""


@dataclass(slots=True)
class RetrievedDocument:
    repository_unique_id: str
    document_unique_id: str
    mime_type: str
    content: bytes
    home_community_id: str = ""


@dataclass(slots=True)
class RetrieveResult:
    documents: list[RetrievedDocument] = field(default_factory=list)
    issues: list[RegistryIssue] = field(default_factory=list)

    @property
    def status(self) -> str:
        if not self.issues:
            return "Success"
        return "PartialSuccess" if self.documents else "Failure"


@dataclass(slots=True)
class UpdateResult:
    """ITI-57: what changed (entry UUID -> new status, new versions)."""

    status_changes: dict[str, str] = field(default_factory=dict)
    new_versions: dict[str, str] = field(default_factory=dict)  # previous uuid -> new uuid


# JDV_J58 (ANS CI-SIS, DMP confidentialityCode): scheme and display of each code, for codes
# the registry adds itself (masking by the patient, ITI-57 on an older version).
CONFIDENTIALITY_CODES: dict[str, Code] = {
    c.code: c
    for c in (
        Code("N", "2.16.840.1.113883.5.25", "Normal"),
        Code("R", "2.16.840.1.113883.5.25", "Restreint"),
        Code("V", "2.16.840.1.113883.5.25", "Très restreint"),
        Code("INVISIBLE_PATIENT", "1.2.250.1.213.1.1.4.13", "Non visible par le patient"),
        Code(
            "INVISIBLE_REPRESENTANTS_LEGAUX",
            "1.2.250.1.213.1.1.4.13",
            "Non visible par les représentants légaux du patient",
        ),
        Code("MASQUE_PS", "1.2.250.1.213.1.1.4.13", "Masqué aux professionnels de santé"),
    )
}


def current_confidentiality(submitted: list[Code], stored: frozenset[str]) -> list[Code]:
    """The confidentialityCodes of an entry as the registry holds them now.

    ``stored`` (the row's flat column) is the truth: masking (``espace.settings.set_masked``)
    and ITI-57 on the other versions of a document change it, not the submitted metadata.
    Submitted codes still held keep their scheme and display; codes the registry added take
    those of JDV_J58; the order is the submitted one, then the added codes sorted.
    """
    kept = [c for c in submitted if c.code in stored]
    have = {c.code for c in kept}
    added = [CONFIDENTIALITY_CODES.get(code, Code(code)) for code in sorted(stored - have)]
    return kept + added


def to_json(value: Any) -> Any:
    """Dataclass -> JSON-able structure (for ``metadata_json`` columns)."""
    from dataclasses import asdict, is_dataclass

    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return value


def code_from_json(value: Any) -> Code | None:
    if not value:
        return None
    return Code(
        str(value.get("code", "")), str(value.get("scheme", "")), str(value.get("display", ""))
    )


def authors_from_json(values: Any) -> list[Author]:
    return [
        Author(
            person=str(v.get("person", "")),
            institutions=list(v.get("institutions", [])),
            roles=list(v.get("roles", [])),
            specialties=list(v.get("specialties", [])),
            telecoms=list(v.get("telecoms", [])),
        )
        for v in values or []
    ]


def document_from_json(data: dict[str, Any]) -> DocumentEntry:
    entry = DocumentEntry(id=str(data.get("id", "")))
    for name in (
        "unique_id",
        "patient_id",
        "mime_type",
        "object_type",
        "creation_time",
        "service_start_time",
        "service_stop_time",
        "title",
        "comments",
        "language_code",
        "legal_authenticator",
        "source_patient_id",
        "hash",
        "repository_unique_id",
        "home_community_id",
        "logical_id",
        "version",
        "status",
    ):
        if name in data and data[name] is not None:
            setattr(entry, name, data[name])
    entry.size = data.get("size")
    for name in (
        "class_code",
        "type_code",
        "format_code",
        "practice_setting_code",
        "healthcare_facility_type_code",
    ):
        setattr(entry, name, code_from_json(data.get(name)))
    entry.confidentiality_codes = [
        c for c in map(code_from_json, data.get("confidentiality_codes", [])) if c
    ]
    entry.event_codes = [c for c in map(code_from_json, data.get("event_codes", [])) if c]
    entry.authors = authors_from_json(data.get("authors"))
    entry.source_patient_info = list(data.get("source_patient_info", []))
    entry.reference_ids = list(data.get("reference_ids", []))
    entry.extra_slots = dict(data.get("extra_slots", {}))
    return entry


def submission_set_from_json(data: dict[str, Any]) -> SubmissionSet:
    ss = SubmissionSet(id=str(data.get("id", "")))
    for name in (
        "unique_id",
        "source_id",
        "patient_id",
        "submission_time",
        "title",
        "comments",
        "status",
        "home_community_id",
    ):
        if data.get(name) is not None:
            setattr(ss, name, data[name])
    ss.content_type_code = code_from_json(data.get("content_type_code"))
    ss.authors = authors_from_json(data.get("authors"))
    ss.intended_recipients = list(data.get("intended_recipients", []))
    ss.extra_slots = dict(data.get("extra_slots", {}))
    return ss


def folder_from_json(data: dict[str, Any]) -> Folder:
    folder = Folder(id=str(data.get("id", "")))
    for name in (
        "unique_id",
        "patient_id",
        "title",
        "comments",
        "last_update_time",
        "logical_id",
        "version",
        "status",
        "home_community_id",
    ):
        if data.get(name) is not None:
            setattr(folder, name, data[name])
    folder.codes = [c for c in map(code_from_json, data.get("codes", [])) if c]
    folder.extra_slots = dict(data.get("extra_slots", {}))
    return folder
