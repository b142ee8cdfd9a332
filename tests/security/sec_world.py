"""Three patients with data on every face (XDS documents, FHIR resources, mailbox), built
through the faces themselves where they exist (ITI-41, FHIR create) so that the attacks aim at
real rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import select
from xds_support import (
    AUTHOR,
    ITI41,
    OTHER_PATIENT,
    PATIENT,
    REPOSITORY,
    Doc,
    cda,
    post,
    provide_and_register,
    setup_space,
    vihf,
)

from espace.clock import FrozenClock
from espace.models import DocumentEntryRow, PatientSpace
from espace.service import Espace
from habilitation.model import ActorKind
from mes.tokens import issue_token


def ins_for(body: str) -> str:
    """A matricule INS with its valid NIR key."""
    return f"{body}{97 - int(body) % 97:02d}"


THIRD_PATIENT = ins_for("1850175123456")
PATIENTS = (PATIENT, OTHER_PATIENT, THIRD_PATIENT)
FHIR = "application/fhir+json"


@dataclass
class PatientData:
    ins: str
    space_id: str
    doc_unique_ids: list[str] = field(default_factory=list)
    doc_entry_uuids: list[str] = field(default_factory=list)
    fhir: dict[str, list[str]] = field(default_factory=dict)  # type -> ids
    conversations: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    attachments: list[tuple[str, str]] = field(default_factory=list)  # (message, attachment)
    drafts: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)  # strings that only this patient's data holds


@dataclass
class World:
    espace: Espace
    settings: dict[str, Any]
    clock: FrozenClock
    pki: Any
    patients: dict[str, PatientData]

    def token(
        self,
        kind: ActorKind,
        ins: str,
        *,
        app_id: str | None = None,
        on_behalf_of: str | None = None,
    ) -> str:
        del on_behalf_of
        return issue_token(
            self.settings, subject=app_id or ins, kind=kind, patient=ins, app_id=app_id
        )

    def bearer(self, kind: ActorKind, ins: str, **kwargs: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(kind, ins, **kwargs)}"}


def _condition(secret: str) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "code": {"text": secret},
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "onsetDateTime": "2015-03-01",
    }


def build_world(
    espace: Espace,
    settings: dict[str, Any],
    clock: FrozenClock,
    pki: Any,
    client: Any,
    *,
    with_fhir: bool = True,
    with_mail: bool = True,
) -> World:
    """Spaces, care teams and data of three patients; ``client`` is a FlaskClient."""
    patients: dict[str, PatientData] = {}
    for n, ins in enumerate(PATIENTS):
        space_id = (
            setup_space(espace, clock, ins=ins) if n == 0 else _second_space(espace, clock, ins)
        )
        data = PatientData(ins, space_id)
        secret = f"SECRET-OF-{ins}"
        data.secrets.append(secret)
        doc = Doc(content=cda(ins=ins, text=secret), patient=ins)
        body, parts = provide_and_register([doc], patient=ins)
        stored = post(
            client, REPOSITORY, ITI41, body, vihf(pki, clock, AUTHOR, patient_ins=ins), parts
        )
        assert stored.status_value() == "Success", stored.errors()
        data.doc_unique_ids.append(doc.unique_id)
        data.secrets.append(doc.unique_id)
        with espace.session_factory() as session:
            data.doc_entry_uuids.append(
                session.execute(
                    select(DocumentEntryRow.entry_uuid).where(
                        DocumentEntryRow.unique_id == doc.unique_id
                    )
                ).scalar_one()
            )
        patients[ins] = data
    world = World(espace, settings, clock, pki, patients)
    if with_fhir:
        for data in patients.values():
            headers = {**world.bearer(ActorKind.PATIENT, data.ins), "Content-Type": FHIR}
            created = client.post(
                "/fhir/Condition", json=_condition(data.secrets[0]), headers=headers
            )
            assert created.status_code == 201, created.get_json()
            rid = created.get_json()["id"]
            data.fhir.setdefault("Condition", []).append(rid)
            data.secrets.append(rid)
    if with_mail:
        _mail(world)
    return world


def _second_space(espace: Espace, clock: FrozenClock, ins: str) -> str:
    from xds_support import AUTHOR as author  # noqa: N811
    from xds_support import MEDECIN, NURSE, PHARMACIST

    from espace.admin import link_professional, register_space

    with espace.session_factory() as session:
        space = register_space(
            session,
            ins=ins,
            ins_oid="1.2.250.1.213.1.4.10",
            now=clock.now(),
            family_name="PAT",
            given_names=ins[-4:],
            birth_date=date(1980, 1, 1),
            sex="M",
        )
        for pro in (author, MEDECIN, NURSE, PHARMACIST):
            link_professional(session, space, pro, "authorized", declared_by=pro, now=clock.now())
        session.commit()
        return space.id


def _mail(world: World) -> None:
    from espace import mailbox as mb

    settings = mb.MailSettings.from_mapping(world.settings)
    for n, data in enumerate(world.patients.values()):
        with world.espace.session_factory() as session:
            space = session.get(PatientSpace, data.space_id)
            assert space is not None
            message = mb.InboundMessage(
                message_id=f"<sec-{n}@operateur.test.mssante.fr>",
                from_address="dr.martin@operateur.test.mssante.fr",
                from_name="Dr Martin",
                to_addresses=(f"{data.ins}@{settings.domain}",),
                subject=f"Résultats {data.secrets[0]}",
                body_text=f"Bonjour, {data.secrets[0]}",
                raw=b"",
                attachments=(
                    mb.InboundAttachment("cr.txt", "text/plain", data.secrets[0].encode()),
                ),
            )
            delivered = mb.deliver(
                session,
                space,
                message,
                cipher=world.espace.cipher,
                settings=settings,
                now=world.clock.now(),
                notify=lambda *_: None,
            )
            session.commit()
            data.conversations.append(delivered.conversation_id)
            data.messages.append(delivered.message_row_id)
            for att in mb.attachments_of(session, data.space_id, [delivered.message_row_id]):
                data.attachments.append((delivered.message_row_id, att.id))
            draft = mb.save_draft(
                session,
                data.space_id,
                draft_id=None,
                conversation_id=None,
                to_address="",
                subject=f"brouillon {data.secrets[0]}",
                body=data.secrets[0],
                uploads=[("n.txt", "text/plain", data.secrets[0].encode())],
                references=[],
                cipher=world.espace.cipher,
                now=world.clock.now(),
            )
            session.commit()
            data.drafts.append(draft.id)
