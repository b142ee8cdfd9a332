"""ITI-57 as the DMP uses it: mask / unmask / make visible (new version with PreviousVersion)
and who may do each (PDT-INF-526 TD3.3a/b, note (8)); the kit's template_masquage.xml."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient
from lxml import etree
from sqlalchemy import select
from xds_support import (
    AUTHOR,
    HAS_MEMBER,
    ITI41,
    ITI57,
    MEDECIN,
    MEDECIN_TRAITANT,
    PATIENT,
    PATIENT_OID,
    REFERENCE,
    REGISTRY,
    REPOSITORY,
    Doc,
    Soap,
    association,
    extrinsic_object,
    post,
    provide_and_register,
    setup_space,
    submission_set,
    submit_objects,
    vihf,
)

from espace.clock import FrozenClock
from espace.models import DocumentEntryRow, NotificationOutbox
from espace.service import Espace

N = ("N", "2.16.840.1.113883.5.25")
MASQUE = ("MASQUE_PS", "1.2.250.1.213.1.1.4.13")
INVISIBLE = ("INVISIBLE_PATIENT", "1.2.250.1.213.1.1.4.13")


@pytest.fixture(autouse=True)
def _real_time(clock: FrozenClock) -> None:
    clock.set(datetime.now(UTC).replace(microsecond=0))


def stored(client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any, doc: Doc) -> str:
    body, parts = provide_and_register([doc])
    response = post(client, REPOSITORY, ITI41, body, vihf(pki, clock, AUTHOR), parts)
    assert response.status_value() == "Success", response.errors()
    with espace.session_factory() as session:
        return session.execute(
            select(DocumentEntryRow.logical_id).where(DocumentEntryRow.unique_id == doc.unique_id)
        ).scalar_one()


def new_version(
    client: FlaskClient,
    pki: Any,
    clock: FrozenClock,
    who: str,
    doc: Doc,
    lid: str,
    codes: tuple[tuple[str, str], ...],
    previous: str,
) -> Soap:
    version = Doc(
        content=doc.content,
        unique_id=doc.unique_id,
        symbolic_id="NewVersion",
        confidentiality=codes,
        lid=lid,
    )
    objects = (
        submission_set(author=who)
        + extrinsic_object(version, with_hash=True)
        + association(
            HAS_MEMBER,
            "SubmissionSet01",
            "NewVersion",
            SubmissionSetStatus="Original",
            PreviousVersion=previous,
        )
    )
    return post(
        client,
        REGISTRY,
        ITI57,
        etree.fromstring(submit_objects(objects).encode()),
        vihf(pki, clock, who),
    )


def current(espace: Espace, unique_id: str) -> DocumentEntryRow:
    with espace.session_factory() as session:
        return session.execute(
            select(DocumentEntryRow).where(
                DocumentEntryRow.unique_id == unique_id, DocumentEntryRow.status == "Approved"
            )
        ).scalar_one()


def test_unmask_only_by_the_author_or_the_medecin_traitant(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    setup_space(espace, clock)
    doc = Doc(confidentiality=(N, MASQUE))
    lid = stored(client, espace, clock, pki, doc)
    other = new_version(client, pki, clock, MEDECIN, doc, lid, (N,), "1")
    assert other.error_codes() == ["UnresolvedReferenceException"]  # hidden from MEDECIN
    stale = new_version(client, pki, clock, MEDECIN_TRAITANT, doc, lid, (N,), "7")
    assert stale.error_codes() == ["XDSMetadataVersionError"]
    unmasked = new_version(client, pki, clock, MEDECIN_TRAITANT, doc, lid, (N,), "1")
    assert unmasked.status_value() == "Success", unmasked.errors()
    row = current(espace, doc.unique_id)
    assert (row.version, row.logical_id, row.confidentiality_codes) == (2, lid, "|N|")
    assert row.entry_uuid != lid  # new entryUUID, logicalId kept


def test_make_visible_to_the_patient(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    setup_space(espace, clock)
    doc = Doc(confidentiality=(N, INVISIBLE))
    lid = stored(client, espace, clock, pki, doc)
    with espace.session_factory() as session:  # the patient was not told about it
        assert (
            session.execute(
                select(NotificationOutbox).where(NotificationOutbox.category == "new_document")
            ).first()
            is None
        )
    hidden_again = new_version(client, pki, clock, AUTHOR, doc, lid, (N, INVISIBLE, MASQUE), "1")
    assert hidden_again.status_value() == "Success"  # masking is allowed
    visible = new_version(client, pki, clock, AUTHOR, doc, lid, (N, MASQUE), "2")
    assert visible.status_value() == "Success", visible.errors()
    with espace.session_factory() as session:  # now the patient is told
        assert session.execute(
            select(NotificationOutbox).where(NotificationOutbox.category == "new_document")
        ).scalar_one()
    back = new_version(client, pki, clock, AUTHOR, doc, lid, (N, INVISIBLE, MASQUE), "3")
    assert back.error_codes() == ["XDSMetadataUpdateOperationError"]
    assert current(espace, doc.unique_id).version == 3


def test_kit_template_masquage(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    path = REFERENCE / "dmp" / "messages" / "kit_templates" / "template_masquage.xml"
    if not path.exists():
        pytest.skip(f"kit template not found: {path}")
    setup_space(espace, clock)
    doc = Doc()
    lid = stored(client, espace, clock, pki, doc)
    ours = f"{PATIENT}^^^&amp;{PATIENT_OID}&amp;ISO^NH".encode()
    data = (
        path.read_bytes()
        .replace(b"1164485058822081751070^^^&amp;1.2.250.1.213.1.4.2&amp;ISO^INS-C^^20100907", ours)
        .replace(b"urn:uuid:35ebbfda-e101-48a2-8c19-45704c03fecc", lid.encode())
        .replace(b"1.2.250.1.999.1.1.7898.3.11031234567894", doc.unique_id.encode())
        .replace(b"<ns3:Value>2</ns3:Value>", b"<ns3:Value>1</ns3:Value>")
        # 27899-4 left JDV_J66 in 2024 (see test_xds_dmp_examples): same class, current code
        .replace(b'nodeRepresentation="27899-4"', b'nodeRepresentation="11488-4"')
    )
    response = post(client, REGISTRY, ITI57, etree.fromstring(data), vihf(pki, clock, AUTHOR))
    assert response.status_value() == "Success", response.errors()
    row = current(espace, doc.unique_id)
    assert "|MASQUE_PS|" in row.confidentiality_codes and row.version == 2


def archive_request(entry_uuid: str, who: str) -> etree._Element:
    objects = submission_set(author=who) + association(
        "urn:ihe:iti:2010:AssociationType:UpdateAvailabilityStatus",
        "SubmissionSet01",
        entry_uuid,
        OriginalStatus="urn:oasis:names:tc:ebxml-regrep:StatusType:Approved",
        NewStatus="urn:asip:ci-sis:2010:StatusType:Archived",
    )
    return etree.fromstring(submit_objects(objects).encode())


def test_archive_only_by_the_author_or_the_medecin_traitant(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    """PDT-INF-526 TD3.3d oui(8): own documents only; the médecin traitant may."""
    setup_space(espace, clock)
    doc = Doc()
    lid = stored(client, espace, clock, pki, doc)
    refused = post(
        client, REGISTRY, ITI57, archive_request(lid, MEDECIN), vihf(pki, clock, MEDECIN)
    )
    assert refused.error_codes() == ["XDSRegistryError"]
    assert current(espace, doc.unique_id).status == "Approved"
    done = post(client, REGISTRY, ITI57, archive_request(lid, AUTHOR), vihf(pki, clock, AUTHOR))
    assert done.status_value() == "Success", done.errors()
    with espace.session_factory() as session:
        assert session.get(DocumentEntryRow, lid).status == "Archived"  # type: ignore[union-attr]


def test_only_the_visibility_changes_in_a_new_version(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    setup_space(espace, clock)
    doc = Doc(confidentiality=(N, MASQUE))
    lid = stored(client, espace, clock, pki, doc)
    version = Doc(
        content=doc.content,
        unique_id=doc.unique_id,
        symbolic_id="V2",
        confidentiality=(N,),
        lid=lid,
        author=MEDECIN,
        type_code=("11490-0", "2.16.840.1.113883.6.1", "CR de sortie"),
    )
    objects = (
        submission_set(author=MEDECIN_TRAITANT)
        + extrinsic_object(version, with_hash=True)
        + association(
            HAS_MEMBER, "SubmissionSet01", "V2", SubmissionSetStatus="Original", PreviousVersion="1"
        )
    )
    response = post(
        client,
        REGISTRY,
        ITI57,
        etree.fromstring(submit_objects(objects).encode()),
        vihf(pki, clock, MEDECIN_TRAITANT),
    )
    assert response.status_value() == "Success", response.errors()
    row = current(espace, doc.unique_id)
    assert (row.author_ids, row.type_code, row.confidentiality_codes) == (
        f"|{AUTHOR}|",
        "11488-4",
        "|N|",
    )
