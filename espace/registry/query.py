"""Registry Stored Query (ITI-18): the 14 stored queries of IHE ITI TF-2a 3.18.4.1.2.

Parameter rules (required, one-of, single/multiple values) follow ITI TF-2a 3.18.4.1.2.3.7
(``tf-samples/ITI-18_stored_query_parameters.csv``). The policy decision point's visibility
predicate is pushed into every document query *before* counting and capping, so an entry the
caller may not see is neither returned nor counted, and an association or submission set is
only returned when it does not point at a hidden entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, cast, overload

from sqlalchemy import ColumnElement, null, or_, select
from sqlalchemy.orm import InstrumentedAttribute

from espace.models import AssociationRow, DocumentEntryRow, FolderRow, SubmissionSetRow
from espace.registry.config import RegistryConfig
from espace.registry.model import (
    HAS_MEMBER,
    ON_DEMAND_ENTRY,
    STABLE_ENTRY,
    STATUS_BY_URN,
    Code,
    DocumentEntry,
    QueryResult,
    RegistryError,
    RegistryErrorCode,
    StoredQueryRequest,
)
from espace.registry.prerender import (
    KEY_COLUMNS,
    KeyValues,
    RowColumns,
    entry_for,
    fill_missing,
    fresh_fragment,
    installed_tag,
    render_entry,
)
from espace.registry.store import (
    association_from_row,
    folder_from_row,
    parse_cx,
    parse_dtm,
    submission_set_from_row,
)
from espace.service import Operation
from espace.store import visibility_clause
from espace.trace import Target

E = RegistryErrorCode

FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
FIND_DOCUMENTS_BY_REFERENCE_ID = "urn:uuid:12941a89-e02e-4be5-967c-ce4bfc8fe492"
FIND_SUBMISSION_SETS = "urn:uuid:f26abbcb-ac74-4422-8a30-edb644bbc1a9"
FIND_FOLDERS = "urn:uuid:958f3006-baad-4929-a4de-ff1114824431"
GET_ALL = "urn:uuid:10b545ea-725c-446d-9b95-8aeb444eddf3"
GET_DOCUMENTS = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"
GET_FOLDERS = "urn:uuid:5737b14c-8a1a-4539-b659-e03a34a5e1e4"
GET_ASSOCIATIONS = "urn:uuid:a7ae438b-4bc2-4642-93e9-be891f7bb155"
GET_DOCUMENTS_AND_ASSOCIATIONS = "urn:uuid:bab9529a-4a10-40b3-a01f-f68a615d247a"
GET_SUBMISSION_SETS = "urn:uuid:51224314-5390-4169-9b91-b1980040715a"
GET_SUBMISSION_SET_AND_CONTENTS = "urn:uuid:e8e3cb2c-e39c-46b9-99e4-c12f57260b83"
GET_FOLDER_AND_CONTENTS = "urn:uuid:b909a503-523d-4517-8acf-8e5834dfc4c7"
GET_FOLDERS_FOR_DOCUMENT = "urn:uuid:10cae35a-c7f9-4cf5-b61e-fc3278ffb578"
GET_RELATED_DOCUMENTS = "urn:uuid:d90e5407-b356-4d91-a89f-873917b4b0e6"


@dataclass(frozen=True)
class Param:
    name: str
    opt: str  # R | O | O1
    multiple: bool = False


@dataclass(frozen=True)
class QuerySpec:
    name: str
    params: tuple[Param, ...]
    by_name: dict[str, Param] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        self.by_name.update({p.name: p for p in self.params})


def _p(name: str, opt: str = "O", multiple: bool = False) -> Param:
    return Param(name, opt, multiple)


_DE_FIND = (
    _p("$XDSDocumentEntryClassCode", multiple=True),
    _p("$XDSDocumentEntryTypeCode", multiple=True),
    _p("$XDSDocumentEntryPracticeSettingCode", multiple=True),
    _p("$XDSDocumentEntryCreationTimeFrom"),
    _p("$XDSDocumentEntryCreationTimeTo"),
    _p("$XDSDocumentEntryServiceStartTimeFrom"),
    _p("$XDSDocumentEntryServiceStartTimeTo"),
    _p("$XDSDocumentEntryServiceStopTimeFrom"),
    _p("$XDSDocumentEntryServiceStopTimeTo"),
    _p("$XDSDocumentEntryHealthcareFacilityTypeCode", multiple=True),
    _p("$XDSDocumentEntryEventCodeList", multiple=True),
    _p("$XDSDocumentEntryConfidentialityCode", multiple=True),
    _p("$XDSDocumentEntryAuthorPerson", multiple=True),
    _p("$XDSDocumentEntryFormatCode", multiple=True),
    _p("$XDSDocumentEntryStatus", "R", True),
    _p("$XDSDocumentEntryType", multiple=True),
)
_HOME = _p("$homeCommunityId")
_CONTENT_FILTERS = (
    _p("$XDSDocumentEntryFormatCode", multiple=True),
    _p("$XDSDocumentEntryConfidentialityCode", multiple=True),
    _p("$XDSDocumentEntryType", multiple=True),
    _HOME,
)

QUERIES: dict[str, QuerySpec] = {
    FIND_DOCUMENTS: QuerySpec("FindDocuments", (_p("$XDSDocumentEntryPatientId", "R"), *_DE_FIND)),
    FIND_DOCUMENTS_BY_REFERENCE_ID: QuerySpec(
        "FindDocumentsByReferenceId",
        (
            _p("$XDSDocumentEntryPatientId", "R"),
            _p("$XDSDocumentEntryReferenceIdList", "R", True),
            *_DE_FIND,
        ),
    ),
    FIND_SUBMISSION_SETS: QuerySpec(
        "FindSubmissionSets",
        (
            _p("$XDSSubmissionSetPatientId", "R"),
            _p("$XDSSubmissionSetSourceId", multiple=True),
            _p("$XDSSubmissionSetSubmissionTimeFrom"),
            _p("$XDSSubmissionSetSubmissionTimeTo"),
            _p("$XDSSubmissionSetAuthorPerson"),
            _p("$XDSSubmissionSetContentType", multiple=True),
            _p("$XDSSubmissionSetStatus", "R", True),
        ),
    ),
    FIND_FOLDERS: QuerySpec(
        "FindFolders",
        (
            _p("$XDSFolderPatientId", "R"),
            _p("$XDSFolderLastUpdateTimeFrom"),
            _p("$XDSFolderLastUpdateTimeTo"),
            _p("$XDSFolderCodeList", multiple=True),
            _p("$XDSFolderStatus", "R", True),
        ),
    ),
    GET_ALL: QuerySpec(
        "GetAll",
        (
            _p("$patientId", "R"),
            _p("$XDSDocumentEntryStatus", "R", True),
            _p("$XDSSubmissionSetStatus", "R", True),
            _p("$XDSFolderStatus", "R", True),
            _p("$XDSDocumentEntryFormatCode", multiple=True),
            _p("$XDSDocumentEntryConfidentialityCode", multiple=True),
            _p("$XDSDocumentEntryType", multiple=True),
        ),
    ),
    GET_DOCUMENTS: QuerySpec(
        "GetDocuments",
        (
            _p("$XDSDocumentEntryEntryUUID", "O1", True),
            _p("$XDSDocumentEntryUniqueId", "O1", True),
            _HOME,
        ),
    ),
    GET_FOLDERS: QuerySpec(
        "GetFolders",
        (_p("$XDSFolderEntryUUID", "O1", True), _p("$XDSFolderUniqueId", "O1", True), _HOME),
    ),
    GET_ASSOCIATIONS: QuerySpec("GetAssociations", (_p("$uuid", "R", True), _HOME)),
    GET_DOCUMENTS_AND_ASSOCIATIONS: QuerySpec(
        "GetDocumentsAndAssociations",
        (
            _p("$XDSDocumentEntryEntryUUID", "O1", True),
            _p("$XDSDocumentEntryUniqueId", "O1", True),
            _HOME,
        ),
    ),
    GET_SUBMISSION_SETS: QuerySpec("GetSubmissionSets", (_p("$uuid", "R", True), _HOME)),
    GET_SUBMISSION_SET_AND_CONTENTS: QuerySpec(
        "GetSubmissionSetAndContents",
        (
            _p("$XDSSubmissionSetEntryUUID", "O1"),
            _p("$XDSSubmissionSetUniqueId", "O1"),
            *_CONTENT_FILTERS,
        ),
    ),
    GET_FOLDER_AND_CONTENTS: QuerySpec(
        "GetFolderAndContents",
        (_p("$XDSFolderEntryUUID", "O1"), _p("$XDSFolderUniqueId", "O1"), *_CONTENT_FILTERS),
    ),
    GET_FOLDERS_FOR_DOCUMENT: QuerySpec(
        "GetFoldersForDocument",
        (_p("$XDSDocumentEntryEntryUUID", "O1"), _p("$XDSDocumentEntryUniqueId", "O1"), _HOME),
    ),
    GET_RELATED_DOCUMENTS: QuerySpec(
        "GetRelatedDocuments",
        (
            _p("$XDSDocumentEntryEntryUUID", "O1"),
            _p("$XDSDocumentEntryUniqueId", "O1"),
            _p("$AssociationTypes", "R", True),
            _p("$XDSDocumentEntryType", multiple=True),
            _HOME,
        ),
    ),
}
QUERY_IDS_BY_NAME = {spec.name: query_id for query_id, spec in QUERIES.items()}


# Parameters whose values are coded "code^^scheme" (ITI TF-2a 3.18.4.1.2.3.4).
CODED_PARAMS = frozenset(
    {
        "$XDSDocumentEntryClassCode",
        "$XDSDocumentEntryTypeCode",
        "$XDSDocumentEntryPracticeSettingCode",
        "$XDSDocumentEntryHealthcareFacilityTypeCode",
        "$XDSDocumentEntryEventCodeList",
        "$XDSDocumentEntryConfidentialityCode",
        "$XDSDocumentEntryFormatCode",
        "$XDSSubmissionSetContentType",
        "$XDSFolderCodeList",
    }
)


def _is_coded_value(value: str) -> bool:
    code, sep, scheme = value.partition("^^")
    return bool(sep and code.strip() and scheme.strip() and "^^" not in scheme)


def validate(request: StoredQueryRequest) -> QuerySpec:
    """Check the query id and the parameters' presence and multiplicity (ITI TF-2a 3.18.4.1.3)."""
    spec = QUERIES.get(request.query_id)
    if spec is None:
        raise RegistryError(
            E.UNKNOWN_STORED_QUERY,
            f"unknown stored query {request.query_id}",
            location=request.query_id,
        )
    # Parameters a query does not define are ignored, not refused: "A Document Registry is
    # required to ignore parameters it does not understand" (NIST 11897/practicesetting_scheme,
    # ITI TF-2a 3.18.4.1.2.3.7); a removed XDS.a parameter fails only through the values it
    # comes with (11897/old_scheme: a code not in "code^^scheme" form).
    for param in spec.params:
        slots = request.params.get(param.name)
        if slots is None:
            if param.opt == "R":
                raise RegistryError(
                    E.STORED_QUERY_MISSING_PARAM, f"{param.name} is required", location=param.name
                )
            continue
        values = [v for slot in slots for v in slot]
        if not values:
            raise RegistryError(
                E.STORED_QUERY_MISSING_PARAM, f"{param.name} has no value", location=param.name
            )
        if not param.multiple and (len(slots) > 1 or len(values) > 1):
            raise RegistryError(
                E.STORED_QUERY_PARAM_NUMBER, f"{param.name} takes one value", location=param.name
            )
        if param.name in CODED_PARAMS:
            for value in values:
                if not _is_coded_value(value):
                    # ITI TF-2a 3.18.4.1.2.3.4: a coded parameter value is "code^^scheme"
                    raise RegistryError(
                        E.REGISTRY_ERROR,
                        f"{param.name}: {value!r} is not a code^^scheme value",
                        location=param.name,
                    )
    group = [p.name for p in spec.params if p.opt == "O1"]
    given = [name for name in group if name in request.params]
    if group and not given:
        raise RegistryError(
            E.STORED_QUERY_MISSING_PARAM,
            f"one of {', '.join(group)} is required",
            location=group[0],
        )
    if len(given) > 1:
        raise RegistryError(
            E.STORED_QUERY_PARAM_NUMBER, f"only one of {', '.join(group)}", location=given[1]
        )
    return spec


_KEYS = len(KEY_COLUMNS)


class DocumentView(RowColumns, Protocol):
    """A document row as the stored queries read it (``_Query.documents``): the key columns,
    ``ebrim``, ``metadata_json``, by name or by position."""

    @property
    def ebrim(self) -> str | None: ...
    @property
    def metadata_json(self) -> dict[str, Any] | None: ...
    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Any, ...]: ...


class _Query:
    """One stored query evaluation inside an operation."""

    def __init__(
        self,
        op: Operation,
        request: StoredQueryRequest,
        config: RegistryConfig,
        *,
        prerendered: bool = False,
    ) -> None:
        assert op.space is not None
        self.op = op
        self.space_id = op.space.id
        self.ins = op.space.ins
        self.request = request
        self.config = config
        self.visibility = visibility_clause(op.visibility())
        # pre-rendered fragments for a LeafClass answer, when the face installed a renderer
        self.fragments = (
            prerendered and request.return_type == "LeafClass" and installed_tag() is not None
        )
        # lean: the rows' key columns (and fragments) only, no metadata_json, no full entries;
        # possible when no parameter is checked in Python on the full metadata (scheme_filter)
        self.lean = (
            prerendered
            and (self.fragments or request.return_type == "ObjectRef")
            and not any(name in request.params for name in _METADATA_CHECKED)
        )

    # -- parameters
    def values(self, name: str) -> list[str]:
        return [v for slot in self.request.params.get(name, []) for v in slot]

    def slots(self, name: str) -> list[list[str]]:
        return self.request.params.get(name, [])

    def one(self, name: str) -> str | None:
        values = self.values(name)
        return values[0] if values else None

    def check_patient(self, name: str) -> None:
        value = self.one(name) or ""
        pid, _ = parse_cx(value)
        if pid != self.ins:
            raise RegistryError(
                E.PATIENT_ID_DOES_NOT_MATCH,
                "the queried patient is not the patient of the request",
                location=value,
            )

    def statuses(self, name: str) -> list[str]:
        names = []
        for urn in self.values(name):
            status = STATUS_BY_URN.get(urn)
            if status is None:
                raise RegistryError(E.REGISTRY_ERROR, f"unknown status {urn}", location=name)
            names.append(status)
        return names

    def time(self, name: str) -> datetime | None:
        value = self.one(name)
        if value is None:
            return None
        try:
            return parse_dtm(value)
        except ValueError:
            raise RegistryError(
                E.REGISTRY_ERROR, f"{name}: bad time {value!r}", location=name
            ) from None

    # -- documents
    def documents(self, *clauses: ColumnElement[bool]) -> list[DocumentView]:
        """Visible entries of this space matching ``clauses``, capped (XDSTooManyResults).

        Plain rows (no ORM identity map): the key columns of ``espace.registry.prerender``,
        the stored fragment when the answer uses fragments, ``metadata_json`` unless lean.
        """
        d = DocumentEntryRow
        limit = self.config.max_query_results
        statement = (
            select(
                *KEY_COLUMNS,
                d.ebrim if self.fragments else null().label("ebrim"),
                null().label("metadata_json") if self.lean else d.metadata_json,
            )
            .where(d.space_id == self.space_id, self.visibility, *clauses)
            .order_by(d.submission_time, d.entry_uuid)
            .limit(limit + 1)
        )
        return cast(list[DocumentView], list(self.op.session.execute(statement)))

    def entries(self, rows: list[DocumentView]) -> list[DocumentEntry]:
        """The full entries of ``rows`` that pass ``scheme_filter``; none when lean."""
        if self.lean:
            return []
        return self.scheme_filter([entry_for(r, r.metadata_json) for r in rows])

    def entry_fragments(self, rows: list[DocumentView]) -> list[str]:
        """The stored fragment of each row; stale or missing ones rendered and written back."""
        fragments: list[str] = []
        stale: dict[int, DocumentView] = {}
        for index, row in enumerate(rows):
            # positions: KEY_COLUMNS, then ebrim (see ``documents``)
            fragment = fresh_fragment(row[:_KEYS], row[_KEYS])
            if fragment is None:
                stale[index] = row
                fragment = ""
            fragments.append(fragment)
        if stale:
            full = self.full_entries(list(stale.values()))
            written: list[tuple[KeyValues, str]] = []
            for index, row in stale.items():
                values = row[:_KEYS]
                rendered = render_entry(values, full[row.entry_uuid])
                assert rendered is not None  # self.fragments: a renderer is installed
                written.append((values, rendered[0]))
                fragments[index] = rendered[1]
            fill_missing(self.op.session, written)
        return fragments

    def full_entries(self, rows: list[DocumentView]) -> dict[str, DocumentEntry]:
        """Full entries of ``rows``, the metadata of lean rows read in one statement."""
        if not self.lean:
            return {r.entry_uuid: entry_for(r, r.metadata_json) for r in rows}
        metadata: dict[str, dict[str, Any]] = {
            entry_uuid: data
            for entry_uuid, data in self.op.session.execute(
                select(DocumentEntryRow.entry_uuid, DocumentEntryRow.metadata_json).where(
                    DocumentEntryRow.entry_uuid.in_([r.entry_uuid for r in rows])
                )
            )
        }
        return {r.entry_uuid: entry_for(r, metadata.get(r.entry_uuid)) for r in rows}

    def document_filters(self) -> list[ColumnElement[bool]]:
        d = DocumentEntryRow
        clauses: list[ColumnElement[bool]] = []
        status = self.statuses("$XDSDocumentEntryStatus")
        if status:
            clauses.append(d.status.in_(status))
        types = self.values("$XDSDocumentEntryType") or [STABLE_ENTRY]
        clauses.append(
            d.object_type.in_([t for t in types if t in (STABLE_ENTRY, ON_DEMAND_ENTRY)])
        )
        for name, column in (
            ("$XDSDocumentEntryClassCode", d.class_code),
            ("$XDSDocumentEntryTypeCode", d.type_code),
            ("$XDSDocumentEntryPracticeSettingCode", d.practice_setting_code),
            ("$XDSDocumentEntryHealthcareFacilityTypeCode", d.healthcare_facility_type_code),
            ("$XDSDocumentEntryFormatCode", d.format_code),
        ):
            codes = self.values(name)
            if codes:
                clauses.append(column.in_([_code(v).code for v in codes]))
        times: tuple[tuple[str, InstrumentedAttribute[datetime | None]], ...] = (
            ("$XDSDocumentEntryCreationTime", d.creation_time),
            ("$XDSDocumentEntryServiceStartTime", d.service_start_time),
            ("$XDSDocumentEntryServiceStopTime", d.service_stop_time),
        )
        for name, when in times:
            low, high = self.time(name + "From"), self.time(name + "To")
            if low is not None:
                clauses.append(when >= low)
            if high is not None:
                clauses.append(when < high)
        for slot in self.slots("$XDSDocumentEntryEventCodeList"):
            clauses.append(_any_like(d.event_codes, [_code(v).key() for v in slot]))
        for slot in self.slots("$XDSDocumentEntryConfidentialityCode"):
            clauses.append(_any_like(d.confidentiality_codes, [_code(v).code for v in slot]))
        authors = self.values("$XDSDocumentEntryAuthorPerson")
        if authors:
            clauses.append(
                or_(
                    *(d.author_persons.like(f"%|{a}|%") for a in authors),
                    *(d.author_persons.like(f"%{a}%") for a in authors if "%" in a or "_" in a),
                )
            )
        return clauses

    def scheme_filter(self, entries: list[DocumentEntry]) -> list[DocumentEntry]:
        """Codes with a scheme also match on the scheme (SQL matched the code only)."""
        checks: list[tuple[str, str]] = [
            ("$XDSDocumentEntryClassCode", "class_code"),
            ("$XDSDocumentEntryTypeCode", "type_code"),
            ("$XDSDocumentEntryPracticeSettingCode", "practice_setting_code"),
            ("$XDSDocumentEntryHealthcareFacilityTypeCode", "healthcare_facility_type_code"),
            ("$XDSDocumentEntryFormatCode", "format_code"),
        ]
        kept = []
        for entry in entries:
            ok = True
            for name, attribute in checks:
                wanted = [_code(v) for v in self.values(name)]
                have: Code | None = getattr(entry, attribute)
                if wanted and have is not None and not any(_same(w, have) for w in wanted):
                    ok = False
            for slot in self.slots("$XDSDocumentEntryConfidentialityCode"):
                wanted = [_code(v) for v in slot]
                if not any(_same(w, c) for w in wanted for c in entry.confidentiality_codes):
                    ok = False
            # ITI TF-2a 3.18.4.1.2.3.7.14: an entry matches when one of its referenceIdList
            # values (CXi) equals one of the given values; slots AND, values OR.
            references = self.slots("$XDSDocumentEntryReferenceIdList")
            have_ids = set(entry.reference_ids) | set(
                entry.extra_slots.get("urn:ihe:iti:xds:2013:referenceIdList", [])
            )
            for slot in references:
                if not set(slot) & have_ids:
                    ok = False
            if ok:
                kept.append(entry)
        return kept

    def capped(self, rows: Sequence[object]) -> None:
        if len(rows) > self.config.max_query_results:
            raise RegistryError(
                E.TOO_MANY_RESULTS,
                f"more than {self.config.max_query_results} results",
                location=self.request.query_id,
            )

    def docs_by_ids(self, uuid_param: str, uid_param: str) -> list[DocumentView]:
        d = DocumentEntryRow
        uuids = self.values(uuid_param)
        if uuids:
            return self.documents(d.entry_uuid.in_(uuids))
        return self.documents(d.unique_id.in_(self.values(uid_param)))

    # -- other objects
    def associations(self, *clauses: ColumnElement[bool]) -> list[AssociationRow]:
        return list(
            self.op.session.execute(
                select(AssociationRow).where(AssociationRow.space_id == self.space_id, *clauses)
            ).scalars()
        )

    def hidden_documents(self, uuids: Iterable[str]) -> set[str]:
        """Entry UUIDs among ``uuids`` that are documents the caller may not see."""
        uuids = set(uuids)
        if not uuids:
            return set()
        d = DocumentEntryRow
        all_docs = set(
            self.op.session.execute(
                select(d.entry_uuid).where(d.space_id == self.space_id, d.entry_uuid.in_(uuids))
            ).scalars()
        )
        visible = set(
            self.op.session.execute(
                select(d.entry_uuid).where(
                    d.space_id == self.space_id, d.entry_uuid.in_(uuids), self.visibility
                )
            ).scalars()
        )
        return all_docs - visible

    def hidden_associations(self, uuids: Iterable[str]) -> set[str]:
        """Associations among ``uuids`` that point at a hidden entry (HasMember of one)."""
        uuids = set(uuids)
        if not uuids:
            return set()
        rows = self.associations(AssociationRow.entry_uuid.in_(uuids))
        hidden_docs = self.hidden_documents(
            {r.target_uuid for r in rows} | {r.source_uuid for r in rows}
        )
        return {
            r.entry_uuid
            for r in rows
            if r.target_uuid in hidden_docs or r.source_uuid in hidden_docs
        }

    def visible_associations(self, rows: list[AssociationRow]) -> list[AssociationRow]:
        ends = {r.source_uuid for r in rows} | {r.target_uuid for r in rows}
        hidden = self.hidden_documents(ends) | self.hidden_associations(ends)
        return [r for r in rows if r.source_uuid not in hidden and r.target_uuid not in hidden]

    def submission_sets(self, *clauses: ColumnElement[bool]) -> list[SubmissionSetRow]:
        return list(
            self.op.session.execute(
                select(SubmissionSetRow)
                .where(SubmissionSetRow.space_id == self.space_id, *clauses)
                .order_by(SubmissionSetRow.submission_time)
            ).scalars()
        )

    def folders(self, *clauses: ColumnElement[bool]) -> list[FolderRow]:
        return list(
            self.op.session.execute(
                select(FolderRow).where(FolderRow.space_id == self.space_id, *clauses)
            ).scalars()
        )

    def ss_has_visible_member(self, rows: list[SubmissionSetRow]) -> list[SubmissionSetRow]:
        """A submission set whose every document is hidden is not disclosed."""
        kept = []
        for row in rows:
            members = self.associations(
                AssociationRow.source_uuid == row.entry_uuid,
                AssociationRow.association_type == HAS_MEMBER,
            )
            targets = {m.target_uuid for m in members}
            hidden = self.hidden_documents(targets)
            if not targets or targets - hidden:
                kept.append(row)
        return kept


# parameters ``scheme_filter`` checks on the full metadata (SQL matched the code only)
_METADATA_CHECKED = frozenset(
    {
        "$XDSDocumentEntryClassCode",
        "$XDSDocumentEntryTypeCode",
        "$XDSDocumentEntryPracticeSettingCode",
        "$XDSDocumentEntryHealthcareFacilityTypeCode",
        "$XDSDocumentEntryFormatCode",
        "$XDSDocumentEntryConfidentialityCode",
        "$XDSDocumentEntryReferenceIdList",
    }
)


def _code(value: str) -> Code:
    code, _, scheme = value.partition("^^")
    return Code(code, scheme)


def _same(wanted: Code, have: Code) -> bool:
    return wanted.code == have.code and (not wanted.scheme or wanted.scheme == have.scheme)


def _any_like(column: InstrumentedAttribute[str], values: list[str]) -> ColumnElement[bool]:
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")

    return or_(*(column.like(f"%|{esc(v)}|%", escape="\\") for v in values))


def run_stored_query(
    op: Operation,
    request: StoredQueryRequest,
    *,
    config: RegistryConfig,
    prerendered: bool = False,
) -> QueryResult:
    """Evaluate one stored query for ``op.actor`` on ``op.space`` (ITI TF-2a 3.18.4.1.3).

    ``prerendered``: the caller renders entries with the installed entry renderer, so a
    LeafClass result carries ``entry_fragments`` (``espace.registry.prerender``), and the
    entries themselves are only built when a parameter is checked on the full metadata
    (``result.documents`` is empty otherwise; ObjectRef answers need the ids only).
    """
    spec = validate(request)
    q = _Query(op, request, config, prerendered=prerendered)
    result = QueryResult(return_type=request.return_type)
    d, a = DocumentEntryRow, AssociationRow
    docs: list[DocumentView] = []
    sets: list[SubmissionSetRow] = []
    folders: list[FolderRow] = []
    assocs: list[AssociationRow] = []
    name = spec.name
    if name in ("FindDocuments", "FindDocumentsByReferenceId"):
        q.check_patient("$XDSDocumentEntryPatientId")
        docs = q.documents(*q.document_filters())
    elif name == "FindSubmissionSets":
        q.check_patient("$XDSSubmissionSetPatientId")
        s = SubmissionSetRow
        clauses: list[ColumnElement[bool]] = [s.status.in_(q.statuses("$XDSSubmissionSetStatus"))]
        if q.values("$XDSSubmissionSetSourceId"):
            clauses.append(s.source_id.in_(q.values("$XDSSubmissionSetSourceId")))
        if q.values("$XDSSubmissionSetContentType"):
            clauses.append(
                s.content_type_code.in_(
                    [_code(v).code for v in q.values("$XDSSubmissionSetContentType")]
                )
            )
        low, high = (
            q.time("$XDSSubmissionSetSubmissionTimeFrom"),
            q.time("$XDSSubmissionSetSubmissionTimeTo"),
        )
        if low is not None:
            clauses.append(s.submission_time >= low)
        if high is not None:
            clauses.append(s.submission_time < high)
        sets = q.ss_has_visible_member(q.submission_sets(*clauses))
        author = q.one("$XDSSubmissionSetAuthorPerson")
        if author:
            pattern = author.replace("%", "").replace("_", "")
            sets = [
                r
                for r in sets
                if any(pattern in p.person for p in submission_set_from_row(r).authors)
            ]
    elif name == "FindFolders":
        q.check_patient("$XDSFolderPatientId")
        f = FolderRow
        clauses = [f.status.in_(q.statuses("$XDSFolderStatus"))]
        low, high = q.time("$XDSFolderLastUpdateTimeFrom"), q.time("$XDSFolderLastUpdateTimeTo")
        if low is not None:
            clauses.append(f.last_update_time >= low)
        if high is not None:
            clauses.append(f.last_update_time < high)
        for slot in q.slots("$XDSFolderCodeList"):
            clauses.append(_any_like(f.code_list, [_code(v).key() for v in slot]))
        folders = q.folders(*clauses)
    elif name == "GetAll":
        q.check_patient("$patientId")
        docs = q.documents(*q.document_filters())
        sets = q.ss_has_visible_member(
            q.submission_sets(SubmissionSetRow.status.in_(q.statuses("$XDSSubmissionSetStatus")))
        )
        folders = q.folders(FolderRow.status.in_(q.statuses("$XDSFolderStatus")))
        assocs = q.visible_associations(q.associations())
    elif name in ("GetDocuments", "GetDocumentsAndAssociations"):
        docs = q.docs_by_ids("$XDSDocumentEntryEntryUUID", "$XDSDocumentEntryUniqueId")
        if name == "GetDocumentsAndAssociations":
            ids = [r.entry_uuid for r in docs]
            assocs = q.visible_associations(
                q.associations(or_(a.source_uuid.in_(ids), a.target_uuid.in_(ids)))
            )
    elif name == "GetFolders":
        uuids = q.values("$XDSFolderEntryUUID")
        folders = q.folders(
            FolderRow.entry_uuid.in_(uuids)
            if uuids
            else FolderRow.unique_id.in_(q.values("$XDSFolderUniqueId"))
        )
    elif name == "GetAssociations":
        uuids = q.values("$uuid")
        hidden = q.hidden_documents(uuids)
        visible_ids = [u for u in uuids if u not in hidden]
        assocs = q.visible_associations(
            q.associations(or_(a.source_uuid.in_(visible_ids), a.target_uuid.in_(visible_ids)))
        )
    elif name == "GetSubmissionSets":
        uuids = [u for u in q.values("$uuid") if u not in q.hidden_documents(q.values("$uuid"))]
        assocs = q.associations(a.target_uuid.in_(uuids), a.association_type == HAS_MEMBER)
        set_ids = [r.source_uuid for r in assocs]
        sets = q.submission_sets(SubmissionSetRow.entry_uuid.in_(set_ids))
        assocs = [r for r in assocs if r.source_uuid in {s.entry_uuid for s in sets}]
    elif name in ("GetSubmissionSetAndContents", "GetFolderAndContents"):
        is_ss = name == "GetSubmissionSetAndContents"
        prefix = "$XDSSubmissionSet" if is_ss else "$XDSFolder"
        uid = q.one(prefix + "EntryUUID")
        owner_rows: list[SubmissionSetRow] | list[FolderRow]
        if is_ss:
            owner_rows = q.submission_sets(
                SubmissionSetRow.entry_uuid == uid
                if uid
                else SubmissionSetRow.unique_id == (q.one(prefix + "UniqueId") or "")
            )
        else:
            owner_rows = q.folders(
                FolderRow.entry_uuid == uid
                if uid
                else FolderRow.unique_id == (q.one(prefix + "UniqueId") or "")
            )
        if owner_rows:
            owner = owner_rows[0].entry_uuid
            members = q.associations(a.source_uuid == owner, a.association_type == HAS_MEMBER)
            member_ids = {m.target_uuid for m in members}
            docs = (
                q.documents(d.entry_uuid.in_(member_ids), *q.document_filters())
                if member_ids
                else []
            )
            doc_ids = {r.entry_uuid for r in docs}
            if is_ss:
                sets = list(owner_rows)  # type: ignore[arg-type]
                folders = q.folders(FolderRow.entry_uuid.in_(member_ids))
                folder_ids = {f.entry_uuid for f in folders}
                inner = q.associations(
                    a.entry_uuid.in_(member_ids),
                    a.source_uuid.in_(folder_ids),
                    a.target_uuid.in_(doc_ids),
                )
                inner_ids = {r.entry_uuid for r in inner}
                # ITI TF-2a 3.18.4.1.2.3.7.9: the set's HasMember associations to its documents,
                # folders and the folder-document associations it submitted (NIST 12327)
                assocs = [
                    m for m in members if m.target_uuid in doc_ids | folder_ids | inner_ids
                ] + inner
            else:
                folders = list(owner_rows)  # type: ignore[arg-type]
                assocs = [m for m in members if m.target_uuid in doc_ids]
    elif name == "GetFoldersForDocument":
        target_docs = q.docs_by_ids("$XDSDocumentEntryEntryUUID", "$XDSDocumentEntryUniqueId")
        ids = [r.entry_uuid for r in target_docs]
        links = q.associations(a.target_uuid.in_(ids), a.association_type == HAS_MEMBER)
        folders = q.folders(FolderRow.entry_uuid.in_([r.source_uuid for r in links]))
    elif name == "GetRelatedDocuments":
        origin = q.docs_by_ids("$XDSDocumentEntryEntryUUID", "$XDSDocumentEntryUniqueId")
        types = q.values("$AssociationTypes")
        if origin:
            oid = origin[0].entry_uuid
            links = q.associations(
                or_(a.source_uuid == oid, a.target_uuid == oid), a.association_type.in_(types)
            )
            related = {r.source_uuid for r in links} | {r.target_uuid for r in links}
            docs = q.documents(d.entry_uuid.in_(related)) if links else []
            visible = {r.entry_uuid for r in docs}
            assocs = [r for r in links if r.source_uuid in visible and r.target_uuid in visible]
            if not assocs:
                docs = []
    q.capped(docs)
    entries = q.entries(docs)
    if not q.lean:  # scheme_filter may have dropped rows
        kept = {e.id for e in entries}
        docs = [r for r in docs if r.entry_uuid in kept]
    entry_ids = [r.entry_uuid for r in docs]
    total = len(entry_ids) + len(sets) + len(folders) + len(assocs)
    if total > config.max_query_results:
        raise RegistryError(
            E.TOO_MANY_RESULTS,
            f"more than {config.max_query_results} results",
            location=request.query_id,
        )
    result.documents = entries
    if q.fragments:
        result.entry_fragments = q.entry_fragments(docs)
    result.submission_sets = [submission_set_from_row(r) for r in sets]
    result.folders = [folder_from_row(r) for r in folders]
    kept_ids = (
        set(entry_ids) | {s.id for s in result.submission_sets} | {f.id for f in result.folders}
    )
    result.associations = [
        association_from_row(r)
        for r in assocs
        if name in ("GetAssociations", "GetAll", "GetSubmissionSets")
        or r.source_uuid in kept_ids
        or r.target_uuid in kept_ids
    ]
    if request.return_type == "ObjectRef":
        result.object_refs = [
            *entry_ids,
            *(s.id for s in result.submission_sets),
            *(f.id for f in result.folders),
            *(x.id for x in result.associations),
        ]
    op.target = Target("StoredQuery", request.query_id, "")
    op.detail.update({"query": name, "returned": len(entry_ids)})
    return result


__all__ = ["QUERIES", "QUERY_IDS_BY_NAME", "run_stored_query", "validate"]
