"""Hand-coded rules of the ANS "Mesures de santé" 3.2.0 profiles (ans.fhir.fr.mesures).

Transcribed from the differentials in ``reference/fhir/mesures/StructureDefinition`` plus what
they inherit from the FHIR R4 vital-signs profile (``vitalsigns``: status, category
``vital-signs``, code, subject and effective[x] 1..1, value or dataAbsentReason (vs-2)). Only
what the differentials fix is checked: cardinalities, fixed/pattern codes and units, the
extensions' shape, and the bindings whose codes are given in the IG (units of glucose).
Terminology bindings to NOS value sets not shipped with the kit are not checked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

CANONICAL: Final = "https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition/"
LOINC: Final = "http://loinc.org"
UCUM: Final = "http://unitsofmeasure.org"
CATEGORY_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
MOMENT_URL: Final = CANONICAL + "mesures-moment-of-measurement"
DAYS_URL: Final = CANONICAL + "mesures-number-of-days"
REASON_URL: Final = CANONICAL + "mesures-reason-for-measurement"
#: JDV_J163-GlucoseUnits-ENS as the IG's examples and the MES API use it.
GLUCOSE_UNITS: Final = frozenset({"mg/dL", "mmol/L", "g/L", "%"})

Resource = dict[str, Any]


@dataclass(frozen=True)
class Profile:
    """One measurement profile: LOINC code(s) and the value's UCUM unit."""

    name: str
    codes: frozenset[str]
    unit: str | None = None  # required UCUM code of valueQuantity
    unit_text: str | None = None  # patternString of valueQuantity.unit
    components: dict[str, str] = field(default_factory=dict)  # code -> UCUM unit
    min_codings: int = 1
    fixed_code: bool = True  # False: extensible binding (JDV_J154 for glucose)
    extra: tuple[Callable[[Resource], list[str]], ...] = ()


def _extensions(resource: Resource, url: str) -> list[Resource]:
    return [e for e in resource.get("extension") or [] if e.get("url") == url]


def _coded_extension(resource: Resource, url: str, label: str) -> list[str]:
    problems: list[str] = []
    found = _extensions(resource, url)
    if len(found) > 1:
        problems.append(f"{label}: max 1, got {len(found)}")
    for extension in found:
        if extension.get("extension"):
            problems.append(f"{label}: Extension.extension max 0")
        concept = extension.get("valueCodeableConcept")
        if not isinstance(concept, dict):
            problems.append(f"{label}: value[x] must be a CodeableConcept")
            continue
        codings = concept.get("coding") or []
        if url == MOMENT_URL and len(codings) > 1:
            problems.append(f"{label}: value.coding max 1")
        for coding in codings:
            if not coding.get("system") or not coding.get("code"):
                problems.append(f"{label}: value.coding.system and .code are 1..1")
    return problems


def _glucose(resource: Resource) -> list[str]:
    quantity = resource.get("valueQuantity") or {}
    problems: list[str] = []
    if quantity and quantity.get("system") != UCUM:
        problems.append("glucose: valueQuantity.system must be http://unitsofmeasure.org")
    if quantity and quantity.get("code") not in GLUCOSE_UNITS:
        problems.append(
            f"glucose: valueQuantity.code {quantity.get('code')!r} not in JDV_J163 (GlucoseUnits)"
        )
    if len(resource.get("referenceRange") or []) > 1:
        problems.append("glucose: referenceRange max 1")
    return problems


PROFILES: Final[dict[str, Profile]] = {
    "mesures-fr-observation-body-weight": Profile("body weight", frozenset({"29463-7"}), "kg"),
    "mesures-fr-observation-bodyheight": Profile("body height", frozenset({"8302-2"}), "cm"),
    "mesures-fr-observation-bmi": Profile("BMI", frozenset({"39156-5"}), "kg/m2"),
    "mesures-fr-observation-bp": Profile(
        "blood pressure",
        frozenset({"85354-9"}),
        components={"8480-6": "mm[Hg]", "8462-4": "mm[Hg]"},
    ),
    "mesures-fr-observation-heartrate": Profile("heart rate", frozenset({"8867-4"}), "/min"),
    "mesures-fr-observation-body-temperature": Profile(
        "body temperature", frozenset({"8310-5"}), "Cel"
    ),
    "mesures-observation-waist-circumference": Profile(
        "waist circumference", frozenset({"8280-0"}), "cm"
    ),
    "mesures-observation-steps-by-day": Profile(
        "steps by day", frozenset({"41950-7"}), "1/(24.h)", unit_text="steps/day"
    ),
    "mesures-observation-pain-severity": Profile(
        "pain severity", frozenset({"72514-3"}), "1", unit_text="Level"
    ),
    "mesures-observation-head-circumference": Profile(
        "head circumference", frozenset({"8287-5"}), "cm", unit_text="cm", min_codings=2
    ),
    "mesures-observation-glucose": Profile(
        "glucose",
        frozenset({"2345-7", "MED-969", "MED-972"}),
        fixed_code=False,
        extra=(_glucose,),
    ),
    "mesures-observation-hb1ac": Profile("HbA1c", frozenset({"4548-4"}), "%"),
}


def profile_of(resource: Resource) -> str | None:
    """The Mesures profile a resource claims (meta.profile), else the one its code implies."""
    for url in (resource.get("meta") or {}).get("profile") or []:
        name = str(url).rsplit("/", 1)[-1]
        if name in PROFILES:
            return name
    codes = {c.get("code") for c in (resource.get("code") or {}).get("coding") or []}
    for name, profile in PROFILES.items():
        if codes & profile.codes:
            return name
    return None


def _vital_signs(resource: Resource) -> list[str]:
    problems: list[str] = []
    if resource.get("resourceType") != "Observation":
        return [f"resourceType {resource.get('resourceType')!r}, expected Observation"]
    if not resource.get("status"):
        problems.append("status is 1..1")
    categories = resource.get("category") or []
    if not any(
        coding.get("system") == CATEGORY_SYSTEM and coding.get("code") == "vital-signs"
        for concept in categories
        for coding in concept.get("coding") or []
    ):
        problems.append("category VSCat (observation-category#vital-signs) is 1..1")
    subject = resource.get("subject")
    if not isinstance(subject, dict) or not (subject.get("reference") or subject.get("identifier")):
        problems.append("subject is 1..1")
    if not (resource.get("effectiveDateTime") or resource.get("effectivePeriod")):
        problems.append("effective[x] is 1..1")
    has_value = any(key.startswith("value") for key in resource)
    if not has_value and not resource.get("dataAbsentReason") and not resource.get("component"):
        problems.append("vs-2: value[x] or dataAbsentReason is required")
    absent = resource.get("dataAbsentReason")
    if isinstance(absent, dict):
        for coding in absent.get("coding") or []:
            if not coding.get("system") or not coding.get("code"):
                problems.append("dataAbsentReason.coding.system and .code are 1..1")
    return problems


def check_measurement(resource: Resource) -> list[str]:
    """Problems of a measurement Observation against its Mesures 3.2.0 profile."""
    name = profile_of(resource)
    if name is None:
        return ["no Mesures de santé profile matches this Observation (meta.profile or code)"]
    profile = PROFILES[name]
    problems = [f"{name}: {p}" for p in _vital_signs(resource)]
    codings = (resource.get("code") or {}).get("coding") or []
    if profile.fixed_code and not any(
        c.get("system") == LOINC and c.get("code") in profile.codes for c in codings
    ):
        problems.append(f"{name}: code must carry LOINC {' or '.join(sorted(profile.codes))}")
    if len(codings) < profile.min_codings:
        problems.append(f"{name}: code.coding min {profile.min_codings}, got {len(codings)}")
    for coding in codings:
        if not coding.get("system") or not coding.get("code"):
            problems.append(f"{name}: code.coding.system and .code are 1..1")
    quantity = resource.get("valueQuantity")
    if profile.unit is not None and isinstance(quantity, dict):
        if quantity.get("system") != UCUM or quantity.get("code") != profile.unit:
            problems.append(
                f"{name}: valueQuantity must be UCUM {profile.unit!r}, got "
                f"{quantity.get('system')!r}|{quantity.get('code')!r}"
            )
    if profile.unit_text is not None and isinstance(quantity, dict):
        if quantity.get("unit") != profile.unit_text:
            problems.append(
                f"{name}: valueQuantity.unit must be {profile.unit_text!r}, got "
                f"{quantity.get('unit')!r}"
            )
    for code, unit in profile.components.items():
        matching = [
            c
            for c in resource.get("component") or []
            if any(x.get("code") == code for x in (c.get("code") or {}).get("coding") or [])
        ]
        if len(matching) != 1:
            problems.append(f"{name}: component {code} is 1..1, got {len(matching)}")
            continue
        value = matching[0].get("valueQuantity") or {}
        if value and (value.get("system") != UCUM or value.get("code") != unit):
            problems.append(f"{name}: component {code} must be in UCUM {unit!r}")
    problems += [f"{name}: {p}" for p in _coded_extension(resource, MOMENT_URL, "moment")]
    problems += [f"{name}: {p}" for p in _coded_extension(resource, DAYS_URL, "numberOfDays")]
    if len(_extensions(resource, REASON_URL)) > 1:
        problems.append(f"{name}: MesReasonForMeasurement max 1")
    for extension in _extensions(resource, REASON_URL):
        if "valueString" not in extension:
            problems.append(f"{name}: MesReasonForMeasurement is a valueString")
    for rule in profile.extra:
        problems += [f"{name}: {p}" for p in rule(resource)]
    return problems
