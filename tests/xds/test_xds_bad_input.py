"""Bad input gets its exact XDS code or SOAP fault, never a 500, and stores nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient
from lxml import etree
from sqlalchemy import func, select
from xds_support import (
    AUTHOR,
    ITI18,
    ITI41,
    OTHER_PATIENT,
    REGISTRY,
    REPOSITORY,
    STRANGER,
    Doc,
    cda,
    envelope_bytes,
    parse_response,
    post,
    provide_and_register,
    setup_space,
    vihf,
)

from espace.clock import FrozenClock
from espace.models import DocumentContent, DocumentEntryRow, SubmissionSetRow, TraceRecord
from espace.service import Espace
from xds import ns


@pytest.fixture(autouse=True)
def _real_time(clock: FrozenClock) -> None:
    clock.set(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def space(espace: Espace, clock: FrozenClock) -> str:
    return setup_space(espace, clock)


def stored(espace: Espace) -> tuple[int, int, int]:
    with espace.session_factory() as session:
        return (
            session.execute(select(func.count()).select_from(DocumentEntryRow)).scalar_one(),
            session.execute(select(func.count()).select_from(DocumentContent)).scalar_one(),
            session.execute(select(func.count()).select_from(SubmissionSetRow)).scalar_one(),
        )


def submit(client: FlaskClient, pki: Any, clock: FrozenClock, docs: list[Doc], **kw: Any) -> Any:
    body, parts = provide_and_register(docs, **kw)
    return post(client, REPOSITORY, ITI41, body, vihf(pki, clock, AUTHOR), parts)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (
            {"type_code": ("99999-9", "2.16.840.1.113883.6.1", "inconnu")},
            "XDSRegistryMetadataError",
        ),
        (
            {"class_code": ("11", "1.2.250.1.213.1.1.4.1", "Synthèse")},  # ASS_X16 mismatch
            "XDSRegistryMetadataError",
        ),
        ({"confidentiality": (("SECRET", "2.16.840.1.113883.5.25"),)}, "XDSRegistryMetadataError"),
        ({"confidentiality": ()}, "XDSRegistryMetadataError"),
        ({"facility": ("NOPE", "1.2.250.1.71.4.2.4")}, "XDSRegistryMetadataError"),
        ({"hash": "0" * 40}, "XDSRepositoryMetadataError"),
        ({"size": 3}, "XDSRepositoryMetadataError"),
        ({"patient": OTHER_PATIENT}, "XDSPatientIdDoesNotMatch"),
        ({"content": cda(ins=OTHER_PATIENT)}, "XDSPatientIdDoesNotMatch"),
    ],
)
def test_bad_metadata_is_refused_and_nothing_stored(
    client: FlaskClient,
    espace: Espace,
    clock: FrozenClock,
    pki: Any,
    space: str,
    change: dict[str, Any],
    code: str,
) -> None:
    good = Doc(symbolic_id="Good01")
    bad = Doc(**change)
    response = submit(client, pki, clock, [good, bad])
    assert response.status == 200
    assert response.status_value() == "Failure"
    assert code in response.error_codes()
    assert stored(espace) == (0, 0, 0)  # all-or-nothing: the good document is not kept either


def test_missing_document_and_missing_metadata(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any, space: str
) -> None:
    doc = Doc()
    body, parts = provide_and_register([doc])
    for document in body.findall(f"{{{ns.XDS}}}Document"):
        body.remove(document)
    response = post(client, REPOSITORY, ITI41, body, vihf(pki, clock, AUTHOR), parts)
    assert response.error_codes() == ["XDSMissingDocument"]
    body, parts = provide_and_register([doc])
    parts["extra@test"] = (b"orphan", "text/plain")
    response = post(client, REPOSITORY, ITI41, body, vihf(pki, clock, AUTHOR), parts)
    assert response.error_codes() == ["XDSMissingDocumentMetadata"]
    assert stored(espace) == (0, 0, 0)


def test_resubmission_same_hash_is_idempotent_other_hash_refused(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any, space: str
) -> None:
    doc = Doc()
    first = submit(client, pki, clock, [doc], ss_unique_id="1.2.250.1.999.9.1")
    assert first.status_value() == "Success"
    again = submit(client, pki, clock, [doc], ss_unique_id="1.2.250.1.999.9.1")
    assert again.status_value() == "Success"
    assert stored(espace) == (1, 1, 1)
    changed = Doc(unique_id=doc.unique_id, content=cda(text="autre contenu"))
    refused = submit(client, pki, clock, [changed])
    assert refused.error_codes() == ["XDSNonIdenticalHash"]
    assert stored(espace) == (1, 1, 1)


def test_unknown_patient_and_closed_space(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    body, parts = provide_and_register([Doc()])
    response = post(client, REPOSITORY, ITI41, body, vihf(pki, clock, AUTHOR), parts)
    assert response.error_codes() == ["XDSUnknownPatientId"]
    setup_space(espace, clock, status="closed")
    response = post(client, REPOSITORY, ITI41, body, vihf(pki, clock, AUTHOR), parts)
    assert response.error_codes() == ["XDSUnknownPatientId"]
    assert stored(espace) == (0, 0, 0)


def test_vihf_patient_must_be_the_metadata_patient(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any, space: str
) -> None:
    setup_space(espace, clock, ins=OTHER_PATIENT)
    body, parts = provide_and_register([Doc()])
    response = post(
        client, REPOSITORY, ITI41, body, vihf(pki, clock, AUTHOR, patient_ins=OTHER_PATIENT), parts
    )
    assert set(response.error_codes()) == {"XDSPatientIdDoesNotMatch"}
    assert stored(espace) == (0, 0, 0)


def raw_post(client: FlaskClient, path: str, data: bytes) -> Any:
    response = client.post(path, data=data, content_type="application/soap+xml; charset=UTF-8")
    return parse_response(response.status_code, response.content_type or "", response.data)


@pytest.mark.parametrize(
    "payload",
    [
        b"<not-xml",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>',
        b"<Envelope/>",
        f'<s:Envelope xmlns:s="{ns.SOAP12}"><s:Header/></s:Envelope>'.encode(),
    ],
)
def test_malformed_envelopes_get_a_sender_fault(
    client: FlaskClient, espace: Espace, space: str, payload: bytes
) -> None:
    response = raw_post(client, REGISTRY, payload)
    assert response.status == 400
    assert response.body.tag == f"{{{ns.SOAP12}}}Fault"
    assert stored(espace) == (0, 0, 0)


def test_xml_attack_files_are_refused(client: FlaskClient, espace: Espace, space: str) -> None:
    from xds_support import REFERENCE

    folder = REFERENCE / "security" / "xml-attacks"
    if not folder.exists():
        pytest.skip(f"reference data not found at {folder}")
    for path in sorted(folder.glob("0*.xml")):
        response = raw_post(client, REGISTRY, path.read_bytes())
        assert response.status in (400, 413), path.name
        assert response.body.tag == f"{{{ns.SOAP12}}}Fault", path.name


def test_unknown_action_and_action_on_wrong_endpoint(
    client: FlaskClient, clock: FrozenClock, pki: Any, space: str
) -> None:
    body = etree.Element(f"{{{ns.QUERY}}}AdhocQueryRequest")
    unknown = post(client, REGISTRY, "urn:example:unknown", body, vihf(pki, clock))
    assert unknown.fault_subcode() == "ActionNotSupported"
    wrong = post(client, REPOSITORY, ITI18, body, vihf(pki, clock))
    assert wrong.fault_subcode() == "ActionNotSupported"


def test_security_faults_are_traced(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any, space: str
) -> None:
    body = etree.Element(f"{{{ns.QUERY}}}AdhocQueryRequest")
    missing = raw_post(client, REGISTRY, envelope_bytes(ITI18, body, None))
    assert missing.status == 400 and missing.fault_subcode() == "InvalidSecurity"
    clock.set(datetime(2020, 1, 1, tzinfo=UTC))  # certificates not yet valid
    stale = post(client, REGISTRY, ITI18, body, vihf(pki, clock, STRANGER))
    clock.set(datetime.now(UTC))
    assert stale.fault_subcode() == "FailedAuthentication"
    with espace.session_factory() as session:
        codes = (
            session.execute(select(TraceRecord.error_code).where(TraceRecord.space_key == "-"))
            .scalars()
            .all()
        )
    assert any(c.startswith("vihf_") for c in codes)


def test_medecin_without_specialty_is_refused(
    client: FlaskClient, clock: FrozenClock, pki: Any, space: str
) -> None:
    body = etree.Element(f"{{{ns.QUERY}}}AdhocQueryRequest")
    response = post(client, REGISTRY, ITI18, body, vihf(pki, clock, AUTHOR, specialty=None))
    assert response.status == 400
    assert response.body.tag == f"{{{ns.SOAP12}}}Fault"


def test_unparseable_metadata_is_traced_in_the_patient_chain(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any, space: str
) -> None:
    body = etree.fromstring(
        f'<xds:ProvideAndRegisterDocumentSetRequest xmlns:xds="{ns.XDS}">'
        f'<lcm:SubmitObjectsRequest xmlns:lcm="{ns.LCM}"/>'
        "</xds:ProvideAndRegisterDocumentSetRequest>".encode()
    )
    response = post(client, REPOSITORY, ITI41, body, vihf(pki, clock, AUTHOR), {})
    assert response.error_codes() == ["XDSRegistryMetadataError"]
    with espace.session_factory() as session:
        record = session.execute(
            select(TraceRecord).where(TraceRecord.space_key == space)
        ).scalar_one()
    assert (record.event_type, record.outcome, record.actor_id) == ("ITI-41", "failure", AUTHOR)
    assert record.error_code == "XDSRegistryMetadataError"


def test_oversized_attachment_is_refused_before_storage(
    app: Any, client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any, space: str
) -> None:
    app.config["MAX_ATTACHMENT_BYTES"] = 1024
    doc = Doc(content=cda(text="x" * 4096))
    body, parts = provide_and_register([doc])
    response = post(client, REPOSITORY, ITI41, body, vihf(pki, clock, AUTHOR), parts)
    assert response.status == 413
    assert response.body.tag == f"{{{ns.SOAP12}}}Fault"
    assert stored(espace) == (0, 0, 0)


def test_submitted_status_and_lid_are_not_trusted(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any, space: str
) -> None:
    first = Doc(symbolic_id="First")
    assert submit(client, pki, clock, [first]).status_value() == "Success"
    with espace.session_factory() as session:
        lineage = session.execute(select(DocumentEntryRow.logical_id)).scalar_one()
    intruder = Doc(symbolic_id="Intruder", lid=lineage)
    body, parts = provide_and_register([intruder])
    for eo in body.iter(f"{{{ns.RIM}}}ExtrinsicObject"):
        eo.set("status", "urn:asip:ci-sis:2010:StatusType:Deleted")
    response = post(client, REPOSITORY, ITI41, body, vihf(pki, clock, AUTHOR), parts)
    assert response.status_value() == "Success", response.errors()
    with espace.session_factory() as session:
        row = session.execute(
            select(DocumentEntryRow).where(DocumentEntryRow.unique_id == intruder.unique_id)
        ).scalar_one()
    assert (row.status, row.version) == ("Approved", 1)
    assert row.logical_id == row.entry_uuid != lineage
