"""The issue's "done" scenario, end to end over SOAP (ITI-41 -> ITI-18 -> ITI-43 -> ITI-57)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from xds_support import (
    AUTHOR,
    ITI18,
    ITI41,
    ITI43,
    ITI57,
    MEDECIN,
    MEDECIN_TRAITANT,
    NURSE,
    REGISTRY,
    REPOSITORY,
    WORK_DOCTOR,
    Doc,
    association,
    extrinsic_object,
    find_documents,
    post,
    provide_and_register,
    retrieve_request,
    setup_space,
    submission_set,
    submit_objects,
    unique_ids,
    vihf,
)

from espace.clock import FrozenClock
from espace.models import DocumentContent, DocumentEntryRow, NotificationOutbox, TraceRecord
from espace.service import Espace
from xds import ns


@pytest.fixture(autouse=True)
def _real_time(clock: FrozenClock) -> None:
    """The test PKI's certificates are valid from yesterday: run the clock at today's time."""
    clock.set(datetime.now(UTC).replace(microsecond=0))


def mask_request(doc: Doc, entry_uuid: str, version: str = "1") -> Any:
    """ITI-57 as in the DMP kit's template_masquage.xml: new version adding MASQUE_PS."""
    from lxml import etree

    masked = Doc(
        content=doc.content,
        unique_id=doc.unique_id,
        symbolic_id="DocumentV2",
        confidentiality=(("N", "2.16.840.1.113883.5.25"), ("MASQUE_PS", "1.2.250.1.213.1.1.4.13")),
        lid=entry_uuid,
        entry_id="urn:uuid:6b3ec0a4-8a8d-4a1b-9d5f-000000000002",
    )
    objects = (
        submission_set()
        + extrinsic_object(masked, with_hash=True)
        + association(
            "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember",
            "SubmissionSet01",
            masked.entry_id or "",
            SubmissionSetStatus="Original",
            PreviousVersion=version,
        )
    )
    return etree.fromstring(submit_objects(objects).encode())


def test_done_scenario(client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any) -> None:
    space_id = setup_space(espace, clock)
    doc = Doc()

    # 1. ITI-41 by the author (CDA signed with the demo PKI's VIHF)
    body, parts = provide_and_register([doc])
    stored = post(client, REPOSITORY, ITI41, body, vihf(pki, clock, AUTHOR), parts)
    assert stored.status == 200 and stored.status_value() == "Success", stored.errors()
    assert stored.action == "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-bResponse"
    with espace.session_factory() as session:
        row = session.execute(
            select(DocumentEntryRow).where(DocumentEntryRow.unique_id == doc.unique_id)
        ).scalar_one()
        assert row.hash == doc.sha1 and row.size == len(doc.content)
        content = session.execute(select(DocumentContent)).scalar_one()
        assert doc.content not in content.encrypted  # encrypted at rest
        entry_uuid = row.entry_uuid
        assert session.execute(
            select(NotificationOutbox).where(NotificationOutbox.category == "new_document")
        ).scalar_one()

    # 2. found by FindDocuments for an authorized médecin
    found = post(client, REGISTRY, ITI18, find_documents(), vihf(pki, clock, MEDECIN))
    assert found.status_value() == "Success"
    assert unique_ids(found) == {doc.unique_id}

    # 3. hidden from a professional the matrix denies (médecin du travail: no TD3.2 right)
    hidden = post(client, REGISTRY, ITI18, find_documents(), vihf(pki, clock, WORK_DOCTOR))
    assert hidden.status_value() == "Success" and unique_ids(hidden) == set()

    # 4. retrievable by ITI-43 (MTOM response)
    got = post(
        client, REPOSITORY, ITI43, retrieve_request(doc.unique_id), vihf(pki, clock, MEDECIN)
    )
    assert got.status_value() == "Success"
    document = got.body.find(f"{{{ns.XDS}}}DocumentResponse/{{{ns.XDS}}}Document")
    assert document is not None and got.resolved[document] == doc.content

    # 5. masked by ITI-57 (the author)
    masked = post(client, REGISTRY, ITI57, mask_request(doc, entry_uuid), vihf(pki, clock, AUTHOR))
    assert masked.status_value() == "Success", masked.error_codes()

    # 6. then invisible to a nurse, visible to the médecin traitant
    nurse = post(client, REGISTRY, ITI18, find_documents(), vihf(pki, clock, NURSE))
    assert unique_ids(nurse) == set()
    nurse_get = post(
        client, REPOSITORY, ITI43, retrieve_request(doc.unique_id), vihf(pki, clock, NURSE)
    )
    assert nurse_get.error_codes() == ["XDSDocumentUniqueIdError"]
    mt = post(client, REGISTRY, ITI18, find_documents(), vihf(pki, clock, MEDECIN_TRAITANT))
    assert unique_ids(mt) == {doc.unique_id}
    # older versions stay hidden too, even where Deprecated entries are readable
    nurse_all = post(
        client,
        REGISTRY,
        ITI18,
        find_documents(statuses=("Approved", "Deprecated")),
        vihf(pki, clock, NURSE),
    )
    assert unique_ids(nurse_all) == set()

    # 7. every step is in the patient's trace
    with espace.session_factory() as session:
        records = (
            session.execute(
                select(TraceRecord)
                .where(TraceRecord.space_key == space_id)
                .order_by(TraceRecord.seq)
            )
            .scalars()
            .all()
        )
    steps = [(r.event_type, r.actor_id, r.outcome) for r in records]
    assert ("ITI-41", AUTHOR, "success") in steps
    assert ("ITI-18", MEDECIN, "success") in steps
    assert ("ITI-18", WORK_DOCTOR, "success") in steps
    assert ("ITI-43", MEDECIN, "success") in steps
    assert ("ITI-57", AUTHOR, "success") in steps
    assert ("ITI-43", NURSE, "failure") in steps
    assert ("ITI-18", MEDECIN_TRAITANT, "success") in steps
    submit = next(r for r in records if r.event_type == "ITI-41")
    assert (submit.target_id, submit.document_type) == (doc.unique_id, "11488-4")
    mask = next(r for r in records if r.event_type == "ITI-57")
    assert mask.action == "TD3.3a.mask"


def test_inline_base64_submission_without_mtom(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    """ITI TF-2b 3.41.4.1.3: a Document may travel inline (xs:base64Binary) in plain SOAP."""
    import base64

    setup_space(espace, clock)
    doc = Doc()
    body, _parts = provide_and_register([doc])
    for document in body.findall(f"{{{ns.XDS}}}Document"):
        for child in list(document):
            document.remove(child)
        document.text = base64.b64encode(doc.content).decode()
    response = post(client, REPOSITORY, ITI41, body, vihf(pki, clock, AUTHOR))
    assert response.status_value() == "Success", response.errors()
    assert response.attachments == {}  # a plain request gets a plain response
    got = post(client, REPOSITORY, ITI43, retrieve_request(doc.unique_id), vihf(pki, clock, AUTHOR))
    document = got.body.find(f"{{{ns.XDS}}}DocumentResponse/{{{ns.XDS}}}Document")
    assert document is not None and got.resolved[document] == doc.content
