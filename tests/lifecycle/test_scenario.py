"""The DONE scenario of issue 5, moving the clock: letter -> six weeks -> created -> fed ->
activated -> closed -> reopened two years later with everything back -> closed -> ten years ->
purged. Every step is traced and produced the right notification."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from lifecycle_helpers import (
    DOCTOR,
    SRC,
    feed_document,
    make_ins,
    outbox,
    patient,
    trace_events,
)
from sqlalchemy import func, select

from espace import lifecycle
from espace.clock import FrozenClock
from espace.errors import AccessDenied, Conflict
from espace.lifecycle import Person
from espace.models import (
    DocumentEntryRow,
    NotificationOutbox,
    PatientSpace,
    SpaceProfessionalLink,
    TraceRecord,
)
from espace.service import Espace
from espace.trace import verify_chains
from habilitation.model import Action

INS = make_ins(1, date(1970, 3, 14), 101)


def _space(espace: Espace) -> PatientSpace | None:
    with espace.session_factory() as session:
        return session.execute(
            select(PatientSpace).where(PatientSpace.ins == INS)
        ).scalar_one_or_none()


def _read(espace: Espace, ins: str) -> int:
    """The professional searches the DMP: the number of entries visible to them."""
    with espace.operation(
        DOCTOR, Action.SEARCH_METADATA, event_type="ITI-18", source=SRC, space_ins=ins
    ) as op:
        from espace.store import visibility_clause

        assert op.space is not None
        return int(
            op.session.execute(
                select(func.count())
                .select_from(DocumentEntryRow)
                .where(
                    DocumentEntryRow.space_id == op.space.id,
                    visibility_clause(op.visibility()),
                )
            ).scalar_one()
        )


def test_done_scenario(espace: Espace, clock: FrozenClock) -> None:
    # 1. the letter is sent: the space is pending, nothing can be fed yet
    enrolment = lifecycle.enrol(
        espace,
        Person(INS, "DUPONT", "Jean", date(1970, 3, 14), "M", "jean@example.org"),
        source=SRC,
    )
    space = _space(espace)
    assert space is not None and space.status == "pending"
    assert enrolment.code not in (space.enrolment_code_hash or "")
    with pytest.raises(AccessDenied) as denied:
        feed_document(espace, INS)
    assert denied.value.decision.rule_id == "space_not_active"

    # 2. five weeks: not yet; six weeks: created automatically
    clock.advance(timedelta(weeks=5))
    assert lifecycle.run_due_jobs(espace)["created"] == 0
    clock.advance(timedelta(weeks=1))
    assert lifecycle.run_due_jobs(espace)["created"] == 1
    space = _space(espace)
    assert space is not None and space.status == "active" and space.activated_at is None

    # 3. a professional feeds a document (before any activation)
    clock.advance(timedelta(days=3))
    entry = feed_document(espace, INS)
    assert _read(espace, INS) == 1

    # 4. the person activates with a new code (the first one expired with the window)
    new = lifecycle.issue_new_code(espace, INS, source=SRC)
    state = lifecycle.activate(
        espace,
        patient(INS),
        INS,
        email="jean.dupont@example.org",
        phone="+33612345678",
        accept_terms=True,
        code=new.code,
        source=SRC,
    )
    assert state.activated and state.status == "active"

    # 5. closes: nothing readable by anyone, authorizations end
    clock.advance(timedelta(days=30))
    closed = lifecycle.close(espace, patient(INS), INS, source=SRC)
    assert closed is not None and closed.status == "closed"
    with pytest.raises(AccessDenied):
        _read(espace, INS)
    with espace.session_factory() as session:
        assert (
            session.execute(
                select(SpaceProfessionalLink).where(SpaceProfessionalLink.kind == "authorized")
            ).first()
            is None
        )

    # 6. reopens two years later: everything is back
    clock.advance(timedelta(days=730))
    code = lifecycle.issue_new_code(espace, INS, source=SRC).code
    reopened = lifecycle.reopen(espace, patient(INS), INS, code=code, source=SRC)
    assert reopened.status == "active" and reopened.purge_after is None
    with espace.session_factory() as session:
        row = session.get(DocumentEntryRow, entry)
        assert row is not None and row.status == "Approved"
    feed_document(espace, INS)  # the professional declares again, then reads both
    assert _read(espace, INS) == 2

    # 7. closes again; 9 years later nothing is purged; after ten years it is
    closed = lifecycle.close(espace, patient(INS), INS, source=SRC)
    assert closed is not None and closed.purge_after is not None
    space_id = closed.space_id
    clock.advance(timedelta(days=365 * 9))
    assert lifecycle.run_due_jobs(espace)["purged"] == 0
    events = [e for e, outcome, _ in trace_events(espace, space_id) if outcome == "success"]
    for step in (
        "lifecycle.enrol",
        "lifecycle.create",
        "ITI-41",
        "lifecycle.code",
        "lifecycle.activate",
        "lifecycle.close",
        "lifecycle.reopen",
    ):
        assert step in events, step
    kinds = [
        r.dedup_key.split(":")[2] for r in outbox(espace, space_id) if r.category == "lifecycle"
    ]
    assert kinds == ["enrolled", "created", "activated", "closed", "reopened", "closed"]
    assert "first_access" in {r.category for r in outbox(espace, space_id)}

    clock.advance(timedelta(days=366 * 1 + 5))
    jobs = lifecycle.run_due_jobs(espace)
    assert jobs["purged"] == 1, jobs["errors"]
    assert _space(espace) is None
    with espace.session_factory() as session:
        assert session.execute(select(func.count()).select_from(DocumentEntryRow)).scalar_one() == 0
        assert (
            session.execute(select(func.count()).select_from(NotificationOutbox)).scalar_one() == 0
        )
        purge = session.execute(
            select(TraceRecord).where(
                TraceRecord.event_type == "lifecycle.purge", TraceRecord.space_key == "-"
            )
        ).scalar_one()
        assert purge.target_id == space_id and purge.outcome == "success"
        assert (
            session.execute(select(TraceRecord).where(TraceRecord.space_key == space_id)).first()
            is None
        )
        # the remaining chains (the service chain holding the purge record) still verify
        assert verify_chains(session, espace.signer) == []

    # a reopening after ten years is a new, empty space
    again = lifecycle.enrol(
        espace, Person(INS, "DUPONT", "Jean", date(1970, 3, 14), "M"), source=SRC
    )
    assert again.space_id != space_id
    created = lifecycle.create_voluntarily(espace, patient(INS), INS, code=again.code, source=SRC)
    assert created.status == "active"
    with espace.session_factory() as session:
        assert session.execute(select(func.count()).select_from(DocumentEntryRow)).scalar_one() == 0


def test_closed_space_cannot_be_reopened_after_retention(
    espace: Espace, clock: FrozenClock
) -> None:
    lifecycle.enrol(espace, Person(INS, "DUPONT", "Jean", date(1970, 3, 14), "M"), source=SRC)
    clock.advance(timedelta(weeks=6))
    lifecycle.run_due_jobs(espace)
    lifecycle.close(espace, patient(INS), INS, source=SRC)
    clock.advance(timedelta(days=3660))
    code = lifecycle.issue_new_code(espace, INS, source=SRC).code
    with pytest.raises(Conflict) as exc:
        lifecycle.reopen(espace, patient(INS), INS, code=code, source=SRC)
    assert exc.value.code == "retention_over"
