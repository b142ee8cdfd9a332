"""The DMP authorization web services (DMP LPS kit, ``wsdl/Habilitations.wsdl``,
``PatientsSpecific.wsdl``, ``GestionDossierPatientPartage.wsdl``; PDT-INF-526):

- TD0.2 test of existence: HL7v3 ``PRPA_IN201307UV02`` -> ``PRPA_IN201308UV02`` with the
  ``AUTORISATION`` and ``STATUT_MT`` attention lines (kit message TD0.2);
- TD0.3 ``setAuthorization`` (action AJOUT / SUPPRESSION, role MEDECIN_TRAITANT);
- TD1.6 ``listAuthorizationByPatient`` (mode ACTIVE / INTERDITE / TOUTE);
- TD0.4 ``patientList`` (startDate, dateType LASTAUTORIZATION / LASTDOC);
- TD0.5 patient search without INS (HL7v3 ``PRPA_IN201305UV02``), in its own module
  :mod:`xds.transactions.td05_patient_search`, listed here with the other DMP services.

Errors are SOAP 1.2 faults (these services have no RegistryResponse). Values of the TD0.2
``AUTORISATION`` line other than VALIDE (NON_EXISTANTE, INTERDITE) and the status strings
other than DMPOk are not in the kit's examples: see the report.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from lxml import etree

from espace.errors import InvalidInput
from espace.registry import (
    AuthorizationEntry,
    ExistenceResult,
    PatientListEntry,
    RegistryError,
    RegistryErrorCode,
    RegistryIssue,
    authorization_action,
    format_dtm,
    list_authorizations,
    list_authorized_spaces,
    set_authorization,
    test_existence,
)
from espace.service import Operation
from espace.spaces import INS_OIDS
from habilitation.model import Action
from xds import ns
from xds.transactions.base import (
    GDP,
    HABILITATIONS,
    PATIENTS,
    RequestContext,
    Response,
    Transaction,
)
from xds.transactions.td05_patient_search import TRANSACTION as TD0_5

HAB = "urn:si-dmp-habilitations"
PAT = "urn:si-dmp-patients"
HL7 = ns.HL7
DMP_DEVICE_OID = "1.2.250.1.213.4.1.1.1"


def _h(local: str) -> str:
    return f"{{{HL7}}}{local}"


def _fault(issues: list[RegistryIssue], _ctx: RequestContext) -> Response:
    raise AssertionError("DMP services answer errors with SOAP faults")  # pragma: no cover


def _dt(moment: datetime | None) -> str:
    return format_dtm(moment) if moment is not None else ""


# ----------------------------------------------------------------------------- TD0.2
def parse_existence(ctx: RequestContext) -> dict[str, str]:
    value = ctx.body.find(
        f"{_h('controlActProcess')}/{_h('queryByParameter')}/{_h('parameterList')}/"
        f"{_h('patientIdentifier')}/{_h('value')}"
    )
    if value is None or not value.get("extension"):
        raise InvalidInput("PRPA_IN201307UV02 without patientIdentifier", code="missing_patient")
    root = value.get("root") or ""
    if root not in INS_OIDS:
        raise InvalidInput(f"patientIdentifier root {root} is not an INS OID", code="bad_patient")
    message_id = ctx.body.find(_h("id"))
    query_id = ctx.body.find(f"{_h('controlActProcess')}/{_h('queryByParameter')}/{_h('queryId')}")
    return {
        "ins": value.get("extension") or "",
        "root": root,
        "message_root": message_id.get("root", "") if message_id is not None else "",
        "message_ext": message_id.get("extension", "") if message_id is not None else "",
        "query_root": query_id.get("root", "") if query_id is not None else "",
        "query_ext": query_id.get("extension", "") if query_id is not None else "",
    }


def _existence_space(parsed: dict[str, str], ctx: RequestContext) -> str | None:
    if ctx.patient_ins and ctx.patient_ins != parsed["ins"]:
        raise RegistryError(
            RegistryErrorCode.PATIENT_ID_DOES_NOT_MATCH,
            "the VIHF patient is not the queried patient",
        )
    return parsed["ins"]


def _existence_response(ctx: RequestContext, result: ExistenceResult | None) -> Response:
    parsed = parse_existence(ctx)
    root = etree.Element(_h("PRPA_IN201308UV02"), ITSVersion="XML_1.0", nsmap={None: HL7})
    etree.SubElement(root, _h("id"), root=str(uuid.uuid4()))
    etree.SubElement(root, _h("creationTime"), value=datetime.now().strftime("%Y%m%d%H%M%S"))
    etree.SubElement(
        root, _h("interactionId"), extension="PRPA_IN201308UV02", root="2.16.840.1.113883.1.6"
    )
    etree.SubElement(root, _h("processingCode"), code="P")
    etree.SubElement(root, _h("processingModeCode"), code="T")
    etree.SubElement(root, _h("acceptAckCode"), code="NE")
    receiver = etree.SubElement(root, _h("receiver"), typeCode="RCV")
    etree.SubElement(
        etree.SubElement(receiver, _h("device"), classCode="DEV", determinerCode="INSTANCE"),
        _h("id"),
        root="0",
    )
    sender = etree.SubElement(root, _h("sender"), typeCode="SND")
    device = etree.SubElement(sender, _h("device"), classCode="DEV", determinerCode="INSTANCE")
    etree.SubElement(device, _h("id"), root=DMP_DEVICE_OID)
    etree.SubElement(device, _h("softwareName")).text = "DMP"
    if result is not None:
        xsi = f"{{{ns.XSI}}}type"
        line = etree.SubElement(root, _h("attentionLine"))
        etree.SubElement(
            line, _h("keyWordText"), code="AUTORISATION", codeSystem="1.2.250.1.213.4.1.2.6.1"
        )
        etree.SubElement(
            line,
            _h("value"),
            {"code": result.authorization, "codeSystem": "1.2.250.1.213.4.1.2.6.2", xsi: "CV"},
        )
        line = etree.SubElement(root, _h("attentionLine"))
        etree.SubElement(
            line, _h("keyWordText"), code="STATUT_MT", codeSystem="1.2.250.1.213.4.1.2.6.3"
        )
        etree.SubElement(
            line, _h("value"), {"value": str(result.is_medecin_traitant).lower(), xsi: "BL"}
        )
    ack = etree.SubElement(root, _h("acknowledgement"), typeCode="AA")
    etree.SubElement(
        etree.SubElement(ack, _h("targetMessage")),
        _h("id"),
        extension=parsed["message_ext"],
        root=parsed["message_root"],
    )
    control = etree.SubElement(root, _h("controlActProcess"), classCode="CACT", moodCode="EVN")
    etree.SubElement(
        control,
        _h("reasonCode"),
        code="TEST_EXST",
        codeSystem="1.2.250.1.213.1.1.4.11",
        displayName="Test d'existence de dossier",
    )
    if result is not None:
        subject = etree.SubElement(
            control, _h("subject"), contextConductionInd="false", typeCode="SUBJ"
        )
        event = etree.SubElement(subject, _h("registrationEvent"), classCode="REG", moodCode="EVN")
        etree.SubElement(event, _h("statusCode"), code="completed")
        patient = etree.SubElement(
            etree.SubElement(event, _h("subject1"), typeCode="SBJ"), _h("patient"), classCode="PAT"
        )
        etree.SubElement(patient, _h("id"), extension=result.ins, root=result.ins_oid)
        etree.SubElement(
            patient, _h("statusCode"), code="active" if result.status == "active" else "terminated"
        )
        person = etree.SubElement(
            patient, _h("patientPerson"), classCode="PSN", determinerCode="INSTANCE"
        )
        name = etree.SubElement(person, _h("name"))
        for given in result.given_names.split():
            etree.SubElement(name, _h("given")).text = given
        etree.SubElement(name, _h("family"), qualifier="SP").text = result.family_name
        etree.SubElement(person, _h("administrativeGenderCode"), code=result.sex or "U")
        if result.birth_date is not None:
            etree.SubElement(person, _h("birthTime"), value=result.birth_date.strftime("%Y%m%d"))
        custodian = etree.SubElement(event, _h("custodian"), typeCode="CST")
        etree.SubElement(
            etree.SubElement(custodian, _h("assignedEntity"), classCode="ASSIGNED"),
            _h("id"),
            root=DMP_DEVICE_OID,
        )
    query_ack = etree.SubElement(control, _h("queryAck"))
    etree.SubElement(
        query_ack, _h("queryId"), extension=parsed["query_ext"], root=parsed["query_root"]
    )
    etree.SubElement(query_ack, _h("queryResponseCode"), code="OK" if result is not None else "NF")
    return Response(root)


TD0_2 = Transaction(
    name="TD0.2",
    action="urn:hl7-org:v3:PRPA_IN201307UV02",
    response_action="urn:hl7-org:v3:PRPA_IN201308UV02",
    services=frozenset({GDP}),
    event_type="TD0.2",
    atna_event="110112",  # DCM "Query"
    body_element=_h("PRPA_IN201307UV02"),
    parse=parse_existence,
    pdp_action=lambda _p, _ctx: Action.TEST_EXISTENCE,
    space_ins=_existence_space,
    handle=lambda op, _p, _ctx: test_existence(op),
    render=lambda result, ctx: _existence_response(ctx, result),
    render_issues=_fault,
    soap_faults=True,
    on_unknown_space=lambda ctx: _existence_response(ctx, None),
)


# ----------------------------------------------------------------------------- TD0.3
def parse_set_authorization(ctx: RequestContext) -> Action:
    action = (ctx.body.findtext(f"{{{HAB}}}action") or "").strip()
    role = (ctx.body.findtext(f"{{{HAB}}}role") or "").strip() or None
    return authorization_action(action, role)


def _hab_output(tag: str, status: str, context: str) -> Response:
    root = etree.Element(f"{{{HAB}}}{tag}", nsmap={"ns1": HAB})
    output = etree.SubElement(root, f"{{{HAB}}}output")
    etree.SubElement(output, f"{{{HAB}}}status").text = status
    etree.SubElement(output, f"{{{HAB}}}context").text = context
    return Response(root)


TD0_3 = Transaction(
    name="TD0.3",
    action="urn:si-dmp-habilitations:HabilitationsEndPoint:setAuthorization",
    aliases=("urn:hl7-org:v3:setAuthorization",),
    response_action="urn:si-dmp-habilitations:HabilitationsEndPoint:setAuthorizationResponse",
    services=frozenset({HABILITATIONS}),
    event_type="TD0.3",
    atna_event="110110",  # DCM "Patient Record" (authorization of a professional on it)
    body_element=f"{{{HAB}}}setAuthorization",
    parse=parse_set_authorization,
    pdp_action=lambda action, _ctx: action,
    handle=lambda op, action, _ctx: set_authorization(op, action),
    render=lambda context, _ctx: _hab_output("setAuthorizationResponse", "DMPOk", context),
    render_issues=_fault,
    soap_faults=True,
)


# ----------------------------------------------------------------------------- TD1.6
def parse_list_authorizations(ctx: RequestContext) -> str:
    mode = (ctx.body.findtext(f"{{{HAB}}}mode") or "TOUTE").strip()
    if mode not in ("ACTIVE", "INTERDITE", "TOUTE"):
        raise InvalidInput(f"mode {mode!r} is not ACTIVE, INTERDITE or TOUTE", code="bad_mode")
    return mode


def _render_authorizations(entries: list[AuthorizationEntry], _ctx: RequestContext) -> Response:
    root = etree.Element(f"{{{HAB}}}listAuthorizationByPatientResponse", nsmap={"ns1": HAB})
    output = etree.SubElement(root, f"{{{HAB}}}output")
    for entry in entries:
        item = etree.SubElement(output, f"{{{HAB}}}listOfAuthorizationByPatient")
        etree.SubElement(item, f"{{{HAB}}}nationalId").text = entry.professional_id
        etree.SubElement(item, f"{{{HAB}}}nationalIdType").text = "1.2.250.1.71.4.2.1"
        etree.SubElement(item, f"{{{HAB}}}firstName").text = entry.first_name
        etree.SubElement(item, f"{{{HAB}}}lastName").text = entry.last_name
        for code in entry.specialties:
            etree.SubElement(item, f"{{{HAB}}}codeSpeciality").text = code
        etree.SubElement(item, f"{{{HAB}}}startOfAuthorization").text = _dt(entry.since)
        etree.SubElement(item, f"{{{HAB}}}lastActionDate").text = _dt(entry.last_action)
        etree.SubElement(item, f"{{{HAB}}}mode").text = entry.mode
    etree.SubElement(output, f"{{{HAB}}}status").text = "DMPOk"
    etree.SubElement(output, f"{{{HAB}}}context")
    return Response(root)


TD1_6 = Transaction(
    name="TD1.6",
    action="urn:si-dmp-habilitations:HabilitationsEndPoint:listAuthorizationByPatient",
    aliases=("urn:hl7-org:v3:listAuthorizationByPatient",),
    response_action=(
        "urn:si-dmp-habilitations:HabilitationsEndPoint:listAuthorizationByPatientResponse"
    ),
    services=frozenset({HABILITATIONS}),
    event_type="TD1.6",
    atna_event="110112",  # DCM "Query"
    body_element=f"{{{HAB}}}listAuthorizationByPatient",
    parse=parse_list_authorizations,
    pdp_action=lambda _mode, _ctx: Action.LIST_AUTHORIZED_PROFESSIONALS,
    handle=lambda op, mode, _ctx: list_authorizations(op, mode),
    render=_render_authorizations,
    render_issues=_fault,
    soap_faults=True,
)


# ----------------------------------------------------------------------------- TD0.4
def parse_patient_list(ctx: RequestContext) -> tuple[datetime | None, str]:
    from espace.registry import parse_dtm

    start = (ctx.body.findtext(f"{{{PAT}}}startDate") or "").strip()
    date_type = (ctx.body.findtext(f"{{{PAT}}}dateType") or "LASTAUTORIZATION").strip()
    if date_type not in ("LASTAUTORIZATION", "LASTDOC"):
        raise InvalidInput(f"dateType {date_type!r} is not supported", code="bad_date_type")
    try:
        since = parse_dtm(start) if start else None
    except ValueError:
        raise InvalidInput(f"startDate {start!r} is not a date", code="bad_date") from None
    return since, date_type


def _handle_patient_list(
    op: Operation, parsed: tuple[datetime | None, str], _ctx: RequestContext
) -> list[PatientListEntry]:
    return list_authorized_spaces(op, since=parsed[0], date_type=parsed[1])


def _render_patient_list(entries: list[PatientListEntry], _ctx: RequestContext) -> Response:
    root = etree.Element(f"{{{PAT}}}patientListResponse", nsmap={"ns1": PAT})
    output = etree.SubElement(root, f"{{{PAT}}}output")
    for entry in entries:
        item = etree.SubElement(output, f"{{{PAT}}}patientlistData")
        ident = etree.SubElement(item, f"{{{PAT}}}patientIdentifier")
        etree.SubElement(ident, f"{{{PAT}}}nationalId").text = entry.ins
        etree.SubElement(ident, f"{{{PAT}}}nationalIdType").text = entry.ins_oid
        etree.SubElement(item, f"{{{PAT}}}lastName").text = entry.family_name
        etree.SubElement(item, f"{{{PAT}}}firstName").text = entry.given_names
        if entry.birth_date is not None:
            etree.SubElement(item, f"{{{PAT}}}dateOfBirth").text = entry.birth_date.strftime(
                "%Y%m%d"
            )
        etree.SubElement(item, f"{{{PAT}}}MT").text = str(entry.is_medecin_traitant).lower()
        etree.SubElement(item, f"{{{PAT}}}message").text = "false"
        etree.SubElement(item, f"{{{PAT}}}lastAccessDate").text = _dt(entry.last_access)
        etree.SubElement(item, f"{{{PAT}}}lastUpdateDate").text = _dt(entry.last_update)
        etree.SubElement(item, f"{{{PAT}}}lastAddDate").text = _dt(entry.last_add)
    etree.SubElement(output, f"{{{PAT}}}status").text = "DMPOk"
    return Response(root)


TD0_4 = Transaction(
    name="TD0.4",
    action="urn:si-dmp-patients:PatientSpecificEndPoint:patientList",
    response_action="urn:si-dmp-patients:PatientSpecificEndPoint:patientListResponse",
    services=frozenset({PATIENTS}),
    event_type="TD0.4",
    atna_event="110112",  # DCM "Query"
    body_element=f"{{{PAT}}}patientList",
    parse=parse_patient_list,
    pdp_action=lambda _p, _ctx: Action.LIST_AUTHORIZED_SPACES,
    space_ins=lambda _p, _ctx: None,
    handle=_handle_patient_list,
    render=_render_patient_list,
    render_issues=_fault,
    soap_faults=True,
    requires_space=False,
)

TRANSACTIONS = (TD0_2, TD0_3, TD1_6, TD0_4, TD0_5)
