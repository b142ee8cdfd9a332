"""Each rule of the spine seen from XDS, with the real PDP (PDT-INF-526 + habilitation matrix)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from xds_support import (
    AUTHOR,
    BLOCKED,
    DENTIST,
    EMERGENCY,
    ITI18,
    ITI41,
    ITI43,
    MEDECIN,
    MEDECIN_TRAITANT,
    NURSE,
    PATIENT,
    PATIENT_OID,
    PHARMACIST,
    REGISTRY,
    REPOSITORY,
    SAMU,
    STRANGER,
    STRUCTURE,
    WORK_DOCTOR,
    Doc,
    find_documents,
    post,
    provide_and_register,
    retrieve_request,
    setup_space,
    unique_ids,
    vihf,
)

from espace.admin import add_representative
from espace.clock import FrozenClock
from espace.models import NotificationOutbox, PatientSpace, TraceRecord
from espace.registry import StoredQueryRequest
from espace.registry import find_documents as domain_find
from espace.registry.query import FIND_DOCUMENTS
from espace.service import Espace
from espace.trace import Source
from habilitation.model import AccessMode, Actor, ActorKind, AuthenticationMode

MASKED = (("N", "2.16.840.1.113883.5.25"), ("MASQUE_PS", "1.2.250.1.213.1.1.4.13"))
SOCIAL = ("28653-4", "2.16.840.1.113883.6.1", "Document du secteur social")


@pytest.fixture(autouse=True)
def _real_time(clock: FrozenClock) -> None:
    clock.set(datetime.now(UTC).replace(microsecond=0))


@dataclass
class Corpus:
    space_id: str
    normal: str
    masked: str
    social: str


def load(client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any, **space: Any) -> Corpus:
    space_id = setup_space(espace, clock, **space)
    normal = Doc(symbolic_id="Normal")
    masked = Doc(symbolic_id="Masked", confidentiality=MASKED)
    social = Doc(symbolic_id="Social", type_code=SOCIAL)
    body, parts = provide_and_register([normal, masked, social])
    response = post(client, REPOSITORY, ITI41, body, vihf(pki, clock, AUTHOR), parts)
    assert response.status_value() == "Success", response.errors()
    return Corpus(space_id, normal.unique_id, masked.unique_id, social.unique_id)


def visible(client: FlaskClient, pki: Any, clock: FrozenClock, who: str, **kw: Any) -> Any:
    return post(client, REGISTRY, ITI18, find_documents(), vihf(pki, clock, who, **kw))


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        (AUTHOR, {"normal", "masked", "social"}),  # the author sees what they masked
        (MEDECIN_TRAITANT, {"normal", "masked", "social"}),
        (MEDECIN, {"normal", "social"}),  # masked: own documents only (note 6)
        (NURSE, {"normal"}),  # habilitation matrix: no social-sector documents
        (PHARMACIST, {"normal"}),
        (DENTIST, {"normal"}),
        (WORK_DOCTOR, set()),  # médecin du travail: TD3.1 yes, TD3.2 no
    ],
)
def test_visibility_by_professional(
    client: FlaskClient,
    espace: Espace,
    clock: FrozenClock,
    pki: Any,
    who: str,
    expected: set[str],
) -> None:
    corpus = load(client, espace, clock, pki)
    names = {corpus.normal: "normal", corpus.masked: "masked", corpus.social: "social"}
    response = visible(client, pki, clock, who)
    assert response.status_value() == "Success", response.errors()
    assert {names[u] for u in unique_ids(response)} == expected
    # what FindDocuments hides, ITI-43 refuses the same way
    for uid, name in names.items():
        got = post(client, REPOSITORY, ITI43, retrieve_request(uid), vihf(pki, clock, who))
        assert (got.status_value() == "Success") == (name in expected), (who, name)


@pytest.mark.parametrize("who", [BLOCKED, STRANGER])
def test_blocked_or_unauthorized_professional_is_denied_and_traced(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any, who: str
) -> None:
    corpus = load(client, espace, clock, pki)
    response = visible(client, pki, clock, who)
    assert response.status_value() == "Failure"
    assert response.error_codes() == ["XDSRegistryError"]
    assert unique_ids(response) == set()
    with espace.session_factory() as session:
        denied = session.execute(
            select(TraceRecord).where(
                TraceRecord.space_key == corpus.space_id, TraceRecord.actor_id == who
            )
        ).scalar_one()
    assert denied.outcome == "denied" and denied.event_type == "ITI-18"


def test_blocked_professional_even_in_bris_de_glace(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    load(client, espace, clock, pki)
    response = visible(client, pki, clock, BLOCKED, access_mode=AccessMode.BREAK_GLASS)
    assert response.error_codes() == ["XDSRegistryError"]


def test_bris_de_glace_notifies_at_once_and_hides_masked(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    corpus = load(client, espace, clock, pki)
    response = visible(client, pki, clock, EMERGENCY, access_mode=AccessMode.BREAK_GLASS)
    assert response.status_value() == "Success"
    assert unique_ids(response) == {corpus.normal, corpus.social}
    with espace.session_factory() as session:
        notices = (
            session.execute(
                select(NotificationOutbox).where(NotificationOutbox.category == "emergency_access")
            )
            .scalars()
            .all()
        )
        record = session.execute(
            select(TraceRecord).where(TraceRecord.actor_id == EMERGENCY)
        ).scalar_one()
    assert len(notices) == 1 and notices[0].immediate
    assert record.access_mode == "bris_de_glace"


def test_bris_de_glace_refused_when_the_patient_opposed(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    load(client, espace, clock, pki, break_glass_allowed=False)
    response = visible(client, pki, clock, EMERGENCY, access_mode=AccessMode.BREAK_GLASS)
    assert response.error_codes() == ["XDSRegistryError"]


def test_samu_regulator_in_centre_15(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    corpus = load(client, espace, clock, pki)
    response = visible(client, pki, clock, SAMU, access_mode=AccessMode.REGULATION)
    assert response.status_value() == "Success", response.errors()
    assert unique_ids(response) == {corpus.normal, corpus.social}
    with espace.session_factory() as session:
        assert (
            session.execute(
                select(NotificationOutbox).where(NotificationOutbox.category == "emergency_access")
            )
            .scalars()
            .all()
        )


def test_indirect_mode_structure_certificate(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    """A structure certificate may feed (TD2.1 oui(4)) and search references (TD3.1 oui(5)),
    never read metadata (TD3.1 "Rechercher les métadonnées": non)."""
    setup_space(espace, clock, structures=(STRUCTURE,))
    doc = Doc(author=STRANGER)
    body, parts = provide_and_register([doc])
    indirect = {"authentication_mode": AuthenticationMode.INDIRECT}
    stored = post(client, REPOSITORY, ITI41, body, vihf(pki, clock, STRANGER, **indirect), parts)
    assert stored.status_value() == "Success", stored.errors()
    metadata = visible(client, pki, clock, STRANGER, **indirect)
    assert metadata.error_codes() == ["XDSRegistryError"]
    refs = post(
        client,
        REGISTRY,
        ITI18,
        find_documents(return_type="ObjectRef"),
        vihf(pki, clock, STRANGER, **indirect),
    )
    assert refs.status_value() == "Success", refs.errors()
    assert len(list(refs.body.iter("{urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0}ObjectRef"))) == 1


def test_minor_secret_document(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    """A secret-connection submission to a minor must carry INVISIBLE_REPRESENTANTS_LEGAUX;
    such a document is hidden from the legal representatives, not from professionals."""
    setup_space(espace, clock, birth_date=date(2012, 5, 1))
    with espace.session_factory() as session:
        space = session.execute(select(PatientSpace)).scalar_one()
        add_representative(session, space, "180017512345678", now=clock.now(), name="Parent")
        session.commit()
    secret = {"secret_connection": True}
    unmarked = Doc(symbolic_id="Unmarked")
    body, parts = provide_and_register([unmarked])
    refused = post(client, REPOSITORY, ITI41, body, vihf(pki, clock, AUTHOR, **secret), parts)
    assert refused.error_codes() == ["XDSRepositoryError"]
    marked = Doc(
        symbolic_id="Marked",
        confidentiality=(
            ("N", "2.16.840.1.113883.5.25"),
            ("INVISIBLE_REPRESENTANTS_LEGAUX", "1.2.250.1.213.1.1.4.13"),
        ),
    )
    body, parts = provide_and_register([marked])
    stored = post(client, REPOSITORY, ITI41, body, vihf(pki, clock, AUTHOR, **secret), parts)
    assert stored.status_value() == "Success", stored.errors()
    assert unique_ids(visible(client, pki, clock, MEDECIN)) == {marked.unique_id}
    # the same registry use case, as the patient-side faces call it
    query = StoredQueryRequest(
        FIND_DOCUMENTS,
        {
            "$XDSDocumentEntryPatientId": [[f"{PATIENT}^^^&{PATIENT_OID}&ISO^NH"]],
            "$XDSDocumentEntryStatus": [["urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"]],
        },
    )
    source = Source("test")
    parent = Actor(ActorKind.LEGAL_REPRESENTATIVE, id="180017512345678", on_behalf_of=PATIENT)
    minor = Actor(ActorKind.PATIENT, id=PATIENT)
    assert domain_find(espace, parent, query, patient_ins=PATIENT, source=source).documents == []
    seen = domain_find(espace, minor, query, patient_ins=PATIENT, source=source).documents
    assert [d.unique_id for d in seen] == [marked.unique_id]
