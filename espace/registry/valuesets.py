"""Affinity-domain value sets the registry enforces (configuration ``AFFINITY_DOMAIN``).

- ``dmp`` (default): the DMP value sets of the ANS terminology server (ANS CI-SIS "Volet
  Partage de Documents de Santé", DMP JDV): classCode JDV_J57, typeCode JDV_J66 with the
  type->class correspondence ASS_X16, confidentialityCode JDV_J58 (1 to 4 codes),
  healthcareFacilityTypeCode JDV_J61, practiceSettingCode JDV_J62, formatCode JDV_J60,
  contentTypeCode JDV_J59. Files: ``espace/registry/data/*.csv`` (copies of
  ``reference/dmp/terminology/csv``).
- ``connectathon``: the IHE Connectathon affinity domain of the NIST XDS Toolkit
  (``codes.xml``, flattened to ``connectathon_codes.csv``).

A code is checked as the pair (code, codingScheme); a value-set row whose scheme is unknown
("(OID not found)") accepts any scheme for that code.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import files

from espace.registry.model import (
    Code,
    DocumentEntry,
    Folder,
    RegistryErrorCode,
    RegistryIssue,
    SubmissionSet,
)

_ANY_SCHEME = "*"


@dataclass(frozen=True)
class ValueSet:
    name: str
    pairs: frozenset[tuple[str, str]]

    def contains(self, code: Code) -> bool:
        return (code.code, code.scheme) in self.pairs or (code.code, _ANY_SCHEME) in self.pairs


@dataclass(frozen=True)
class AffinityDomain:
    """The coded attributes' value sets, plus the DMP's typeCode -> classCode map."""

    name: str
    sets: dict[str, ValueSet]
    type_to_class: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    max_confidentiality_codes: int | None = None
    mime_types: frozenset[str] | None = None

    def check_document(self, entry: DocumentEntry) -> list[RegistryIssue]:
        issues: list[RegistryIssue] = []
        where = f"DocumentEntry {entry.id}"
        singles = {
            "classCode": entry.class_code,
            "typeCode": entry.type_code,
            "formatCode": entry.format_code,
            "healthcareFacilityTypeCode": entry.healthcare_facility_type_code,
            "practiceSettingCode": entry.practice_setting_code,
        }
        for attribute, code in singles.items():
            if code is not None:
                issues += self._check(attribute, code, where)
        for code in entry.confidentiality_codes:
            issues += self._check("confidentialityCode", code, where)
        for code in entry.event_codes:
            issues += self._check("eventCodeList", code, where)
        limit = self.max_confidentiality_codes
        if limit is not None and len(entry.confidentiality_codes) > limit:
            issues.append(_issue(f"{where}: at most {limit} confidentialityCode", where))
        if self.type_to_class and entry.type_code and entry.class_code:
            expected = self.type_to_class.get((entry.type_code.code, entry.type_code.scheme))
            if expected and expected != (entry.class_code.code, entry.class_code.scheme):
                issues.append(
                    _issue(
                        f"{where}: typeCode {entry.type_code.code} requires classCode "
                        f"{expected[0]} (ASS_X16), not {entry.class_code.code}",
                        where,
                    )
                )
        if self.mime_types is not None and entry.mime_type not in self.mime_types:
            issues.append(_issue(f"{where}: mimeType {entry.mime_type!r} not allowed", where))
        return issues

    def check_submission_set(self, ss: SubmissionSet) -> list[RegistryIssue]:
        if ss.content_type_code is None:
            return []
        return self._check("contentTypeCode", ss.content_type_code, f"SubmissionSet {ss.id}")

    def check_folder(self, folder: Folder) -> list[RegistryIssue]:
        issues: list[RegistryIssue] = []
        for code in folder.codes:
            issues += self._check("folderCodeList", code, f"Folder {folder.id}")
        return issues

    def _check(self, attribute: str, code: Code, where: str) -> list[RegistryIssue]:
        value_set = self.sets.get(attribute)
        if value_set is None or value_set.contains(code):
            return []
        return [
            _issue(
                f"{where}: {attribute} {code.code!r} (scheme {code.scheme!r}) is not in "
                f"{value_set.name}",
                where,
            )
        ]


def _issue(message: str, location: str) -> RegistryIssue:
    return RegistryIssue(RegistryErrorCode.REGISTRY_METADATA_ERROR, message, location)


def _rows(name: str) -> list[dict[str, str]]:
    text = files("espace.registry.data").joinpath(name).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def _dmp_set(file: str, label: str) -> ValueSet:
    pairs = set()
    for row in _rows(file):
        oid = row["codeSystemOID"].strip()
        scheme = _ANY_SCHEME if not oid or oid.startswith("(") else oid.split()[0]
        pairs.add((row["code"].strip(), scheme))
    return ValueSet(label, frozenset(pairs))


@lru_cache(maxsize=4)
def affinity_domain(name: str = "dmp") -> AffinityDomain:
    """Load the named affinity domain (``dmp`` or ``connectathon``); unknown names: ``dmp``."""
    if name == "connectathon":
        by_type: dict[str, set[tuple[str, str]]] = {}
        for row in _rows("connectathon_codes.csv"):
            scheme = row["codingScheme"].strip() or _ANY_SCHEME
            by_type.setdefault(row["codeType"], set()).add((row["code"].strip(), scheme))
        sets = {
            attribute: ValueSet(f"connectathon {attribute}", frozenset(pairs))
            for attribute, pairs in by_type.items()
            if attribute not in ("mimeType", "associationDocumentation")
        }
        mime = frozenset(code for code, _ in by_type.get("mimeType", set()))
        return AffinityDomain("connectathon", sets, mime_types=mime or None)
    sets = {
        "classCode": _dmp_set("JDV_J57_ClassCode_DMP.csv", "JDV_J57_ClassCode_DMP"),
        "typeCode": _dmp_set("JDV_J66_TypeCode_DMP.csv", "JDV_J66_TypeCode_DMP"),
        "confidentialityCode": _dmp_set(
            "JDV_J58_ConfidentialityCode_DMP.csv", "JDV_J58_ConfidentialityCode_DMP"
        ),
        "healthcareFacilityTypeCode": _dmp_set(
            "JDV_J61_HealthcareFacilityTypeCode_DMP.csv", "JDV_J61_HealthcareFacilityTypeCode_DMP"
        ),
        "practiceSettingCode": _dmp_set(
            "JDV_J62_PracticeSettingCode_DMP.csv", "JDV_J62_PracticeSettingCode_DMP"
        ),
        "formatCode": _dmp_set("JDV_J60_FormatCode_DMP.csv", "JDV_J60_FormatCode_DMP"),
        "contentTypeCode": _dmp_set(
            "JDV_J59_ContentTypeCode_DMP.csv", "JDV_J59_ContentTypeCode_DMP"
        ),
    }
    type_to_class = {
        (row["typeCode"], row["typeCodeSystemOID"]): (row["classCode"], row["classCodeSystemOID"])
        for row in _rows("ASS_X16_CorrespondanceType_Classe_DMP.csv")
    }
    return AffinityDomain("dmp", sets, type_to_class, max_confidentiality_codes=4)
