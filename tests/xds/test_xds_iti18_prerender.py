"""ITI-18 rendering: the string writer against the lxml renderer, and the pre-rendered
ExtrinsicObject of each entry (``document_entry.ebrim``) refreshed after every kind of change:
ITI-57 status update, RPLC deprecation, ITI-57 new version (confidentiality), masking by the
patient, a change behind the ORM's back, a missing fragment (bulk load), a renderer change."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient
from lxml import etree
from sqlalchemy import select, update
from sqlalchemy.orm import undefer
from xds_support import (
    AUTHOR,
    HAS_MEMBER,
    ITI18,
    ITI41,
    ITI57,
    NURSE,
    PATIENT,
    REGISTRY,
    REPOSITORY,
    Doc,
    Soap,
    assert_schema_valid,
    association,
    extrinsic_object,
    find_documents,
    post,
    provide_and_register,
    setup_space,
    submission_set,
    submit_objects,
    vihf,
)

from espace.clock import FrozenClock
from espace.models import DocumentEntryRow
from espace.registry import prerender
from espace.registry.model import (
    Association,
    Author,
    Code,
    DocumentEntry,
    Folder,
    QueryResult,
    RegistryErrorCode,
    RegistryIssue,
    SubmissionSet,
    current_confidentiality,
)
from espace.service import Espace
from espace.settings import set_masked
from espace.trace import Source
from habilitation.model import Action, Actor, ActorKind, AuthenticationMode
from xds import ns
from xds.ebxml import render, writer
from xds.xml import parse_xml

N = ("N", "2.16.840.1.113883.5.25")
MASQUE = ("MASQUE_PS", "1.2.250.1.213.1.1.4.13")
DEPRECATED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated"
ARCHIVED = "urn:asip:ci-sis:2010:StatusType:Archived"


@pytest.fixture(autouse=True)
def _real_time(clock: FrozenClock) -> None:
    clock.set(datetime.now(UTC).replace(microsecond=0))


# ----------------------------------------------------------------------------- the writer
def rich_entry() -> DocumentEntry:
    return DocumentEntry(
        id="urn:uuid:0b5c3e0e-3c43-4a4a-9d55-2d3b4bb0e001",
        unique_id="1.2.250.1.999.1.2.3",
        patient_id=f"{PATIENT}^^^&1.2.250.1.213.1.4.10&ISO",
        mime_type="text/xml",
        class_code=Code("10", "1.2.250.1.213.1.1.4.1", "Compte rendu"),
        type_code=Code("11502-2", "2.16.840.1.113883.6.1", 'CR "bio" <urgent> & co'),
        format_code=Code("urn:asip:ci-sis:cr-bio:2015", "1.2.250.1.213.1.1.4.2.282"),
        practice_setting_code=Code("SA05", "1.2.250.1.71.4.2.4", "Établissement"),
        healthcare_facility_type_code=Code("LABORATOIRE", "1.2.250.1.213.1.1.4.9"),
        confidentiality_codes=[Code("N", "2.16.840.1.113883.5.25", "Normal")],
        event_codes=[Code("E1", "1.2.3", "évènement\tun"), Code("E2", "1.2.4")],
        authors=[
            Author(
                person="899900063480^DOC^JEAN^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS",
                institutions=["HOPITAL^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^499900063480001"],
                roles=["10^Médecin^1.2.250.1.71.1.2.7"],
                specialties=["SM26^Qualifié en médecine générale^1.2.250.1.71.4.2.5"],
            ),
            Author(person="^Autre^Auteur", telecoms=["^NET^Internet^a&b@example.org"]),
        ],
        creation_time="20250102030405",
        service_start_time="20250101",
        service_stop_time="20250102",
        title='Résultats "A" & <B>\nligne 2',
        comments="Commentaire\r\navec retour",
        language_code="fr-FR",
        legal_authenticator="899900063480^DOC^JEAN",
        source_patient_id=f"{PATIENT}^^^&1.2.250.1.213.1.4.10&ISO^NH",
        source_patient_info=["PID-5|DOE^JOHN", "PID-7|19790328"],
        reference_ids=["ref1^^^^urn:ihe:iti:xds:2013:order"],
        hash="da39a3ee5e6b4b0d3255bfef95601890afd80709",
        size=1234,
        repository_unique_id="1.2.250.1.213.4.1.1.1.2",
        logical_id="urn:uuid:0b5c3e0e-3c43-4a4a-9d55-2d3b4bb0e000",
        version="2",
        status="Approved",
        extra_slots={"urn:dmp:extra": ["x < y", "z"], "a-first": ["1"]},
    )


def full_result() -> QueryResult:
    owner = "urn:uuid:0b5c3e0e-3c43-4a4a-9d55-2d3b4bb0e0ff"
    return QueryResult(
        documents=[rich_entry()],
        submission_sets=[
            SubmissionSet(
                id=owner,
                unique_id="1.2.3.4",
                source_id="1.2.3",
                patient_id=f"{PATIENT}^^^&1.2.250.1.213.1.4.10&ISO",
                submission_time="20250102030405",
                content_type_code=Code("04", "1.2.250.1.213.1.1.4.12", "Hospitalisation"),
                authors=[Author(person="899900063480^DOC^JEAN")],
                intended_recipients=["|^^Internet^a@b.org"],
                title="Lot & envoi",
            )
        ],
        folders=[
            Folder(
                id="urn:uuid:0b5c3e0e-3c43-4a4a-9d55-2d3b4bb0e0f0",
                unique_id="1.2.3.5",
                patient_id=f"{PATIENT}^^^&1.2.250.1.213.1.4.10&ISO",
                codes=[Code("11488-4", "2.16.840.1.113883.6.1", "Consult note")],
                title="Suivi",
                last_update_time="20250102030405",
                version="1",
            )
        ],
        associations=[
            Association(
                id="urn:uuid:0b5c3e0e-3c43-4a4a-9d55-2d3b4bb0e0a1",
                type=HAS_MEMBER,
                source=owner,
                target="urn:uuid:0b5c3e0e-3c43-4a4a-9d55-2d3b4bb0e001",
                slots={"SubmissionSetStatus": ["Original"]},
            ),
            Association(
                id="urn:uuid:0b5c3e0e-3c43-4a4a-9d55-2d3b4bb0e0a2",
                type="urn:ihe:iti:2007:AssociationType:RPLC",
                source="urn:uuid:0b5c3e0e-3c43-4a4a-9d55-2d3b4bb0e001",
                target="urn:uuid:0b5c3e0e-3c43-4a4a-9d55-2d3b4bb0e002",
            ),
        ],
    )


def canonical(data: bytes) -> bytes:
    """C14N 2.0 of ``data`` with generated child ids replaced by their position."""
    root = etree.fromstring(data)
    count = 0
    for tag in ("Classification", "ExternalIdentifier"):
        for node in root.iter(f"{{{ns.RIM}}}{tag}"):
            count += 1
            node.set("id", f"child-{count}")
    return etree.canonicalize(etree.tostring(root, encoding="unicode")).encode()


@pytest.mark.parametrize("return_type", ["LeafClass", "ObjectRef"])
@pytest.mark.parametrize("home", ["", "urn:oid:1.2.250.1.213.4.1"])
def test_writer_writes_what_the_lxml_renderer_writes(return_type: str, home: str) -> None:
    result = full_result()
    result.return_type = return_type
    result.object_refs = [result.documents[0].id, result.associations[0].id]
    issues = [RegistryIssue(RegistryErrorCode.EXTRA_METADATA_NOT_SAVED, 'a "b" & c', "x", True)]
    expected = etree.tostring(render.adhoc_query_response(result, issues, home=home))
    written = writer.adhoc_query_response(result, issues, home=home)
    assert canonical(written) == canonical(expected)
    assert_schema_valid(parse_xml(written))


def test_error_response_matches_and_is_valid() -> None:
    issues = [RegistryIssue(RegistryErrorCode.TOO_MANY_RESULTS, "more than 2 <results>", "q")]
    written = writer.adhoc_query_response(None, issues)
    assert canonical(written) == canonical(
        etree.tostring(render.adhoc_query_response(None, issues))
    )
    assert_schema_valid(parse_xml(written))


def test_escaping_round_trips_every_value() -> None:
    entry = rich_entry()
    root = parse_xml(writer.adhoc_query_response(QueryResult(documents=[entry])))
    eo = next(root.iter(f"{{{ns.RIM}}}ExtrinsicObject"))
    names = eo.findall(f"{{{ns.RIM}}}Name/{{{ns.RIM}}}LocalizedString")
    assert names[0].get("value") == entry.title  # '"', '&', '<', '>' and a newline
    description = eo.find(f"{{{ns.RIM}}}Description/{{{ns.RIM}}}LocalizedString")
    assert description is not None and description.get("value") == entry.comments
    values = [v.text for v in eo.iter(f"{{{ns.RIM}}}Value")]
    assert "x < y" in values and "^NET^Internet^a&b@example.org" in values


def test_characters_xml_cannot_carry_are_replaced_not_written() -> None:
    entry = rich_entry()
    entry.title = "bad\x01char\ud800"
    entry.extra_slots = {"s": ["nul\x00value"]}
    data = writer.adhoc_query_response(QueryResult(documents=[entry]))
    root = parse_xml(data)  # well-formed: a parser accepts it
    eo = next(root.iter(f"{{{ns.RIM}}}ExtrinsicObject"))
    title = eo.find(f"{{{ns.RIM}}}Name/{{{ns.RIM}}}LocalizedString")
    assert title is not None and title.get("value") == "bad\ufffdchar\ufffd"
    assert "nul\ufffdvalue" in [v.text for v in eo.iter(f"{{{ns.RIM}}}Value")]


def test_child_ids_are_stable_per_owner_and_unique() -> None:
    entry = rich_entry()
    first, second = writer.document_entry(entry), writer.document_entry(entry)
    assert first == second
    ids = [
        node.get("id")
        for node in etree.fromstring(f'<r xmlns:rim="{ns.RIM}">{first}</r>'.encode()).iter(
            f"{{{ns.RIM}}}Classification", f"{{{ns.RIM}}}ExternalIdentifier"
        )
    ]
    assert len(ids) == len(set(ids)) == 12  # 2 authors, 5 codes, 1 + 2 codes, 2 identifiers
    other = rich_entry()
    other.id = "urn:uuid:0b5c3e0e-3c43-4a4a-9d55-2d3b4bb0e099"
    assert writer.child_ids(other.id) != writer.child_ids(entry.id)
    import uuid

    for child in ids:
        assert child is not None
        parsed = uuid.UUID(child.removeprefix("urn:uuid:"))
        assert parsed.version == 5 and parsed.variant == uuid.RFC_4122


def test_home_is_spliced_into_a_stored_fragment() -> None:
    fragment = writer.document_entry(rich_entry())
    assert ' home="' not in fragment.split(">", 1)[0]
    with_home = writer.with_home(fragment, 'urn:oid:1.2&"3')
    opening = with_home.split(">", 1)[0]
    assert opening.endswith(' home="urn:oid:1.2&amp;&quot;3"')
    assert writer.with_home(fragment, "") == fragment


def test_confidentiality_follows_the_row_column() -> None:
    submitted = [Code("N", "2.16.840.1.113883.5.25", "Normal"), Code("MASQUE_PS", "x", "y")]
    now = current_confidentiality(submitted, frozenset({"N", "INVISIBLE_PATIENT"}))
    assert [c.code for c in now] == ["N", "INVISIBLE_PATIENT"]
    assert now[0] is submitted[0]
    assert now[1].scheme == "1.2.250.1.213.1.1.4.13"


# ----------------------------------------------------------------------------- pre-rendering
def row(espace: Espace, unique_id: str, status: str | None = None) -> DocumentEntryRow:
    with espace.session_factory() as session:
        statement = select(DocumentEntryRow).where(DocumentEntryRow.unique_id == unique_id)
        if status is not None:
            statement = statement.where(DocumentEntryRow.status == status)
        found = session.execute(statement.options(undefer(DocumentEntryRow.ebrim))).scalar_one()
        session.expunge(found)
        return found


def stored_fragment(espace: Espace, unique_id: str, status: str | None = None) -> str:
    found = row(espace, unique_id, status)
    fragment = prerender.fresh_fragment(prerender.key_values(found), found.ebrim)
    assert fragment is not None, "no fresh pre-rendered fragment"
    return fragment


def submit(
    client: FlaskClient, pki: Any, clock: FrozenClock, docs: list[Doc], extra: str = ""
) -> None:
    body, parts = provide_and_register(docs, extra=extra)
    response = post(client, REPOSITORY, ITI41, body, vihf(pki, clock, AUTHOR), parts)
    assert response.status_value() == "Success", response.errors()


def query(
    client: FlaskClient,
    pki: Any,
    clock: FrozenClock,
    statuses: tuple[str, ...] = ("Approved",),
    who: str = AUTHOR,
    return_type: str = "LeafClass",
) -> Soap:
    request = find_documents(statuses=statuses, return_type=return_type)
    if "Archived" in statuses:  # a DMP status (urn:asip:ci-sis:2010:StatusType:Archived)
        request = etree.fromstring(
            etree.tostring(request).replace(
                b"urn:oasis:names:tc:ebxml-regrep:StatusType:Archived", ARCHIVED.encode()
            )
        )
    response = post(client, REGISTRY, ITI18, request, vihf(pki, clock, who))
    assert response.status == 200 and response.status_value() == "Success", response.errors()
    assert_schema_valid(response.body)
    return response


def extrinsic(response: Soap, unique_id: str) -> etree._Element:
    for eo in response.body.iter(f"{{{ns.RIM}}}ExtrinsicObject"):
        for ei in eo.findall(f"{{{ns.RIM}}}ExternalIdentifier"):
            if ei.get("value") == unique_id:
                return eo
    raise AssertionError(f"{unique_id} not in the response")


def confidentiality(eo: etree._Element) -> set[str]:
    return {
        c.get("nodeRepresentation") or ""
        for c in eo.findall(f"{{{ns.RIM}}}Classification")
        if c.get("classificationScheme") == "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f"
    }


def test_an_entry_is_pre_rendered_when_registered_and_answered_from_it(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    setup_space(espace, clock)
    doc = Doc()
    submit(client, pki, clock, [doc])
    fragment = stored_fragment(espace, doc.unique_id)
    # the answer carries the stored fragment as it is (its derived ids included)
    response = query(client, pki, clock)
    eo = extrinsic(response, doc.unique_id)
    ids = [c.get("id") for c in eo.findall(f"{{{ns.RIM}}}Classification")]
    assert ids and all(i is not None and i in fragment for i in ids)
    assert eo.get("status") == "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
    # ObjectRef answers name the same entry, without metadata
    refs = query(client, pki, clock, return_type="ObjectRef")
    assert [r.get("id") for r in refs.body.iter(f"{{{ns.RIM}}}ObjectRef")] == [eo.get("id")]
    assert not list(refs.body.iter(f"{{{ns.RIM}}}ExtrinsicObject"))


def test_status_update_by_iti57_refreshes_the_fragment(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    setup_space(espace, clock)
    doc = Doc()
    submit(client, pki, clock, [doc])
    entry_uuid = row(espace, doc.unique_id).entry_uuid
    objects = submission_set(author=AUTHOR) + association(
        "urn:ihe:iti:2010:AssociationType:UpdateAvailabilityStatus",
        "SubmissionSet01",
        entry_uuid,
        OriginalStatus="urn:oasis:names:tc:ebxml-regrep:StatusType:Approved",
        NewStatus=ARCHIVED,
    )
    done = post(
        client,
        REGISTRY,
        ITI57,
        etree.fromstring(submit_objects(objects).encode()),
        vihf(pki, clock, AUTHOR),
    )
    assert done.status_value() == "Success", done.errors()
    assert f'status="{ARCHIVED}"' in stored_fragment(espace, doc.unique_id)
    assert not list(query(client, pki, clock).body.iter(f"{{{ns.RIM}}}ExtrinsicObject"))
    archived = query(client, pki, clock, statuses=("Approved", "Archived"))
    assert extrinsic(archived, doc.unique_id).get("status") == ARCHIVED


def test_replacement_deprecates_and_refreshes_the_replaced_fragment(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    setup_space(espace, clock)
    old = Doc(symbolic_id="Old")
    submit(client, pki, clock, [old])
    old_uuid = row(espace, old.unique_id).entry_uuid
    new = Doc(symbolic_id="New")
    submit(
        client,
        pki,
        clock,
        [new],
        extra=association("urn:ihe:iti:2007:AssociationType:RPLC", "New", old_uuid),
    )
    assert f'status="{DEPRECATED}"' in stored_fragment(espace, old.unique_id)
    approved = query(client, pki, clock)
    assert {e.get("id") for e in approved.body.iter(f"{{{ns.RIM}}}ExtrinsicObject")} == {
        row(espace, new.unique_id).entry_uuid
    }
    both = query(client, pki, clock, statuses=("Approved", "Deprecated"))
    assert extrinsic(both, old.unique_id).get("status") == DEPRECATED


def test_new_version_by_iti57_refreshes_every_version(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    setup_space(espace, clock)
    doc = Doc(confidentiality=(N,))
    submit(client, pki, clock, [doc])
    lid = row(espace, doc.unique_id).logical_id
    version = Doc(
        content=doc.content,
        unique_id=doc.unique_id,
        symbolic_id="NewVersion",
        confidentiality=(N, MASQUE),
        lid=lid,
    )
    objects = (
        submission_set(author=AUTHOR)
        + extrinsic_object(version, with_hash=True)
        + association(
            HAS_MEMBER,
            "SubmissionSet01",
            "NewVersion",
            SubmissionSetStatus="Original",
            PreviousVersion="1",
        )
    )
    done = post(
        client,
        REGISTRY,
        ITI57,
        etree.fromstring(submit_objects(objects).encode()),
        vihf(pki, clock, AUTHOR),
    )
    assert done.status_value() == "Success", done.errors()
    answer = query(client, pki, clock, statuses=("Approved", "Deprecated"))
    versions = [
        eo for eo in answer.body.iter(f"{{{ns.RIM}}}ExtrinsicObject") if eo.get("lid") == lid
    ]
    assert len(versions) == 2
    for eo in versions:  # the older version is masked too (the one flat column of each)
        assert confidentiality(eo) == {"N", "MASQUE_PS"}, eo.get("status")
    old_fragment = stored_fragment(espace, doc.unique_id, status="Deprecated")
    assert "MASQUE_PS" in old_fragment and f'status="{DEPRECATED}"' in old_fragment
    # the nurse sees neither version of a masked document
    nurse = query(client, pki, clock, statuses=("Approved", "Deprecated"), who=NURSE)
    assert not list(nurse.body.iter(f"{{{ns.RIM}}}ExtrinsicObject"))


def test_masking_by_the_patient_refreshes_the_fragment(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    setup_space(espace, clock)
    doc = Doc(confidentiality=(N,))
    submit(client, pki, clock, [doc])
    entry_uuid = row(espace, doc.unique_id).entry_uuid
    assert confidentiality(extrinsic(query(client, pki, clock), doc.unique_id)) == {"N"}
    patient = Actor(
        ActorKind.PATIENT, PATIENT, authentication_mode=AuthenticationMode.PATIENT_LOGIN
    )
    with espace.operation(
        patient,
        Action.MASK_DOCUMENT,
        event_type="documents.mask",
        source=Source(face="test"),
        space_ins=PATIENT,
    ) as op:
        set_masked(op, entry_uuid, True)
    assert "MASQUE_PS" in stored_fragment(espace, doc.unique_id)
    masked = extrinsic(query(client, pki, clock), doc.unique_id)  # the author still sees it
    assert confidentiality(masked) == {"N", "MASQUE_PS"}
    nurse = query(client, pki, clock, who=NURSE)
    assert not list(nurse.body.iter(f"{{{ns.RIM}}}ExtrinsicObject"))


def test_a_change_behind_the_orm_is_detected_and_rendered_again(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    setup_space(espace, clock)
    doc = Doc()
    submit(client, pki, clock, [doc])
    before = row(espace, doc.unique_id).ebrim
    with espace.session_factory() as session:  # raw SQL: no mapper event runs
        session.execute(
            update(DocumentEntryRow.__table__)  # type: ignore[arg-type]
            .where(DocumentEntryRow.unique_id == doc.unique_id)
            .values(status="Deprecated")
        )
        session.commit()
    stale = row(espace, doc.unique_id)
    assert (
        stale.ebrim == before
        and prerender.fresh_fragment(prerender.key_values(stale), stale.ebrim) is None
    )
    answer = query(client, pki, clock, statuses=("Deprecated",))
    assert extrinsic(answer, doc.unique_id).get("status") == DEPRECATED
    assert f'status="{DEPRECATED}"' in stored_fragment(espace, doc.unique_id)  # written back


def test_missing_fragments_are_rendered_and_written_back(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    setup_space(espace, clock)
    docs = [Doc(symbolic_id=f"Doc{i}") for i in range(3)]
    submit(client, pki, clock, docs)
    first = query(client, pki, clock)
    with espace.session_factory() as session:  # as a bulk load or the 0002 migration leaves them
        session.execute(update(DocumentEntryRow.__table__).values(ebrim=None))  # type: ignore[arg-type]
        session.commit()
    second = query(client, pki, clock)
    assert canonical(etree.tostring(second.body)) == canonical(etree.tostring(first.body))
    for doc in docs:
        stored_fragment(espace, doc.unique_id)


def test_a_renderer_change_makes_every_fragment_stale(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    setup_space(espace, clock)
    doc = Doc()
    submit(client, pki, clock, [doc])
    found = row(espace, doc.unique_id)
    assert prerender.fresh_fragment(prerender.key_values(found), found.ebrim) is not None
    try:
        prerender.install_entry_renderer(writer.document_entry, "another-format")
        assert prerender.fresh_fragment(prerender.key_values(found), found.ebrim) is None
        query(client, pki, clock)
        refreshed = row(espace, doc.unique_id)
        assert refreshed.ebrim is not None and refreshed.ebrim.startswith("another-format")
    finally:
        prerender.install_entry_renderer(writer.document_entry, writer.RENDER_TAG)


def test_a_scheme_filter_query_uses_the_full_metadata(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    """Coded parameters are checked on the full entry (code and scheme), fragments still used."""
    from xds_support import _slot

    setup_space(espace, clock)
    doc = Doc()
    submit(client, pki, clock, [doc])
    code, scheme, _ = doc.type_code
    for wanted, found in ((scheme, {doc.unique_id}), ("9.9.9", set())):
        extra = _slot("$XDSDocumentEntryTypeCode", f"('{code}^^{wanted}')")
        response = post(
            client,
            REGISTRY,
            ITI18,
            find_documents(extra=extra),
            vihf(pki, clock, AUTHOR),
        )
        assert response.status_value() == "Success", response.errors()
        assert_schema_valid(response.body)
        got = {
            ei.get("value")
            for ei in response.body.iter(f"{{{ns.RIM}}}ExternalIdentifier")
            if ei.get("identificationScheme") == "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
        }
        assert got == found


def test_a_row_added_with_column_defaults_is_stored_under_its_final_key(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    """Another face may leave version, status, hash, size... to the column defaults."""
    space_id = setup_space(espace, clock)
    with espace.session_factory() as session:
        session.add(
            DocumentEntryRow(
                entry_uuid="urn:uuid:0b5c3e0e-3c43-4a4a-9d55-2d3b4bb0e0d0",
                space_id=space_id,
                logical_id="urn:uuid:0b5c3e0e-3c43-4a4a-9d55-2d3b4bb0e0d0",
                unique_id="1.2.250.1.999.1.9.9",
                confidentiality_codes="|N|",
                submission_time=clock.now(),
                updated_at=clock.now(),
                metadata_json={"patient_id": f"{PATIENT}^^^&1.2.250.1.213.1.4.10&ISO"},
            )
        )
        session.commit()
    found = row(espace, "1.2.250.1.999.1.9.9")
    assert (found.version, found.status, found.size) == (1, "Approved", 0)
    fragment = prerender.fresh_fragment(prerender.key_values(found), found.ebrim)
    assert fragment is not None and 'versionName="1"' in fragment
