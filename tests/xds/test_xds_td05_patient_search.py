"""TD0.5 patient search without INS (HL7v3 PRPA_IN201305UV02 -> PRPA_IN201306UV02, PDQv3 ITI-47).

PDT-INF-526 v1.8 allows it in régulation (centre 15) access only; only active spaces that did
not block the caller are returned; more matches than the cap is an HL7v3 AE/QE answer.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient
from lxml import etree
from sqlalchemy import select
from xds_support import (
    BLOCKED,
    PATIENT,
    PATIENT_OID,
    REFERENCE,
    SAMU,
    Soap,
    post,
    setup_space,
    vihf,
)

from espace.admin import register_space
from espace.clock import FrozenClock
from espace.models import PatientSpace, TraceRecord
from espace.service import Espace
from habilitation.model import AccessMode
from xds import ns
from xds.vihf import build_soap_envelope
from xds.xml import parse_xml

ACTION = "urn:hl7-org:v3:PRPA_IN201305UV02"
HL7 = ns.HL7
PATHS = (
    "/xds/pdq",
    "/si-dmp-server/v2/services/PDQSupplier_Service",
    "/si-dmp-server/v2/services/",
)


@pytest.fixture(autouse=True)
def _real_time(clock: FrozenClock) -> None:
    """The test PKI's certificates are valid around the real now."""
    clock.set(datetime.now(UTC).replace(microsecond=0))


def _h(local: str) -> str:
    return f"{{{HL7}}}{local}"


def query(
    *,
    family: str = "",
    given: str = "",
    birth: str = "",
    gender: str = "",
    ins: tuple[str, str] | None = None,
    postal_code: str = "",
) -> etree._Element:
    """A PRPA_IN201305UV02 shaped like the DMP kit's TD0.5 example."""
    root = etree.Element(_h("PRPA_IN201305UV02"), ITSVersion="XML_1.0", nsmap={None: HL7})
    etree.SubElement(root, _h("id"), root="1.3.6.1.4.1.48364.1.1", extension="msg-1")
    etree.SubElement(root, _h("creationTime"), value="20260101120000")
    etree.SubElement(
        root, _h("interactionId"), root="2.16.840.1.113883.1.6", extension="PRPA_IN201305UV02"
    )
    sender = etree.SubElement(root, _h("sender"), typeCode="SND")
    device = etree.SubElement(sender, _h("device"), classCode="DEV", determinerCode="INSTANCE")
    etree.SubElement(device, _h("id"), root="1.3.6.1.4.1.48364")
    control = etree.SubElement(root, _h("controlActProcess"), classCode="CACT", moodCode="EVN")
    etree.SubElement(control, _h("code"), code="PRPA_TE201305UV02")
    by = etree.SubElement(control, _h("queryByParameter"))
    etree.SubElement(by, _h("queryId"), root="1.3.6.1.4.1.48364.2", extension="q-1")
    params = etree.SubElement(by, _h("parameterList"))
    if family or given:
        value = etree.SubElement(etree.SubElement(params, _h("livingSubjectName")), _h("value"))
        if family:
            etree.SubElement(value, _h("family")).text = family
        if given:
            etree.SubElement(value, _h("given")).text = given
    if birth:
        etree.SubElement(
            etree.SubElement(params, _h("livingSubjectBirthTime")), _h("value"), value=birth
        )
    if gender:
        etree.SubElement(
            etree.SubElement(params, _h("livingSubjectAdministrativeGender")),
            _h("value"),
            code=gender,
        )
    if ins is not None:
        etree.SubElement(
            etree.SubElement(params, _h("livingSubjectId")),
            _h("value"),
            root=ins[1],
            extension=ins[0],
        )
    if postal_code:
        address = etree.SubElement(etree.SubElement(params, _h("patientAddress")), _h("value"))
        etree.SubElement(address, _h("postalCode")).text = postal_code
    return root


def search(
    client: FlaskClient,
    pki: Any,
    clock: FrozenClock,
    body: etree._Element,
    *,
    access: AccessMode = AccessMode.REGULATION,
    professional: str = SAMU,
    path: str = "/xds/pdq",
) -> Soap:
    return post(client, path, ACTION, body, vihf(pki, clock, professional, access_mode=access))


def ack(response: Soap) -> str:
    return response.body.find(f"{_h('acknowledgement')}/{_h('typeCode')}").get("code", "")


def response_code(response: Soap) -> str:
    found = response.body.find(
        f"{_h('controlActProcess')}/{_h('queryAck')}/{_h('queryResponseCode')}"
    )
    assert found is not None
    return found.get("code", "")


def detail_codes(response: Soap) -> list[str]:
    return [
        c.get("code", "")
        for c in response.body.iterfind(
            f"{_h('acknowledgement')}/{_h('acknowledgementDetail')}/{_h('code')}"
        )
    ]


def found(response: Soap) -> list[str]:
    return [
        i.get("extension", "")
        for i in response.body.iterfind(
            f"{_h('controlActProcess')}/{_h('subject')}/{_h('registrationEvent')}/"
            f"{_h('subject1')}/{_h('patient')}/{_h('id')}"
        )
    ]


def add_space(espace: Espace, clock: FrozenClock, ins: str, family: str, **fields: Any) -> None:
    with espace.session_factory() as session:
        register_space(session, ins=ins, now=clock.now(), family_name=family, **fields)
        session.commit()


@pytest.mark.parametrize("path", PATHS)
def test_regulation_finds_the_patient_by_family_name(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any, path: str
) -> None:
    setup_space(espace, clock)
    response = search(client, pki, clock, query(family="PATB-QUATRE"), path=path)
    assert response.status == 200, etree.tostring(response.envelope)
    assert response.action == "urn:hl7-org:v3:PRPA_IN201306UV02"
    assert etree.QName(response.body).localname == "PRPA_IN201306UV02"
    assert ack(response) == "AA" and response_code(response) == "OK"
    assert found(response) == [PATIENT]
    patient = response.body.find(f".//{_h('patient')}")
    assert patient is not None
    assert patient.find(_h("id")).get("root") == PATIENT_OID
    person = patient.find(_h("patientPerson"))
    assert person.findtext(f"{_h('name')}/{_h('given')}") == "LAURENCE"
    assert person.find(_h("birthTime")).get("value") == "19790328"
    observation = patient.find(f"{_h('subjectOf2')}/{_h('administrativeObservation')}")
    assert observation.find(_h("code")).get("code") == "OPPOSITION_ACCES_URGENCE"
    assert observation.find(_h("value")).get("value") == "false"
    echoed = response.body.find(f".//{_h('queryAck')}/{_h('queryId')}")
    assert echoed is not None and echoed.get("extension") == "q-1"
    target = response.body.find(f"{_h('acknowledgement')}/{_h('targetMessage')}/{_h('id')}")
    assert target is not None and target.get("extension") == "msg-1"


def test_traits_match_without_case_or_accents_and_all_must_match(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    setup_space(espace, clock)
    hit = search(
        client,
        pki,
        clock,
        query(family="patb-quatre", given="Laurence", birth="19790328", gender="F"),
    )
    assert found(hit) == [PATIENT]
    assert found(search(client, pki, clock, query(family="PATB-QUATRÉ", birth="1979"))) == [PATIENT]
    for miss in (
        query(family="PATB-QUATRE", gender="M"),
        query(family="PATB-QUATRE", birth="19790329"),
        query(family="PATB-QUATRE", given="LAURE"),
        query(family="PATB"),
    ):
        response = search(client, pki, clock, miss)
        assert ack(response) == "AA" and response_code(response) == "NF"
        assert found(response) == []


def test_emergency_access_opposition_is_reported(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    setup_space(espace, clock)
    with espace.session_factory() as session:
        space = session.execute(
            select(PatientSpace).where(PatientSpace.ins == PATIENT)
        ).scalar_one()
        space.regulation_allowed = False
        session.commit()
    response = search(client, pki, clock, query(family="PATB-QUATRE"))
    value = response.body.find(f".//{_h('administrativeObservation')}/{_h('value')}")
    assert value is not None and value.get("value") == "true"


@pytest.mark.parametrize("status", ["pending", "opposed", "closed", "deleted"])
def test_only_active_spaces_are_found(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any, status: str
) -> None:
    setup_space(espace, clock, status=status)
    response = search(client, pki, clock, query(family="PATB-QUATRE"))
    assert ack(response) == "AA" and found(response) == []


def test_a_patient_who_blocked_the_caller_is_not_found(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    setup_space(espace, clock)
    assert found(search(client, pki, clock, query(family="PATB-QUATRE"))) == [PATIENT]
    blocked = search(client, pki, clock, query(family="PATB-QUATRE"), professional=BLOCKED)
    assert ack(blocked) == "AA" and found(blocked) == []


@pytest.mark.parametrize("access", [AccessMode.NORMAL, AccessMode.BREAK_GLASS])
def test_outside_regulation_the_pdp_refuses(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any, access: AccessMode
) -> None:
    setup_space(espace, clock)
    response = search(client, pki, clock, query(family="PATB-QUATRE"), access=access)
    assert response.status == 200
    assert ack(response) == "AE" and response_code(response) == "AE"
    assert detail_codes(response) == ["PDP:functional_rights"]
    assert found(response) == []
    with espace.session_factory() as session:
        record = session.execute(
            select(TraceRecord).where(TraceRecord.event_type == "TD0.5")
        ).scalar_one()
    assert record.outcome == "denied" and record.rule_id == "functional_rights"


def test_not_offered_on_the_gdp_service(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    setup_space(espace, clock)
    response = search(client, pki, clock, query(family="PATB-QUATRE"), path="/xds/gdp")
    assert response.status == 400 and response.fault_subcode() == "ActionNotSupported"


def test_without_a_valid_vihf_no_search(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    setup_space(espace, clock)
    unsigned = post(client, "/xds/pdq", ACTION, query(family="PATB-QUATRE"), None)
    assert unsigned.status >= 400
    assert etree.QName(unsigned.body).localname == "Fault"
    assert PATIENT.encode() not in etree.tostring(unsigned.envelope)


def test_too_many_matches_is_an_error_not_a_truncated_list(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    for n in range(11):  # the default cap is 10
        add_space(espace, clock, f"2800175{n:08d}", "MARTIN", given_names="JEAN")
    response = search(client, pki, clock, query(family="MARTIN"))
    assert ack(response) == "AE" and response_code(response) == "QE"
    assert detail_codes(response) == ["too_many_matches"]
    assert found(response) == []
    refined = search(client, pki, clock, query(family="MARTIN", given="JEAN", gender="U"))
    assert response_code(refined) == "QE"
    add_space(espace, clock, "180017500000099", "MARTIN", given_names="PAUL PIERRE", sex="M")
    narrowed = search(client, pki, clock, query(family="MARTIN", given="PIERRE"))
    assert found(narrowed) == ["180017500000099"]
    with espace.session_factory() as session:
        records = session.execute(
            select(TraceRecord)
            .where(TraceRecord.event_type == "TD0.5")
            .order_by(TraceRecord.recorded_at, TraceRecord.id)
        ).scalars()
        outcomes = [(r.outcome, r.error_code, r.detail.get("criteria")) for r in records]
    assert outcomes[0] == ("failure", "too_many_matches", ["family_name"])
    assert ("success", "", ["family_name", "given_name"]) in outcomes
    # the trace names the criteria, never their values
    assert all("MARTIN" not in str(c) for _, _, c in outcomes)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (query(), "no_search_criteria"),
        (query(gender="F"), "no_search_criteria"),
        (query(family="X", birth="1979-03-28"), "bad_birth_time"),
        (query(family="X", birth="19791328"), "bad_birth_time"),
        (query(family="X", gender="Z"), "bad_gender"),
        (query(ins=("123", "1.2.3.4")), "bad_identifier"),
        (query(family="X" * 201), "bad_name"),
    ],
)
def test_bad_queries_answer_qe(
    client: FlaskClient,
    espace: Espace,
    clock: FrozenClock,
    pki: Any,
    body: etree._Element,
    code: str,
) -> None:
    setup_space(espace, clock)
    response = search(client, pki, clock, body)
    assert response.status == 200
    assert ack(response) == "AE" and response_code(response) == "QE"
    assert detail_codes(response) == [code]


def test_search_by_ins_and_postal_code_is_accepted(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    setup_space(espace, clock)
    response = search(client, pki, clock, query(ins=(PATIENT, PATIENT_OID), postal_code="59113"))
    assert found(response) == [PATIENT]


def test_the_kit_example_request_is_answered(
    client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any
) -> None:
    example = REFERENCE / "dmp" / "messages" / "TD0.5_Recherche_dun_patient_sans_INS_requete.xml"
    if not example.is_file():
        pytest.skip("the DMP kit examples are not available")
    add_space(
        espace,
        clock,
        "257069329642881",
        "DECHAINE",
        given_names="IRENE",
        birth_date=date(1957, 6, 28),
        sex="F",
    )
    envelope = parse_xml(example.read_bytes())
    body = envelope.find(f"{{{ns.SOAP12}}}Body")[0]
    signed = vihf(pki, clock, SAMU, access_mode=AccessMode.REGULATION)
    data = etree.tostring(build_soap_envelope(ACTION, body, signed), xml_declaration=True)
    raw = client.post(
        "/si-dmp-server/v2/services/",
        data=data,
        content_type=f'application/soap+xml; charset=UTF-8; action="{ACTION}"',
    )
    response = Soap(raw.status_code, parse_xml(raw.data))
    assert ack(response) == "AA" and found(response) == ["257069329642881"]
