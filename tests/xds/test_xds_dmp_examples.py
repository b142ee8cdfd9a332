"""Replay of the DMP LPS kit's official messages (``reference/dmp/messages``), re-signed with the
test PKI: TD2.1 (raw MTOM, SOAP 1.1 envelope), TD3.1, TD3.2, TD3.3d, TD3.3c, TD0.2, TD0.3, TD0.4,
TD1.6. Each response is checked against the kit's response and the ebRS 3.0 schemas."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient
from lxml import etree
from sqlalchemy import select
from xds_support import (
    AUTHOR,
    MEDECIN_TRAITANT,
    PATIENT,
    REFERENCE,
    STRANGER,
    Soap,
    assert_schema_valid,
    parse_response,
    setup_space,
    unique_ids,
    vihf,
)

from espace.clock import FrozenClock
from espace.models import DocumentEntryRow, SpaceProfessionalLink
from espace.service import Espace
from xds import ns
from xds.vihf import wrap_in_security_header

MESSAGES = REFERENCE / "dmp" / "messages"
DMP = "/si-dmp-server/v2/services"
TD21_UNIQUE_ID = "1.2.250.1.999.1.1.7898.3.1622814651504"
_SECURITY = re.compile(rb"<wsse:Security\b.*?</wsse:Security>", re.S)


@pytest.fixture(autouse=True)
def _real_time(clock: FrozenClock) -> None:
    clock.set(datetime.now(UTC).replace(microsecond=0))


def kit(name: str) -> bytes:
    path = MESSAGES / name
    if not path.exists():
        pytest.skip(f"DMP kit message not found: {path}")
    return path.read_bytes()


def resign(data: bytes, assertion: etree._Element, soap_ns: str = ns.SOAP12) -> bytes:
    """Replace the kit's (expired, foreign-signed) wsse:Security by one carrying our VIHF."""
    security = etree.tostring(wrap_in_security_header(assertion, soap_ns=soap_ns))
    replaced, count = _SECURITY.subn(lambda _m: security, data, count=1)
    assert count == 1
    return replaced


def send(client: FlaskClient, path: str, data: bytes, content_type: str) -> Soap:
    response = client.post(path, data=data, content_type=content_type)
    return parse_response(response.status_code, response.content_type or "", response.data)


def send_xml(client: FlaskClient, path: str, data: bytes) -> Soap:
    return send(client, path, data, "application/soap+xml; charset=UTF-8")


def td21(client: FlaskClient, clock: FrozenClock, pki: Any, *, current_codes: bool = True) -> Soap:
    """Replay TD2.1. Its typeCode 27899-4 left JDV_J66 (2024-09-27 version): by default the
    replay uses 11488-4 (same class, "CR ou fiche de consultation ou de visite")."""
    raw = resign(kit("TD2.1_Alimentation_requete.xml"), vihf(pki, clock, AUTHOR), ns.SOAP11)
    if current_codes:
        raw = raw.replace(b'nodeRepresentation="27899-4"', b'nodeRepresentation="11488-4"')
    boundary = raw.split(b"\r\n", 1)[0].split(b"\n", 1)[0].strip()[2:].decode()
    content_type = (
        f'multipart/related; type="application/xop+xml"; start="<rootpart@soapui.org>"; '
        f'start-info="application/soap+xml"; boundary="{boundary}"'
    )
    return send(client, f"{DMP}/DocumentRepository_Service", raw, content_type)


def test_td21_td31_td32_td33d_td33c(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    setup_space(espace, clock)
    stored = td21(client, clock, pki)
    assert stored.status == 200 and stored.status_value() == "Success", stored.errors()
    assert_schema_valid(stored.body)
    expected = etree.fromstring(kit("TD2.1_Alimentation_reponse.xml"))
    assert stored.action == expected.findtext(f".//{{{ns.WSA}}}Action")

    found = send_xml(
        client,
        f"{DMP}/DocumentRegistry_Service",
        resign(kit("TD3.1_Recherche_de_document_requete.xml"), vihf(pki, clock)),
    )
    assert found.status_value() == "Success", found.errors()
    assert_schema_valid(found.body)
    assert TD21_UNIQUE_ID in unique_ids(found)
    assert len(unique_ids(found)) == 2  # the CDA and its XAdES signature (the author sees both)

    td32 = kit("TD3.2_Consultation_dun_document_requete.xml").replace(
        b"1.2.250.1.999.1.1.7898.1.995657292", TD21_UNIQUE_ID.encode()
    )
    got = send_xml(client, f"{DMP}/DocumentRepository_Service", resign(td32, vihf(pki, clock)))
    assert got.status_value() == "Success", got.errors()
    assert_schema_valid(got.body)
    document = got.body.find(f"{{{ns.XDS}}}DocumentResponse/{{{ns.XDS}}}Document")
    assert document is not None and b"patb-quatre" in got.resolved[document]

    with espace.session_factory() as session:
        entry_uuid = session.execute(
            select(DocumentEntryRow.entry_uuid).where(DocumentEntryRow.unique_id == TD21_UNIQUE_ID)
        ).scalar_one()

    def status_change(name: str) -> Soap:
        data = kit(name).replace(
            b"urn:uuid:fe5287a2-ae6a-11eb-8f5d-0050569e422e", entry_uuid.encode()
        )
        return send_xml(client, f"{DMP}/DocumentRegistry_Service", resign(data, vihf(pki, clock)))

    archived = status_change("TD3.3d_Archiver_un_document_requete.xml")
    assert archived.status_value() == "Success", archived.errors()
    assert archived.action == "urn:ihe:iti:2010:UpdateDocumentSet-Response"  # as the DMP answers
    assert_schema_valid(archived.body)
    deleted = status_change("TD3.3c_Supprimer_un_document_requete.xml")
    assert deleted.status_value() == "Success", deleted.errors()
    with espace.session_factory() as session:
        assert session.get(DocumentEntryRow, entry_uuid).status == "Deleted"  # type: ignore[union-attr]
    # the same submission set again is a duplicate; a new one with a stale OriginalStatus fails
    again = status_change("TD3.3d_Archiver_un_document_requete.xml")
    assert again.error_codes() == ["XDSDuplicateUniqueIdInRegistry"]
    stale = (
        kit("TD3.3d_Archiver_un_document_requete.xml")
        .replace(b"urn:uuid:fe5287a2-ae6a-11eb-8f5d-0050569e422e", entry_uuid.encode())
        .replace(b"1.2.250.1.999.1.1.7898.1.11086546546895", b"1.2.250.1.999.1.1.7898.1.42")
    )
    refused = send_xml(client, f"{DMP}/DocumentRegistry_Service", resign(stale, vihf(pki, clock)))
    assert refused.error_codes() == ["XDSMetadataUpdateError"]


def test_td21_with_its_2021_type_code_is_refused_by_the_current_value_set(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    setup_space(espace, clock)
    response = td21(client, clock, pki, current_codes=False)
    assert response.error_codes() == ["XDSRegistryMetadataError"]
    assert_schema_valid(response.body)


def test_td21_by_a_stranger_is_refused_and_stores_nothing(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    setup_space(espace, clock, authorized=())
    raw = resign(kit("TD2.1_Alimentation_requete.xml"), vihf(pki, clock, STRANGER), ns.SOAP11)
    boundary = raw.split(b"\n", 1)[0].strip()[2:].decode()
    response = send(
        client,
        f"{DMP}/DocumentRepository_Service",
        raw,
        f'multipart/related; type="application/xop+xml"; boundary="{boundary}"; '
        'start="<rootpart@soapui.org>"',
    )
    assert response.error_codes() == ["XDSRepositoryError"]
    with espace.session_factory() as session:
        assert session.execute(select(DocumentEntryRow)).first() is None


def test_td02_td03_td16_td04(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    setup_space(espace, clock, authorized=())

    def call(name: str, path: str, who: str = AUTHOR) -> Soap:
        return send_xml(client, f"{DMP}/{path}", resign(kit(name), vihf(pki, clock, who)))

    # TD0.2: the DMP exists, the professional is not authorized yet
    existence = call("TD0.2_Test_dexistence_requete.xml", "")
    assert existence.status == 200, existence.body.tag
    hl7 = ns.HL7
    assert existence.body.tag == f"{{{hl7}}}PRPA_IN201308UV02"
    lines = {
        line.find(f"{{{hl7}}}keyWordText").get("code"): line.find(f"{{{hl7}}}value")  # type: ignore[union-attr]
        for line in existence.body.findall(f"{{{hl7}}}attentionLine")
    }
    assert lines["AUTORISATION"].get("code") == "NON_EXISTANTE"
    assert existence.body.find(f".//{{{hl7}}}queryResponseCode").get("code") == "OK"  # type: ignore[union-attr]

    # TD0.3: declare the authorization (twice: the second is a no-op, as in the kit's response)
    first = call("TD0.3_Mise_a_jour_de_lautorisation_requete.xml", "Habilitations")
    assert first.body.findtext(".//{urn:si-dmp-habilitations}status") == "DMPOk"
    second = call("TD0.3_Mise_a_jour_de_lautorisation_requete.xml", "Habilitations")
    assert second.body.findtext(".//{urn:si-dmp-habilitations}context") == (
        "Autorisation déjà présente aucune action effectuée"
    )
    with espace.session_factory() as session:
        links = (
            session.execute(
                select(SpaceProfessionalLink.professional_id).where(
                    SpaceProfessionalLink.kind == "authorized"
                )
            )
            .scalars()
            .all()
        )
    assert links == [AUTHOR]
    existence = call("TD0.2_Test_dexistence_requete.xml", "GDP_Service")
    assert "VALIDE" in etree.tostring(existence.body).decode()

    # TD1.6: the authorized professionals of the DMP (the médecin traitant may list them)
    listed = call(
        "TD1.6_Liste_des_PS_autorises_ou_bloques_requete.xml", "Habilitations", MEDECIN_TRAITANT
    )
    items = listed.body.findall(".//{urn:si-dmp-habilitations}listOfAuthorizationByPatient")
    modes = {
        i.findtext("{urn:si-dmp-habilitations}nationalId"): i.findtext(
            "{urn:si-dmp-habilitations}mode"
        )
        for i in items
    }
    assert modes == {AUTHOR: "ACTIVE", "810000000008": "INTERDITE"}

    # TD0.4: the DMPs the professional is authorized on
    patients = call("TD0.4_Liste_des_DMP_autorises_requete.xml", "PatientsSpecific")
    assert patients.body.findall(".//{urn:si-dmp-patients}nationalId") == []  # no document yet
    by_authorization = resign(
        kit("TD0.4_Liste_des_DMP_autorises_requete.xml").replace(b"LASTDOC", b"LASTAUTORIZATION"),
        vihf(pki, clock, AUTHOR),
    )
    patients = send_xml(client, f"{DMP}/PatientsSpecific", by_authorization)
    national_ids = patients.body.findall(".//{urn:si-dmp-patients}nationalId")
    assert [n.text for n in national_ids] == [PATIENT]
    assert patients.body.findtext(".//{urn:si-dmp-patients}MT") == "false"


def test_td02_for_an_unknown_patient_answers_not_found(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    response = send_xml(
        client,
        f"{DMP}/GDP_Service",
        resign(kit("TD0.2_Test_dexistence_requete.xml"), vihf(pki, clock)),
    )
    assert response.status == 200
    assert response.body.find(f".//{{{ns.HL7}}}queryResponseCode").get("code") == "NF"  # type: ignore[union-attr]


def test_wsdl_is_served_with_our_address(client: FlaskClient) -> None:
    for path in (f"{DMP}/DocumentRegistry_Service", "/xds/repository", f"{DMP}/Habilitations"):
        response = client.get(path + "?wsdl")
        assert response.status_code == 200
        wsdl = etree.fromstring(response.data)
        addresses = [a.get("location") for a in wsdl.iter() if str(a.tag).endswith("address")]
        assert addresses and all(a == f"http://localhost{path}" for a in addresses)
    schema = client.get("/xds/wsdl/schema/ebRS/rim.xsd")
    assert schema.status_code == 200 and b"RegistryObjectType" in schema.data
    assert client.get("/xds/wsdl/schema/../../mes/config.py").status_code == 404


def wsdl_schema(name: str) -> etree.XMLSchema:
    """The inline xs:schema of one of our DMP WSDLs (Habilitations, PatientsSpecific)."""
    from importlib.resources import files

    wsdl = etree.fromstring(files("xds.wsdl.wsdl").joinpath(name).read_bytes())
    schema = next(wsdl.iter("{http://www.w3.org/2001/XMLSchema}schema"))
    return etree.XMLSchema(etree.fromstring(etree.tostring(schema)))


def test_td03_td16_td04_responses_follow_the_dmp_wsdl_schemas(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    setup_space(espace, clock)
    habilitations = wsdl_schema("Habilitations.wsdl")
    patients = wsdl_schema("PatientsSpecific.wsdl")
    for name, path, schema in (
        ("TD0.3_Mise_a_jour_de_lautorisation_requete.xml", "Habilitations", habilitations),
        ("TD1.6_Liste_des_PS_autorises_ou_bloques_requete.xml", "Habilitations", habilitations),
        ("TD0.4_Liste_des_DMP_autorises_requete.xml", "PatientsSpecific", patients),
    ):
        response = send_xml(client, f"{DMP}/{path}", resign(kit(name), vihf(pki, clock)))
        assert response.status == 200, name
        body = etree.fromstring(etree.tostring(response.body))
        assert schema.validate(body), (name, schema.error_log)
