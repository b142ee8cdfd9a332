"""Helpers of the patient API tests: valid INS, tokens, a created space with one document."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from espace import lifecycle
from espace.admin import upsert_professional
from espace.clock import FrozenClock
from espace.models import DocumentEntryRow, PatientSpace, flat
from espace.service import Espace
from espace.trace import Source
from habilitation.model import ActorKind
from mes.tokens import issue_token

SRC = Source(face="test")
DOCTOR_ID = "810001234567"


def make_ins(sex: int, birth: date, serial: int) -> str:
    body = f"{sex}{birth.year % 100:02d}{birth.month:02d}75056{serial:03d}"
    return body + f"{97 - int(body) % 97:02d}"


def bearer(
    settings: dict[str, Any],
    clock: FrozenClock,
    subject: str,
    *,
    kind: ActorKind = ActorKind.PATIENT,
    patient: str | None = None,
) -> dict[str, str]:
    token = issue_token(
        settings,
        subject=subject,
        kind=kind,
        patient=patient,
        name=f"user {subject[-4:]}",
    )
    return {"Authorization": f"Bearer {token}"}


def created_space(
    espace: Espace,
    clock: FrozenClock,
    ins: str,
    birth: date,
    *,
    sex: str = "F",
    email: str | None = "p@example.org",
    reps: list[lifecycle.Person] | None = None,
) -> str:
    """Enrol, let six weeks pass, create: returns the space id."""
    enrolment = lifecycle.enrol(
        espace,
        lifecycle.Person(ins, "NOM", "Prénom", birth, sex, email),
        source=SRC,
        representatives=reps or [],
    )
    clock.advance(timedelta(weeks=6))
    lifecycle.run_automatic_creation(espace)
    return enrolment.space_id


def add_document(
    espace: Espace, space_id: str, title: str = "CR", codes: tuple[str, ...] = ()
) -> str:
    entry = f"urn:uuid:{uuid.uuid4()}"
    with espace.session_factory() as session:
        now = espace.clock.now()
        session.add(
            DocumentEntryRow(
                entry_uuid=entry,
                space_id=space_id,
                logical_id=entry,
                unique_id=f"1.2.250.1.999.{uuid.uuid4().int % 10**12}",
                type_code="11490-0",
                confidentiality_codes=flat(codes),
                author_ids=flat([DOCTOR_ID]),
                title=title,
                mime_type="text/plain",
                submission_time=now,
                updated_at=now,
            )
        )
        upsert_professional(session, DOCTOR_ID, name="Dr Martin", profession="10")
        session.commit()
    return entry


def space_row(espace: Espace, space_id: str) -> PatientSpace:
    with espace.session_factory() as session:
        row = session.get(PatientSpace, space_id)
        assert row is not None
        return row
