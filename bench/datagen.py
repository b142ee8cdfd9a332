"""Synthetic national-scale data with realistic shapes: spaces, registry entries, observations.

Shapes (sources: Assurance Maladie / ANS figures for 2025, rounded; DMP value sets of
``reference/dmp/terminology``):

- 420 M documents deposited in 2025 for 66 M spaces: documents per space follow a heavy-tailed
  (log-normal) law, most spaces holding a handful and a few hundreds (chronic patients);
- the 2025 mix by typeCode (JDV_J66 / ASS_X16 type -> class): biology reports ~40 %,
  prescriptions ~20 %, hospital letters and episode summaries ~15 %, imaging ~10 %,
  consultation reports, vaccination notes and pharmacy medication reviews for the rest;
- confidentiality (TRE_A07): ~3 % masked to professionals (MASQUE_PS), ~1.5 % invisible to the
  patient (INVISIBLE_PATIENT), ~0.5 % invisible to legal representatives;
- availabilityStatus: ~95 % Approved, the rest Deprecated (replaced), Archived or Deleted;
- authors from several professions (TRE_G15): médecins, pharmaciens (biologists and officine),
  infirmiers, sages-femmes, chirurgiens-dentistes, masseurs-kinésithérapeutes.

Everything is deterministic for a given seed, so two runs load the same registry.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from espace.models import flat
from espace.registry.config import DEFAULT_REPOSITORY_UNIQUE_ID as REPOSITORY_ID
from espace.registry.model import DocumentEntry, to_json

LOINC = "2.16.840.1.113883.6.1"
CLASS_SCHEME = "1.2.250.1.213.1.1.4.1"
CONF_SCHEME_HL7 = "2.16.840.1.113883.5.25"
CONF_SCHEME_DMP = "1.2.250.1.213.1.1.4.13"
INS_OID_TEST = "1.2.250.1.213.1.4.10"
STABLE = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"


@dataclass(frozen=True, slots=True)
class DocType:
    """One kind of document of the 2025 mix: typeCode, classCode, share and usual author."""

    type_code: str
    display: str
    class_code: str
    class_display: str
    share: float
    profession: str  # TRE_G15 of the usual author
    specialty: str
    format_code: str
    practice_setting: str
    facility: str


MIX: tuple[DocType, ...] = (
    DocType("11502-2", "CR d'examens biologiques", "10", "Compte rendu", 0.40, "21", "G15_21/SP",
            "urn:asip:ci-sis:cr-bio:2015", "SA05", "LABORATOIRE"),
    DocType("57833-6", "Prescription de produits de santé", "42", "Prescription", 0.20, "10",
            "G15_10/SM26", "urn:ihe:iti:xds-sd:pdf:2008", "SA07", "CABINET"),
    DocType("11490-0", "Lettre de liaison à la sortie d'un établissement de soins", "10",
            "Compte rendu", 0.09, "10", "G15_10/SM54", "urn:asip:ci-sis:ldl-ees:2017", "SA01",
            "ETABLISSEMENT"),
    DocType("34133-9", "Synthèse d'épisode de soins", "11", "Synthèse", 0.06, "10",
            "G15_10/SM54", "urn:ihe:iti:xds-sd:pdf:2008", "SA01", "ETABLISSEMENT"),
    DocType("18748-4", "CR d'imagerie médicale", "31", "Imagerie médicale", 0.10, "10",
            "G15_10/SM44", "urn:ihe:rad:PDF", "SA07", "CABINET"),
    DocType("11488-4", "CR ou fiche de consultation ou de visite", "10", "Compte rendu", 0.07,
            "10", "G15_10/SM26", "urn:ihe:iti:xds-sd:pdf:2008", "SA07", "CABINET"),
    DocType("87273-9", "Note de vaccination", "52", "Certificat, déclaration", 0.04, "60",
            "G15_60", "urn:asip:ci-sis:vac-note:2021", "SA07", "CABINET"),
    DocType("56445-0", "Bilan médicamenteux (Officine)", "11", "Synthèse", 0.02, "21",
            "G15_21/SP", "urn:ihe:iti:xds-sd:pdf:2008", "SA33", "OFFICINE"),
    DocType("15507-7", "CR de passage aux urgences", "10", "Compte rendu", 0.02, "10",
            "G15_10/SM54", "urn:ihe:iti:xds-sd:pdf:2008", "SA01", "ETABLISSEMENT"),
)
"""The 2025 mix (shares sum to 1)."""

# (profession TRE_G15, share of the professional population of the generator)
PROFESSIONS: tuple[tuple[str, float], ...] = (
    ("10", 0.55),
    ("21", 0.15),
    ("60", 0.15),
    ("50", 0.05),
    ("40", 0.05),
    ("70", 0.05),
)

MASKED_SHARE = 0.03
INVISIBLE_PATIENT_SHARE = 0.015
INVISIBLE_REPRESENTATIVES_SHARE = 0.005
STATUS_MIX: tuple[tuple[str, float], ...] = (
    ("Approved", 0.95),
    ("Deprecated", 0.025),
    ("Archived", 0.02),
    ("Deleted", 0.005),
)
MEAN_DOCS_PER_SPACE = 25.0  # ten years at ~6.4 documents per space per year, heavy-tailed
TARGET_ENTRIES = 200  # the ITI-18 probe patient of the issue
EPOCH = datetime(2016, 1, 1, tzinfo=UTC)
SPAN_DAYS = 365 * 10


def nir_key(nir13: str) -> str:
    """The NIR control key: 97 - (NIR mod 97), two digits."""
    return f"{97 - int(nir13) % 97:02d}"


@functools.lru_cache(maxsize=64)
def ins_for(index: int) -> str:
    """A valid-looking 15-digit matricule INS (NIR + key) for patient ``index`` (test range)."""
    sex = 1 + index % 2
    year = 30 + index % 70
    month = 1 + index % 12
    body = f"{sex}{year:02d}{month:02d}99{index % 1_000_000:06d}"[:13]
    body = body.ljust(13, "0")
    return body + nir_key(body)


def professional_id(rng_value: int, profession: str) -> str:
    """PS_IdNat: ``8`` + an 11-digit RPPS (synthetic range 8999...)."""
    return f"8999{int(profession):02d}{rng_value % 1_000_000:06d}"


def structure_id(rng_value: int) -> str:
    return f"4999{rng_value % 100_000_000_000:011d}"


@functools.lru_cache(maxsize=64)
def space_id_for(index: int) -> str:
    return f"bench{index:011d}"


def _weighted(rng: random.Random, table: tuple[tuple[Any, float], ...]) -> Any:
    x = rng.random()
    acc = 0.0
    for value, share in table:
        acc += share
        if x < acc:
            return value
    return table[-1][0]


_MIX_TABLE = tuple((d, d.share) for d in MIX)


def docs_for_space(rng: random.Random) -> int:
    """A heavy-tailed number of documents (log-normal, mean ~MEAN_DOCS_PER_SPACE, cap 2000)."""
    sigma = 1.2
    mu = math.log(MEAN_DOCS_PER_SPACE) - sigma * sigma / 2
    return max(1, min(2000, int(rng.lognormvariate(mu, sigma))))


@dataclass(frozen=True, slots=True)
class Plan:
    """How many spaces and entries: ``targets`` spaces with exactly 200 entries come first."""

    entries: int
    targets: int = 8
    seed: int = 2025


def space_sizes(plan: Plan) -> Iterator[int]:
    """Entries per space until ``plan.entries`` are placed (targets first)."""
    rng = random.Random(plan.seed)
    left = plan.entries
    for _ in range(plan.targets):
        take = min(TARGET_ENTRIES, left)
        if take <= 0:
            return
        left -= take
        yield take
    while left > 0:
        take = min(docs_for_space(rng), left)
        left -= take
        yield take


def space_row(index: int, now: datetime) -> dict[str, Any]:
    ins = ins_for(index)
    return {
        "id": space_id_for(index),
        "ins": ins,
        "ins_oid": INS_OID_TEST,
        "family_name": f"BENCH{index}",
        "given_names": "CAMILLE",
        "birth_date": datetime(1930 + index % 90, 1 + index % 12, 1 + index % 28).date(),
        "sex": "F" if index % 2 else "M",
        "email": None,
        "phone": None,
        "status": "active",
        "created_at": now,
        "status_changed_at": now,
        "activated_at": now,
        "closed_at": None,
        "death_date": None,
        "enrolment_code_hash": None,
        "enrolment_sent_at": None,
        "enrolment_bounced": False,
        "is_protected_adult": False,
        "medecin_traitant_id": None,
        "break_glass_allowed": True,
        "regulation_allowed": True,
        "auto_unmask_in_emergency": False,
        "prevention_opposed": False,
    }


def _xcn(pid: str, family: str) -> str:
    return f"{pid}^{family}^CAMILLE^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS"


def _xon(sid: str) -> str:
    return f"STRUCTURE {sid}^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^{sid}"


def _dtm(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H%M%S")


_ENTRY_DEFAULTS: dict[str, Any] = to_json(DocumentEntry(id=""))
"""The keys of ``metadata_json`` as the registry writes it (``to_json(DocumentEntry)``)."""


def _code(code: str, scheme: str, display: str = "") -> dict[str, str]:
    return {"code": code, "scheme": scheme, "display": display}


def entry_row(
    rng: random.Random, *, space_index: int, serial: int, now: datetime
) -> dict[str, Any]:
    """One DocumentEntryRow as a column dict, with the metadata JSON the registry stores."""
    kind: DocType = _weighted(rng, _MIX_TABLE)
    profession = kind.profession if rng.random() < 0.8 else _weighted(rng, PROFESSIONS)
    author = professional_id(rng.randrange(2_000_000), profession)
    structure = structure_id(rng.randrange(50_000))
    created = EPOCH + timedelta(seconds=rng.randrange(SPAN_DAYS * 86400))
    conf = ["N"]
    x = rng.random()
    if x < MASKED_SHARE:
        conf.append("MASQUE_PS")
    elif x < MASKED_SHARE + INVISIBLE_PATIENT_SHARE:
        conf.append("INVISIBLE_PATIENT")
    elif x < MASKED_SHARE + INVISIBLE_PATIENT_SHARE + INVISIBLE_REPRESENTATIVES_SHARE:
        conf.append("INVISIBLE_REPRESENTANTS_LEGAUX")
    status = _weighted(rng, STATUS_MIX)
    uid = f"1.2.250.1.999.2.{space_index}.{serial}"
    entry_uuid = f"urn:uuid:{uuidish(space_index, serial)}"
    ins = ins_for(space_index)
    size = int(rng.lognormvariate(10.5, 1.0))
    digest = hashlib.sha1(uid.encode()).hexdigest()
    person = _xcn(author, f"PRO{author[-4:]}")
    mime = "application/pdf" if "pdf" in kind.format_code.lower() else "text/xml"
    metadata = dict(_ENTRY_DEFAULTS)
    metadata.update(
        id=entry_uuid,
        unique_id=uid,
        patient_id=f"{ins}^^^&{INS_OID_TEST}&ISO",
        mime_type=mime,
        class_code=_code(kind.class_code, CLASS_SCHEME, kind.class_display),
        type_code=_code(kind.type_code, LOINC, kind.display),
        format_code=_code(kind.format_code, "1.2.250.1.213.1.1.4.2.282"),
        practice_setting_code=_code(kind.practice_setting, "1.2.250.1.71.4.2.4"),
        healthcare_facility_type_code=_code(kind.facility, "1.2.250.1.213.1.1.4.9"),
        confidentiality_codes=[
            _code(c, CONF_SCHEME_HL7 if c == "N" else CONF_SCHEME_DMP) for c in conf
        ],
        event_codes=[],
        authors=[{
            "person": person,
            "institutions": [_xon(structure)],
            "roles": [],
            "specialties": [f"{kind.specialty}^^1.2.250.1.213.1.1.4.5"],
            "telecoms": [],
        }],
        creation_time=_dtm(created),
        service_start_time=_dtm(created - timedelta(hours=2)),
        service_stop_time=_dtm(created - timedelta(hours=1)),
        title=kind.display,
        language_code="fr-FR",
        legal_authenticator=person,
        source_patient_id=f"{ins}^^^&{INS_OID_TEST}&ISO^NH",
        source_patient_info=[],
        reference_ids=[],
        hash=digest,
        size=size,
        repository_unique_id=REPOSITORY_ID,
        status=status,
        extra_slots={},
    )
    submitted = created + timedelta(hours=rng.randrange(1, 72))
    return {
        "entry_uuid": entry_uuid,
        "space_id": space_id_for(space_index),
        "logical_id": entry_uuid,
        "version": 1,
        "unique_id": uid,
        "repository_unique_id": REPOSITORY_ID,
        "status": status,
        "type_code": kind.type_code,
        "type_code_system": LOINC,
        "class_code": kind.class_code,
        "format_code": kind.format_code,
        "practice_setting_code": kind.practice_setting,
        "healthcare_facility_type_code": kind.facility,
        "confidentiality_codes": flat(conf),
        "event_codes": "",
        "author_ids": flat([author]),
        "author_structure_ids": flat([structure]),
        "author_persons": flat([person]),
        "creation_time": created,
        "service_start_time": created - timedelta(hours=2),
        "service_stop_time": created - timedelta(hours=1),
        "submission_time": submitted,
        "updated_at": submitted,
        "mime_type": mime,
        "hash": digest,
        "size": size,
        "title": kind.display,
        "language_code": "fr-FR",
        "object_type": STABLE,
        "added_by_patient": False,
        "origin": "xds",
        "submission_set_uuid": None,
        "metadata_json": json.dumps(metadata, separators=(",", ":"), ensure_ascii=False),
    }


def uuidish(a: int, b: int) -> str:
    """A deterministic UUID-shaped string for entry (space ``a``, serial ``b``)."""
    h = hashlib.md5(f"{a}:{b}".encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-8{h[17:20]}-{h[20:32]}"


def registry(plan: Plan, now: datetime, *, first_space: int = 0) -> Iterator[
    tuple[dict[str, Any], list[dict[str, Any]]]
]:
    """Yield (space row, its entry rows) until ``plan.entries`` entries are produced."""
    rng = random.Random(plan.seed * 7919 + first_space)
    for offset, count in enumerate(space_sizes(plan)):
        index = first_space + offset
        yield space_row(index, now), [
            entry_row(rng, space_index=index, serial=i, now=now) for i in range(count)
        ]


# ----------------------------------------------------------------------------- observations
OBSERVATION_KINDS: tuple[tuple[str, str, str, str, float, float], ...] = (
    # LOINC, display, UCUM, category, mean, spread
    ("29463-7", "Body weight", "kg", "vital-signs", 72.0, 12.0),
    ("8867-4", "Heart rate", "/min", "vital-signs", 72.0, 10.0),
    ("2345-7", "Glucose", "mg/dL", "laboratory", 100.0, 20.0),
    ("8310-5", "Body temperature", "Cel", "vital-signs", 36.9, 0.4),
    ("8302-2", "Body height", "cm", "vital-signs", 170.0, 10.0),
    ("55423-8", "Number of steps", "{steps}", "activity", 7000.0, 2500.0),
)


MEASUREMENT_PROFILES = {
    "29463-7": "mesures-fr-observation-body-weight",
    "8867-4": "mesures-fr-observation-heartrate",
    "2345-7": "mesures-fr-observation-glucose",
    "8310-5": "mesures-fr-observation-bodytemp",
    "8302-2": "mesures-fr-observation-bodyheight",
    "55423-8": "mesures-fr-observation-steps",
}


def observation(rng: random.Random, *, space_index: int, serial: int) -> dict[str, Any]:
    """One measurement Observation (MES API Mesures shape) as FHIR JSON."""
    code, display, unit, category, mean, spread = OBSERVATION_KINDS[
        rng.randrange(len(OBSERVATION_KINDS))
    ]
    when = EPOCH + timedelta(seconds=rng.randrange(SPAN_DAYS * 86400))
    return {
        "resourceType": "Observation",
        "id": uuidish(space_index + 10_000_000_000, serial),
        "status": "final",
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": category,
        }]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
        "meta": {"profile": [
            "https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition/"
            + MEASUREMENT_PROFILES[code]]},
        "subject": {"identifier": {"system": "urn:oid:" + INS_OID_TEST,
                                   "value": ins_for(space_index)}},
        "effectiveDateTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "valueQuantity": {
            "value": round(rng.gauss(mean, spread), 1),
            "unit": unit,
            "system": "http://unitsofmeasure.org",
            "code": unit,
        },
    }


def observation_index(obs: dict[str, Any]) -> list[tuple[str, str, str, Any, Any]]:
    """The search-index rows of a generated Observation, as ``espace.fhir_store.index_values``
    extracts them (code, category, date, status, subject.identifier); a test keeps them equal."""
    effective = datetime.strptime(obs["effectiveDateTime"], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=UTC
    )
    coding = obs["code"]["coding"][0]
    category = obs["category"][0]["coding"][0]
    return [
        ("code", coding["system"], coding["code"], None, None),
        ("category", category["system"], category["code"], None, None),
        ("date", "", "", effective, effective.replace(microsecond=999999)),
        ("status", "", obs["status"], None, None),
        ("subject.identifier", obs["subject"]["identifier"]["system"],
         obs["subject"]["identifier"]["value"], None, None),
    ]


class EntryPool:
    """Pre-generated entries sampled from the mix; each new row is a template with fresh ids.

    Generating every row from scratch costs ~200 µs in CPython on the bench machines (10 M rows:
    half an hour); a pool of a few thousand templates keeps the mix, the confidentiality and
    status shares and the author spread, at ~15 µs per row.
    """

    def __init__(self, seed: int, size: int = 4096) -> None:
        rng = random.Random(seed)
        now = datetime(2026, 1, 1, tzinfo=UTC)
        self._ids = (uuidish(0, 0), "1.2.250.1.999.2.0.0", ins_for(0), space_id_for(0))
        self.templates: list[tuple[dict[str, Any], list[str]]] = []
        for _ in range(size):
            row = entry_row(rng, space_index=0, serial=0, now=now)
            parts = _split(row.pop("metadata_json"), self._ids)
            self.templates.append((row, parts))

    def row(self, rng: random.Random, *, space_index: int, serial: int) -> dict[str, Any]:
        template, parts = self.templates[rng.randrange(len(self.templates))]
        entry_uuid = uuidish(space_index, serial)
        uid = f"1.2.250.1.999.2.{space_index}.{serial}"
        values = (entry_uuid, uid, ins_for(space_index), space_id_for(space_index))
        row = dict(template)
        row["entry_uuid"] = row["logical_id"] = f"urn:uuid:{entry_uuid}"
        row["unique_id"] = uid
        row["space_id"] = values[3]
        row["hash"] = hashlib.sha1(uid.encode()).hexdigest()
        # parts alternate text / placeholder index
        out: list[str] = []
        for i, part in enumerate(parts):
            out.append(values[int(part)] if i % 2 else part)
        row["metadata_json"] = "".join(out).replace(template["hash"], row["hash"])
        return row


def _split(text: str, ids: tuple[str, ...]) -> list[str]:
    """Split ``text`` into [text, index, text, index, ...] at every occurrence of ``ids``."""
    import re

    pattern = re.compile("|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True)))
    parts: list[str] = []
    last = 0
    for match in pattern.finditer(text):
        parts.append(text[last:match.start()])
        parts.append(str(ids.index(match.group(0))))
        last = match.end()
    parts.append(text[last:])
    return parts


def fast_registry(plan: Plan, *, first_space: int = 0, pool: EntryPool | None = None) -> Iterator[
    tuple[dict[str, Any], list[dict[str, Any]]]
]:
    """Like :func:`registry` but from an :class:`EntryPool` (the bulk loader's path)."""
    pool = pool or EntryPool(plan.seed)
    rng = random.Random(plan.seed * 7919 + first_space)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for offset, count in enumerate(space_sizes(plan)):
        index = first_space + offset
        yield space_row(index, now), [
            pool.row(rng, space_index=index, serial=i) for i in range(count)
        ]
