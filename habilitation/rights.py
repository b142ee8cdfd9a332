"""The functional rights matrix PDT-INF-526 v1.8 (GIE SESAM-Vitale, 25/09/2024), encoded whole.

For each DMP transaction (TD0.x-TD3.3x) the sheet says ``oui``/``non`` by authentication mode
(direct CPS/CPF, CPE, indirect "Certificat ES"), actor category and access mode (normal,
régulation = centre 15, bris de glace). Some cells carry a note, e.g. ``oui(8)``: the right holds
only under that note's condition (see ``PDT-INF-526_notes.csv``). A combination with no column
(médecin du travail outside normal mode, médecin traitant in régulation, CPE outside normal
mode, structure certificate in bris de glace) does not exist: it is denied.

The data is the shipped copy ``habilitation/data/PDT-INF-526_matrice_droits_fonctionnels_v1.8.csv``.
Each row maps to an :class:`~habilitation.model.Action` (TD2.1 and TD2.2 both map to
``SUBMIT_DOCUMENT``: a right in either row grants it), to a :class:`ReadAspect` (the TD3.2 rows
that shape document visibility) or to nothing (TD0.0 withdrawn, TD0.1 authentication and TD0.9
web access, which are not operations of this server but are kept and tested).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from importlib.resources import files
from os import PathLike
from pathlib import Path

from habilitation.model import AccessMode, Action, AuthenticationMode

MATRIX_FILE = "PDT-INF-526_matrice_droits_fonctionnels_v1.8.csv"
NOTES_FILE = "PDT-INF-526_notes.csv"


class ActorCategory(StrEnum):
    """The actor columns of PDT-INF-526 (their labels, as in the sheet)."""

    PS_NON_MEDECIN = "PS non médecin"
    MEDECIN_NON_MT = "Médecin (non MT)"
    MEDECIN_DU_TRAVAIL = "Médecin du travail"
    MEDECIN_TRAITANT = "Médecin Traitant (MT)"
    NON_PS_CPE = "non PS"
    STRUCTURE_CERTIFICATE = "tous"


class ReadAspect(StrEnum):
    """The TD3.2 rows other than "non masqués": what a reader may additionally see."""

    MASKED = "masked"
    INVISIBLE_TO_PATIENT = "invisible_to_patient"
    ARCHIVED = "archived"
    DEPRECATED = "deprecated"
    DELETED = "deleted"


_AUTHENTICATION_LABELS: Mapping[str, frozenset[AuthenticationMode]] = {
    "directe|CPS/CPF": frozenset({AuthenticationMode.DIRECT}),
    "directe|CPE": frozenset({AuthenticationMode.CPE}),
    "indirecte|Certificat ES": frozenset(
        {AuthenticationMode.INDIRECT, AuthenticationMode.INDIRECT_REINFORCED}
    ),
}
_MODE_LABELS: Mapping[str, AccessMode] = {
    "normal": AccessMode.NORMAL,
    "régulation": AccessMode.REGULATION,
    "bris de glace": AccessMode.BREAK_GLASS,
    "sans objet": AccessMode.NORMAL,  # médecin du travail: no emergency mode exists
}

ROW_ACTIONS: Mapping[tuple[str, str], Action] = {
    ("TD0.2", "Test d'existence d'un DMP et vérification de l'autorisation"): Action.TEST_EXISTENCE,
    ("TD0.3", "Mise à jour de l'autorisation - Se déclarer autorisé"): Action.DECLARE_AUTHORIZATION,
    ("TD0.3", "Mise à jour de l'autorisation - Supprimer son autorisation"): (
        Action.REMOVE_AUTHORIZATION
    ),
    ("TD0.3", "Mise à jour de l'autorisation - Se supprimer MT"): Action.REMOVE_MEDECIN_TRAITANT,
    ("TD0.4", "Liste des DMP autorisés"): Action.LIST_AUTHORIZED_SPACES,
    ("TD0.5", "Recherche d'un patient dans le DMP sans INS"): Action.SEARCH_PATIENT_WITHOUT_INS,
    ("TD1.3a", "Consultation des données administratives d'un DMP"): (
        Action.READ_ADMINISTRATIVE_DATA
    ),
    ("TD1.6", "Liste des PS autorisés/bloqués sur un DMP"): Action.LIST_AUTHORIZED_PROFESSIONALS,
    ("TD2.1", "Alimentation d'un DMP"): Action.SUBMIT_DOCUMENT,
    ("TD2.2", "Alimentation d'un DMP par CPE pour les secrétaires médicales du secteur libéral"): (
        Action.SUBMIT_DOCUMENT
    ),
    ("TD3.1", "Recherche - Rechercher les métadonnées"): Action.SEARCH_METADATA,
    ("TD3.1", "Recherche - Rechercher la référence d'un document"): Action.SEARCH_REFERENCE,
    ("TD3.2", "Consultation - Documents non masqués aux PS"): Action.READ_DOCUMENT,
    ("TD3.3a", "Masquer un document aux PS"): Action.MASK_DOCUMENT,
    ("TD3.3a", "Démasquer un document aux PS"): Action.UNMASK_DOCUMENT,
    ("TD3.3b", "Rendre un document visible au patient"): Action.MAKE_VISIBLE_TO_PATIENT,
    ("TD3.3d", "Archiver un document"): Action.ARCHIVE_DOCUMENT,
    ("TD3.3d", "Désarchiver un document"): Action.UNARCHIVE_DOCUMENT,
    ("TD3.3c", "Supprimer un document"): Action.DELETE_DOCUMENT,
}
ROW_ASPECTS: Mapping[tuple[str, str], ReadAspect] = {
    ("TD3.2", "Consultation - Documents masqués aux PS"): ReadAspect.MASKED,
    ("TD3.2", "Consultation - Documents non visibles du patient et du représentant légal"): (
        ReadAspect.INVISIBLE_TO_PATIENT
    ),
    ("TD3.2", "Consultation - Documents archivés"): ReadAspect.ARCHIVED,
    ("TD3.2", "Consultation - Documents obsolètes (anciennes versions)"): ReadAspect.DEPRECATED,
    ("TD3.2", "Consultation - Documents supprimés"): ReadAspect.DELETED,
}
UNMAPPED_TRANSACTIONS = frozenset({"TD0.0", "TD0.1", "TD0.9"})

_CELL = re.compile(r"^(oui|non)(?:\((\d+)\))?$")
_ROW_NOTE = re.compile(r"\s+\*$")


@dataclass(frozen=True, slots=True, eq=False)
class Column:
    """One column of the sheet: authentication family x actor category x access mode.

    Compared and hashed by identity: a column belongs to the one table that parsed it.
    """

    header: str
    authentication_modes: frozenset[AuthenticationMode]
    category: ActorCategory
    access_mode: AccessMode


@dataclass(frozen=True, slots=True)
class Cell:
    """One cell: allowed or not, and the notes that condition it (``"6"`` for ``oui(6)``)."""

    raw: str
    allowed: bool
    notes: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class RightRow:
    transaction: str
    label: str  # without the trailing " *"
    cells: Mapping[Column, Cell]
    row_notes: frozenset[str] = frozenset()  # "*" (patient's documents: MT or patient only)
    action: Action | None = None
    aspect: ReadAspect | None = None


def parse_cell(raw: str) -> Cell:
    match = _CELL.match(raw.strip())
    if match is None:
        raise ValueError(f"unreadable PDT-INF-526 cell {raw!r}")
    notes = frozenset({match.group(2)}) if match.group(2) else frozenset()
    return Cell(raw.strip(), match.group(1) == "oui", notes)


def parse_column(header: str) -> Column:
    authentication, card, category, mode = header.split("|")
    return Column(
        header=header,
        authentication_modes=_AUTHENTICATION_LABELS[f"{authentication}|{card}"],
        category=ActorCategory(category),
        access_mode=_MODE_LABELS[mode],
    )


def _label_and_notes(label: str) -> tuple[str, frozenset[str]]:
    stripped = _ROW_NOTE.sub("", label.strip())
    return stripped, frozenset({"*"}) if stripped != label.strip() else frozenset()


def _data_text(name: str) -> str:
    return files("habilitation.data").joinpath(name).read_text(encoding="utf-8")


@dataclass(frozen=True, slots=True)
class FunctionalRights:
    """The PDT-INF-526 table, indexed for the PDP."""

    columns: tuple[Column, ...]
    rows: tuple[RightRow, ...]
    notes: Mapping[str, str] = field(default_factory=dict)
    _by_action: Mapping[Action, tuple[RightRow, ...]] = field(default_factory=dict)
    _by_aspect: Mapping[ReadAspect, RightRow] = field(default_factory=dict)
    _by_column: Mapping[tuple[ActorCategory, AccessMode], Column] = field(default_factory=dict)
    _cells: dict[tuple[Action, Column], tuple[RightRow, Cell] | None] = field(default_factory=dict)
    _texts: dict[tuple[Action, Column], tuple[str, str]] = field(default_factory=dict)

    @classmethod
    def from_text(cls, matrix_text: str, notes_text: str = "") -> FunctionalRights:
        reader = csv.reader(io.StringIO(matrix_text))
        header = next(reader)
        if header[:2] != ["transaction", "action"]:
            raise ValueError("PDT-INF-526 file must start with transaction,action columns")
        columns = tuple(parse_column(h) for h in header[2:])
        rows = []
        for line in reader:
            if not line:
                continue
            transaction, raw_label, *raw_cells = line
            if len(raw_cells) != len(columns):
                raise ValueError(f"row {transaction} {raw_label!r} has {len(raw_cells)} cells")
            label, row_notes = _label_and_notes(raw_label)
            key = (transaction, label)
            mapped = key in ROW_ACTIONS or key in ROW_ASPECTS
            if transaction not in UNMAPPED_TRANSACTIONS and not mapped:
                raise ValueError(f"PDT-INF-526 row not mapped to an action: {key}")
            cells = {c: parse_cell(v) for c, v in zip(columns, raw_cells, strict=True)}
            rows.append(
                RightRow(
                    transaction,
                    label,
                    cells,
                    row_notes,
                    ROW_ACTIONS.get(key),
                    ROW_ASPECTS.get(key),
                )
            )
        found = {(r.transaction, r.label) for r in rows}
        missing = (set(ROW_ACTIONS) | set(ROW_ASPECTS)) - found
        if missing:
            raise ValueError(f"PDT-INF-526 rows missing: {sorted(missing)}")
        by_action: dict[Action, tuple[RightRow, ...]] = {}
        for row in rows:
            if row.action is not None:
                by_action[row.action] = (*by_action.get(row.action, ()), row)
        notes = {}
        if notes_text:
            notes = {r["note"]: r["text"] for r in csv.DictReader(io.StringIO(notes_text))}
        return cls(
            columns=columns,
            rows=tuple(rows),
            notes=notes,
            _by_action=by_action,
            _by_aspect={r.aspect: r for r in rows if r.aspect is not None},
            _by_column={(c.category, c.access_mode): c for c in columns},
        )

    @classmethod
    def from_path(
        cls, matrix_path: str | PathLike[str], notes_path: str | PathLike[str] | None = None
    ) -> FunctionalRights:
        notes = Path(notes_path).read_text(encoding="utf-8") if notes_path else ""
        return cls.from_text(Path(matrix_path).read_text(encoding="utf-8"), notes)

    @classmethod
    def default(cls) -> FunctionalRights:
        """Load the shipped copy of PDT-INF-526 v1.8 and its notes."""
        return cls.from_text(_data_text(MATRIX_FILE), _data_text(NOTES_FILE))

    def covers(self, action: Action) -> bool:
        """Whether the action is a DMP professional transaction of the sheet."""
        return action in self._by_action

    def column_for(self, category: ActorCategory, access_mode: AccessMode) -> Column | None:
        """Return the column for an actor category in an access mode, None if none exists."""
        return self._by_column.get((category, access_mode))

    def cell(self, action: Action, column: Column) -> tuple[RightRow, Cell] | None:
        """Return the deciding row and cell; an allowing row wins (TD2.1 / TD2.2)."""
        key = (action, column)
        if key not in self._cells:
            self._cells[key] = self._find_cell(action, column)
        return self._cells[key]

    def describe(self, action: Action, column: Column) -> tuple[str, str]:
        """Return (where the cell is, the cell with its notes' text), for decision reasons."""
        key = (action, column)
        text = self._texts.get(key)
        if text is None:
            found = self.cell(action, column)
            if found is None:
                text = (f"PDT-INF-526 v1.8 has no row for {action.value}", "")
            else:
                row, cell = found
                where = f"PDT-INF-526 v1.8 {row.transaction} '{row.label}' for {column.category}"
                notes = "".join(f" note ({n}): {self.note_text(n)}" for n in sorted(cell.notes))
                text = (where, f"{cell.raw}.{notes}".rstrip("."))
            self._texts[key] = text
        return text

    def _find_cell(self, action: Action, column: Column) -> tuple[RightRow, Cell] | None:
        rows = self._by_action.get(action, ())
        for row in rows:
            if row.cells[column].allowed:
                return row, row.cells[column]
        return (rows[0], rows[0].cells[column]) if rows else None

    def read_cell(self, aspect: ReadAspect, column: Column) -> Cell:
        return self._by_aspect[aspect].cells[column]

    def note_text(self, note: str) -> str:
        return self.notes.get(f"({note})" if note != "*" else note, "")
