"""Third-party sample submissions (IHE ITI-Info, IPF, OpenXDS) under the Connectathon affinity
domain (``AFFINITY_DOMAIN=connectathon``), with their patient replaced by the test space's INS
(the registry only knows INS-identified patients, and the VIHF names the patient)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree
from sqlalchemy import func, select
from xds_support import (
    AUTHOR,
    ITI41,
    ITI42,
    PATIENT,
    PATIENT_OID,
    REFERENCE,
    REGISTRY,
    REPOSITORY,
    Doc,
    Soap,
    assert_schema_valid,
    post,
    provide_and_register,
    setup_space,
    vihf,
)

from espace.clock import FrozenClock
from espace.models import DocumentEntryRow
from espace.service import Espace
from xds import ns

XDS = REFERENCE / "xds"
OUR_PATIENT = f"{PATIENT}^^^&amp;{PATIENT_OID}&amp;ISO".encode()


@pytest.fixture(autouse=True)
def _connectathon(app: Flask, clock: FrozenClock) -> None:
    clock.set(datetime.now(UTC).replace(microsecond=0))
    app.config["AFFINITY_DOMAIN"] = "connectathon"


def sample(relative: str) -> bytes:
    path = XDS / relative
    if not path.exists():
        pytest.skip(f"sample not found: {path}")
    data = path.read_bytes()
    for foreign in (b"SELF-5^^^&amp;1.3.6.1.4.1.21367.2005.3.7&amp;ISO", b"$patientId"):
        data = data.replace(foreign, OUR_PATIENT)
    return data


def count(espace: Espace) -> int:
    with espace.session_factory() as session:
        return session.execute(select(func.count()).select_from(DocumentEntryRow)).scalar_one()


def send(
    client: FlaskClient, path: str, action: str, body: bytes, pki: Any, clock: FrozenClock
) -> Soap:
    return post(client, path, action, etree.fromstring(body), vihf(pki, clock, AUTHOR))


@pytest.mark.parametrize(
    ("relative", "path", "action"),
    [
        (
            "ihe-iti-info/examples/XDS.b/ProvideAndRegisterDocumentSet-bRequest.xml",
            REPOSITORY,
            ITI41,
        ),
        ("ihe-iti-info/examples/XDS.b/RegisterDocumentSet-bRequest.xml", REGISTRY, ITI42),
        ("ipf/test-resources/SubmitObjectsRequest_ebrs30.xml", REGISTRY, ITI42),
    ],
)
def test_published_samples_are_checked_not_crashed(
    client: FlaskClient,
    espace: Espace,
    clock: FrozenClock,
    pki: Any,
    relative: str,
    path: str,
    action: str,
) -> None:
    """These samples carry pre-2017 "Connect-a-thon" codes absent from the Connectathon code
    list, and the ITI-42 ones lack hash/size (IPF's also has a space inside a UUID): each is
    answered with XDSRegistryMetadataError, schema-valid, and nothing is stored."""
    setup_space(espace, clock)
    response = send(client, path, action, sample(relative), pki, clock)
    assert response.status == 200
    assert_schema_valid(response.body)
    assert response.status_value() == "Failure"
    assert count(espace) == 0


def test_ihe_samples_with_a_space(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    setup_space(espace, clock)
    response = send(
        client,
        REPOSITORY,
        ITI41,
        sample("ihe-iti-info/examples/XDS.b/ProvideAndRegisterDocumentSet-bRequest.xml"),
        pki,
        clock,
    )
    # Its pre-2017 "Connect-a-thon" codes are now in the Connectathon value sets (the testkit
    # additions), but its associationType "HasMember" is not the ebRIM 3.0 URN (ITI TF-3
    # 4.2.2): still a metadata error, and nothing stored.
    assert set(response.error_codes()) == {"XDSRegistryMetadataError"}
    assert count(espace) == 0


def test_submission_with_connectathon_codes(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    setup_space(espace, clock)
    doc = Doc(
        class_code=("REPORTS", "1.3.6.1.4.1.19376.1.2.6.1", "Reports"),
        type_code=("52521-2", "2.16.840.1.113883.6.1", "Overall Plan of Care"),
        format_code=("urn:ihe:iti:appc:2016:consent", "1.3.6.1.4.1.19376.1.2.3"),
        facility=("39350007", "2.16.840.1.113883.3.88.12.80.67"),
        practice=("419192003", "2.16.840.1.113883.6.96"),
    )
    body, parts = provide_and_register(
        [doc], content_type=("39350007", "2.16.840.1.113883.3.88.12.80.67")
    )
    response = post(client, REPOSITORY, ITI41, body, vihf(pki, clock, AUTHOR), parts)
    assert response.status_value() == "Success", response.errors()
    assert count(espace) == 1


def test_dmp_value_sets_refuse_connectathon_codes(
    app: Flask, client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    app.config["AFFINITY_DOMAIN"] = "dmp"
    setup_space(espace, clock)
    response = send(
        client,
        REGISTRY,
        ITI42,
        sample("ihe-iti-info/examples/XDS.b/RegisterDocumentSet-bRequest.xml"),
        pki,
        clock,
    )
    assert set(response.error_codes()) == {"XDSRegistryMetadataError"}
    assert count(espace) == 0


def test_openxds_submission_template(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    setup_space(espace, clock)
    data = sample("openxds-testdata/submit_document.xml")
    data = (
        data.replace(b"$XDSDocumentEntry.uniqueId", b"1.2.250.1.999.77.1")
        .replace(b"$XDSSubmissionSet.uniqueId", b"1.2.250.1.999.77.2")
        .replace(b"$XDSSubmissionSet.sourceId", b"1.2.250.1.999.77")
        .replace(b"$doc1", b"Document01")
    )
    root = etree.fromstring(data)
    document = etree.SubElement(root, f"{{{ns.XDS}}}Document", id="Document01")
    document.text = base64.b64encode(b"<ClinicalDocument/>").decode()
    response = post(client, REPOSITORY, ITI41, root, vihf(pki, clock, AUTHOR))
    # a 2009 template: its codes predate the 2017 Connectathon code list
    assert response.status_value() in ("Success", "Failure")
    if response.status_value() == "Failure":
        assert set(response.error_codes()) == {"XDSRegistryMetadataError"}
        assert count(espace) == 0
    else:
        assert count(espace) == 1
