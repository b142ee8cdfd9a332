"""Every cell of PDT-INF-526 v1.8, parametrized straight from the shipped data file.

The test reads the CSV with its own parser and its own column -> actor mapping, then asks the
real PDP: an ``oui`` cell must permit (under its note's condition), a ``non`` cell must deny
with the rule ``functional_rights``, and the TD3.2 rows must shape what ``can_see_document``
shows.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from importlib.resources import files

import pytest
from hab_fixtures import (
    INDIRECT_ID,
    OTHER_PS_ID,
    OTHER_STRUCTURE,
    STRUCTURE,
    cpe,
    document,
    indirect,
    infirmier,
    medecin,
    medecin_du_travail,
    medecin_traitant,
    request,
    space,
)
from reference_data import REFERENCE as REFERENCE_DIR

from habilitation.model import (
    INVISIBLE_TO_PATIENT,
    MASKED_TO_PROFESSIONALS,
    AccessMode,
    Action,
    Actor,
    AuthenticationMode,
    DocumentFacts,
    DocumentStatus,
    Effect,
    Obligation,
)
from habilitation.pdp import PolicyDecisionPoint
from habilitation.rights import FunctionalRights

DATA = files("habilitation.data").joinpath("PDT-INF-526_matrice_droits_fonctionnels_v1.8.csv")
REFERENCE = (
    REFERENCE_DIR / "dmp" / "habilitation" / "PDT-INF-526_matrice_droits_fonctionnels_v1.8.csv"
)
_TABLE = list(csv.reader(DATA.read_text(encoding="utf-8").splitlines()))
HEADER, ROWS = _TABLE[0], [r for r in _TABLE[1:] if r]

MODES = {
    "normal": AccessMode.NORMAL,
    "régulation": AccessMode.REGULATION,
    "bris de glace": AccessMode.BREAK_GLASS,
    "sans objet": AccessMode.NORMAL,
}
ActorBuilder = Callable[[AccessMode], Actor]
CATEGORY_ACTORS: dict[str, ActorBuilder] = {
    "PS non médecin": infirmier,
    "Médecin (non MT)": medecin,
    "Médecin du travail": lambda access: medecin_du_travail("SM25", access),
    "Médecin Traitant (MT)": medecin_traitant,
    "non PS": cpe,
    "tous": indirect,
}
# (transaction, start of the label) -> action, independent from habilitation.rights
ACTIONS: dict[tuple[str, str], Action] = {
    ("TD0.2", "Test d'existence"): Action.TEST_EXISTENCE,
    ("TD0.3", "Mise à jour de l'autorisation - Se déclarer"): Action.DECLARE_AUTHORIZATION,
    ("TD0.3", "Mise à jour de l'autorisation - Supprimer son"): Action.REMOVE_AUTHORIZATION,
    ("TD0.3", "Mise à jour de l'autorisation - Se supprimer MT"): Action.REMOVE_MEDECIN_TRAITANT,
    ("TD0.4", "Liste des DMP"): Action.LIST_AUTHORIZED_SPACES,
    ("TD0.5", "Recherche d'un patient"): Action.SEARCH_PATIENT_WITHOUT_INS,
    ("TD1.3a", "Consultation des données"): Action.READ_ADMINISTRATIVE_DATA,
    ("TD1.6", "Liste des PS"): Action.LIST_AUTHORIZED_PROFESSIONALS,
    ("TD2.1", "Alimentation"): Action.SUBMIT_DOCUMENT,
    ("TD2.2", "Alimentation"): Action.SUBMIT_DOCUMENT,
    ("TD3.1", "Recherche - Rechercher les métadonnées"): Action.SEARCH_METADATA,
    ("TD3.1", "Recherche - Rechercher la référence"): Action.SEARCH_REFERENCE,
    ("TD3.2", "Consultation - Documents non masqués"): Action.READ_DOCUMENT,
    ("TD3.3a", "Masquer"): Action.MASK_DOCUMENT,
    ("TD3.3a", "Démasquer"): Action.UNMASK_DOCUMENT,
    ("TD3.3b", "Rendre un document visible"): Action.MAKE_VISIBLE_TO_PATIENT,
    ("TD3.3d", "Archiver"): Action.ARCHIVE_DOCUMENT,
    ("TD3.3d", "Désarchiver"): Action.UNARCHIVE_DOCUMENT,
    ("TD3.3c", "Supprimer"): Action.DELETE_DOCUMENT,
}
ASPECT_ROWS = {
    "Consultation - Documents masqués aux PS": "masked",
    "Consultation - Documents non visibles du patient et du représentant légal": "invisible",
    "Consultation - Documents archivés": DocumentStatus.ARCHIVED,
    "Consultation - Documents obsolètes (anciennes versions)": DocumentStatus.DEPRECATED,
    "Consultation - Documents supprimés": DocumentStatus.DELETED,
}
UNMAPPED = {"TD0.0", "TD0.1", "TD0.9"}
SPACELESS = {Action.LIST_AUTHORIZED_SPACES, Action.SEARCH_PATIENT_WITHOUT_INS}
NO_AUTHORIZATION = {Action.TEST_EXISTENCE, Action.DECLARE_AUTHORIZATION}
DOCUMENT_ACTIONS = {
    Action.MASK_DOCUMENT,
    Action.UNMASK_DOCUMENT,
    Action.MAKE_VISIBLE_TO_PATIENT,
    Action.ARCHIVE_DOCUMENT,
    Action.UNARCHIVE_DOCUMENT,
    Action.DELETE_DOCUMENT,
}
_CELL = re.compile(r"^(oui|non)(?:\((\d+)\))?$")


def action_of(transaction: str, label: str) -> Action | None:
    for (td, prefix), action in ACTIONS.items():
        if td == transaction and label.startswith(prefix):
            return action
    return None


def parse(cell: str) -> tuple[bool, str | None]:
    match = _CELL.match(cell)
    assert match, f"unexpected cell {cell!r}"
    return match.group(1) == "oui", match.group(2)


def column_variants(header: str) -> list[tuple[str, AuthenticationMode | None]]:
    if header.startswith("indirecte|"):
        return [
            (header, AuthenticationMode.INDIRECT),
            (header, AuthenticationMode.INDIRECT_REINFORCED),
        ]
    return [(header, None)]


def actor_for(header: str, mode: AuthenticationMode | None) -> Actor:
    _auth, _card, category, access = header.split("|")
    if category == "tous":
        assert mode is not None
        built: Actor = indirect(MODES[access], mode)
        return built
    return CATEGORY_ACTORS[category](MODES[access])


def cases() -> list[object]:
    out: list[object] = []
    for row in ROWS:
        transaction, label, *cells = row
        for header, cell in zip(HEADER[2:], cells, strict=True):
            for _, mode in column_variants(header):
                suffix = f"-{mode.value}" if mode else ""
                out.append(
                    pytest.param(
                        transaction,
                        label,
                        header,
                        cell,
                        mode,
                        id=f"{transaction}|{label}|{header}{suffix}",
                    )
                )
    return out


ALL_CASES = cases()


def same_action_allowed(action: Action, header: str) -> bool:
    """TD2.1 and TD2.2 both grant SUBMIT_DOCUMENT: allowed if either says oui."""
    col = HEADER.index(header)
    return any(
        parse(row[col])[0]
        for row in ROWS
        if row[0] not in UNMAPPED and action_of(row[0], row[1]) is action
    )


def test_every_cell_is_parsed_as_written() -> None:
    rights = FunctionalRights.default()
    assert len(rights.rows) == len(ROWS) == 27
    assert [c.header for c in rights.columns] == HEADER[2:]
    for row, parsed in zip(ROWS, rights.rows, strict=True):
        assert parsed.transaction == row[0]
        for column, raw in zip(rights.columns, row[2:], strict=True):
            assert parsed.cells[column].raw == raw
            assert parsed.cells[column].allowed == raw.startswith("oui")


def test_shipped_copy_is_the_reference() -> None:
    if not REFERENCE.exists():
        pytest.skip("reference data not mounted")
    assert REFERENCE.read_text(encoding="utf-8") == DATA.read_text(encoding="utf-8")


@pytest.mark.parametrize(("transaction", "label", "header", "cell", "mode"), ALL_CASES)
def test_cell(
    pdp: PolicyDecisionPoint,
    transaction: str,
    label: str,
    header: str,
    cell: str,
    mode: AuthenticationMode | None,
) -> None:
    actor = actor_for(header, mode)
    allowed, note = parse(cell)
    if transaction in UNMAPPED:
        rights = pdp.functional_rights
        row = next(r for r in rights.rows if r.transaction == transaction)
        column = next(c for c in rights.columns if c.header == header)
        assert row.action is None and row.aspect is None
        assert row.cells[column].allowed is allowed
        return
    clean_label = label.rstrip(" *")
    if clean_label in ASPECT_ROWS:
        check_read_aspect(pdp, actor, ASPECT_ROWS[clean_label], allowed, note)
        return
    action = action_of(transaction, label)
    assert action is not None, f"unmapped row {transaction} {label}"
    check_action(pdp, actor, action, header, allowed, note, label.endswith("*"))


def check_action(
    pdp: PolicyDecisionPoint,
    actor: Actor,
    action: Action,
    header: str,
    allowed: bool,
    note: str | None,
    patient_doc_note: bool,
) -> None:
    facts = None if action in SPACELESS else space()
    decision = pdp.authorize_operation(request(actor, action, facts))
    if not same_action_allowed(action, header):
        assert decision.effect is Effect.DENY
        assert decision.rule_id == "functional_rights"
        return
    assert decision.permitted, decision
    emergency = actor.access_mode is not AccessMode.NORMAL
    if facts is None:
        assert decision.rule_id == "functional_rights"
    elif emergency:
        expected = "break_glass" if actor.access_mode is AccessMode.BREAK_GLASS else "centre_15"
        assert decision.rule_id == expected
        assert Obligation.NOTIFY_PATIENT_NOW in decision.obligations
    elif action in NO_AUTHORIZATION:
        assert decision.rule_id == "functional_rights"
    else:
        assert decision.rule_id == "care_team"
    if not allowed or action not in DOCUMENT_ACTIONS:
        return
    own = document(authors=frozenset({actor.id}), structures=frozenset({STRUCTURE}))
    others = document(authors=frozenset({OTHER_PS_ID}), structures=frozenset({OTHER_STRUCTURE}))
    structure_doc = document(authors=frozenset({OTHER_PS_ID}), structures=frozenset({STRUCTURE}))
    patient_doc = document(
        authors=frozenset({"123456789012345"}), structures=frozenset(), added_by_patient=True
    )

    def decide(doc: DocumentFacts) -> str:
        d = pdp.authorize_operation(request(actor, action, facts, doc))
        return "permit" if d.permitted else d.rule_id

    if note == "8":
        assert decide(own) == "permit"
        assert decide(others) == "own_documents_only"
    elif note == "9":
        assert decide(structure_doc) == "permit"
        assert decide(others) == "structure_documents_only"
    else:
        assert decide(others) == "permit"
    if patient_doc_note:
        is_mt = actor.id == space().medecin_traitant
        assert decide(patient_doc) == ("permit" if is_mt else "patient_document_mt_only")


def check_read_aspect(
    pdp: PolicyDecisionPoint, actor: Actor, aspect: object, allowed: bool, note: str | None
) -> None:
    facts = space()
    can_read = pdp.authorize_operation(request(actor, Action.READ_DOCUMENT, facts)).permitted
    if aspect == "masked":
        doc = document(codes=frozenset({MASKED_TO_PROFESSIONALS}))
        own = document(codes=frozenset({MASKED_TO_PROFESSIONALS}), authors=frozenset({actor.id}))
        seen = pdp.can_see_document(actor, facts, doc)
        if not allowed:
            assert not seen.permitted
            return
        assert can_read
        if note is None:
            assert seen.permitted
        elif note == "6":
            assert seen.rule_id == "masked_documents" and not seen.permitted
            assert pdp.can_see_document(actor, facts, own).permitted
        elif note == "7":
            assert seen.rule_id == "masked_documents" and not seen.permitted
            unmasking = space(auto_unmask_in_emergency=True)
            assert pdp.can_see_document(actor, unmasking, doc).permitted
        else:  # pragma: no cover
            pytest.fail(f"unexpected note {note}")
        return
    if aspect == "invisible":
        doc = document(codes=frozenset({INVISIBLE_TO_PATIENT}))
    else:
        assert isinstance(aspect, DocumentStatus)
        doc = document(status=aspect)
    seen = pdp.can_see_document(actor, facts, doc)
    assert seen.permitted is allowed
    if allowed:
        assert can_read
        assert pdp.authorize_operation(request(actor, Action.READ_DOCUMENT, facts, doc)).permitted
    elif can_read:
        expected = "invisible_to_patient" if aspect == "invisible" else "document_status"
        assert seen.rule_id == expected


MISSING_COLUMNS = [
    (medecin_du_travail("SM25", AccessMode.BREAK_GLASS), "médecin du travail in bris de glace"),
    (medecin_du_travail("C41", AccessMode.REGULATION), "médecin du travail in régulation"),
    (medecin_traitant(AccessMode.REGULATION), "médecin traitant in régulation"),
    (cpe(AccessMode.BREAK_GLASS), "CPE in bris de glace"),
    (cpe(AccessMode.REGULATION), "CPE in régulation"),
    (indirect(AccessMode.BREAK_GLASS), "indirect in bris de glace"),
    (
        indirect(AccessMode.BREAK_GLASS, AuthenticationMode.INDIRECT_REINFORCED),
        "AIR in bris de glace",
    ),
]


@pytest.mark.parametrize("action", [Action.TEST_EXISTENCE, Action.READ_DOCUMENT])
@pytest.mark.parametrize(("actor", "what"), MISSING_COLUMNS, ids=[w for _, w in MISSING_COLUMNS])
def test_blank_column_combinations_do_not_exist(
    pdp: PolicyDecisionPoint, actor: Actor, what: str, action: Action
) -> None:
    decision = pdp.authorize_operation(request(actor, action, space()))
    assert not decision.permitted
    assert decision.rule_id == "functional_rights_no_such_combination", what
    assert pdp.visible_documents(actor, space()).nothing


def test_indirect_actor_id_is_used_for_authorship() -> None:
    assert indirect().id == INDIRECT_ID
