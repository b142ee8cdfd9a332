"""The hand-coded ANS Mesures de santé 3.2.0 rules, on the IG's own examples."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from conformance.data import DATA_DIR
from conformance.fhir.profiles import check_measurement, profile_of

EXAMPLES = sorted((DATA_DIR / "fhir" / "mesures").glob("*.json"))


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA_DIR / "fhir" / "mesures" / name).read_text())
    return data


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem.split("observation-")[-1])
def test_ig_examples_meet_their_profile(path: Any) -> None:
    resource = json.loads(path.read_text())
    assert profile_of(resource) is not None
    assert check_measurement(resource) == []


def test_wrong_unit_missing_category_and_effective_are_reported() -> None:
    weight = _load("Observation-example-mes-fr-observation-body-weight-001.json")
    broken = copy.deepcopy(weight)
    broken["valueQuantity"]["code"] = "[lb_av]"
    broken.pop("category")
    broken.pop("effectiveDateTime")
    problems = " | ".join(check_measurement(broken))
    assert "UCUM 'kg'" in problems and "VSCat" in problems and "effective[x]" in problems


def test_blood_pressure_components_and_pain_unit_text() -> None:
    bp = _load("Observation-example-mes-fr-observation-bp-001.json")
    bp["component"] = bp["component"][:1]
    assert any("component 8462-4" in p for p in check_measurement(bp))
    pain = _load("Observation-example-mes-fr-observation-pain-severity-001.json")
    pain["valueQuantity"]["unit"] = "level"
    assert any("'Level'" in p for p in check_measurement(pain))


def test_moment_extension_shape_and_glucose_units() -> None:
    glucose = _load("Observation-example-mes-fr-observation-glucose-001.json")
    glucose["valueQuantity"]["code"] = "mg"
    moment = next(e for e in glucose["extension"] if e["url"].endswith("moment-of-measurement"))
    moment["valueCodeableConcept"]["coding"].append({"system": "s", "code": "c"})
    problems = " | ".join(check_measurement(glucose))
    assert "JDV_J163" in problems and "value.coding max 1" in problems


def test_an_observation_of_no_mesures_profile_is_reported() -> None:
    other = {"resourceType": "Observation", "code": {"coding": [{"code": "x"}]}}
    assert check_measurement(other)[0].startswith("no Mesures de santé profile")
