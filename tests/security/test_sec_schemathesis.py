"""Schemathesis over the OpenAPI descriptions of the patient API and the mailbox API (issue 7,
"Cross-patient access"): property-based requests generated from the schemas, checked with
schemathesis' ``not_a_server_error`` and ``ignored_auth`` (OWASP API2: a protected operation
must refuse a request without or with a broken token), plus our object-level check (OWASP API1):
the same generated request, authenticated as patient A but aimed at patient B's objects (path
parameters replaced by B's INS / mailbox ids), never succeeds.

schemathesis' own ``object_level_authorization`` check needs several configured identities
(its escalating auth providers) and links between operations that these descriptions do not
declare; the replay below is the same property written for our two patients.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import ignored_auth

from espace.admin import register_space
from espace.service import Espace
from habilitation.model import ActorKind
from mes.tokens import issue_token

INS_A = "285027512345680"
INS_B = "179059912345704"


@pytest.fixture
def two_patients(espace: Espace, settings: dict[str, Any]) -> dict[str, Any]:
    from espace import mailbox as mb

    ids: dict[str, Any] = {}
    with espace.session_factory() as session:
        for ins in (INS_A, INS_B):
            space = register_space(
                session,
                ins=ins,
                now=espace.clock.now(),
                family_name="P",
                given_names=ins[-3:],
                birth_date=date(1980, 1, 1),
                sex="F",
            )
            session.flush()
            draft = mb.save_draft(
                session,
                space.id,
                draft_id=None,
                conversation_id=None,
                to_address="",
                subject="s",
                body=f"secret {ins}",
                uploads=[],
                references=[],
                cipher=espace.cipher,
                now=espace.clock.now(),
            )
            message = mb.add_system_message(
                session,
                space,
                subject=f"sujet {ins}",
                body=f"secret {ins}",
                cipher=espace.cipher,
                settings=mb.MailSettings.from_mapping(settings),
                now=espace.clock.now(),
            )
            ids[ins] = {
                "draft_id": draft.id,
                "conversation_id": message.conversation_id,
                "message_id": message.id,
                "ins": ins,
            }
        session.commit()
    return ids


def _operations(app: Flask, path: str) -> list[Any]:
    schema = schemathesis.openapi.from_wsgi(path, app)
    return [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]


SETTINGS = settings(
    max_examples=int(__import__("os").environ.get("MES_SCHEMATHESIS_EXAMPLES", "5")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)


def _token(app: Flask, ins: str) -> dict[str, str]:
    token = issue_token(app.config, subject=ins, kind=ActorKind.PATIENT, patient=ins)
    return {"Authorization": f"Bearer {token}"}


def _aim_at(case: Any, victim: dict[str, Any]) -> bool:
    """Replace the case's object identifiers by the victim's; False if it names none."""
    changed = False
    for name in list(case.path_parameters or {}):
        if name in victim:
            case.path_parameters[name] = victim[name]
            changed = True
    return changed


def _fuzz(app: Flask, path: str, two_patients: dict[str, Any], skip: tuple[str, ...]) -> int:
    headers = _token(app, INS_A)
    tried = {"n": 0}
    for operation in _operations(app, path):
        if operation.path.endswith(skip):
            continue

        @SETTINGS
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            tried["n"] += 1
            if case.path_parameters and "ins" in case.path_parameters:
                case.path_parameters["ins"] = INS_A
            public = case.path.startswith("/enrolment") or "/enrolment/" in case.path
            checks = [not_a_server_error] if public else [not_a_server_error, ignored_auth]
            case.call_and_validate(headers=headers, checks=checks)
            if not public and _aim_at(case, two_patients[INS_B]):
                response = case.call(headers=headers)
                assert not 200 <= response.status_code < 300, (
                    case.method,
                    case.formatted_path,
                    response.status_code,
                    response.text[:300],
                )
                assert f"secret {INS_B}" not in response.text

        run()
    return tried["n"]


def test_patient_api_schemathesis(app: Flask, two_patients: dict[str, Any]) -> None:
    n = _fuzz(app, "/api/patient/openapi.json", two_patients, ("openapi.json",))
    assert n > 0
    print(f"schemathesis patient API: {n} generated requests")


def test_mailbox_api_schemathesis(app: Flask, two_patients: dict[str, Any]) -> None:
    n = _fuzz(app, "/api/mailbox/openapi.json", two_patients, ("openapi.json",))
    assert n > 0
    print(f"schemathesis mailbox API: {n} generated requests")
