"""Registry defects found by the NIST XDS Toolkit testkit (``mes conformance run --suite xds``).

One regression test per defect, over the real SOAP endpoint with the real PDP: coded query
values (ITI TF-2a 3.18.4.1.2.3.4), unknown parameters ignored, referenceIdList (ITI TF-3
4.2.3.2.28), truncated time bounds (ITI TF-2a 3.18.4.1.2.3.7), folder/patient consistency,
identical resubmission (ITI TF-3 4.1.7), deprecation of addenda and transforms of a replaced
entry (ITI TF-3 4.2.2.2), SubmissionSet contents, self-associations, ITI-62 reference rules
(ITI TF-2c 3.62.4.1.3). Every response is checked against the NIST schema.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from lxml import etree
from sqlalchemy import func, select
from xds_support import (
    AUTHOR,
    HAS_MEMBER,
    ITI18,
    ITI41,
    ITI42,
    ITI62,
    OTHER_PATIENT,
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
    post,
    provide_and_register,
    setup_space,
    submission_set,
    submit_objects,
    unique_ids,
    vihf,
)

from espace.clock import FrozenClock
from espace.models import (
    AssociationRow,
    DocumentContent,
    DocumentEntryRow,
    FolderRow,
    SubmissionSetRow,
)
from espace.registry.model import Code
from espace.registry.query import QUERY_IDS_BY_NAME
from espace.registry.valuesets import affinity_domain
from espace.service import Espace
from xds import ns

ROOT = Path(__file__).resolve().parents[2]
APPROVED = "('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')"
DEPRECATED = "Deprecated"
APND = "urn:ihe:iti:2007:AssociationType:APND"
XFRM = "urn:ihe:iti:2007:AssociationType:XFRM"
RPLC = "urn:ihe:iti:2007:AssociationType:RPLC"
REF_ID = "20061223^^^&amp;1.2.5643.2&amp;ISO^urn:ihe:iti:xds:2013:uniqueId"


def pid(patient: str = PATIENT) -> str:
    return f"'{patient}^^^&amp;{PATIENT_OID}&amp;ISO^NH'"


@pytest.fixture(autouse=True)
def _real_time(clock: FrozenClock) -> None:
    clock.set(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def space(espace: Espace, clock: FrozenClock) -> str:
    return setup_space(espace, clock)


def ask(
    client: FlaskClient,
    pki: Any,
    clock: FrozenClock,
    name: str,
    params: str,
    return_type: str = "LeafClass",
    patient: str = PATIENT,
) -> Soap:
    body = etree.fromstring(
        (
            f'<query:AdhocQueryRequest xmlns:query="{ns.QUERY}" xmlns="{ns.RIM}">'
            f'<query:ResponseOption returnComposedObjects="true" returnType="{return_type}"/>'
            f'<AdhocQuery id="{QUERY_IDS_BY_NAME[name]}">{params}</AdhocQuery>'
            "</query:AdhocQueryRequest>"
        ).encode()
    )
    response = post(client, REGISTRY, ITI18, body, vihf(pki, clock, AUTHOR, patient_ins=patient))
    assert response.status == 200
    assert_schema_valid(response.body)
    return response


def find(client: FlaskClient, pki: Any, clock: FrozenClock, extra: str = "") -> Soap:
    params = _slot("$XDSDocumentEntryPatientId", pid()) + _slot("$XDSDocumentEntryStatus", APPROVED)
    return ask(client, pki, clock, "FindDocuments", params + extra)


def register(
    client: FlaskClient, pki: Any, clock: FrozenClock, objects: str, patient: str = PATIENT
) -> Soap:
    body = etree.fromstring(submit_objects(objects).encode())
    response = post(client, REGISTRY, ITI42, body, vihf(pki, clock, AUTHOR, patient_ins=patient))
    assert_schema_valid(response.body)
    return response


def provide(client: FlaskClient, pki: Any, clock: FrozenClock, docs: list[Doc], **kw: Any) -> Soap:
    body, parts = provide_and_register(docs, **kw)
    response = post(client, REPOSITORY, ITI41, body, vihf(pki, clock, AUTHOR), parts)
    assert_schema_valid(response.body)
    return response


def member(doc: Doc, ss: str = "SubmissionSet01") -> str:
    return association(HAS_MEMBER, ss, doc.symbolic_id, SubmissionSetStatus="Original")


def count(espace: Espace, model: Any) -> int:
    with espace.session_factory() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def rim(response: Soap, tag: str) -> list[etree._Element]:
    return list(response.body.iter(f"{{{ns.RIM}}}{tag}"))


def entry_uuid(espace: Espace, unique_id: str) -> str:
    with espace.session_factory() as session:
        return str(
            session.execute(
                select(DocumentEntryRow.entry_uuid).where(DocumentEntryRow.unique_id == unique_id)
            ).scalar_one()
        )


# -- 1. value sets -------------------------------------------------------------------------
def test_connectathon_domain_accepts_every_testkit_addition() -> None:
    """The 36 codes the 2017+ testkit uses are in the Connectathon affinity domain."""
    domain = affinity_domain("connectathon")
    path = ROOT / "conformance" / "data" / "connectathon_codes_testkit_additions.csv"
    rows = list(csv.DictReader(path.read_text(encoding="utf-8").splitlines()))
    assert len(rows) == 36
    checked = 0
    for row in rows:
        value_set = domain.sets.get(row["codeType"])
        if value_set is None:  # associationDocumentation: not a checked attribute
            continue
        assert value_set.contains(Code(row["code"], row["codingScheme"])), row
        checked += 1
    assert checked >= 30
    assert not domain.sets["typeCode"].contains(Code("XTHM-WD TYPECODE", "1.2.3.4"))


# -- 2/3. coded values and unknown parameters (NIST 11897) ----------------------------------
@pytest.mark.parametrize(
    "value",
    [
        "('11488-4^^2.16.840.1.113883.6.1', '11490-0^^')",  # classcode_scheme_mismatch
        "('11488-4')",  # old_scheme: XDS.a code without its scheme
        "('^^2.16.840.1.113883.6.1')",
    ],
)
def test_coded_query_value_without_scheme_is_a_failure(
    client: FlaskClient, pki: Any, clock: FrozenClock, space: str, value: str
) -> None:
    assert provide(client, pki, clock, [Doc()]).status_value() == "Success"
    response = find(client, pki, clock, _slot("$XDSDocumentEntryTypeCode", value))
    assert response.status_value() == "Failure"
    assert response.error_codes() == ["XDSRegistryError"]
    assert not unique_ids(response)


def test_unknown_parameter_is_ignored_not_refused(
    client: FlaskClient, pki: Any, clock: FrozenClock, space: str
) -> None:
    """NIST 11897/practicesetting_scheme: a registry ignores parameters it does not know."""
    doc = Doc()
    assert provide(client, pki, clock, [doc]).status_value() == "Success"
    response = find(
        client,
        pki,
        clock,
        _slot("$XDSDocumentEntryPracticeSettingCode", "('ETABLISSEMENT^^1.2.250.1.213.1.1.4.9')")
        + _slot("$XDSDocumentEntryPracticeSettingCodeScheme", "('Connect-a-thon')"),
    )
    assert response.status_value() == "Success", response.errors()
    assert unique_ids(response) == {doc.unique_id}


# -- 4. referenceIdList (NIST 11897/refid) -------------------------------------------------
def test_find_documents_by_reference_id(
    client: FlaskClient, espace: Espace, pki: Any, clock: FrozenClock, space: str
) -> None:
    doc, other = Doc(symbolic_id="DocR"), Doc(symbolic_id="DocO")
    tagged = extrinsic_object(doc, with_hash=True).replace(
        '<Slot name="languageCode">',
        _slot(
            "urn:ihe:iti:xds:2013:referenceIdList",
            "2013001^^^&amp;1.2.3.4.5.6&amp;ISO^urn:ihe:iti:xds:2013:accession",
            REF_ID,
        )
        + '<Slot name="languageCode">',
        1,
    )
    objects = submission_set() + tagged + extrinsic_object(other, with_hash=True)
    response = register(client, pki, clock, objects + member(doc) + member(other))
    assert response.status_value() == "Success", response.errors()

    def by_ref(value: str) -> Soap:
        return ask(
            client,
            pki,
            clock,
            "FindDocumentsByReferenceId",
            _slot("$XDSDocumentEntryPatientId", pid())
            + _slot("$XDSDocumentEntryStatus", APPROVED)
            + _slot("$XDSDocumentEntryReferenceIdList", value),
            return_type="ObjectRef",
        )

    found = by_ref(f"('{REF_ID}')")
    assert [r.get("id") for r in rim(found, "ObjectRef")] == [entry_uuid(espace, doc.unique_id)]
    none = by_ref("('20061224^^^&amp;1.2.5643.2&amp;ISO^urn:ihe:iti:xds:2013:uniqueId')")
    assert rim(none, "ObjectRef") == []
    leaf = find(client, pki, clock)
    names = {s.get("name") for s in rim(leaf, "Slot")}
    assert "urn:ihe:iti:xds:2013:referenceIdList" in names


# -- 5. truncated DTM bounds (NIST 11898) -------------------------------------------------
@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        ("200412", "200501", 1),
        (None, "200501", 1),
        ("200412", None, 1),
        ("20041225235050", "20041225235051", 1),
        ("200501", None, 0),
        (None, "200412", 0),
        ("200312", "200401", 0),
    ],
)
def test_submission_time_bounds_at_their_precision(
    client: FlaskClient,
    pki: Any,
    clock: FrozenClock,
    space: str,
    low: str | None,
    high: str | None,
    expected: int,
) -> None:
    doc = Doc()
    ss = submission_set().replace("20260105090000", "20041225235050")
    response = register(
        client, pki, clock, ss + extrinsic_object(doc, with_hash=True) + member(doc)
    )
    assert response.status_value() == "Success", response.errors()
    params = _slot("$XDSSubmissionSetPatientId", pid()) + _slot("$XDSSubmissionSetStatus", APPROVED)
    if low:
        params += _slot("$XDSSubmissionSetSubmissionTimeFrom", low)
    if high:
        params += _slot("$XDSSubmissionSetSubmissionTimeTo", high)
    sets = ask(client, pki, clock, "FindSubmissionSets", params)
    assert len(rim(sets, "RegistryPackage")) == expected


@pytest.mark.parametrize(
    ("name", "low", "high", "expected"),
    [
        ("CreationTime", "202601", "202602", True),
        ("CreationTime", "2026", None, True),
        ("CreationTime", None, "202601", False),
        ("CreationTime", "20260105080001", None, False),
        ("ServiceStartTime", "20260105", "20260106", True),
        ("ServiceStartTime", "202602", None, False),
    ],
)
def test_document_time_bounds_at_their_precision(
    client: FlaskClient,
    pki: Any,
    clock: FrozenClock,
    space: str,
    name: str,
    low: str | None,
    high: str | None,
    expected: bool,
) -> None:
    doc = Doc()  # creationTime 20260105080000, serviceStartTime 20260105070000
    assert provide(client, pki, clock, [doc]).status_value() == "Success"
    extra = _slot(f"$XDSDocumentEntry{name}From", low) if low else ""
    extra += _slot(f"$XDSDocumentEntry{name}To", high) if high else ""
    assert unique_ids(find(client, pki, clock, extra)) == ({doc.unique_id} if expected else set())


def test_bad_submission_time_is_refused_and_nothing_stored(
    client: FlaskClient, espace: Espace, pki: Any, clock: FrozenClock, space: str
) -> None:
    doc = Doc()
    ss = submission_set().replace("20260105090000", "2004-12-25")
    response = register(
        client, pki, clock, ss + extrinsic_object(doc, with_hash=True) + member(doc)
    )
    assert response.error_codes() == ["XDSRegistryMetadataError"]
    assert count(espace, SubmissionSetRow) == 0 and count(espace, DocumentEntryRow) == 0


# -- 6. folder of another patient (NIST 12002) -----------------------------------------------
def test_document_of_another_patient_cannot_join_a_folder(
    client: FlaskClient, espace: Espace, pki: Any, clock: FrozenClock, space: str
) -> None:
    from test_xds_stored_queries import folder_xml

    first = Doc()
    objects = submission_set() + extrinsic_object(first, with_hash=True) + member(first)
    objects += folder_xml() + association(HAS_MEMBER, "SubmissionSet01", "Folder01")
    assert register(client, pki, clock, objects).status_value() == "Success"
    with espace.session_factory() as session:
        folder = session.execute(select(FolderRow.entry_uuid)).scalar_one()
    setup_space(espace, clock, ins=OTHER_PATIENT)
    doc = Doc(patient=OTHER_PATIENT)
    objects = (
        submission_set(patient=OTHER_PATIENT)
        + extrinsic_object(doc, with_hash=True)
        + member(doc)
        + association(HAS_MEMBER, folder, doc.symbolic_id)
    )
    response = register(client, pki, clock, objects, patient=OTHER_PATIENT)
    assert response.error_codes() == ["XDSPatientIdDoesNotMatch"]
    assert count(espace, DocumentEntryRow) == 1 and count(espace, SubmissionSetRow) == 1


# -- 7. identical resubmission (NIST 12004) -------------------------------------------------
def test_identical_resubmission_in_a_new_submission_set_is_a_second_entry(
    client: FlaskClient, espace: Espace, pki: Any, clock: FrozenClock, space: str
) -> None:
    doc = Doc()
    assert provide(client, pki, clock, [doc]).status_value() == "Success"
    again = provide(client, pki, clock, [doc])
    assert again.status_value() == "Success", again.errors()
    # two DocumentEntries with the one uniqueId, the repository keeps the bytes once
    assert count(espace, DocumentEntryRow) == 2 and count(espace, DocumentContent) == 1
    by_uid = ask(
        client,
        pki,
        clock,
        "GetDocuments",
        _slot("$XDSDocumentEntryUniqueId", f"('{doc.unique_id}')"),
        return_type="ObjectRef",
    )
    assert len(rim(by_uid, "ObjectRef")) == 2
    # a retry of the same submission set is still answered without a third entry
    retry_uid = "1.2.250.1.999.9.77"
    copy = Doc(unique_id=doc.unique_id, content=doc.content)
    assert provide(client, pki, clock, [copy], ss_unique_id=retry_uid).status_value() == "Success"
    assert provide(client, pki, clock, [copy], ss_unique_id=retry_uid).status_value() == "Success"
    assert count(espace, DocumentEntryRow) == 3 and count(espace, DocumentContent) == 1
    changed = Doc(unique_id=doc.unique_id, content=b"<autre/>")
    refused = provide(client, pki, clock, [changed])
    assert refused.error_codes() == ["XDSNonIdenticalHash"]
    assert count(espace, DocumentEntryRow) == 3


# -- 8. addenda and transforms of a replaced original (NIST 12022) --------------------------
def test_replacing_the_original_deprecates_its_addenda_and_transforms(
    client: FlaskClient, espace: Espace, pki: Any, clock: FrozenClock, space: str
) -> None:
    original = Doc(symbolic_id="Orig")
    assert provide(client, pki, clock, [original]).status_value() == "Success"
    target = entry_uuid(espace, original.unique_id)
    children = {}
    for kind in (APND, XFRM):
        child = Doc(symbolic_id="Child")
        response = provide(client, pki, clock, [child], extra=association(kind, "Child", target))
        assert response.status_value() == "Success", response.errors()
        children[kind] = child.unique_id
    unrelated = Doc(symbolic_id="Other")
    assert provide(client, pki, clock, [unrelated]).status_value() == "Success"
    replacement = Doc(symbolic_id="Repl")
    response = provide(client, pki, clock, [replacement], extra=association(RPLC, "Repl", target))
    assert response.status_value() == "Success", response.errors()
    with espace.session_factory() as session:
        status = dict(
            session.execute(select(DocumentEntryRow.unique_id, DocumentEntryRow.status)).all()
        )
    assert status[original.unique_id] == DEPRECATED
    assert status[children[APND]] == DEPRECATED and status[children[XFRM]] == DEPRECATED
    assert status[replacement.unique_id] == "Approved"
    assert status[unrelated.unique_id] == "Approved"


# -- 9. SubmissionSet contents with a folder membership (NIST 12327) ------------------------
def test_submission_set_contents_include_the_folder_membership_association(
    client: FlaskClient, espace: Espace, pki: Any, clock: FrozenClock, space: str
) -> None:
    from test_xds_stored_queries import folder_xml

    doc = Doc()
    ss_uid = "1.2.250.1.999.9.12327"
    fol_doc = (
        f'<Association associationType="{HAS_MEMBER}" id="FolDoc" sourceObject="Folder01" '
        f'targetObject="{doc.symbolic_id}"/>'
    )
    objects = (
        submission_set(unique_id=ss_uid)
        + extrinsic_object(doc, with_hash=True)
        + folder_xml()
        + member(doc)
        + association(HAS_MEMBER, "SubmissionSet01", "Folder01")
        + fol_doc
        + association(HAS_MEMBER, "SubmissionSet01", "FolDoc")
    )
    assert register(client, pki, clock, objects).status_value() == "Success"
    contents = ask(
        client,
        pki,
        clock,
        "GetSubmissionSetAndContents",
        _slot("$XDSSubmissionSetUniqueId", f"'{ss_uid}'"),
    )
    assert len(rim(contents, "ExtrinsicObject")) == 1
    assert len(rim(contents, "RegistryPackage")) == 2
    assert len(rim(contents, "Association")) == 4
    assert count(espace, AssociationRow) == 4


# -- 10. association to itself (NIST 21000) -------------------------------------------------
@pytest.mark.parametrize("target", ["SubmissionSet01", "self"])
def test_association_to_itself_is_a_metadata_error(
    client: FlaskClient, espace: Espace, pki: Any, clock: FrozenClock, space: str, target: str
) -> None:
    doc = Doc()
    objects = submission_set() + extrinsic_object(doc, with_hash=True) + member(doc)
    if target == "self":
        objects += association(APND, doc.symbolic_id, doc.symbolic_id)
    else:
        objects += association(HAS_MEMBER, "SubmissionSet01", "SubmissionSet01")
    response = register(client, pki, clock, objects)
    assert response.error_codes() == ["XDSRegistryMetadataError"]
    assert count(espace, SubmissionSetRow) == 0 and count(espace, AssociationRow) == 0


# -- 11. ITI-62 reference rules (NIST 30001-30003) ------------------------------------------
def remove(client: FlaskClient, pki: Any, clock: FrozenClock, *uuids: str) -> Soap:
    refs = "".join(f'<ObjectRef id="{u}"/>' for u in uuids)
    body = etree.fromstring(
        (
            f'<lcm:RemoveObjectsRequest xmlns:lcm="{ns.LCM}" xmlns="{ns.RIM}">'
            f"<ObjectRefList>{refs}</ObjectRefList></lcm:RemoveObjectsRequest>"
        ).encode()
    )
    response = post(client, REGISTRY, ITI62, body, vihf(pki, clock, AUTHOR))
    assert_schema_valid(response.body)
    return response


def _rows(espace: Espace) -> tuple[str, str, dict[tuple[str, str], str]]:
    with espace.session_factory() as session:
        ss = session.execute(select(SubmissionSetRow.entry_uuid)).scalar_one()
        doc = session.execute(select(DocumentEntryRow.entry_uuid)).scalar_one()
        links = {
            (r.source_uuid, r.target_uuid): r.entry_uuid
            for r in session.execute(select(AssociationRow)).scalars()
        }
    return ss, doc, links


def test_remove_rules_single_document(
    client: FlaskClient, espace: Espace, pki: Any, clock: FrozenClock, space: str
) -> None:
    doc = Doc()
    assert provide(client, pki, clock, [doc]).status_value() == "Success"
    ss, entry, links = _rows(espace)
    member_link = links[(ss, entry)]
    assert remove(client, pki, clock, ss).error_codes() == ["ReferencesExistException"]
    emptied = remove(client, pki, clock, entry, member_link)
    assert emptied.error_codes() == ["XDSUnreferencedObjectException"]
    orphaned = remove(client, pki, clock, member_link)
    assert orphaned.error_codes() == ["XDSUnreferencedObjectException"]
    assert count(espace, DocumentEntryRow) == 1 and count(espace, AssociationRow) == 1
    everything = remove(client, pki, clock, ss, entry, member_link)
    assert everything.status_value() == "Success", everything.errors()
    assert count(espace, DocumentEntryRow) == 0 and count(espace, SubmissionSetRow) == 0


def test_remove_rules_folder_membership(
    client: FlaskClient, espace: Espace, pki: Any, clock: FrozenClock, space: str
) -> None:
    from test_xds_stored_queries import folder_xml

    doc = Doc()
    fol_doc = (
        f'<Association associationType="{HAS_MEMBER}" id="FolDoc" sourceObject="Folder01" '
        f'targetObject="{doc.symbolic_id}"/>'
    )
    objects = (
        submission_set()
        + extrinsic_object(doc, with_hash=True)
        + folder_xml()
        + member(doc)
        + association(HAS_MEMBER, "SubmissionSet01", "Folder01")
        + fol_doc
        + association(HAS_MEMBER, "SubmissionSet01", "FolDoc")
    )
    assert register(client, pki, clock, objects).status_value() == "Success"
    ss, entry, links = _rows(espace)
    with espace.session_factory() as session:
        folder = session.execute(select(FolderRow.entry_uuid)).scalar_one()
    fd = links[(folder, entry)]
    # the folder and the entry with all their associations: the set would be left empty
    alone = remove(client, pki, clock, folder, entry, *links.values())
    assert alone.error_codes() == ["XDSUnreferencedObjectException"]
    assert remove(client, pki, clock, ss).error_codes() == ["ReferencesExistException"]
    assert count(espace, AssociationRow) == 4
    # the folder-document membership and the set's HasMember to it: allowed
    unfiled = remove(client, pki, clock, fd, links[(ss, fd)])
    assert unfiled.status_value() == "Success", unfiled.errors()
    assert count(espace, AssociationRow) == 2 and count(espace, FolderRow) == 1
    in_folder = ask(
        client,
        pki,
        clock,
        "GetFolderAndContents",
        _slot("$XDSFolderEntryUUID", f"'{folder}'"),
    )
    assert len(rim(in_folder, "RegistryPackage")) == 1 and not rim(in_folder, "ExtrinsicObject")


# -- 12. confidentialityCode V under the Connectathon domain (NIST PnrNoXop) ---------------
CONNECTATHON_DOC = {
    "class_code": ("IMAGES", "1.3.6.1.4.1.19376.1.2.6.1", "Images"),
    "confidentiality": (("V", "2.16.840.1.113883.5.25"),),
    "format_code": ("urn:ihe:rad:TEXT", "1.3.6.1.4.1.19376.1.2.3"),
    "facility": ("66280005", "2.16.840.1.113883.6.96"),
    "practice": ("Practice-D", "1.3.6.1.4.1.21367.2017.3"),
}


def _connectathon_find(
    app: Any, client: FlaskClient, pki: Any, clock: FrozenClock, doc: Doc
) -> set[str]:
    app.config["AFFINITY_DOMAIN"] = "connectathon"
    response = provide(
        client, pki, clock, [doc], content_type=("225728007", "2.16.840.1.113883.6.96")
    )
    assert response.status_value() == "Success", response.errors()
    return unique_ids(find(client, pki, clock))


def test_confidentiality_v_does_not_hide_a_document_from_its_author(
    app: Any, client: FlaskClient, pki: Any, clock: FrozenClock, space: str
) -> None:
    """V is a legal Connectathon code but not a TRE_A07 masking code: the PDP ignores it."""
    doc = Doc(
        type_code=("11369-6", "2.16.840.1.113883.6.1", "HISTORY OF IMMUNIZATIONS"),
        **CONNECTATHON_DOC,  # type: ignore[arg-type]
    )
    assert _connectathon_find(app, client, pki, clock, doc) == {doc.unique_id}


def test_connectathon_type_code_outside_the_dmp_matrix_is_seen_by_its_author(
    app: Any, client: FlaskClient, pki: Any, clock: FrozenClock, space: str
) -> None:
    doc = Doc(
        type_code=("XTHM-WD TYPECODE", "1.3.6.1.4.1.21367.100.1", "XTHM-WD Type Code"),
        **CONNECTATHON_DOC,  # type: ignore[arg-type]
    )
    assert _connectathon_find(app, client, pki, clock, doc) == {doc.unique_id}
