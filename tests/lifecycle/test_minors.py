"""Minors: up to two legal representatives, invitation, the minor's secret, majority at 18."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from lifecycle_helpers import SRC, agent, make_ins, outbox, patient, representative
from sqlalchemy import select

from espace import lifecycle
from espace.clock import FrozenClock
from espace.errors import AccessDenied, Conflict, InvalidInput, NotFound
from espace.lifecycle import Person
from espace.models import DocumentEntryRow, PatientSpace, SpaceRepresentative, TraceRecord, flat
from espace.service import Espace
from espace.store import visibility_clause
from habilitation.model import INVISIBLE_TO_LEGAL_REPRESENTATIVES, Action

BIRTH = date(2010, 6, 1)  # 15 years old on the FrozenClock's 2026-01-05
CHILD = make_ins(2, BIRTH, 201)
MOTHER_BIRTH = date(1980, 2, 3)
MOTHER = make_ins(2, MOTHER_BIRTH, 202)
FATHER_BIRTH = date(1978, 11, 9)
FATHER = make_ins(1, FATHER_BIRTH, 203)


def _enrol_child(espace: Espace, clock: FrozenClock) -> str:
    enrolment = lifecycle.enrol(
        espace,
        Person(CHILD, "MARTIN", "Léa", BIRTH, "F"),
        representatives=[Person(MOTHER, "MARTIN", "Anne", MOTHER_BIRTH, "F", "anne@example.org")],
        source=SRC,
    )
    clock.advance(timedelta(weeks=6))
    assert lifecycle.run_due_jobs(espace)["created"] == 1
    return enrolment.space_id


def _visible_titles(espace: Espace, actor_ins: str, as_rep: bool) -> set[str]:
    actor = representative(actor_ins, CHILD) if as_rep else patient(CHILD)
    with espace.operation(
        actor, Action.SEARCH_METADATA, event_type="rest.search", source=SRC, space_ins=CHILD
    ) as op:
        assert op.space is not None
        rows = op.session.execute(
            select(DocumentEntryRow.title).where(
                DocumentEntryRow.space_id == op.space.id, visibility_clause(op.visibility())
            )
        ).scalars()
        return set(rows)


def _add_doc(espace: Espace, space_id: str, title: str, codes: list[str]) -> None:
    with espace.session_factory() as session:
        now = espace.clock.now()
        session.add(
            DocumentEntryRow(
                entry_uuid=f"urn:uuid:{title}",
                space_id=space_id,
                logical_id=title,
                unique_id=f"1.2.3.{len(title)}{abs(hash(title)) % 1000}",
                type_code="11490-0",
                confidentiality_codes=flat(codes),
                author_ids=flat(["810001234567"]),
                title=title,
                submission_time=now,
                updated_at=now,
            )
        )
        session.commit()


def test_second_representative_invited_accepts_and_sees_same_data(
    espace: Espace, clock: FrozenClock
) -> None:
    space_id = _enrol_child(espace, clock)
    _add_doc(espace, space_id, "vaccins", [])
    _add_doc(espace, space_id, "secret", [INVISIBLE_TO_LEGAL_REPRESENTATIVES])
    # the father is not a representative yet: refused
    with pytest.raises(AccessDenied):
        _visible_titles(espace, FATHER, as_rep=True)
    # bad invitation: birth date inconsistent with the NIR
    with pytest.raises(InvalidInput) as bad:
        lifecycle.invite_representative(
            espace,
            representative(MOTHER, CHILD),
            CHILD,
            representative_ins=FATHER,
            name="Paul MARTIN",
            birth_date=date(1990, 1, 1),
            email=None,
            source=SRC,
        )
    assert bad.value.code == "nir_birth_mismatch"
    lifecycle.invite_representative(
        espace,
        representative(MOTHER, CHILD),
        CHILD,
        representative_ins=FATHER,
        name="Paul MARTIN",
        birth_date=FATHER_BIRTH,
        email="paul@example.org",
        source=SRC,
    )
    with pytest.raises(AccessDenied):  # invited is not yet active
        _visible_titles(espace, FATHER, as_rep=True)
    lifecycle.answer_invitation(
        espace, representative(FATHER, CHILD), CHILD, accept=True, source=SRC
    )
    assert _visible_titles(espace, FATHER, as_rep=True) == {"vaccins"}
    assert _visible_titles(espace, MOTHER, as_rep=True) == {"vaccins"}
    assert _visible_titles(espace, CHILD, as_rep=False) == {"vaccins", "secret"}
    # a third one is refused: at most two
    third = make_ins(1, date(1960, 1, 1), 204)
    with pytest.raises(Conflict):
        lifecycle.attach_representative(
            espace,
            agent(),
            CHILD,
            representative_ins=third,
            name="X",
            birth_date=None,
            email=None,
            source=SRC,
        )
    # the trace names which representative acted
    with espace.session_factory() as session:
        actors = set(
            session.execute(
                select(TraceRecord.actor_id).where(
                    TraceRecord.space_key == space_id, TraceRecord.outcome == "success"
                )
            ).scalars()
        )
    assert {MOTHER, FATHER} <= actors
    assert any(r.category == "lifecycle" and "invite" in r.dedup_key for r in outbox(espace))


def test_declined_invitation_and_no_invitation(espace: Espace, clock: FrozenClock) -> None:
    _enrol_child(espace, clock)
    with pytest.raises(NotFound):
        lifecycle.answer_invitation(
            espace, representative(FATHER, CHILD), CHILD, accept=True, source=SRC
        )
    lifecycle.invite_representative(
        espace,
        representative(MOTHER, CHILD),
        CHILD,
        representative_ins=FATHER,
        name="Paul MARTIN",
        birth_date=FATHER_BIRTH,
        email=None,
        source=SRC,
    )
    lifecycle.answer_invitation(
        espace, representative(FATHER, CHILD), CHILD, accept=False, source=SRC
    )
    with pytest.raises(AccessDenied):
        _visible_titles(espace, FATHER, as_rep=True)


def test_support_desk_attaches_second_directly(espace: Espace, clock: FrozenClock) -> None:
    _enrol_child(espace, clock)
    lifecycle.attach_representative(
        espace,
        agent("CPAM-75-007"),
        CHILD,
        representative_ins=FATHER,
        name="Paul MARTIN",
        birth_date=FATHER_BIRTH,
        email=None,
        source=SRC,
    )
    assert _visible_titles(espace, FATHER, as_rep=True) == set()
    with espace.session_factory() as session:
        record = session.execute(
            select(TraceRecord).where(TraceRecord.event_type == "representative.attach")
        ).scalar_one()
    assert record.actor_id == "CPAM-75-007" and record.actor_kind == "support_agent"


def test_majority_ends_representatives_access_and_tells_them(
    espace: Espace, clock: FrozenClock
) -> None:
    space_id = _enrol_child(espace, clock)
    assert _visible_titles(espace, MOTHER, as_rep=True) == set()
    clock.set(clock.now().replace(year=2028, month=5, day=31))
    assert lifecycle.run_due_jobs(espace)["majority"] == 0  # the day before the 18th birthday
    clock.advance(timedelta(days=1))
    jobs = lifecycle.run_due_jobs(espace)
    assert jobs["majority"] == 1
    with pytest.raises(AccessDenied) as denied:
        _visible_titles(espace, MOTHER, as_rep=True)
    assert denied.value.decision.rule_id == "not_patient_side_of_space"
    with espace.session_factory() as session:
        rep = session.execute(select(SpaceRepresentative)).scalar_one()
        assert rep.status == "ended"
    notices = [r for r in outbox(espace, space_id) if r.dedup_key.startswith("majority-reps")]
    assert len(notices) == 1 and notices[0].recipients == "anne@example.org"
    assert lifecycle.run_due_jobs(espace)["majority"] == 0  # once


def test_new_adult_never_created_gets_the_six_week_notice(
    espace: Espace, clock: FrozenClock
) -> None:
    enrolment = lifecycle.enrol(
        espace,
        Person(CHILD, "MARTIN", "Léa", BIRTH, "F", "lea@example.org"),
        representatives=[Person(MOTHER, "MARTIN", "Anne", MOTHER_BIRTH, "F", "anne@example.org")],
        source=SRC,
    )
    lifecycle.oppose(espace, representative(MOTHER, CHILD), CHILD, code=enrolment.code, source=SRC)
    clock.set(clock.now().replace(year=2028, month=6, day=2))
    jobs = lifecycle.run_due_jobs(espace)
    assert jobs["reenrolled"] == 1
    with espace.session_factory() as session:
        space = session.execute(select(PatientSpace)).scalar_one()
        assert space.status == "pending"
    notice = [r for r in outbox(espace) if "majority-enrolment" in r.dedup_key]
    assert len(notice) == 1 and notice[0].recipients == "lea@example.org"
    # the new adult opposes herself through the support desk, or lets six weeks pass
    clock.advance(timedelta(weeks=6))
    assert lifecycle.run_due_jobs(espace)["created"] == 1
