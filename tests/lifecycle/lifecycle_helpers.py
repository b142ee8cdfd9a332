"""Fixtures of the lifecycle tests: valid matricules INS, sources, actors, document feeding."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import select

from espace.admin import link_professional
from espace.models import DocumentEntryRow, NotificationOutbox, TraceRecord, flat
from espace.service import Espace
from espace.trace import Source
from habilitation.model import Action, Actor, ActorKind, AuthenticationMode, DocumentFacts

SRC = Source(face="test", address="127.0.0.1")


def make_ins(sex: int, birth: date, serial: int) -> str:
    """A matricule INS with a valid key: sex, yy, mm, dept 75, commune 056, serial."""
    body = f"{sex}{birth.year % 100:02d}{birth.month:02d}75056{serial:03d}"
    return body + f"{97 - int(body) % 97:02d}"


def patient(ins: str) -> Actor:
    return Actor(ActorKind.PATIENT, ins, authentication_mode=AuthenticationMode.PATIENT_LOGIN)


def representative(rep_ins: str, minor_ins: str) -> Actor:
    return Actor(
        ActorKind.LEGAL_REPRESENTATIVE,
        rep_ins,
        name=f"Parent {rep_ins[-4:]}",
        authentication_mode=AuthenticationMode.PATIENT_LOGIN,
        on_behalf_of=minor_ins,
    )


def agent(agent_id: str = "AGENT-42") -> Actor:
    return Actor(ActorKind.SUPPORT_AGENT, agent_id, name="Agent CPAM")


DOCTOR = Actor(
    ActorKind.PROFESSIONAL,
    "810001234567",
    name="Dr Martin",
    profession="10",
    specialty="SM26",
    structure_id="1750000000",
    authentication_mode=AuthenticationMode.DIRECT,
)


def feed_document(
    espace: Espace, ins: str, *, type_code: str = "11490-0", title: str = "CR"
) -> str:
    """A professional submits one document entry (TD2.1) through the enforcement core."""
    with espace.operation(
        DOCTOR, Action.DECLARE_AUTHORIZATION, event_type="TD0.3", source=SRC, space_ins=ins
    ) as op:
        assert op.space is not None
        link_professional(
            op.session, op.space, DOCTOR.id, "authorized", declared_by=DOCTOR.id, now=op.now
        )
    entry = f"urn:uuid:{uuid.uuid4()}"
    facts = DocumentFacts(entry_id=entry, type_code=type_code, author_ids=frozenset({DOCTOR.id}))
    with espace.operation(
        DOCTOR,
        Action.SUBMIT_DOCUMENT,
        event_type="ITI-41",
        source=SRC,
        space_ins=ins,
        document=facts,
    ) as op:
        assert op.space is not None
        now: datetime = op.now
        op.session.add(
            DocumentEntryRow(
                entry_uuid=entry,
                space_id=op.space.id,
                logical_id=entry,
                unique_id=f"1.2.250.1.999.{uuid.uuid4().int % 10**12}",
                type_code=type_code,
                type_code_system="2.16.840.1.113883.6.1",
                author_ids=flat([DOCTOR.id]),
                title=title,
                mime_type="text/plain",
                submission_time=now,
                updated_at=now,
            )
        )
    return entry


def outbox(espace: Espace, space_id: str | None = None) -> list[NotificationOutbox]:
    with espace.session_factory() as session:
        query = select(NotificationOutbox).order_by(NotificationOutbox.id)
        if space_id is not None:
            query = query.where(NotificationOutbox.space_id == space_id)
        return list(session.execute(query).scalars())


def trace_events(espace: Espace, space_key: str) -> list[tuple[str, str, str]]:
    with espace.session_factory() as session:
        rows = session.execute(
            select(TraceRecord.event_type, TraceRecord.outcome, TraceRecord.actor_id)
            .where(TraceRecord.space_key == space_key)
            .order_by(TraceRecord.seq)
        ).all()
        return [(e, o, a) for e, o, a in rows]
