"""The habilitation matrix (profession x typeCode) and the unknown-profession rule."""

from __future__ import annotations

import csv
from importlib.resources import files
from pathlib import Path

import pytest
from hab_fixtures import document, infirmier, medecin, professional, request, space

from habilitation.matrix import DEFAULT_CONSERVATIVE, HabilitationMatrix, load_type_codes
from habilitation.model import Action, AuthenticationMode
from habilitation.pdp import PolicyDecisionPoint

J66 = load_type_codes()
DENTIST_DENIED = {"80788-3", "75496-0", "83981-1", "83901-9", "68599-0"}
MATRIX_TEXT = files("habilitation.data").joinpath("document_type_matrix.csv").read_text("utf-8")


@pytest.fixture(scope="module")
def matrix() -> HabilitationMatrix:
    return HabilitationMatrix.default()


def test_j66_has_108_type_codes() -> None:
    assert len(J66) == 108
    assert {"ATTEST-RESID", "11488-4", "DOCPAT08"} <= J66


def test_every_row_has_a_source_and_conservative_rows_a_rationale() -> None:
    rows = list(csv.DictReader(MATRIX_TEXT.splitlines()))
    assert rows
    for row in rows:
        assert row["source"].strip(), row
        if row["source"] == DEFAULT_CONSERVATIVE:
            assert len(row["rationale"]) > 20, row


def test_medecins_read_everything_but_the_residence_certificate(
    matrix: HabilitationMatrix,
) -> None:
    assert matrix.readable_type_codes("10", "SM26") == J66 - {"ATTEST-RESID"}
    assert matrix.readable_type_codes("10", None) == J66 - {"ATTEST-RESID"}


@pytest.mark.parametrize("specialty", ["SM25", "C41", "CAPA11"])
def test_medecin_du_travail_reads_nothing(matrix: HabilitationMatrix, specialty: str) -> None:
    assert matrix.readable_type_codes("10", specialty) == frozenset()


@pytest.mark.parametrize("specialty", ["SM25", "C41", "CAPA11"])
def test_medecin_du_travail_never_reads_even_with_a_permissive_matrix(specialty: str) -> None:
    permissive = HabilitationMatrix.from_text(
        "profession,specialty,type_code,may_read,source,rationale\n10,*,*,yes,test,all\n"
    )
    pdp = PolicyDecisionPoint(permissive)
    actor = professional(profession="10", specialty=specialty)
    assert pdp.visible_documents(actor, space()).nothing
    assert not pdp.can_see_document(actor, space(), document()).permitted


def test_dentists_are_denied_the_five_named_types(matrix: HabilitationMatrix) -> None:
    readable = matrix.readable_type_codes("40", None)
    assert readable is not None
    assert not readable & DENTIST_DENIED
    assert {"11488-4", "28617-9", "83836-7"} <= readable


@pytest.mark.parametrize("profession", ["21", "60"])
def test_pharmaciens_and_infirmiers_are_more_restricted_than_medecins(
    matrix: HabilitationMatrix, profession: str
) -> None:
    readable = matrix.readable_type_codes(profession, None)
    medecins = matrix.readable_type_codes("10", None)
    assert readable is not None and medecins is not None
    assert readable < medecins
    assert len(readable) > len(J66) // 2  # still "the majority"
    assert not readable & DENTIST_DENIED


def test_social_professions_are_much_more_restricted(matrix: HabilitationMatrix) -> None:
    readable = matrix.readable_type_codes("41", None)
    assert readable is not None
    assert "28653-4" in readable
    assert "11488-4" not in readable and "11502-2" not in readable
    assert len(readable) < 10


def test_role_actors_read_nothing(matrix: HabilitationMatrix) -> None:
    assert matrix.readable_type_codes("99", None) == frozenset()


@pytest.mark.parametrize("profession", ["12", "300", "", "INSURER"])
def test_unknown_profession_is_not_in_the_matrix(
    matrix: HabilitationMatrix, profession: str
) -> None:
    assert matrix.readable_type_codes(profession, None) is None
    assert not matrix.may_read(profession, None, "11488-4")


@pytest.mark.parametrize("profession", [None, "12", "300"])
@pytest.mark.parametrize(
    "action", [Action.TEST_EXISTENCE, Action.READ_DOCUMENT, Action.SUBMIT_DOCUMENT]
)
def test_professional_with_unknown_profession_is_denied(
    pdp: PolicyDecisionPoint, profession: str | None, action: Action
) -> None:
    actor = professional(profession=profession, specialty=None)
    decision = pdp.authorize_operation(request(actor, action, space()))
    assert not decision.permitted
    assert decision.rule_id == "unknown_profession"
    assert pdp.visible_documents(actor, space()).nothing


def test_indirect_mode_also_needs_a_known_profession(pdp: PolicyDecisionPoint) -> None:
    actor = professional(profession=None, mode=AuthenticationMode.INDIRECT)
    decision = pdp.authorize_operation(request(actor, Action.SUBMIT_DOCUMENT, space()))
    assert decision.rule_id == "unknown_profession"


def test_cpe_holders_are_placed_by_their_card_not_a_profession(pdp: PolicyDecisionPoint) -> None:
    actor = professional(id="CPE-0001", profession=None, mode=AuthenticationMode.CPE)
    assert pdp.authorize_operation(request(actor, Action.SUBMIT_DOCUMENT, space())).permitted


def test_type_code_decides_visibility(pdp: PolicyDecisionPoint) -> None:
    residence = document(type_code="ATTEST-RESID")
    denied = pdp.can_see_document(medecin(), space(), residence)
    assert not denied.permitted and denied.rule_id == "profession_matrix"
    read = pdp.authorize_operation(request(medecin(), Action.READ_DOCUMENT, space(), residence))
    assert read.rule_id == "profession_matrix"
    psy = document(type_code="68599-0")
    assert pdp.can_see_document(medecin(), space(), psy).permitted
    assert pdp.can_see_document(infirmier(), space(), psy).rule_id == "profession_matrix"


def test_unknown_type_code_is_hidden_from_professionals(pdp: PolicyDecisionPoint) -> None:
    decision = pdp.can_see_document(medecin(), space(), document(type_code="NOT-A-J66-CODE"))
    assert decision.rule_id == "profession_matrix"


def test_a_configured_matrix_replaces_the_shipped_one(tmp_path: Path) -> None:
    path = tmp_path / "matrix.csv"
    path.write_text(
        "profession,specialty,type_code,may_read,source,rationale\n"
        "60,*,11488-4,yes,local policy,only consultation reports\n",
        encoding="utf-8",
    )
    pdp = PolicyDecisionPoint.from_path(path)
    assert pdp.can_see_document(infirmier(), space(), document(type_code="11488-4")).permitted
    assert not pdp.can_see_document(infirmier(), space(), document(type_code="11502-2")).permitted
    assert pdp.authorize_operation(request(medecin(), Action.TEST_EXISTENCE, space())).rule_id == (
        "unknown_profession"
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("10,*,11488-4,yes,,no source", "source"),
        ("*,*,*,yes,x,wildcard profession", "profession"),
        ("10,*,NOPE,yes,x,unknown code", "JDV_J66"),
        ("10,*,*,maybe,x,bad flag", "yes or no"),
    ],
)
def test_invalid_matrix_rows_are_rejected(line: str, message: str) -> None:
    header = "profession,specialty,type_code,may_read,source,rationale\n"
    with pytest.raises(ValueError, match=message):
        HabilitationMatrix.from_text(header + line + "\n")


def test_duplicate_and_missing_columns_are_rejected() -> None:
    header = "profession,specialty,type_code,may_read,source,rationale\n"
    with pytest.raises(ValueError, match="duplicate"):
        HabilitationMatrix.from_text(header + "10,*,*,yes,x,a\n10,*,*,no,x,b\n")
    with pytest.raises(ValueError, match="columns"):
        HabilitationMatrix.from_text("profession,type_code\n10,*\n")
