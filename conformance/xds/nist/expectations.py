"""The checks a NIST test step makes on a response: status, error codes, ``ExpectedContents``.

Status values are those of ebRS 3.0 / ITI TF-3 4.2.4.1 (``...:ResponseStatusType:Success``,
``Failure``, ``urn:ihe:iti:2007:ResponseStatusType:PartialSuccess``). ``ExpectedContents``
follows the toolkit's ``QueryExpected`` vocabulary (counts of objects by kind, "SS with one
document", "all documents approved"...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from lxml import etree

from conformance.xds.nist.metadata import FOLDER_NODE, SS_NODE
from xds import ns

APPROVED: Final = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
DEPRECATED: Final = "urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated"
HAS_MEMBER: Final = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
XFRM: Final = "urn:ihe:iti:2007:AssociationType:XFRM"
XFRM_RPLC: Final = "urn:ihe:iti:2007:AssociationType:XFRM_RPLC"
SS_UNIQUE_ID: Final = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"
FOLDER_UNIQUE_ID: Final = "urn:uuid:75df8f67-9973-4fbe-a900-df66cefecc5a"


def response_status(body: etree._Element) -> str:
    """The status of a RegistryResponse, AdhocQueryResponse or RetrieveDocumentSetResponse."""
    status = body.get("status")
    if status is None:
        inner = body.find(f"{{{ns.RS}}}RegistryResponse")
        status = inner.get("status") if inner is not None else None
    return status or ""


def status_word(status: str) -> str:
    return status.rsplit(":", 1)[-1]


def registry_errors(body: etree._Element) -> list[tuple[str, str, str]]:
    """(errorCode, severity word, codeContext) of every RegistryError."""
    return [
        (
            error.get("errorCode", ""),
            error.get("severity", "").rsplit(":", 1)[-1],
            error.get("codeContext", ""),
        )
        for error in body.iter(f"{{{ns.RS}}}RegistryError")
    ]


@dataclass
class Contents:
    """The registry objects of a query response, by kind."""

    documents: list[etree._Element]
    submission_sets: list[etree._Element]
    folders: list[etree._Element]
    associations: list[etree._Element]
    object_refs: list[etree._Element]

    @classmethod
    def of(cls, body: etree._Element) -> Contents:
        found = body.find(f"{{{ns.RIM}}}RegistryObjectList")
        objects = list(found) if found is not None else []
        packages = [o for o in objects if o.tag == f"{{{ns.RIM}}}RegistryPackage"]
        classifications = [o for o in objects if o.tag == f"{{{ns.RIM}}}Classification"]

        def is_kind(package: etree._Element, node: str, unique_scheme: str) -> bool:
            pid = package.get("id")
            nested = package.findall(f"{{{ns.RIM}}}Classification") + [
                c for c in classifications if c.get("classifiedObject") == pid
            ]
            if any(c.get("classificationNode") == node for c in nested):
                return True
            return any(
                e.get("identificationScheme") == unique_scheme
                for e in package.findall(f"{{{ns.RIM}}}ExternalIdentifier")
            )

        return cls(
            documents=[o for o in objects if o.tag == f"{{{ns.RIM}}}ExtrinsicObject"],
            submission_sets=[p for p in packages if is_kind(p, SS_NODE, SS_UNIQUE_ID)],
            folders=[p for p in packages if is_kind(p, FOLDER_NODE, FOLDER_UNIQUE_ID)],
            associations=[o for o in objects if o.tag == f"{{{ns.RIM}}}Association"],
            object_refs=[o for o in objects if o.tag == f"{{{ns.RIM}}}ObjectRef"],
        )

    def all(self) -> list[etree._Element]:
        return [
            *self.documents,
            *self.submission_sets,
            *self.folders,
            *self.associations,
            *self.object_refs,
        ]

    def members(self, source: list[etree._Element], target: list[etree._Element]) -> int:
        sources = {s.get("id") for s in source}
        targets = {t.get("id") for t in target}
        return sum(
            1
            for a in self.associations
            if a.get("associationType") == HAS_MEMBER
            and a.get("sourceObject") in sources
            and a.get("targetObject") in targets
        )


def _all_status(objects: list[etree._Element], status: str) -> bool:
    """The toolkit's DocApp/DocDep checks: every entry has ``status`` (vacuously true when the
    query returned none, as NIST tests 30006/30007 expect an empty Approved result)."""
    return all(o.get("status") == status for o in objects)


def _count_status(objects: list[etree._Element], status: str) -> int:
    return sum(o.get("status") == status for o in objects)


def _shape(ss: int, docs: int, folders: int) -> Callable[[Contents], str | None]:
    def check(c: Contents) -> str | None:
        got = (len(c.submission_sets), len(c.documents), len(c.folders))
        if got != (ss, docs, folders):
            return (
                f"expected {ss} SubmissionSet(s), {docs} DocumentEntry(ies), {folders} "
                f"Folder(s); got {got[0]}, {got[1]}, {got[2]}"
            )
        if docs and c.members(c.submission_sets, c.documents) < docs:
            return "the SubmissionSet-to-DocumentEntry HasMember associations are missing"
        return None

    return check


_COUNTED: Final = {
    "Documents": lambda c: c.documents,
    "SubmissionSets": lambda c: c.submission_sets,
    "Folders": lambda c: c.folders,
    "Associations": lambda c: c.associations,
    "ObjectRefs": lambda c: c.object_refs,
}
_FLAGS: Final[dict[str, Callable[[Contents], str | None]]] = {
    "SSwithOneDoc": _shape(1, 1, 0),
    "SSwithTwoDoc": _shape(1, 2, 0),
    "SSwithOneFol": _shape(1, 0, 1),
    "SSwithOneDocOneFol": _shape(1, 1, 1),
    "SSwithTwoDocOneFol": _shape(1, 2, 1),
    "SSwithTwoDocOneFolOneDocInFol": lambda c: (
        _shape(1, 2, 1)(c)
        or (None if c.members(c.folders, c.documents) >= 1 else "no document is in the folder")
    ),
    "DocApp": lambda c: (
        None if _all_status(c.documents, APPROVED) else "not every DocumentEntry is Approved"
    ),
    "DocDep": lambda c: (
        None if _all_status(c.documents, DEPRECATED) else "not every DocumentEntry is Deprecated"
    ),
    "OneDocApp": lambda c: (
        None
        if _count_status(c.documents, APPROVED) == 1
        else f"{_count_status(c.documents, APPROVED)} Approved DocumentEntries, expected 1"
    ),
    "OneDocDep": lambda c: (
        None
        if _count_status(c.documents, DEPRECATED) == 1
        else f"{_count_status(c.documents, DEPRECATED)} Deprecated DocumentEntries, expected 1"
    ),
    "FolApp": lambda c: (
        None if _all_status(c.folders, APPROVED) else "not every Folder is Approved"
    ),
    "SSApproved": lambda c: (
        None if _all_status(c.submission_sets, APPROVED) else "not every SubmissionSet is Approved"
    ),
    "HasXFRM": lambda c: (
        None
        if any(a.get("associationType") == XFRM for a in c.associations)
        else "no XFRM association"
    ),
    "HasXFRM_RPLC": lambda c: (
        None
        if any(a.get("associationType") == XFRM_RPLC for a in c.associations)
        else "no XFRM_RPLC association"
    ),
    "None": lambda c: None if not c.all() else f"{len(c.all())} objects returned, expected none",
}


def check_contents(expected: etree._Element, body: etree._Element) -> list[str]:
    """Problems found against an ``<ExpectedContents>`` element (empty list: all good)."""
    contents = Contents.of(body)
    problems: list[str] = []
    for item in expected:
        if not isinstance(item.tag, str):
            continue
        name = etree.QName(item).localname
        if name in _COUNTED:
            want = int((item.get("count") or "0").strip())
            got = len(_COUNTED[name](contents))
            if got != want:
                problems.append(f"{name}: expected {want}, got {got}")
        elif name in _FLAGS:
            problem = _FLAGS[name](contents)
            if problem:
                problems.append(f"{name}: {problem}")
        else:
            problems.append(f"kit: unsupported expectation <{name}>")
    return problems
