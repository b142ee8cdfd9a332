"""The patient's rights through the HTTP API, each with its refusal cases (issue 5)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from api_helpers import DOCTOR_ID, add_document, bearer, created_space, make_ins, space_row
from flask.testing import FlaskClient
from sqlalchemy import select

from espace.clock import FrozenClock
from espace.models import DocumentEntryRow, SpaceProfessionalLink, TraceRecord, unflat
from espace.service import Espace
from habilitation.model import MASKED_TO_PROFESSIONALS, ActorKind

BIRTH = date(1975, 4, 2)
ALICE = make_ins(2, BIRTH, 301)
BOB = make_ins(1, date(1980, 8, 8), 302)


@pytest.fixture
def alice(espace: Espace, clock: FrozenClock) -> str:
    return created_space(espace, clock, ALICE, BIRTH)


@pytest.fixture
def h(settings: dict[str, Any], clock: FrozenClock) -> dict[str, str]:
    return bearer(settings, clock, ALICE)


@pytest.fixture
def bob_h(settings: dict[str, Any], clock: FrozenClock) -> dict[str, str]:
    return bearer(settings, clock, BOB)


BASE = f"/api/patient/spaces/{ALICE}"


def test_settings_flags_roundtrip_and_refusals(
    client: FlaskClient, alice: str, h: dict[str, str], bob_h: dict[str, str], espace: Espace
) -> None:
    r = client.patch(
        f"{BASE}/settings",
        json={
            "break_glass_allowed": False,
            "regulation_allowed": False,
            "auto_unmask_in_emergency": True,
            "prevention_opposed": True,
        },
        headers=h,
    )
    assert r.status_code == 200, r.json
    row = space_row(espace, alice)
    assert (row.break_glass_allowed, row.regulation_allowed) == (False, False)
    assert row.auto_unmask_in_emergency and row.prevention_opposed
    # another patient's token: 403, nothing changed
    r = client.patch(f"{BASE}/settings", json={"break_glass_allowed": True}, headers=bob_h)
    assert r.status_code == 403 and r.json["error"] == "access_denied"
    assert space_row(espace, alice).break_glass_allowed is False
    # unknown field / wrong type / not JSON / no token: 400, 400, 400, 401
    r = client.patch(f"{BASE}/settings", json={"family_name": "X"}, headers=h)
    assert r.status_code == 400 and r.json["error"] == "unknown_field"
    r = client.patch(f"{BASE}/settings", json={"break_glass_allowed": "yes"}, headers=h)
    assert r.status_code == 400 and r.json["error"] == "invalid_value"
    r = client.patch(
        f"{BASE}/settings", data="{", headers={**h, "Content-Type": "application/json"}
    )
    assert r.status_code == 400 and r.json["error"] == "invalid_json"
    r = client.patch(f"{BASE}/settings", json={"break_glass_allowed": True})
    assert r.status_code == 401
    assert space_row(espace, alice).break_glass_allowed is False
    r = client.get(f"{BASE}/settings", headers=h)
    assert r.status_code == 200 and r.json["break_glass_allowed"] is False


def test_block_unblock_feeding_and_medecin_traitant(
    client: FlaskClient, alice: str, h: dict[str, str], bob_h: dict[str, str], espace: Espace
) -> None:
    pro = f"{BASE}/professionals/{DOCTOR_ID}"
    assert (
        client.put(
            f"{BASE}/medecin-traitant", json={"professional_id": DOCTOR_ID}, headers=h
        ).status_code
        == 200
    )
    assert space_row(espace, alice).medecin_traitant_id == DOCTOR_ID
    r = client.put(f"{pro}/block", headers=h)
    assert r.status_code == 200 and r.json["blocked_professionals"] == [DOCTOR_ID]
    assert space_row(espace, alice).medecin_traitant_id is None  # a blocked PS is no longer MT
    r = client.put(f"{BASE}/medecin-traitant", json={"professional_id": DOCTOR_ID}, headers=h)
    assert r.status_code == 400 and r.json["error"] == "professional_blocked"
    assert client.put(f"{pro}/block", headers=bob_h).status_code == 403
    assert client.delete(f"{pro}/block", headers=h).status_code == 200
    r = client.delete(f"{pro}/block", headers=h)
    assert r.status_code == 404 and r.json["error"] == "not_blocked"
    assert client.put(f"{pro}/feeding-opposition", headers=h).json[
        "feeding_opposed_professionals"
    ] == [DOCTOR_ID]
    with espace.session_factory() as session:
        kinds = set(session.execute(select(SpaceProfessionalLink.kind)).scalars())
    assert kinds == {"feeding_opposed"}
    assert client.delete(f"{pro}/feeding-opposition", headers=h).status_code == 200
    assert client.delete(f"{BASE}/medecin-traitant", headers=h).status_code == 404
    r = client.put(f"{BASE}/professionals/not%20an%20id/block", headers=h)
    assert r.status_code == 400 and r.json["error"] == "invalid_professional"


def test_mask_unmask_documents(
    client: FlaskClient, alice: str, h: dict[str, str], bob_h: dict[str, str], espace: Espace
) -> None:
    entry = add_document(espace, alice)
    secret = add_document(espace, alice, "hidden", ("INVISIBLE_PATIENT",))
    r = client.post(f"{BASE}/documents/{entry}/mask", headers=h)
    assert r.status_code == 200 and r.json["masked_to_professionals"] is True
    with espace.session_factory() as session:
        row = session.get(DocumentEntryRow, entry)
        assert row is not None and MASKED_TO_PROFESSIONALS in unflat(row.confidentiality_codes)
    assert client.post(f"{BASE}/documents/{entry}/unmask", headers=bob_h).status_code == 403
    r = client.post(f"{BASE}/documents/{entry}/make-visible", headers=h)
    assert r.status_code == 200 and r.json["masked_to_professionals"] is False
    # a document invisible to the patient cannot be acted upon (and is not revealed)
    r = client.post(f"{BASE}/documents/{secret}/mask", headers=h)
    assert r.status_code == 404 and r.json["error"] == "unknown_document"
    assert client.post(f"{BASE}/documents/urn:uuid:nope/mask", headers=h).status_code == 404
    listing = client.get(f"{BASE}/documents", headers=h).json
    assert listing["total"] == 1 and listing["documents"][0]["id"] == entry
    assert client.get(f"{BASE}/documents?limit=0", headers=h).status_code == 400
    assert client.get(f"{BASE}/documents?bogus=1", headers=h).status_code == 400


def test_contact_change_and_identity_not_editable(
    client: FlaskClient, alice: str, h: dict[str, str], espace: Espace
) -> None:
    r = client.put(
        f"{BASE}/contact", json={"email": "new@example.org", "phone": "0601020304"}, headers=h
    )
    assert r.status_code == 200 and r.json["email"] == "new@example.org"
    r = client.put(f"{BASE}/contact", json={"email": "not-an-email"}, headers=h)
    assert r.status_code == 400 and r.json["error"] == "invalid_email"
    r = client.put(f"{BASE}/contact", json={"family_name": "Other"}, headers=h)
    assert r.status_code == 400 and r.json["error"] == "unknown_field"
    assert space_row(espace, alice).email == "new@example.org"
    assert space_row(espace, alice).family_name == "NOM"


def test_trace_readable_by_the_patient_only(
    client: FlaskClient, alice: str, h: dict[str, str], bob_h: dict[str, str], espace: Espace
) -> None:
    client.put(f"{BASE}/professionals/{DOCTOR_ID}/block", headers=h)
    r = client.get(f"{BASE}/trace", headers=h)
    assert r.status_code == 200
    events = [rec["event_type"] for rec in r.json["records"]]
    assert "settings.block" in events and "lifecycle.create" in events
    assert client.get(f"{BASE}/trace", headers=bob_h).status_code == 403
    with espace.session_factory() as session:
        denied = (
            session.execute(
                select(TraceRecord).where(
                    TraceRecord.outcome == "denied", TraceRecord.actor_id == BOB
                )
            )
            .scalars()
            .all()
        )
    assert denied and denied[0].space_key == alice


def test_unknown_space_does_not_leak_existence(
    client: FlaskClient, alice: str, bob_h: dict[str, str], h: dict[str, str]
) -> None:
    nobody = make_ins(1, date(1990, 1, 1), 399)
    assert client.get(f"/api/patient/spaces/{nobody}/settings", headers=bob_h).status_code == 403
    r = client.get(f"/api/patient/spaces/{BOB}/settings", headers=bob_h)
    assert r.status_code == 404 and r.json["error"] == "unknown_space"


def test_app_and_support_tokens_refused_on_patient_api(
    client: FlaskClient, alice: str, settings: dict[str, Any], clock: FrozenClock
) -> None:
    app_h = bearer(settings, clock, "app-1", kind=ActorKind.APP, patient=ALICE)
    r = client.get(f"{BASE}/settings", headers=app_h)
    assert r.status_code == 403 and r.json["error"] == "wrong_token_kind"
    agent_h = bearer(settings, clock, "AGENT-1", kind=ActorKind.SUPPORT_AGENT)
    assert client.get(f"{BASE}/settings", headers=agent_h).status_code == 403
    r = client.get(f"{BASE}/settings", headers={"Authorization": "Bearer garbage"})
    assert r.status_code == 401 and "Bearer" in r.headers["WWW-Authenticate"]


def test_refused_authentication_is_traced(
    client: FlaskClient, espace: Espace, settings: dict[str, Any], clock: FrozenClock
) -> None:
    client.get(f"{BASE}/settings", headers={"Authorization": "Bearer garbage"})
    app_h = bearer(settings, clock, "app-9", kind=ActorKind.APP, patient=ALICE)
    client.get(f"{BASE}/settings", headers=app_h)
    with espace.session_factory() as session:
        rows = (
            session.execute(
                select(TraceRecord).where(TraceRecord.event_type == "patient_api.authentication")
            )
            .scalars()
            .all()
        )
    assert {(r.error_code, r.actor_id, r.outcome) for r in rows} == {
        ("invalid_token", "unauthenticated", "denied"),
        ("wrong_token_kind", "app-9", "denied"),
    }


def test_masking_applies_to_every_version(
    client: FlaskClient, alice: str, h: dict[str, str], espace: Espace
) -> None:
    current = add_document(espace, alice, "v2")
    older = add_document(espace, alice, "v1")
    with espace.session_factory() as session:
        row_current, row_older = (
            session.get(DocumentEntryRow, current),
            session.get(DocumentEntryRow, older),
        )
        assert row_current is not None and row_older is not None
        row_older.logical_id, row_older.status, row_older.version = (
            row_current.logical_id,
            ("Deprecated"),
            1,
        )
        row_current.version = 2
        session.commit()
    assert client.post(f"{BASE}/documents/{current}/mask", headers=h).status_code == 200
    with espace.session_factory() as session:
        for entry in (current, older):
            row = session.get(DocumentEntryRow, entry)
            assert row is not None and MASKED_TO_PROFESSIONALS in unflat(row.confidentiality_codes)
    # the Deprecated version is not the patient's to act upon
    assert client.post(f"{BASE}/documents/{older}/unmask", headers=h).status_code == 404
