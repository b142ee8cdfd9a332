"""Health measurements: the business rules of MES "API Mesures" v1.5.2 on ANS Mesures 3.2.0.

Sources (``../shared/reference/fhir/mes-api/`` and ``../shared/reference/fhir/mesures/``):

- the measurement codes and units: ``mesures-measurement-codes.json`` (copied, with a test that
  keeps :data:`MEASUREMENTS` equal to it, in ``fhir_server/data/``);
- the feeding rules and the validation-error catalogue: API Mesures §2.2.8 "Liste des erreurs de
  validation" (422 with an OperationOutcome: message, outcome type, diagnostic);
- glucose rules: §2.2.6 "Cas particulier de la glycémie";
- BMI: "Les observations IMC sont calculées à la volée" (§2.2.8): a posted BMI is refused and
  the server computes it from a weight and the latest height known at the weight's date.

Plain JSON dictionaries in, :class:`MeasurementError` out: no Flask, no ``fhir.resources``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
VITAL_SIGNS = "vital-signs"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
MES_PROFILE_BASE = "https://fhir.monespacesante.fr/ref/mesure/StructureDefinition/"
ANS_PROFILE_BASE = "https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition/"

WEIGHT, HEIGHT, BMI = "29463-7", "8302-2", "39156-5"
BLOOD_GLUCOSE, HBA1C, INTERSTITIAL_GLUCOSE, GMI = "2345-7", "4548-4", "MED-969", "MED-972"


@dataclass(frozen=True, slots=True)
class Measurement:
    """One measurement type of the MES API search list (§2.3.1.1) and its ANS profile."""

    code: str
    name: str
    profile: str  # ANS Mesures 3.2.0 profile id
    mes_profile: str  # MES canonical suffix
    units: frozenset[str]  # accepted UCUM codes
    moment: str = "optional"  # required | forbidden | optional
    number_of_days: str = "forbidden"  # required | forbidden | optional
    components: tuple[str, ...] = ()


MEASUREMENTS: dict[str, Measurement] = {
    m.code: m
    for m in (
        Measurement(WEIGHT, "body weight", "mesures-fr-observation-body-weight",
                    "mes-observation-bodyweight", frozenset({"kg", "g", "[lb_av]"})),
        Measurement(HEIGHT, "body height", "mesures-fr-observation-bodyheight",
                    "mes-observation-bodyheight", frozenset({"cm", "m", "[in_i]"})),
        Measurement(BMI, "body mass index", "mesures-fr-observation-bmi",
                    "mes-observation-bmi", frozenset({"kg/m2"})),
        Measurement("85354-9", "blood pressure", "mesures-fr-observation-bp",
                    "mes-observation-bp", frozenset({"mm[Hg]"}),
                    components=("8480-6", "8462-4")),
        Measurement("8867-4", "heart rate", "mesures-fr-observation-heartrate",
                    "mes-observation-heartrate", frozenset({"/min"})),
        Measurement("8310-5", "body temperature", "mesures-fr-observation-body-temperature",
                    "mes-observation-bodytemperature", frozenset({"Cel", "[degF]"})),
        Measurement("8280-0", "waist circumference", "mesures-observation-waist-circumference",
                    "mes-observation-waistcircumference", frozenset({"cm", "m", "[in_i]"})),
        Measurement("41950-7", "steps by day", "mesures-observation-steps-by-day",
                    "mes-observation-stepsbyday", frozenset({"1/(24.h)", "/d", "{steps}/d"})),
        Measurement("72514-3", "pain severity", "mesures-observation-pain-severity",
                    "mes-observation-painseverity", frozenset({"1", "{score}"})),
        Measurement("8287-5", "head circumference", "mesures-observation-head-circumference",
                    "mes-observation-headcircumference", frozenset({"cm", "[in_i]"})),
        Measurement(BLOOD_GLUCOSE, "blood glucose", "mesures-observation-glucose",
                    "mes-observation-glucose", frozenset({"mg/dL"}), moment="required"),
        Measurement(HBA1C, "glycated hemoglobin", "mesures-observation-hb1ac",
                    "mes-observation-glucose", frozenset({"%"}), moment="forbidden"),
        Measurement(INTERSTITIAL_GLUCOSE, "interstitial glucose", "mesures-observation-glucose",
                    "mes-observation-glucose", frozenset({"mg/dL"}), moment="forbidden",
                    number_of_days="required"),
        Measurement(GMI, "glucose management indicator", "mesures-observation-glucose",
                    "mes-observation-glucose", frozenset({"%"}), moment="forbidden",
                    number_of_days="required"),
    )
}
GLUCOSE_CODES = frozenset({BLOOD_GLUCOSE, HBA1C, INTERSTITIAL_GLUCOSE, GMI})

# The catalogue's HTTP message column (§2.2.8) and outcome types (issue-type codes).
BUNDLE_NOT_VALID = "Bundle not valid."
LINK_NOT_VALID = "Observation and Device link not valid."
OBSERVATION_NOT_VALID = "Observation resource not valid."
DEVICE_NOT_VALID = "Device resource not valid."
REQUEST_NOT_VALID = "Request not valid"
CONSENT_REFUSED = "Consent not given, access refused."
IDPE_MISMATCH = "idPe requested do not match authorized idPe."
NO_BUNDLE = "No bundle provided."
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 50
IF_NONE_EXIST_RE = re.compile(r"^identifier=urn:oid:[0-2](\.(0|[1-9]\d*))+\|[^|\s]+$")


class MeasurementError(Exception):
    """A catalogue error: HTTP status, message, FHIR issue type and diagnostic."""

    def __init__(self, status: int, message: str, issue: str, diagnostics: str) -> None:
        super().__init__(diagnostics)
        self.status = status
        self.message = message
        self.issue = issue  # issue-type code: invalid | value | not-supported | incomplete ...
        self.diagnostics = diagnostics
        self.code = f"mes.{issue}"


def codes_of(concept: Any) -> list[str]:
    if not isinstance(concept, dict):
        return []
    return [str(c.get("code")) for c in concept.get("coding") or [] if c.get("code")]


def measurement_of(resource: dict[str, Any]) -> Measurement | None:
    """The measurement type of an Observation (by any of its codes), None for other data."""
    if resource.get("resourceType") != "Observation":
        return None
    for code in codes_of(resource.get("code")):
        if code in MEASUREMENTS:
            return MEASUREMENTS[code]
    return None


def is_measurement_code(value: str) -> bool:
    return value.rsplit("|", 1)[-1] in MEASUREMENTS


def _extension(resource: dict[str, Any], *suffixes: str) -> list[dict[str, Any]]:
    found = []
    for ext in resource.get("extension") or []:
        url = str(ext.get("url", ""))
        if any(url.endswith(s) for s in suffixes):
            found.append(ext)
    return found


def _invalid(issue: str, diagnostics: str, message: str = OBSERVATION_NOT_VALID) -> None:
    raise MeasurementError(422, message, issue, diagnostics)


def check_subject(resource: dict[str, Any], patient_ins: str, *, required: bool) -> None:
    """``Observation.subject.identifier`` = AssignAuth|idPe (§2.3.1.1); idPe is the INS here."""
    identifier = (resource.get("subject") or {}).get("identifier")
    if not identifier or not identifier.get("value"):
        if required:
            _invalid("invalid", "Observation.subject.identifier is mandatory.")
        return
    if str(identifier.get("value")) != patient_ins:
        raise MeasurementError(403, "Forbidden", "forbidden", IDPE_MISMATCH)


def validate_observation(
    resource: dict[str, Any],
    *,
    patient_ins: str,
    app_oid: str | None = None,
    subject_required: bool = True,
) -> Measurement:
    """Check a measurement Observation against the §2.2.8 catalogue, in the catalogue's order."""
    measurement = measurement_of(resource)
    if measurement is None:
        _invalid("not-supported", "Observation code is not a supported measurement.")
        raise AssertionError  # unreachable: _invalid raises
    meta = resource.get("meta") or {}
    if not meta.get("profile"):
        _invalid("invalid", "Observation must provide meta.profile value.")
    source = str(meta.get("source") or "")
    if source and app_oid:
        bare = source.removeprefix("urn:oid:")
        if bare != app_oid and not bare.startswith(app_oid + "."):
            _invalid(
                "value",
                f"Solution oid contains in Observation.meta.source don't belong to root "
                f"editor oid ({app_oid}).",
            )
    if measurement.code == BMI:
        _invalid("not-supported", "Bmi observation cannot be created.")
    _check_value(resource, measurement)
    check_subject(resource, patient_ins, required=subject_required)
    _check_glucose(resource, measurement)
    _check_unit(resource, measurement)
    return measurement


def _check_value(resource: dict[str, Any], measurement: Measurement) -> None:
    quantities: list[Any] = []
    if measurement.components:
        by_code = {
            code: comp.get("valueQuantity")
            for comp in resource.get("component") or []
            for code in codes_of(comp.get("code"))
        }
        quantities = [by_code.get(code) for code in measurement.components]
    else:
        quantities = [resource.get("valueQuantity")]
    for quantity in quantities:
        if not isinstance(quantity, dict) or quantity.get("value") is None:
            _invalid("value", "Observation value quantity not provided.")
            return


def _check_unit(resource: dict[str, Any], measurement: Measurement) -> None:
    """§2.2.6 units per glucose type (the catalogue has no text for it: ours, issue ``value``)."""
    if measurement.code not in GLUCOSE_CODES:
        return
    quantity = resource.get("valueQuantity") or {}
    unit = str(quantity.get("code") or quantity.get("unit") or "")
    if unit.lower() not in {u.lower() for u in measurement.units}:
        expected = " or ".join(sorted(measurement.units))
        _invalid("value", f"Observation value unit must be {expected} for this glucose type.")


def _check_glucose(resource: dict[str, Any], measurement: Measurement) -> None:
    """§2.2.6: moment / number-of-days extensions per glucose type."""
    if measurement.code not in GLUCOSE_CODES:
        return
    moment = _extension(resource, "moment-of-measurement", "MomentOfMeasurement")
    days = _extension(resource, "number-of-days", "NumberOfDays")
    if measurement.moment == "required" and not moment:
        _invalid("incomplete", "Observation.extension.moment is mandatory.")
    if measurement.number_of_days == "forbidden" and days:
        _invalid("invalid", "Observation.extension.numberOfDays cannot be added.")
    if measurement.moment == "forbidden" and moment:
        _invalid("invalid", "Observation.extension.moment cannot be added.")
    if measurement.number_of_days == "required" and not days:
        _invalid("incomplete", "Observation.extension.numberOfDays is mandatory.")


def validate_device(resource: dict[str, Any], if_none_exist: str | None) -> tuple[str, str]:
    """A PhdDevice entry of a feeding Bundle; returns its (system, value) identifier."""
    if not if_none_exist or not IF_NONE_EXIST_RE.match(if_none_exist):
        _invalid(
            "invalid",
            "Device request must have a valid IfNoneExist attribute : "
            "identifier=urn:oid:<OID>|<DEVICE ID>",
            BUNDLE_NOT_VALID,
        )
    if not (resource.get("meta") or {}).get("profile"):
        _invalid("invalid", "Device must provide meta.profile value.", DEVICE_NOT_VALID)
    system, value = str(if_none_exist)[len("identifier="):].split("|", 1)
    return system, value


# ----------------------------------------------------------------------------- search modes
@dataclass(frozen=True, slots=True)
class SearchMode:
    mode: str  # all | last
    count: int
    offset: int


def search_mode(
    *, sort: str | None, count: str | None, offset: str | None, dates: list[str]
) -> SearchMode:
    """Detect "all" or "last" and check the §2.3.3 request errors (400 INVALID)."""

    def bad(diagnostics: str) -> MeasurementError:
        return MeasurementError(400, REQUEST_NOT_VALID, "invalid", diagnostics)

    try:
        size = int(count) if count is not None else DEFAULT_PAGE_SIZE
        start = int(offset) if offset is not None else 0
    except ValueError as exc:
        raise bad("_count and _offset must be integers") from exc
    if size > MAX_PAGE_SIZE:
        raise bad(f"Maximum page size allowed is {MAX_PAGE_SIZE}. Actual : {size}")
    if size < 0 or start < 0:
        raise bad("_count and _offset must not be negative")
    if sort is not None:
        if sort != "-date" or size != 1:
            raise bad(
                "Sort parameter must be equals to -date (date DESC) with _count equals to 1 "
                "to retrieve last observation"
            )
        if dates or start:
            raise bad("Paged search and search last cannot be requested concurrently")
        return SearchMode("last", 1, 0)
    lower = [d for d in dates if d[:2] in ("ge", "gt", "sa")]
    upper = [d for d in dates if d[:2] in ("le", "lt", "eb")]
    if len(lower) == 1 and len(upper) == 1 and len(dates) == 2:
        return SearchMode("all", size, start)
    raise bad("No search mode detected")


# ----------------------------------------------------------------------------- BMI
_WEIGHT_TO_KG = {"kg": 1.0, "g": 0.001, "[lb_av]": 0.45359237}
_HEIGHT_TO_M = {"cm": 0.01, "m": 1.0, "[in_i]": 0.0254}


def _quantity(resource: dict[str, Any], factors: dict[str, float]) -> float | None:
    q = resource.get("valueQuantity") or {}
    unit = str(q.get("code") or q.get("unit") or "")
    if q.get("value") is None or unit not in factors:
        return None
    return float(q["value"]) * factors[unit]


def compute_bmi(weight: dict[str, Any], height: dict[str, Any]) -> dict[str, Any] | None:
    """The BMI Observation derived from one weight and one height (LOINC 39156-5, kg/m2)."""
    kg = _quantity(weight, _WEIGHT_TO_KG)
    metres = _quantity(height, _HEIGHT_TO_M)
    if kg is None or not metres:
        return None
    bmi: dict[str, Any] = {
        "resourceType": "Observation",
        "id": bmi_id(str(weight["id"])),
        "meta": {
            "profile": [MES_PROFILE_BASE + "mes-observation-bmi"],
            "lastUpdated": max(
                str((weight.get("meta") or {}).get("lastUpdated", "")),
                str((height.get("meta") or {}).get("lastUpdated", "")),
            ),
        },
        "status": "final",
        "category": [
            {"coding": [{"system": OBSERVATION_CATEGORY, "code": VITAL_SIGNS,
                         "display": "Signes vitaux"}]}
        ],
        "code": {"coding": [{"system": LOINC, "code": BMI, "display": "Body mass index (BMI)"}]},
        "effectiveDateTime": weight.get("effectiveDateTime"),
        "valueQuantity": {
            "value": round(kg / (metres * metres), 1),
            "unit": "kg/m2",
            "system": UCUM,
            "code": "kg/m2",
        },
        "derivedFrom": [
            {"reference": f"Observation/{weight['id']}"},
            {"reference": f"Observation/{height['id']}"},
        ],
    }
    if weight.get("subject"):
        bmi["subject"] = weight["subject"]
    if not bmi["meta"]["lastUpdated"]:
        del bmi["meta"]["lastUpdated"]
    return bmi


BMI_ID_PREFIX = "bmi-"


def bmi_id(weight_id: str) -> str:
    return BMI_ID_PREFIX + weight_id


def weight_id_of(bmi_identifier: str) -> str | None:
    return bmi_identifier[len(BMI_ID_PREFIX):] if bmi_identifier.startswith(BMI_ID_PREFIX) else None


def height_for(
    weight_date: datetime | None, heights: Iterable[tuple[datetime | None, dict[str, Any]]]
) -> dict[str, Any] | None:
    """The latest height at or before the weight's date, else the latest height known.

    ``heights`` are (effective date, resource), newest first.
    """
    ordered = list(heights)
    for when, height in ordered:
        if when is not None and weight_date is not None and when <= weight_date:
            return height
    return ordered[0][1] if ordered else None
