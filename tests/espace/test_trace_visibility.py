"""The trace never reveals a document its reader may not see (a minor's secret, on every face)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from espace import trace
from espace.admin import add_representative, register_space
from espace.models import DocumentEntryRow, TraceRecord, flat
from espace.service import Espace
from espace.trace import Source, Target, TraceEntry, visible_records_clause
from habilitation.model import Action, Actor, ActorKind, AuthenticationMode, Decision
from mes.tokens import issue_token

MINOR = "215057512345658"
PARENT = "286037512345639"
DOCTOR = Actor(ActorKind.PROFESSIONAL, "899900038839", name="Dr TRAL", profession="10")


@pytest.fixture
def minor_with_secret(espace: Espace) -> str:
    now = espace.clock.now()
    with espace.session_factory() as session:
        space = register_space(session, ins=MINOR, birth_date=date(2015, 5, 20), now=now)
        add_representative(session, space, PARENT, now=now, email="parent@example.org")
        for uid, codes in (("secret", ["N", "INVISIBLE_REPRESENTANTS_LEGAUX"]), ("plain", ["N"])):
            session.add(
                DocumentEntryRow(
                    entry_uuid=f"urn:uuid:{uid}",
                    space_id=space.id,
                    logical_id=f"urn:uuid:{uid}",
                    unique_id=f"1.2.250.{len(uid)}",
                    type_code="11488-4",
                    confidentiality_codes=flat(codes),
                    author_ids=flat([DOCTOR.id]),
                    submission_time=now,
                    updated_at=now,
                )
            )
        for uid in ("secret", "plain"):
            trace.append(
                session,
                TraceEntry(
                    actor=DOCTOR,
                    action=str(Action.SUBMIT_DOCUMENT),
                    event_type="ITI-41",
                    decision=Decision.permit("test", "test"),
                    outcome="success",
                    source=Source("xds"),
                    space_id=space.id,
                    target=Target("DocumentEntry", f"urn:uuid:{uid}", "11488-4"),
                ),
                now=now,
            )
        session.commit()
        return space.id


def _representative() -> Actor:
    return Actor(
        ActorKind.LEGAL_REPRESENTATIVE,
        PARENT,
        on_behalf_of=MINOR,
        authentication_mode=AuthenticationMode.PATIENT_LOGIN,
    )


def test_representative_does_not_see_trace_of_the_secret(
    espace: Espace, minor_with_secret: str
) -> None:
    with espace.operation(
        _representative(), Action.READ_TRACE, event_type="t", source=Source("t"), space_ins=MINOR
    ) as op:
        targets = set(
            op.session.execute(
                select(TraceRecord.target_id).where(
                    visible_records_clause(minor_with_secret, op.visibility())
                )
            ).scalars()
        )
    assert "urn:uuid:plain" in targets
    assert "urn:uuid:secret" not in targets


def test_fhir_auditevent_hides_the_secret_from_the_representative(
    client: FlaskClient, settings: dict[str, Any], minor_with_secret: str
) -> None:
    token = issue_token(
        settings, subject=PARENT, kind=ActorKind.LEGAL_REPRESENTATIVE, patient=MINOR
    )
    response = client.get(
        "/fhir/AuditEvent?_count=100", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_data(as_text=True)
    assert "urn:uuid:plain" in body
    assert "urn:uuid:secret" not in body
