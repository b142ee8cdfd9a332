"""TD0.5 patient search without INS (DMP LPS kit ``PDQSupplier.wsdl``, message TD0.5).

The DMP's shape of IHE PDQv3 ITI-47 (IHE ITI TF-2b 3.47): HL7v3 ``PRPA_IN201305UV02``
(Find Candidates Query) answered by ``PRPA_IN201306UV02``, both as in the kit's example
``TD0.5_Recherche_dun_patient_sans_INS``. Query parameters read (ITI TF-2b 3.47.4.1.2.1):
``livingSubjectName`` (family, given), ``livingSubjectBirthTime`` (``YYYY[MM[DD]]``),
``livingSubjectAdministrativeGender``, ``livingSubjectId`` (an INS) and
``patientAddress/postalCode`` (accepted, not matched: spaces hold no address).

Each subject carries, as the DMP's example does, the INS, the identity traits, a
``queryMatchObservation`` (100: our matching is exact) and the ``OPPOSITION_ACCES_URGENCE``
administrative observation (1.2.250.1.213.4.1.2.3), true when the patient disabled centre 15
access.

Errors are HL7v3 application acknowledgements, not SOAP faults (HL7v3 ITS / MCCI_MT000300UV01):
``acknowledgement/typeCode`` AE with an ``acknowledgementDetail`` naming our error code, and
``queryAck/queryResponseCode`` QE when the query itself is at fault (no criterion, a malformed
one, or more matches than the cap, ``too_many_matches``: the caller must refine), AE otherwise
(access denied by the PDP, internal error). The DMP's own wording of its "too many patients"
answer is not in the sources we have (SEL-MP-037 is not public): see docs/xds.md.

Access: PDT-INF-526 v1.8 allows TD0.5 only in régulation (centre 15) access mode; the PDP
(``Action.SEARCH_PATIENT_WITHOUT_INS``) decides it once per search, and the search is traced
with the names (never the values) of the criteria used and the number of results.
"""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, date, datetime
from typing import Final

from lxml import etree

from espace.errors import InvalidInput
from espace.registry import RegistryIssue
from espace.registry.authorizations import (
    DEFAULT_SEARCH_MAX_RESULTS,
    PatientCandidate,
    PatientSearchCriteria,
    search_patients,
)
from espace.service import Operation
from espace.spaces import INS_OIDS
from habilitation.model import Action
from xds import ns
from xds.transactions.base import RequestContext, Response, Transaction

PDQ: Final = "pdq"  # the DMP's PDQSupplier service (PDQSupplier.wsdl)
ACTION: Final = "urn:hl7-org:v3:PRPA_IN201305UV02"
RESPONSE_ACTION: Final = "urn:hl7-org:v3:PRPA_IN201306UV02"
HL7: Final = ns.HL7
DMP_DEVICE_OID: Final = "1.2.250.1.213.4.1.1.1"
DMP_OBSERVATION_CODES: Final = "1.2.250.1.213.4.1.2.3"  # OPPOSITION_ACCES_URGENCE...
HL7_INTERACTION: Final = "2.16.840.1.113883.1.6"
MAX_NAME_LENGTH: Final = 200  # PatientSpace.family_name / given_names
#: Our error codes for which the query, not the server, is at fault (queryResponseCode QE).
QUERY_ERRORS: Final = frozenset(
    {
        "too_many_matches",
        "no_search_criteria",
        "bad_birth_time",
        "bad_gender",
        "bad_identifier",
        "bad_name",
        "missing_query",
    }
)
_GENDERS: Final = {"M": "M", "F": "F", "U": "U", "UN": "U"}


def _h(local: str) -> str:
    return f"{{{HL7}}}{local}"


def _text(element: etree._Element | None) -> str:
    return " ".join((element.text or "").split()) if element is not None else ""


def _birth_range(raw: str) -> tuple[date, date]:
    """``YYYY``, ``YYYYMM`` or ``YYYYMMDD[hhmm...]`` (HL7v3 TS) as [start, end)."""
    digits = raw.strip()
    try:
        if len(digits) >= 8 and digits[:8].isdigit():
            start = date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
            return start, date.fromordinal(start.toordinal() + 1)
        if len(digits) == 6 and digits.isdigit():
            start = date(int(digits[:4]), int(digits[4:6]), 1)
            year, month = (
                (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
            )
            return start, date(year, month, 1)
        if len(digits) == 4 and digits.isdigit():
            return date(int(digits), 1, 1), date(int(digits) + 1, 1, 1)
    except ValueError:
        pass
    raise InvalidInput(f"livingSubjectBirthTime {raw!r} is not a date", code="bad_birth_time")


def _name(value: str, what: str) -> str:
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidInput(f"{what} longer than {MAX_NAME_LENGTH} characters", code="bad_name")
    return value


def parse(ctx: RequestContext) -> PatientSearchCriteria:
    """Read the ITI-47 query parameters of ``PRPA_IN201305UV02``."""
    params = ctx.body.find(
        f"{_h('controlActProcess')}/{_h('queryByParameter')}/{_h('parameterList')}"
    )
    if params is None:
        raise InvalidInput(
            "PRPA_IN201305UV02 without queryByParameter/parameterList", code="missing_query"
        )
    name = params.find(f"{_h('livingSubjectName')}/{_h('value')}")
    family = _name(_text(name.find(_h("family"))) if name is not None else "", "family name")
    given = _name(_text(name.find(_h("given"))) if name is not None else "", "given name")
    birth = params.find(f"{_h('livingSubjectBirthTime')}/{_h('value')}")
    birth_from = birth_until = None
    if birth is not None and (birth.get("value") or "").strip():
        birth_from, birth_until = _birth_range(birth.get("value") or "")
    gender = params.find(f"{_h('livingSubjectAdministrativeGender')}/{_h('value')}")
    sex = ""
    if gender is not None and (gender.get("code") or "").strip():
        code = (gender.get("code") or "").strip().upper()
        if code not in _GENDERS:
            raise InvalidInput(
                f"administrative gender {code!r} is not M, F or UN", code="bad_gender"
            )
        sex = _GENDERS[code]
    ins = ""
    identifier = params.find(f"{_h('livingSubjectId')}/{_h('value')}")
    if identifier is not None and identifier.get("extension"):
        if identifier.get("root") not in INS_OIDS:
            raise InvalidInput(
                f"livingSubjectId root {identifier.get('root')!r} is not an INS domain",
                code="bad_identifier",
            )
        ins = (identifier.get("extension") or "").strip()
    postal = params.find(f"{_h('patientAddress')}/{_h('value')}/{_h('postalCode')}")
    return PatientSearchCriteria(
        family_name=family,
        given_name=given,
        birth_from=birth_from,
        birth_until=birth_until,
        sex=sex,
        ins=ins,
        postal_code=_text(postal),
    )


def max_results(ctx: RequestContext) -> int:
    """``XDS_PATIENT_SEARCH_MAX_RESULTS`` (default :data:`DEFAULT_SEARCH_MAX_RESULTS`)."""
    try:
        configured = int(ctx.settings.get("XDS_PATIENT_SEARCH_MAX_RESULTS") or 0)
    except (TypeError, ValueError):
        configured = 0
    return configured if configured > 0 else DEFAULT_SEARCH_MAX_RESULTS


def handle(
    op: Operation, criteria: PatientSearchCriteria, ctx: RequestContext
) -> list[PatientCandidate]:
    return search_patients(op, criteria, max_results=max_results(ctx))


# ----------------------------------------------------------------------------- rendering
def _header(ctx: RequestContext) -> etree._Element:
    root = etree.Element(_h("PRPA_IN201306UV02"), ITSVersion="XML_1.0", nsmap={None: HL7})
    etree.SubElement(root, _h("id"), root=str(uuid.uuid4()))
    now = ctx.espace.clock.now() if ctx.espace is not None else datetime.now(UTC)
    etree.SubElement(root, _h("creationTime"), value=now.strftime("%Y%m%d%H%M%S"))
    etree.SubElement(root, _h("interactionId"), extension="PRPA_IN201306UV02", root=HL7_INTERACTION)
    etree.SubElement(root, _h("processingCode"), code="P")
    etree.SubElement(root, _h("processingModeCode"), code="T")
    etree.SubElement(root, _h("acceptAckCode"), code="NE")
    # the receiver is the requesting device (the request's sender), the sender is the DMP
    receiver = etree.SubElement(root, _h("receiver"), typeCode="RCV")
    asked = ctx.body.find(f"{_h('sender')}/{_h('device')}")
    if asked is not None:
        receiver.append(copy.deepcopy(asked))
    else:
        device = etree.SubElement(
            receiver, _h("device"), classCode="DEV", determinerCode="INSTANCE"
        )
        etree.SubElement(device, _h("id"), nullFlavor="UNK")
    sender = etree.SubElement(root, _h("sender"), typeCode="SND")
    device = etree.SubElement(sender, _h("device"), classCode="DEV", determinerCode="INSTANCE")
    etree.SubElement(device, _h("id"), root=DMP_DEVICE_OID)
    etree.SubElement(device, _h("softwareName")).text = "DMP"
    return root


def _acknowledgement(
    root: etree._Element, ctx: RequestContext, type_code: str, details: list[RegistryIssue]
) -> None:
    ack = etree.SubElement(root, _h("acknowledgement"))
    etree.SubElement(ack, _h("typeCode"), code=type_code)
    target = etree.SubElement(ack, _h("targetMessage"))
    message_id = ctx.body.find(_h("id"))
    if message_id is not None:
        target.append(copy.deepcopy(message_id))
    else:
        etree.SubElement(target, _h("id"), nullFlavor="UNK")
    for issue in details:
        detail = etree.SubElement(ack, _h("acknowledgementDetail"), typeCode="E")
        etree.SubElement(detail, _h("code"), code=_detail_code(issue))
        etree.SubElement(detail, _h("text")).text = issue.message


def _detail_code(issue: RegistryIssue) -> str:
    return issue.location or str(issue.code)


def _control_act(
    root: etree._Element,
    ctx: RequestContext,
    candidates: list[PatientCandidate],
    response_code: str,
) -> etree._Element:
    control = etree.SubElement(root, _h("controlActProcess"), classCode="CACT", moodCode="EVN")
    etree.SubElement(control, _h("code"), code="PRPA_TE201306UV02", codeSystem=HL7_INTERACTION)
    for candidate in candidates:
        control.append(_subject(candidate))
    query_ack = etree.SubElement(control, _h("queryAck"))
    query_id = ctx.body.find(f"{_h('controlActProcess')}/{_h('queryByParameter')}/{_h('queryId')}")
    if query_id is not None:
        query_ack.append(copy.deepcopy(query_id))
    etree.SubElement(query_ack, _h("queryResponseCode"), code=response_code)
    if response_code in ("OK", "NF"):
        count = str(len(candidates))
        etree.SubElement(query_ack, _h("resultTotalQuantity"), value=count)
        etree.SubElement(query_ack, _h("resultCurrentQuantity"), value=count)
        etree.SubElement(query_ack, _h("resultRemainingQuantity"), value="0")
    query = ctx.body.find(f"{_h('controlActProcess')}/{_h('queryByParameter')}")
    if query is not None:
        control.append(copy.deepcopy(query))
    return control


def _subject(candidate: PatientCandidate) -> etree._Element:
    xsi_type = f"{{{ns.XSI}}}type"
    subject = etree.Element(_h("subject"), contextConductionInd="false", typeCode="SUBJ")
    event = etree.SubElement(subject, _h("registrationEvent"), classCode="REG", moodCode="EVN")
    etree.SubElement(event, _h("statusCode"), code="active")
    patient = etree.SubElement(
        etree.SubElement(event, _h("subject1"), typeCode="SBJ"), _h("patient"), classCode="PAT"
    )
    etree.SubElement(patient, _h("id"), extension=candidate.ins, root=candidate.ins_oid)
    etree.SubElement(patient, _h("statusCode"), code="active")
    person = etree.SubElement(
        patient, _h("patientPerson"), classCode="PSN", determinerCode="INSTANCE"
    )
    name = etree.SubElement(person, _h("name"))
    for given in candidate.given_names.split():
        etree.SubElement(name, _h("given")).text = given
    etree.SubElement(name, _h("family"), qualifier="SP").text = candidate.family_name
    etree.SubElement(person, _h("administrativeGenderCode"), code=candidate.sex or "U")
    if candidate.birth_date is not None:
        etree.SubElement(person, _h("birthTime"), value=candidate.birth_date.strftime("%Y%m%d"))
    match = etree.SubElement(
        etree.SubElement(patient, _h("subjectOf1"), typeCode="SBJ"),
        _h("queryMatchObservation"),
        classCode="COND",
        moodCode="EVN",
    )
    etree.SubElement(match, _h("code"), {"code": "POURCENTAGE", xsi_type: "CS"})
    etree.SubElement(match, _h("value"), {"value": "100", xsi_type: "INT"})
    observation = etree.SubElement(
        etree.SubElement(patient, _h("subjectOf2")), _h("administrativeObservation")
    )
    etree.SubElement(
        observation,
        _h("code"),
        code="OPPOSITION_ACCES_URGENCE",
        codeSystem=DMP_OBSERVATION_CODES,
        displayName="opposition au mode Urgence",
    )
    etree.SubElement(
        observation,
        _h("value"),
        {"value": str(candidate.emergency_access_opposed).lower(), xsi_type: "BL"},
    )
    custodian = etree.SubElement(event, _h("custodian"), typeCode="CST")
    etree.SubElement(
        etree.SubElement(custodian, _h("assignedEntity"), classCode="ASSIGNED"),
        _h("id"),
        root=DMP_DEVICE_OID,
    )
    return subject


def render(candidates: list[PatientCandidate], ctx: RequestContext) -> Response:
    root = _header(ctx)
    _acknowledgement(root, ctx, "AA", [])
    _control_act(root, ctx, candidates, "OK" if candidates else "NF")
    return Response(root)


def render_issues(issues: list[RegistryIssue], ctx: RequestContext) -> Response:
    root = _header(ctx)
    _acknowledgement(root, ctx, "AE", issues)
    query_fault = any(issue.location in QUERY_ERRORS for issue in issues)
    _control_act(root, ctx, [], "QE" if query_fault else "AE")
    return Response(root)


TRANSACTION = Transaction(
    name="TD0.5",
    action=ACTION,
    response_action=RESPONSE_ACTION,
    services=frozenset({PDQ}),
    event_type="TD0.5",
    atna_event="110112",  # DCM "Query" (ITI TF-2b 3.47.5.1)
    body_element=_h("PRPA_IN201305UV02"),
    parse=parse,
    pdp_action=lambda _criteria, _ctx: Action.SEARCH_PATIENT_WITHOUT_INS,
    space_ins=lambda _criteria, _ctx: None,
    handle=handle,
    render=render,
    render_issues=render_issues,
    requires_space=False,
)
