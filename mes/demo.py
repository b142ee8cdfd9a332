"""Demo data for ``make run`` (``mes demo load``): patients, professionals, apps.

The INS of the first three patients are those of the official DMP example messages (test INS
OID 1.2.250.1.213.1.4.10), and the first three professionals those of the ANS VIHF examples, so
the official exchanges can be replayed against a fresh ``make run``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from espace.admin import (
    add_representative,
    grant_app_consent,
    link_professional,
    register_app,
    register_space,
    upsert_professional,
)
from espace.service import Espace
from espace.spaces import INS_OID_TEST, find_space_by_ins


@dataclass(frozen=True)
class DemoProfessional:
    id: str
    name: str
    profession: str
    specialty: str | None
    structure_id: str
    note: str


STRUCTURE = "10B0127189"  # a demo Struct_IdNat (FINESS-like)
PROFESSIONALS = (
    DemoProfessional(
        "899900038839",
        "Dr Adémis TRAL",
        "10",
        "SM26",
        STRUCTURE,
        "médecin généraliste (ANS VIHF example)",
    ),
    DemoProfessional("899900062490", "Dr Paul KARDIO", "10", "SM04", STRUCTURE, "cardiologue"),
    DemoProfessional(
        "899900063480",
        "Dr Anne BIOLO",
        "10",
        "SM26",
        "499900063480001",
        "médecin (DMP example messages)",
    ),
    DemoProfessional(
        "810002909371",
        "Dr Marie TRAITANT",
        "10",
        "SM26",
        STRUCTURE,
        "médecin traitant of Jeanne PETIT",
    ),
    DemoProfessional("860000000016", "Claire INFIRMIERE", "60", None, STRUCTURE, "infirmière"),
    DemoProfessional(
        "821000000012", "Hugo PHARMACIEN", "21", "G15_21/SEC", STRUCTURE, "pharmacien d'officine"
    ),
    DemoProfessional(
        "840000000011", "Dr Inès DENTISTE", "40", None, STRUCTURE, "chirurgien-dentiste"
    ),
    DemoProfessional(
        "810000000025",
        "Dr Jules TRAVAIL",
        "10",
        "SM25",
        STRUCTURE,
        "médecin du travail (never reads)",
    ),
    DemoProfessional(
        "810000000099", "Dr Sam URGENCE", "10", "SM18", STRUCTURE, "urgentiste (bris de glace)"
    ),
    DemoProfessional(
        "810000000015", "Dr Rita REGULATION", "10", "SM26", STRUCTURE, "régulateur SAMU centre 15"
    ),
    DemoProfessional("850000000013", "Léa SAGEFEMME", "50", None, STRUCTURE, "sage-femme"),
)

PATIENTS: tuple[dict[str, Any], ...] = (
    {
        "ins": "207058575627097",
        "family_name": "DMP-TEST",
        "given_names": "Adulte",
        "birth_date": date(1970, 5, 8),
        "sex": "F",
        "email": "adulte@example.org",
        "note": "adult of the DMP example messages; all demo professionals authorized",
    },
    {
        "ins": "153078987658513",
        "family_name": "MARTIN",
        "given_names": "Paul",
        "birth_date": date(1953, 7, 12),
        "sex": "M",
        "email": "paul.martin@example.org",
        "note": "disabled emergency access (bris de glace and centre 15)",
    },
    {
        "ins": "157069329642881",
        "family_name": "PETIT",
        "given_names": "Jeanne",
        "birth_date": date(1957, 6, 3),
        "sex": "F",
        "email": "jeanne.petit@example.org",
        "note": "designated médecin traitant 810002909371",
    },
    {
        "ins": "215057512345658",
        "family_name": "DURAND",
        "given_names": "Léa",
        "birth_date": date(2015, 5, 20),
        "sex": "F",
        "email": None,
        "note": "minor with two legal representatives",
    },
    {
        "ins": "292017512345604",
        "family_name": "MOREAU",
        "given_names": "Sophie",
        "birth_date": date(1992, 1, 15),
        "sex": "F",
        "email": "sophie.moreau@example.org",
        "note": "blocked the nurse 860000000016",
    },
)

REPRESENTATIVES = (
    ("215057512345658", "286037512345639", "Marie DURAND", "marie.durand@example.org"),
    ("215057512345658", "184027512345674", "Jean DURAND", "jean.durand@example.org"),
)

DEMO_APP = "demo-diabetes-app"


def load_demo(espace: Espace) -> dict[str, Any]:
    """Create what is missing; return a summary of the demo identities."""
    now = espace.clock.now()
    created: list[str] = []
    with espace.session_factory() as session:
        for pro in PROFESSIONALS:
            upsert_professional(
                session,
                pro.id,
                name=pro.name,
                profession=pro.profession,
                specialty=pro.specialty,
                structure_id=pro.structure_id,
                mssante_address=f"{pro.id}@operateur.test.mssante.fr",
            )
        for patient in PATIENTS:
            if find_space_by_ins(session, patient["ins"]) is not None:
                continue
            fields = {k: v for k, v in patient.items() if k != "note"}
            register_space(session, ins_oid=INS_OID_TEST, now=now, **fields)
            created.append(patient["ins"])
        register_app(
            session,
            DEMO_APP,
            name="Carnet glycémie (démo)",
            allowed_purposes=["measurements.read", "measurements.write", "agenda.read"],
            now=now,
            oid="1.2.250.1.999.1.1",
            redirect_uris=["http://127.0.0.1:8765/callback"],
        )
        session.flush()
        if created:
            _settings(session, espace)
        session.commit()
    return {
        "created_spaces": created,
        "patients": [{"ins": p["ins"], "note": p["note"]} for p in PATIENTS],
        "professionals": [{"id": p.id, "name": p.name, "note": p.note} for p in PROFESSIONALS],
        "apps": [DEMO_APP],
    }


def _settings(session: Any, espace: Espace) -> None:
    now = espace.clock.now()
    spaces = {p["ins"]: find_space_by_ins(session, p["ins"]) for p in PATIENTS}
    adult = spaces["207058575627097"]
    for pro in PROFESSIONALS:
        if adult is not None and pro.id not in {"810000000025", "810000000099", "810000000015"}:
            link_professional(session, adult, pro.id, "authorized", declared_by=pro.id, now=now)
    martin = spaces["153078987658513"]
    if martin is not None:
        martin.break_glass_allowed = False
        martin.regulation_allowed = False
        link_professional(
            session, martin, "899900038839", "authorized", declared_by="899900038839", now=now
        )
    petit = spaces["157069329642881"]
    if petit is not None:
        petit.medecin_traitant_id = "810002909371"
        for pro_id in ("810002909371", "860000000016"):
            link_professional(session, petit, pro_id, "authorized", declared_by=pro_id, now=now)
    lea = spaces["215057512345658"]
    if lea is not None:
        for minor_ins, rep_ins, name, email in REPRESENTATIVES:
            if minor_ins == lea.ins:
                add_representative(session, lea, rep_ins, now=now, name=name, email=email)
        link_professional(
            session, lea, "899900038839", "authorized", declared_by="899900038839", now=now
        )
    moreau = spaces["292017512345604"]
    if moreau is not None:
        link_professional(
            session, moreau, "860000000016", "blocked", declared_by=moreau.ins, now=now
        )
        link_professional(
            session, moreau, "899900038839", "authorized", declared_by="899900038839", now=now
        )
        grant_app_consent(
            session,
            moreau,
            DEMO_APP,
            ["measurements.read", "measurements.write"],
            granted_by=moreau.ins,
            now=now,
        )
