"""The habilitation matrix: which document typeCodes a profession (+ specialty) may read.

The arrêté of 26 October 2023 (CSP L.1111-15 and L.1111-17 III) fixes, per profession, the
DMP document types a professional may read. Its annex is not public, so the shipped data file
``habilitation/data/document_type_matrix.csv`` holds what is known (press summaries of the
annex) and fills the rest with a conservative default: every such row carries
``source=default-conservative`` and a short rationale. Deployments replace it by configuration
(``HabilitationMatrix.from_path``).

File format, one row per rule, columns ``profession,specialty,type_code,may_read,source,rationale``:

- ``profession``: a TRE_G15 / JDV_J106 code; never a wildcard (an unknown profession reads
  nothing);
- ``specialty``: a TRE_R01 / G05 code, or ``*`` for any specialty;
- ``type_code``: a JDV_J66 typeCode, or ``*`` for every JDV_J66 typeCode;
- ``may_read``: ``yes`` or ``no``.

Resolution for (profession, specialty): when rows exist for that exact specialty they replace
the profession's ``*`` rows entirely (so ``10,SM25,*,no`` closes everything to the médecin du
travail); within the chosen rows the ``*`` row sets the base and typeCode rows override it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.resources import files
from os import PathLike
from pathlib import Path

WILDCARD = "*"
DEFAULT_CONSERVATIVE = "default-conservative"
MATRIX_COLUMNS = ("profession", "specialty", "type_code", "may_read", "source", "rationale")
_MAY_READ = {"yes": True, "no": False}


@dataclass(frozen=True, slots=True)
class MatrixRow:
    """One line of the habilitation matrix."""

    profession: str
    specialty: str
    type_code: str
    may_read: bool
    source: str
    rationale: str


def _data_text(name: str) -> str:
    return files("habilitation.data").joinpath(name).read_text(encoding="utf-8")


def load_type_codes(text: str | None = None) -> frozenset[str]:
    """Return the JDV_J66 typeCodes (the shipped copy unless ``text`` is given)."""
    if text is None:
        text = _data_text("JDV_J66_TypeCode_DMP.csv")
    reader = csv.DictReader(io.StringIO(text))
    return frozenset(row["code"].strip() for row in reader if row["code"].strip())


class HabilitationMatrix:
    """Profession (+ specialty) x typeCode -> may read. Immutable once built."""

    def __init__(self, rows: Iterable[MatrixRow], type_codes: Iterable[str]) -> None:
        self.rows: tuple[MatrixRow, ...] = tuple(rows)
        self.type_codes: frozenset[str] = frozenset(type_codes)
        table: dict[str, dict[str, dict[str, bool]]] = {}
        for row in self.rows:
            if not row.profession or row.profession == WILDCARD:
                raise ValueError(f"profession must be a code, not {row.profession!r}: {row}")
            if not row.source.strip():
                raise ValueError(f"every matrix row needs a source: {row}")
            if row.type_code != WILDCARD and row.type_code not in self.type_codes:
                raise ValueError(f"typeCode {row.type_code!r} is not in JDV_J66: {row}")
            by_type = table.setdefault(row.profession, {}).setdefault(row.specialty, {})
            if row.type_code in by_type:
                raise ValueError(f"duplicate matrix row: {row}")
            by_type[row.type_code] = row.may_read
        self._table = table
        self._cache: dict[tuple[str, str | None], frozenset[str] | None] = {}

    @classmethod
    def from_text(cls, text: str, type_codes: Iterable[str] | None = None) -> HabilitationMatrix:
        reader = csv.DictReader(io.StringIO(text))
        missing = set(MATRIX_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"habilitation matrix lacks columns {sorted(missing)}")
        rows = []
        for raw in reader:
            may_read = raw["may_read"].strip().lower()
            if may_read not in _MAY_READ:
                raise ValueError(f"may_read must be yes or no, not {raw['may_read']!r}")
            rows.append(
                MatrixRow(
                    profession=raw["profession"].strip(),
                    specialty=raw["specialty"].strip() or WILDCARD,
                    type_code=raw["type_code"].strip(),
                    may_read=_MAY_READ[may_read],
                    source=raw["source"].strip(),
                    rationale=raw["rationale"].strip(),
                )
            )
        return cls(rows, load_type_codes() if type_codes is None else type_codes)

    @classmethod
    def from_path(
        cls, path: str | PathLike[str], type_codes: Iterable[str] | None = None
    ) -> HabilitationMatrix:
        """Load a replacement matrix (configuration), validated like the shipped one."""
        return cls.from_text(Path(path).read_text(encoding="utf-8"), type_codes)

    @classmethod
    def default(cls) -> HabilitationMatrix:
        """Load the matrix shipped in ``habilitation/data/document_type_matrix.csv``."""
        return cls.from_text(_data_text("document_type_matrix.csv"))

    @property
    def known_professions(self) -> frozenset[str]:
        return frozenset(self._table)

    def readable_type_codes(
        self, profession: str | None, specialty: str | None
    ) -> frozenset[str] | None:
        """Return the typeCodes readable by a profession, or None when the profession is unknown."""
        key = (profession or "", specialty)
        if key in self._cache:
            return self._cache[key]
        result = self._resolve(profession, specialty)
        self._cache[key] = result
        return result

    def may_read(self, profession: str | None, specialty: str | None, type_code: str) -> bool:
        readable = self.readable_type_codes(profession, specialty)
        return readable is not None and type_code in readable

    def _resolve(self, profession: str | None, specialty: str | None) -> frozenset[str] | None:
        if profession is None:
            return None
        by_specialty = self._table.get(profession)
        if by_specialty is None:
            return None
        if specialty is not None and specialty in by_specialty:
            by_type = by_specialty[specialty]
        else:
            by_type = by_specialty.get(WILDCARD, {})
        readable = set(self.type_codes) if by_type.get(WILDCARD, False) else set()
        for type_code, may_read in by_type.items():
            if type_code == WILDCARD:
                continue
            if may_read:
                readable.add(type_code)
            else:
                readable.discard(type_code)
        return frozenset(readable)
