"""The readable decision table ``conformance/habilitation/decision_table.csv``.

One scenario a row: an actor (by name), an access mode, an action (its TD code or brick
value), changes to the default space and document, and the expected effect and rule id.
``actor`` in a cell stands for the acting actor's id (or structure).
"""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pytest
from hab_fixtures import (
    DENTISTE_ID,
    app,
    cpe,
    document,
    indirect,
    infirmier,
    legal_representative,
    medecin,
    medecin_du_travail,
    medecin_traitant,
    patient,
    professional,
    request,
    space,
    support,
    system,
    tutor,
)

from habilitation.model import (
    AccessMode,
    Action,
    Actor,
    DocumentFacts,
    DocumentStatus,
    SpaceFacts,
    SpaceStatus,
)
from habilitation.pdp import PolicyDecisionPoint

TABLE = Path(__file__).resolve().parents[2] / "conformance" / "habilitation" / "decision_table.csv"
ROWS = list(csv.DictReader(TABLE.read_text(encoding="utf-8").splitlines()))

ACTORS: dict[str, Actor] = {
    "medecin": medecin(),
    "mt": medecin_traitant(),
    "infirmier": infirmier(),
    "dentiste": professional(DENTISTE_ID, "40", None),
    "mdt": medecin_du_travail(),
    "cpe": cpe(),
    "indirect": indirect(),
    "medecin_secret": medecin(secret_connection=True),
    "unknown_profession": professional(profession="12", specialty=None),
    "patient": patient(),
    "lr": legal_representative(),
    "tutor": tutor(),
    "app": app(),
    "support": support(),
    "system": system(),
    "insurer": Actor(cast(Any, "insurer"), "AMC-1"),
    "employer": Actor(cast(Any, "employer"), "EMP-1"),
}


BOOLEAN_SPACE_FLAGS = {
    "is_minor",
    "break_glass_allowed",
    "regulation_allowed",
    "auto_unmask_in_emergency",
    "prevention_opposed",
}


def pairs(cell: str) -> list[tuple[str, str]]:
    return [(k, v) for k, _, v in (item.partition("=") for item in cell.split(";") if item)]


def build_space(cell: str, actor: Actor) -> SpaceFacts:
    facts: SpaceFacts = space()
    for key, value in pairs(cell):
        ids = frozenset({actor.id}) if value == "actor" else frozenset()
        if key == "authorized":
            facts = replace(facts, authorized_professionals=ids, authorized_structures=frozenset())
        elif key == "blocked":
            facts = replace(facts, blocked_professionals=ids)
        elif key == "feeding_opposed":
            facts = replace(facts, feeding_opposed_professionals=ids)
        elif key == "status":
            facts = replace(facts, status=SpaceStatus(value))
        else:
            assert key in BOOLEAN_SPACE_FLAGS, key
            flags: dict[str, Any] = {key: value == "true"}
            facts = replace(facts, **flags)
    return facts


def build_document(cell: str, actor: Actor) -> DocumentFacts:
    doc: DocumentFacts = document()
    for key, value in pairs(cell):
        if key == "type":
            doc = replace(doc, type_code=value)
        elif key == "codes":
            doc = replace(doc, confidentiality_codes=frozenset(value.split("+")))
        elif key == "authors":
            doc = replace(doc, author_ids=frozenset({actor.id}))
        elif key == "structures":
            assert actor.structure_id is not None
            doc = replace(doc, author_structure_ids=frozenset({actor.structure_id}))
        elif key == "status":
            doc = replace(doc, status=DocumentStatus(value))
        elif key == "patient":
            doc = replace(doc, added_by_patient=True, author_ids=frozenset({space().ins}))
        else:  # pragma: no cover
            raise AssertionError(f"unknown document key {key}")
    return doc


def test_the_table_is_not_empty() -> None:
    assert len(ROWS) >= 50
    assert {r["expected"] for r in ROWS} == {"permit", "deny"}


@pytest.mark.parametrize("row", ROWS, ids=[r["case"] for r in ROWS])
def test_decision_table(pdp: PolicyDecisionPoint, row: dict[str, str]) -> None:
    actor = replace(ACTORS[row["actor"]], access_mode=AccessMode(row["access_mode"]))
    facts = build_space(row["space"], actor)
    doc = build_document(row["document"], actor) if row["document"] else None
    action = Action(row["action"])
    if doc is None and action is Action.READ_DOCUMENT:
        doc = document()
    decision = pdp.authorize_operation(request(actor, action, facts, doc))
    assert decision.effect.value == row["expected"], decision
    assert decision.rule_id == row["rule_id"], decision
    assert decision.reason
