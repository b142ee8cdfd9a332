"""ITI-18: the 14 stored queries, their parameter rules, ObjectRef, the cap; ITI-42/57/62 and the
lifecycle associations (RPLC moves folder memberships). Every response is schema-valid."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree
from sqlalchemy import select
from xds_support import (
    AUTHOR,
    HAS_MEMBER,
    ITI18,
    ITI41,
    ITI42,
    ITI62,
    NURSE,
    PATIENT,
    PATIENT_OID,
    REGISTRY,
    REPOSITORY,
    Doc,
    Soap,
    _slot,
    assert_schema_valid,
    association,
    extrinsic_object,
    find_documents,
    post,
    provide_and_register,
    setup_space,
    submission_set,
    submit_objects,
    unique_ids,
    vihf,
)

from espace.clock import FrozenClock
from espace.models import AssociationRow, DocumentEntryRow, SubmissionSetRow
from espace.registry.query import QUERY_IDS_BY_NAME
from espace.service import Espace
from xds import ns

PID = f"'{PATIENT}^^^&amp;{PATIENT_OID}&amp;ISO^NH'"
APPROVED = "('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')"
FOLDER_CODE = ("urn:uuid:1ba97051-7806-41a8-a48b-8fce7af683c5", "11488-4", "2.16.840.1.113883.6.1")


@pytest.fixture(autouse=True)
def _real_time(clock: FrozenClock) -> None:
    clock.set(datetime.now(UTC).replace(microsecond=0))


def folder_xml(owner: str = "Folder01") -> str:
    pid = f"{PATIENT}^^^&amp;{PATIENT_OID}&amp;ISO^NH"
    scheme, code, coding = FOLDER_CODE
    return (
        f'<RegistryPackage id="{owner}"><Name><LocalizedString value="Suivi"/></Name>'
        f'<Classification classificationScheme="{scheme}" classifiedObject="{owner}" '
        f'id="c{uuid.uuid4().hex[:6]}" nodeRepresentation="{code}">'
        f"{_slot('codingScheme', coding)}</Classification>"
        f'<Classification classificationNode="urn:uuid:d9d542f3-6cc4-48b6-8870-ea235fbc94c2" '
        f'classifiedObject="{owner}" id="c{uuid.uuid4().hex[:6]}"/>'
        f'<ExternalIdentifier id="e{uuid.uuid4().hex[:6]}" registryObject="{owner}" '
        f'identificationScheme="urn:uuid:f64ffdf0-4b97-4e06-b79f-a52b38ec2f8a" value="{pid}"/>'
        f'<ExternalIdentifier id="e{uuid.uuid4().hex[:6]}" registryObject="{owner}" '
        f'identificationScheme="urn:uuid:75df8f67-9973-4fbe-a900-df66cefecc5a" '
        f'value="1.2.250.1.999.7.{uuid.uuid4().int % 10**9}"/></RegistryPackage>'
    )


def query(name: str, params: str, return_type: str = "LeafClass") -> etree._Element:
    return etree.fromstring(
        (
            f'<query:AdhocQueryRequest xmlns:query="{ns.QUERY}" xmlns="{ns.RIM}">'
            f'<query:ResponseOption returnComposedObjects="true" returnType="{return_type}"/>'
            f'<AdhocQuery id="{QUERY_IDS_BY_NAME.get(name, name)}">{params}</AdhocQuery>'
            "</query:AdhocQueryRequest>"
        ).encode()
    )


def ask(
    client: FlaskClient,
    pki: Any,
    clock: FrozenClock,
    name: str,
    params: str,
    who: str = AUTHOR,
    return_type: str = "LeafClass",
) -> Soap:
    response = post(
        client, REGISTRY, ITI18, query(name, params, return_type), vihf(pki, clock, who)
    )
    assert response.status == 200
    assert_schema_valid(response.body)
    return response


def local(response: Soap, tag: str) -> list[etree._Element]:
    return list(response.body.iter(f"{{{ns.RIM}}}{tag}"))


@pytest.fixture
def loaded(client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any) -> dict[str, Any]:
    """Two documents in a folder, one masked document, one submission set."""
    setup_space(espace, clock)
    a, b = (
        Doc(symbolic_id="DocA"),
        Doc(symbolic_id="DocB", type_code=("11490-0", "2.16.840.1.113883.6.1", "CR de sortie")),
    )
    masked = Doc(
        symbolic_id="DocM",
        confidentiality=(("N", "2.16.840.1.113883.5.25"), ("MASQUE_PS", "1.2.250.1.213.1.1.4.13")),
    )
    extra = folder_xml() + association(HAS_MEMBER, "SubmissionSet01", "Folder01")
    extra += association(HAS_MEMBER, "Folder01", "DocA") + association(
        HAS_MEMBER, "Folder01", "DocB"
    )
    body, parts = provide_and_register([a, b, masked], extra=extra)
    response = post(client, REPOSITORY, ITI41, body, vihf(pki, clock, AUTHOR), parts)
    assert response.status_value() == "Success", response.errors()
    with espace.session_factory() as session:
        uuids = {
            row.unique_id: row.entry_uuid
            for row in session.execute(select(DocumentEntryRow)).scalars()
        }
    return {"a": a, "b": b, "masked": masked, "uuids": uuids}


def test_parameter_rules(client: FlaskClient, clock: FrozenClock, pki: Any, loaded: Any) -> None:
    missing = ask(client, pki, clock, "FindDocuments", _slot("$XDSDocumentEntryPatientId", PID))
    assert missing.error_codes() == ["XDSStoredQueryMissingParam"]
    twice = ask(
        client,
        pki,
        clock,
        "FindDocuments",
        _slot("$XDSDocumentEntryPatientId", PID) * 2 + _slot("$XDSDocumentEntryStatus", APPROVED),
    )
    assert twice.error_codes() == ["XDSStoredQueryParamNumber"]
    unknown = ask(client, pki, clock, "urn:uuid:00000000-0000-0000-0000-000000000000", "")
    assert unknown.error_codes() == ["XDSUnknownStoredQuery"]
    both = ask(
        client,
        pki,
        clock,
        "GetDocuments",
        _slot("$XDSDocumentEntryUniqueId", f"('{loaded['a'].unique_id}')")
        + _slot("$XDSDocumentEntryEntryUUID", "('urn:uuid:x')"),
    )
    assert both.error_codes() == ["XDSStoredQueryParamNumber"]
    none = ask(client, pki, clock, "GetDocuments", "")
    assert none.error_codes() == ["XDSStoredQueryMissingParam"]
    injected = ask(
        client,
        pki,
        clock,
        "FindDocuments",
        _slot("$XDSDocumentEntryPatientId", "'x'' OR ''1''=''1'")
        + _slot("$XDSDocumentEntryStatus", APPROVED),
    )
    assert injected.error_codes() == ["XDSPatientIdDoesNotMatch"]


def test_find_documents_filters(
    client: FlaskClient, clock: FrozenClock, pki: Any, loaded: Any
) -> None:
    base = _slot("$XDSDocumentEntryPatientId", PID) + _slot("$XDSDocumentEntryStatus", APPROVED)
    by_type = ask(
        client,
        pki,
        clock,
        "FindDocuments",
        base + _slot("$XDSDocumentEntryTypeCode", "('11490-0^^2.16.840.1.113883.6.1')"),
    )
    assert unique_ids(by_type) == {loaded["b"].unique_id}
    wrong_scheme = ask(
        client,
        pki,
        clock,
        "FindDocuments",
        base + _slot("$XDSDocumentEntryTypeCode", "('11490-0^^1.2.3')"),
    )
    assert unique_ids(wrong_scheme) == set()
    masked = ask(
        client,
        pki,
        clock,
        "FindDocuments",
        base
        + _slot("$XDSDocumentEntryConfidentialityCode", "('MASQUE_PS^^1.2.250.1.213.1.1.4.13')"),
    )
    assert unique_ids(masked) == {loaded["masked"].unique_id}
    future = ask(
        client,
        pki,
        clock,
        "FindDocuments",
        base + _slot("$XDSDocumentEntryCreationTimeFrom", "20300101"),
    )
    assert unique_ids(future) == set()
    refs = ask(client, pki, clock, "FindDocuments", base, return_type="ObjectRef")
    assert len(local(refs, "ObjectRef")) == 3 and not local(refs, "ExtrinsicObject")


def test_cap_counts_only_visible_entries(
    app: Flask, client: FlaskClient, clock: FrozenClock, pki: Any, loaded: Any
) -> None:
    app.config["XDS_MAX_QUERY_RESULTS"] = 2
    base = _slot("$XDSDocumentEntryPatientId", PID) + _slot("$XDSDocumentEntryStatus", APPROVED)
    too_many = ask(client, pki, clock, "FindDocuments", base)  # the author sees 3
    assert too_many.error_codes() == ["XDSTooManyResults"] and not local(
        too_many, "ExtrinsicObject"
    )
    nurse = ask(
        client, pki, clock, "FindDocuments", base, who=NURSE
    )  # the masked one is not counted
    assert nurse.status_value() == "Success" and len(unique_ids(nurse)) == 2


def test_other_stored_queries(
    client: FlaskClient, clock: FrozenClock, pki: Any, loaded: Any
) -> None:
    a_uuid = loaded["uuids"][loaded["a"].unique_id]
    ss = ask(
        client,
        pki,
        clock,
        "FindSubmissionSets",
        _slot("$XDSSubmissionSetPatientId", PID) + _slot("$XDSSubmissionSetStatus", APPROVED),
    )
    packages = local(ss, "RegistryPackage")
    assert len(packages) == 1
    ss_uuid = packages[0].get("id") or ""
    folders = ask(
        client,
        pki,
        clock,
        "FindFolders",
        _slot("$XDSFolderPatientId", PID) + _slot("$XDSFolderStatus", APPROVED),
    )
    folder_uuid = local(folders, "RegistryPackage")[0].get("id") or ""
    everything = ask(
        client,
        pki,
        clock,
        "GetAll",
        _slot("$patientId", PID)
        + _slot("$XDSDocumentEntryStatus", APPROVED)
        + _slot("$XDSSubmissionSetStatus", APPROVED)
        + _slot("$XDSFolderStatus", APPROVED),
    )
    assert len(unique_ids(everything)) == 3 and len(local(everything, "RegistryPackage")) == 2
    docs = ask(
        client, pki, clock, "GetDocuments", _slot("$XDSDocumentEntryEntryUUID", f"('{a_uuid}')")
    )
    assert unique_ids(docs) == {loaded["a"].unique_id}
    assocs = ask(client, pki, clock, "GetAssociations", _slot("$uuid", f"('{a_uuid}')"))
    assert {x.get("sourceObject") for x in local(assocs, "Association")} == {ss_uuid, folder_uuid}
    both = ask(
        client,
        pki,
        clock,
        "GetDocumentsAndAssociations",
        _slot("$XDSDocumentEntryUniqueId", f"('{loaded['a'].unique_id}')"),
    )
    assert len(local(both, "ExtrinsicObject")) == 1 and len(local(both, "Association")) == 2
    sets = ask(client, pki, clock, "GetSubmissionSets", _slot("$uuid", f"('{a_uuid}')"))
    assert [p.get("id") for p in local(sets, "RegistryPackage")] == [ss_uuid]
    contents = ask(
        client,
        pki,
        clock,
        "GetSubmissionSetAndContents",
        _slot("$XDSSubmissionSetEntryUUID", f"'{ss_uuid}'"),
    )
    assert len(unique_ids(contents)) == 3
    in_folder = ask(
        client, pki, clock, "GetFolderAndContents", _slot("$XDSFolderEntryUUID", f"'{folder_uuid}'")
    )
    assert unique_ids(in_folder) == {loaded["a"].unique_id, loaded["b"].unique_id}
    got_folders = ask(
        client, pki, clock, "GetFolders", _slot("$XDSFolderEntryUUID", f"('{folder_uuid}')")
    )
    assert len(local(got_folders, "RegistryPackage")) == 1
    for_doc = ask(
        client,
        pki,
        clock,
        "GetFoldersForDocument",
        _slot("$XDSDocumentEntryEntryUUID", f"'{a_uuid}'"),
    )
    assert [p.get("id") for p in local(for_doc, "RegistryPackage")] == [folder_uuid]
    by_ref = ask(
        client,
        pki,
        clock,
        "FindDocumentsByReferenceId",
        _slot("$XDSDocumentEntryPatientId", PID)
        + _slot("$XDSDocumentEntryStatus", APPROVED)
        + _slot("$XDSDocumentEntryReferenceIdList", "('nope^^^^urn:ihe:iti:xds:2013:order')"),
    )
    assert unique_ids(by_ref) == set()


def test_nurse_does_not_see_a_masked_entry_through_any_query(
    client: FlaskClient, clock: FrozenClock, pki: Any, loaded: Any
) -> None:
    m_uuid = loaded["uuids"][loaded["masked"].unique_id]
    for name, params in (
        ("GetDocuments", _slot("$XDSDocumentEntryEntryUUID", f"('{m_uuid}')")),
        ("GetAssociations", _slot("$uuid", f"('{m_uuid}')")),
        ("GetSubmissionSets", _slot("$uuid", f"('{m_uuid}')")),
        (
            "GetAll",
            _slot("$patientId", PID)
            + _slot("$XDSDocumentEntryStatus", APPROVED)
            + _slot("$XDSSubmissionSetStatus", APPROVED)
            + _slot("$XDSFolderStatus", APPROVED),
        ),
    ):
        response = ask(client, pki, clock, name, params, who=NURSE)
        assert loaded["masked"].unique_id not in unique_ids(response), name
        targets = {x.get("targetObject") for x in local(response, "Association")}
        assert m_uuid not in targets, name


def test_replace_deprecates_and_moves_folder_membership(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any, loaded: Any
) -> None:
    old_uuid = loaded["uuids"][loaded["a"].unique_id]
    new = Doc(symbolic_id="DocA2")
    body, parts = provide_and_register(
        [new], extra=association("urn:ihe:iti:2007:AssociationType:RPLC", "DocA2", old_uuid)
    )
    response = post(client, REPOSITORY, ITI41, body, vihf(pki, clock, AUTHOR), parts)
    assert response.status_value() == "Success", response.errors()
    with espace.session_factory() as session:
        old = session.get(DocumentEntryRow, old_uuid)
        new_uuid = session.execute(
            select(DocumentEntryRow.entry_uuid).where(DocumentEntryRow.unique_id == new.unique_id)
        ).scalar_one()
        memberships = (
            session.execute(
                select(AssociationRow.source_uuid).where(
                    AssociationRow.target_uuid == new_uuid,
                    AssociationRow.association_type == HAS_MEMBER,
                )
            )
            .scalars()
            .all()
        )
    assert old is not None and old.status == "Deprecated"
    assert len(memberships) == 2  # the submission set and the folder of the replaced entry
    related = ask(
        client,
        pki,
        clock,
        "GetRelatedDocuments",
        _slot("$XDSDocumentEntryEntryUUID", f"'{new_uuid}'")
        + _slot("$AssociationTypes", "('urn:ihe:iti:2007:AssociationType:RPLC')"),
    )
    assert unique_ids(related) == {new.unique_id, loaded["a"].unique_id}
    # replacing a deprecated entry again is refused
    again = Doc(symbolic_id="DocA3")
    body, parts = provide_and_register(
        [again], extra=association("urn:ihe:iti:2007:AssociationType:RPLC", "DocA3", old_uuid)
    )
    refused = post(client, REPOSITORY, ITI41, body, vihf(pki, clock, AUTHOR), parts)
    assert refused.error_codes() == ["XDSRegistryDeprecatedDocumentError"]


def test_register_and_remove_metadata(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    setup_space(espace, clock)
    doc = Doc()
    objects = (
        submission_set()
        + extrinsic_object(doc, with_hash=True)
        + association(
            HAS_MEMBER, "SubmissionSet01", doc.symbolic_id, SubmissionSetStatus="Original"
        )
    )
    body = etree.fromstring(submit_objects(objects).encode())
    registered = post(client, REGISTRY, ITI42, body, vihf(pki, clock, AUTHOR))
    assert registered.status_value() == "Success", registered.errors()
    assert_schema_valid(registered.body)
    no_hash = Doc()
    objects = (
        submission_set()
        + extrinsic_object(no_hash)
        + association(
            HAS_MEMBER, "SubmissionSet01", no_hash.symbolic_id, SubmissionSetStatus="Original"
        )
    )
    refused = post(
        client,
        REGISTRY,
        ITI42,
        etree.fromstring(submit_objects(objects).encode()),
        vihf(pki, clock, AUTHOR),
    )
    assert set(refused.error_codes()) == {"XDSRegistryMetadataError"}
    with espace.session_factory() as session:
        row = session.execute(select(DocumentEntryRow)).scalar_one()
        links = session.execute(select(AssociationRow.entry_uuid)).scalars().all()
        ss_uuid = session.execute(select(SubmissionSetRow.entry_uuid)).scalar_one()
    remove = f'<lcm:RemoveObjectsRequest xmlns:lcm="{ns.LCM}" xmlns="{ns.RIM}"><ObjectRefList>'
    only_doc = (
        remove + f'<ObjectRef id="{row.entry_uuid}"/></ObjectRefList></lcm:RemoveObjectsRequest>'
    )
    kept = post(client, REGISTRY, ITI62, etree.fromstring(only_doc.encode()), vihf(pki, clock))
    assert kept.error_codes() == ["ReferencesExistException"]
    refs = "".join(f'<ObjectRef id="{u}"/>' for u in [row.entry_uuid, *links])
    emptied = remove + refs + "</ObjectRefList></lcm:RemoveObjectsRequest>"
    # the submission set would be left without members (ITI TF-2c 3.62.4.1.3, NIST 30001)
    left = post(client, REGISTRY, ITI62, etree.fromstring(emptied.encode()), vihf(pki, clock))
    assert left.error_codes() == ["XDSUnreferencedObjectException"]
    refs += f'<ObjectRef id="{ss_uuid}"/>'
    everything = remove + refs + "</ObjectRefList></lcm:RemoveObjectsRequest>"
    removed = post(client, REGISTRY, ITI62, etree.fromstring(everything.encode()), vihf(pki, clock))
    assert removed.status_value() == "Success", removed.errors()
    with espace.session_factory() as session:
        assert session.execute(select(DocumentEntryRow)).first() is None
    unknown = post(client, REGISTRY, ITI62, etree.fromstring(everything.encode()), vihf(pki, clock))
    assert unknown.error_codes() == ["UnresolvedReferenceException"]


def test_find_documents_requires_status_in_find_documents_helper() -> None:
    """The test helper itself builds a valid query (guards the fixtures above)."""
    request = find_documents()
    assert request.find(f"{{{ns.RIM}}}AdhocQuery") is not None


@pytest.mark.parametrize(
    ("kind", "deprecates"),
    [
        ("urn:ihe:iti:2007:AssociationType:XFRM_RPLC", True),
        ("urn:ihe:iti:2007:AssociationType:APND", False),
        ("urn:ihe:iti:2007:AssociationType:XFRM", False),
    ],
)
def test_lifecycle_associations(
    client: FlaskClient,
    espace: Espace,
    clock: FrozenClock,
    pki: Any,
    loaded: Any,
    kind: str,
    deprecates: bool,
) -> None:
    target = loaded["uuids"][loaded["b"].unique_id]
    new = Doc(symbolic_id="Derived")
    body, parts = provide_and_register([new], extra=association(kind, "Derived", target))
    response = post(client, REPOSITORY, ITI41, body, vihf(pki, clock, AUTHOR), parts)
    assert response.status_value() == "Success", response.errors()
    with espace.session_factory() as session:
        old = session.get(DocumentEntryRow, target)
    assert old is not None and (old.status == "Deprecated") is deprecates


def test_lifecycle_target_must_exist_and_be_visible(
    client: FlaskClient, clock: FrozenClock, pki: Any, loaded: Any
) -> None:
    masked = loaded["uuids"][loaded["masked"].unique_id]
    for target in ("urn:uuid:00000000-0000-4000-8000-000000000000", masked):
        new = Doc(symbolic_id="Derived")
        body, parts = provide_and_register(
            [new], extra=association("urn:ihe:iti:2007:AssociationType:RPLC", "Derived", target)
        )
        response = post(client, REPOSITORY, ITI41, body, vihf(pki, clock, NURSE), parts)
        assert response.error_codes() == ["XDSRegistryMetadataError"]  # hidden = unknown
