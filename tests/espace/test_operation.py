"""``Espace.operation``: one decision, one transaction, one trace record — on every path."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from espace.admin import link_professional, register_space
from espace.errors import AccessDenied, InvalidInput, UnknownSpace
from espace.models import NotificationOutbox, PatientSpace, TraceRecord
from espace.service import Espace
from espace.trace import Source, Target
from habilitation.model import AccessMode, Action, Actor, ActorKind, AuthenticationMode

INS = "207058575627097"
DOCTOR = Actor(
    ActorKind.PROFESSIONAL,
    "899900038839",
    name="Dr TRAL",
    profession="10",
    specialty="SM26",
    structure_id="S1",
    authentication_mode=AuthenticationMode.DIRECT,
)
SOURCE = Source(face="test", address="127.0.0.1", request_id="req-1")


@pytest.fixture
def space_id(espace: Espace) -> str:
    with espace.session_factory() as session:
        space = register_space(session, ins=INS, now=espace.clock.now(), email="p@example.org")
        link_professional(
            session, space, DOCTOR.id, "authorized", declared_by=DOCTOR.id, now=espace.clock.now()
        )
        session.commit()
        return space.id


def _records(espace: Espace) -> list[TraceRecord]:
    with espace.session_factory() as session:
        return list(session.execute(select(TraceRecord).order_by(TraceRecord.id)).scalars())


def test_permitted_operation_commits_its_change_and_its_trace_together(
    espace: Espace, space_id: str
) -> None:
    with espace.operation(
        DOCTOR, Action.SEARCH_METADATA, event_type="ITI-18", source=SOURCE, space_ins=INS
    ) as op:
        assert op.decision.permitted
        assert op.space is not None
        op.space.family_name = "CHANGED"
        op.target = Target("Patient", INS)
    records = _records(espace)
    assert [(r.outcome, r.decision, r.space_key) for r in records] == [
        ("success", "permit", space_id)
    ]
    assert records[0].rule_id and records[0].rule_id != "pending"
    with espace.session_factory() as session:
        assert session.get(PatientSpace, space_id).family_name == "CHANGED"  # type: ignore[union-attr]
        categories = session.execute(select(NotificationOutbox.category)).scalars().all()
    assert categories == ["first_access"]


def test_first_access_notifies_only_once(espace: Espace, space_id: str) -> None:
    for _ in range(3):
        with espace.operation(
            DOCTOR, Action.SEARCH_METADATA, event_type="ITI-18", source=SOURCE, space_ins=INS
        ):
            pass
    with espace.session_factory() as session:
        assert len(session.execute(select(NotificationOutbox)).scalars().all()) == 1


def test_failure_rolls_back_the_change_and_is_traced(espace: Espace, space_id: str) -> None:
    with pytest.raises(InvalidInput):
        with espace.operation(
            DOCTOR, Action.SEARCH_METADATA, event_type="ITI-18", source=SOURCE, space_ins=INS
        ) as op:
            assert op.space is not None
            op.space.family_name = "SHOULD NOT STICK"
            raise InvalidInput("bad", code="XDSRegistryMetadataError")
    with espace.session_factory() as session:
        assert session.get(PatientSpace, space_id).family_name == ""  # type: ignore[union-attr]
    (record,) = _records(espace)
    assert (record.outcome, record.error_code) == ("failure", "XDSRegistryMetadataError")


def test_blocked_professional_is_denied_and_the_denial_is_traced(
    espace: Espace, space_id: str
) -> None:
    with espace.session_factory() as session:
        space = session.get(PatientSpace, space_id)
        assert space is not None
        link_professional(
            session, space, DOCTOR.id, "blocked", declared_by=INS, now=espace.clock.now()
        )
        session.commit()
    with pytest.raises(AccessDenied) as denied:
        with espace.operation(
            DOCTOR, Action.SEARCH_METADATA, event_type="ITI-18", source=SOURCE, space_ins=INS
        ):
            pytest.fail("the body must not run when the PDP denies")
    (record,) = _records(espace)
    assert record.outcome == "denied" and record.decision == "deny"
    assert record.rule_id == denied.value.decision.rule_id
    assert "block" in record.rule_id


def test_unknown_space_is_traced_without_a_space(espace: Espace) -> None:
    with pytest.raises(UnknownSpace):
        with espace.operation(
            DOCTOR, Action.SEARCH_METADATA, event_type="ITI-18", source=SOURCE, space_ins="1" * 15
        ):
            pass
    (record,) = _records(espace)
    assert (record.space_key, record.outcome, record.rule_id) == ("-", "failure", "unknown_space")


def test_break_glass_notifies_the_patient_at_once(espace: Espace, space_id: str) -> None:
    emergency = Actor(
        ActorKind.PROFESSIONAL,
        "810000000099",
        name="Dr URGENCE",
        profession="10",
        specialty="SM18",
        authentication_mode=AuthenticationMode.DIRECT,
        access_mode=AccessMode.BREAK_GLASS,
    )
    with espace.operation(
        emergency, Action.SEARCH_METADATA, event_type="ITI-18", source=SOURCE, space_ins=INS
    ) as op:
        assert op.decision.permitted
    with espace.session_factory() as session:
        rows = session.execute(select(NotificationOutbox)).scalars().all()
    assert {r.category for r in rows} >= {"emergency_access"}
    assert all(r.immediate for r in rows if r.category == "emergency_access")


def test_delivering_a_message_is_not_a_first_access(espace: Espace, space_id: str) -> None:
    with espace.operation(
        DOCTOR, Action.DELIVER_MESSAGE, event_type="smtp.deliver", source=SOURCE, space_ins=INS
    ) as op:
        assert op.decision.permitted
    with espace.session_factory() as session:
        assert session.execute(select(NotificationOutbox.category)).scalars().all() == []
