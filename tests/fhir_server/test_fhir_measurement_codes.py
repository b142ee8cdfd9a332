"""The measurement table of ``espace.measurements`` agrees with the shipped
``mesures-measurement-codes.json`` (ANS Mesures 3.2.0 / MES API Mesures v1.5.2 summary)."""

from __future__ import annotations

import json
import re
from importlib.resources import files

from espace.measurements import GLUCOSE_CODES, MEASUREMENTS


def _table() -> dict[str, object]:
    text = files("fhir_server").joinpath("data", "mesures-measurement-codes.json").read_text()
    data: dict[str, object] = json.loads(text)
    return data


def test_every_mes_api_search_code_is_known() -> None:
    table = _table()
    measurements = table["measurements"]
    assert isinstance(measurements, list)
    loincs = set()
    for item in measurements:
        found = re.match(r"^([0-9]+-[0-9])", str(item.get("loinc", "")))
        if found and "not in MES API" not in item["name"]:
            loincs.add(found.group(1))
    glucose = next(m for m in measurements if "mes_api_search_codes" in m)
    loincs |= set(glucose["mes_api_search_codes"].values())
    assert loincs == set(MEASUREMENTS)


def test_units_and_glucose_rules_match_the_table() -> None:
    measurements = _table()["measurements"]
    assert isinstance(measurements, list)
    for item in measurements:
        code = str(item.get("loinc", ""))[:7]
        if code in MEASUREMENTS and item.get("ucum") and code not in GLUCOSE_CODES:
            assert str(item["ucum"]).split(" ")[0] in MEASUREMENTS[code].units, code
    assert MEASUREMENTS["2345-7"].moment == "required"
    assert MEASUREMENTS["2345-7"].number_of_days == "forbidden"
    assert MEASUREMENTS["4548-4"].moment == "forbidden"
    assert MEASUREMENTS["MED-969"].number_of_days == "required"
    assert MEASUREMENTS["MED-972"].number_of_days == "required"
