"""Replay the official DMP example exchanges (DMP integration kit for LPS editors, v2.05.00).

Each request of ``reference/dmp/messages`` (copied to ``conformance/data/dmp-messages``) is sent
as the LPS would send it, with three changes only:

- its VIHF is replaced by one the kit signs (same professional ``899900063480``, same patient);
- submissions get fresh uniqueIds (a second run against a target must not collide);
- the documents the examples name (TD3.2 retrieve, TD3.3c/d status changes) are replaced by
  the document the kit submitted with TD2.1, found through TD3.1.

The response must carry the same SOAP body element as the official response, the same status
(ebRS ``status``, DMP web-service ``status`` = ``DMPOk``, HL7v3 ``acknowledgement/@typeCode``),
and, for the XDS transactions, validate against nist-schema-v3.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from lxml import etree

from conformance.context import KitContext
from conformance.data import DATA_DIR
from conformance.model import CaseResult
from conformance.xds.nist.expectations import registry_errors, response_status, status_word
from conformance.xds.nist.metadata import prepare_submission
from conformance.xds.nist.rawmtom import resign_root_part
from conformance.xds.schema import validate
from conformance.xds.soap import SoapReply, XdsClient, put_assertion, read_reply
from habilitation.model import AccessMode
from xds import ns
from xds.xml import parse_xml

#: The DMP kit's examples carry no licence we know of, so they are not copied into the
#: repository: the kit reads them from ``CONFORMANCE_DMP_MESSAGES`` or the shared reference
#: folder next to the checkout, and marks the DMP cases not applicable when they are absent.
_REFERENCE_CANDIDATES: Final = (
    os.environ.get("MES_REFERENCE_DIR", ""),
    str(DATA_DIR.parents[2] / "shared" / "reference"),
    "/work/shared/reference",  # the workplace's shared folder, for clones made elsewhere
)
DEFAULT_MESSAGES: Final = next(
    (
        Path(c) / "dmp" / "messages"
        for c in _REFERENCE_CANDIDATES
        if c and (Path(c) / "dmp" / "messages").is_dir()
    ),
    DATA_DIR.parents[2] / "shared" / "reference" / "dmp" / "messages",
)


def messages_dir(context: KitContext) -> Path:
    configured = context.extra.get("dmp_messages") or os.environ.get("CONFORMANCE_DMP_MESSAGES")
    return Path(str(configured)) if configured else DEFAULT_MESSAGES


DMP_PATH: Final = "/si-dmp-server/v2/services"
HL7: Final = "urn:hl7-org:v3"
UNIQUE_ID: Final = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"


@dataclass(frozen=True)
class Exchange:
    """One official request/response pair and where a DMP serves it."""

    code: str
    request: str
    response: str
    service: str
    title: str
    spec: str


def _pair(code: str, stem: str, service: str, title: str, spec: str) -> Exchange:
    return Exchange(code, f"{stem}_requete.xml", f"{stem}_reponse.xml", service, title, spec)


_GDP, _HAB, _PAT = "GDP_Service", "Habilitations", "PatientsSpecific"
_PDQ = "PDQSupplier_Service"  # DMP kit PDQSupplier.wsdl
_REG, _REP = "DocumentRegistry_Service", "DocumentRepository_Service"
#: In an order that works on a fresh space: authorize, feed, find, read, archive, delete, close.
EXCHANGES: Final = (
    _pair("TD0.2", "TD0.2_Test_dexistence", _GDP, "Test existence (PRPA_IN201307)", "HL7v3"),
    _pair("TD0.3", "TD0.3_Mise_a_jour_de_lautorisation", _HAB, "setAuthorization", "DMP WS"),
    _pair("TD1.6", "TD1.6_Liste_des_PS_autorises_ou_bloques", _HAB, "listAuthorization", "DMP WS"),
    _pair("TD0.4", "TD0.4_Liste_des_DMP_autorises", _PAT, "patientList", "DMP WS"),
    _pair("TD1.3a", "TD1.3a_Consultation", _GDP, "Read administrative data", "HL7v3"),
    _pair("TD1.3b", "TD1.3b_Modification", _GDP, "Update administrative data", "HL7v3"),
    _pair(
        "TD1.5a",
        "TD1.5a_Creation_du_compte_internet_patient",
        _PAT,
        "createPatientAccess",
        "DMP WS",
    ),
    _pair("TD1.5b", "TD1.5b_Ajout_dun_canal_OTP", _PAT, "patientOTPUpdate", "DMP WS"),
    _pair(
        "TD1.5d",
        "TD1.5d_Maj_des_information_du_compte_internet",
        _PAT,
        "updatePatientAccess",
        "DMP WS",
    ),
    _pair("TD2.1", "TD2.1_Alimentation", _REP, "Feed a document (ITI-41, MTOM)", "IHE ITI-41"),
    _pair("TD3.1", "TD3.1_Recherche_de_document", _REG, "FindDocuments (ITI-18)", "IHE ITI-18"),
    _pair("TD3.2", "TD3.2_Consultation_dun_document", _REP, "Retrieve (ITI-43)", "IHE ITI-43"),
    _pair("TD3.3d", "TD3.3d_Archiver_un_document", _REG, "Archive (ITI-57)", "IHE ITI-57"),
    _pair("TD3.3c", "TD3.3c_Supprimer_un_document", _REG, "Delete (ITI-57)", "IHE ITI-57"),
    _pair("TD0.5", "TD0.5_Recherche_dun_patient_sans_INS", _PDQ, "PDQ without INS", "HL7v3"),
    _pair("TD1.4", "TD1.4_Fermer", _GDP, "Close the DMP (PRPA_IN201314)", "HL7v3"),
)
_RETIRED: Final = (
    "Not in the DMP-compatibility functional rights matrix PDT-INF-526 v1.8 (2024-09-25): since "
    "Mon espace santé the patient manages his own account, administrative data and the "
    "closing of his space; a professional's LPS no longer can ({what})."
)
RETIRED: Final = {
    "TD1.3b": _RETIRED.format(what="update administrative data"),
    "TD1.4": _RETIRED.format(what="close a DMP"),
    "TD1.5a": _RETIRED.format(what="create the patient's web account"),
    "TD1.5b": _RETIRED.format(what="add an OTP channel"),
    "TD1.5d": _RETIRED.format(what="update the patient's web account"),
}
NOT_APPLICABLE: Final = {
    "WS_INS2": (
        "INSi teleservice (rechercherInsAvecTraitsIdentite) is served by the CNAM INSi "
        "platform, not by the DMP/MES; the example is kept for reference only."
    ),
}
#: Codes of the 2019 examples that today's DMP value sets no longer hold, with the current
#: code of the same class (ASS_X16: classCode 10 "Compte rendu"); the case says when used.
OBSOLETE_CODES: Final = {
    b'nodeRepresentation="27899-4"': b'nodeRepresentation="11488-4"',  # not in JDV_J07/J66
}
_RESOURCE_ID: Final = re.compile(r"(\d{13,15})\^\^\^&(?:amp;)?([0-9.]+)&(?:amp;)?ISO")


@dataclass
class ReplayState:
    """What later exchanges need from earlier ones."""

    document_uid: str = ""
    entry_uuid: str = ""
    repository_uid: str = ""
    notes: list[str] = field(default_factory=list)


def _patient(text: str) -> tuple[str, str] | None:
    found = _RESOURCE_ID.search(text)
    return (found.group(1), found.group(2)) if found else None


def _action(envelope: etree._Element) -> str:
    for child in envelope.iter(f"{{{ns.WSA}}}Action"):
        return (child.text or "").strip()
    return ""


def _content_type(envelope: etree._Element, action: str) -> tuple[str, dict[str, str]]:
    if etree.QName(envelope).namespace == ns.SOAP11:
        return "text/xml; charset=UTF-8", {"SOAPAction": f'"{action}"'}
    return f'application/soap+xml; charset=UTF-8; action="{action}"', {}


#: Exchanges PDT-INF-526 v1.8 allows in régulation (centre 15) access only, while the 2019
#: example's VIHF says ``normal``: the kit sends them in régulation mode and says so.
REGULATION_ONLY: Final = frozenset({"TD0.5"})


def _resign(
    client: XdsClient,
    envelope: etree._Element,
    ins: str,
    oid: str,
    access_mode: AccessMode = AccessMode.NORMAL,
) -> bytes:
    return put_assertion(envelope, client.assertion(ins, oid, access_mode))


def _adapt(exchange: Exchange, envelope: etree._Element, state: ReplayState) -> None:
    """Point TD3.2/TD3.3 at the kit's own document; fresh uniqueIds for submissions."""
    if exchange.code == "TD3.2":
        for element in envelope.iter(f"{{{ns.XDS}}}DocumentUniqueId"):
            element.text = state.document_uid
        for element in envelope.iter(f"{{{ns.XDS}}}RepositoryUniqueId"):
            element.text = state.repository_uid or element.text
    if exchange.code in ("TD3.3c", "TD3.3d"):
        for association in envelope.iter(f"{{{ns.RIM}}}Association"):
            if association.get("associationType", "").endswith("UpdateAvailabilityStatus"):
                association.set("targetObject", state.entry_uuid)
        request = envelope.find(f".//{{{ns.LCM}}}SubmitObjectsRequest")
        if request is not None:
            prepare_submission(
                request,
                patient_id=None,
                assign_uids=True,
                no_assign_uid_ids=frozenset(),
                assign_uuids=False,
            )


def _learn(exchange: Exchange, reply: SoapReply, state: ReplayState) -> None:
    body = reply.body_child
    if body is None:
        return
    if exchange.code == "TD3.1":
        for entry in body.iter(f"{{{ns.RIM}}}ExtrinsicObject"):
            uids = [
                e.get("value", "")
                for e in entry.findall(f"{{{ns.RIM}}}ExternalIdentifier")
                if e.get("identificationScheme") == UNIQUE_ID
            ]
            if state.document_uid in uids:
                state.entry_uuid = entry.get("id", "")
                for slot in entry.findall(f"{{{ns.RIM}}}Slot"):
                    if slot.get("name") == "repositoryUniqueId":
                        value = slot.find(f".//{{{ns.RIM}}}Value")
                        state.repository_uid = (
                            (value.text or "").strip() if value is not None else ""
                        )


def _status_text(body: etree._Element) -> str:
    """The DMP web-service ``output/status`` (DMPOk...), HL7v3 ack typeCode, or ebRS status."""
    if body.get("status") or body.find(f"{{{ns.RS}}}RegistryResponse") is not None:
        return status_word(response_status(body))
    for element in body.iter():
        if isinstance(element.tag, str) and etree.QName(element).localname == "status":
            return (element.text or "").strip()
    for element in body.iter(f"{{{HL7}}}acknowledgement"):
        # an attribute in the GDP answers (TD0.2), a CS element in the PDQ one (TD0.5)
        child = element.find(f"{{{HL7}}}typeCode")
        return str(element.get("typeCode") or (child.get("code", "") if child is not None else ""))
    return ""


def _compare(case: CaseResult, expected: etree._Element, reply: SoapReply, xds: bool) -> None:
    if not case.check(not reply.problem, f"HTTP {reply.status}: {reply.problem}"):
        return
    body = reply.body_child
    assert body is not None
    if reply.is_fault:
        case.fail(
            f"SOAP Fault {reply.fault_code} (HTTP {reply.status}) where the DMP answers "
            f"{etree.QName(expected).localname}"
        )
        return
    case.check(
        etree.QName(body) == etree.QName(expected),
        f"response body is {etree.QName(body).text}, the DMP answers {etree.QName(expected).text}",
    )
    want, got = _status_text(expected), _status_text(body)
    errors = "; ".join(f"{c} ({x[:120]})" for c, _, x in registry_errors(body)[:3])
    case.check(
        want == got,
        f"status {got or '(none)'}, the DMP answers {want or '(none)'}"
        + (f"; errors: {errors}" if errors else ""),
    )
    if xds:
        problems = validate(body, reply.resolved)
        case.check(not problems, "not valid against nist-schema-v3: " + "; ".join(problems[:3]))


def _expected_body(path: Path) -> etree._Element:
    envelope = parse_xml(path.read_bytes())
    body = next(e for e in envelope if etree.QName(e).localname == "Body")
    return body[0]


def replay_one(
    context: KitContext, client: XdsClient, exchange: Exchange, state: ReplayState
) -> CaseResult:
    case = CaseResult(
        suite="dmp",
        case_id=f"dmp/{exchange.code}",
        title=f"DMP example {exchange.code}: {exchange.title}",
        spec=f"DMP integration kit v2.05.00 {exchange.code} ({exchange.spec})",
    )
    started = time.perf_counter()
    folder = messages_dir(context)
    raw = (folder / exchange.request).read_bytes()
    expected = _expected_body(folder / exchange.response)
    case.expectation = (
        f"HTTP 200 with {etree.QName(expected).localname}, status "
        f"{_status_text(expected) or '(none)'} as in {exchange.response}"
    )
    patient = _patient(raw.decode("utf-8", errors="replace"))
    if patient is None:
        case.error("no patient INS in the example")
        return case
    ins, oid = patient
    context.patients.ensure(ins)
    path = f"{DMP_PATH}/{exchange.service}"
    xds = exchange.spec.startswith("IHE")
    if exchange.code == "TD2.1":
        for old, new in OBSOLETE_CODES.items():
            if old in raw:
                raw = raw.replace(old, new)
                case.reasons.append(
                    f"adapted: typeCode {old.decode()} of the 2019 example, absent from "
                    f"JDV_J66 2024, sent as {new.decode()} (same classCode 10)"
                )
        first_line = raw.split(b"\n", 1)[0].strip()
        boundary = first_line[2:].decode()
        content_type = (
            f'multipart/related; type="application/xop+xml"; boundary="{boundary}"; '
            'start="<rootpart@soapui.org>"; start-info="application/soap+xml"; '
            'action="urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"'
        )
        payload, prepared = resign_root_part(
            raw, content_type, client, patient_cx=None, patient_oid=oid, patient_ins=ins
        )
        if prepared is not None:
            entries = [
                e.get("id", "") for e in prepared.element.iter(f"{{{ns.RIM}}}ExtrinsicObject")
            ]
            state.document_uid = prepared.assigned_uids.get(entries[0], "") if entries else ""
        reply = client.post_raw(case, "TD2.1 request (re-signed)", path, payload, content_type)
    else:
        envelope = parse_xml(raw)
        if exchange.code in ("TD3.2", "TD3.3c", "TD3.3d") and not (
            state.document_uid and (state.entry_uuid or exchange.code == "TD3.2")
        ):
            case.error("the document fed by TD2.1 was not found by TD3.1")
            return case
        _adapt(exchange, envelope, state)
        action = _action(envelope)
        content_type, headers = _content_type(envelope, action)
        access = AccessMode.NORMAL
        if exchange.code in REGULATION_ONLY:
            access = AccessMode.REGULATION
            case.reasons.append(
                f"adapted: PDT-INF-526 v1.8 allows {exchange.code} in régulation (centre 15) "
                "access only; the 2019 example's VIHF says normal, the kit sends centre_15"
            )
        payload = _resign(client, envelope, ins, oid, access)
        response = context.transport.send(
            case,
            f"{exchange.code} request (re-signed)",
            "POST",
            path,
            headers={"Content-Type": content_type, **headers},
            content=payload,
        )
        reply = read_reply(response)
    _compare(case, expected, reply, xds)
    _learn(exchange, reply, state)
    case.duration_s = time.perf_counter() - started
    return case


def run_dmp_replay(context: KitContext) -> list[CaseResult]:
    folder = messages_dir(context)
    if not (folder / EXCHANGES[0].request).is_file():
        absent = []
        for exchange in EXCHANGES:
            case = CaseResult(suite="dmp", case_id=f"dmp/{exchange.code}", title=exchange.title)
            case.not_applicable(
                f"the DMP example messages are not available at {folder} (set "
                "CONFORMANCE_DMP_MESSAGES; they are not redistributed with the kit)"
            )
            absent.append(case)
        return absent
    client = context.xds_client()
    state = ReplayState()
    results: list[CaseResult] = []
    for exchange in EXCHANGES:
        if exchange.code in RETIRED:
            retired = CaseResult(suite="dmp", case_id=f"dmp/{exchange.code}", title=exchange.title)
            retired.not_applicable(RETIRED[exchange.code])
            results.append(retired)
            continue
        try:
            results.append(replay_one(context, client, exchange, state))
        except Exception as exc:  # the kit reports, it does not crash
            case = CaseResult(suite="dmp", case_id=f"dmp/{exchange.code}", title=exchange.title)
            case.error(f"{type(exc).__name__}: {exc}")
            results.append(case)
    for code, reason in NOT_APPLICABLE.items():
        case = CaseResult(suite="dmp", case_id=f"dmp/{code}", title=f"DMP example {code}")
        case.not_applicable(reason)
        results.append(case)
    return results
