"""THE enforcement point of the XDS face: one function handles every SOAP request.

1. read the body as MTOM/XOP or plain SOAP (``xds.mtom.parse_mtom``, size caps) and parse the
   root part through the one hardened parser (``xds.xml.parse_xml``);
2. check the SOAP 1.2 envelope (SOAP 1.1 is read too: the DMP kit's TD2.1 example uses it),
   ``mustUnderstand`` headers and the WS-Addressing Action (``wsa:ActionNotSupported`` when the
   Action is unknown or not offered on this path);
3. verify the VIHF (``xds.vihf.verify_vihf``) against the trusted CAs of ``PKI_DIR``: the
   identity is the one the verifier returns;
4. parse the body with the transaction module, then run it inside exactly one
   ``Espace.operation`` (one PDP decision, one trace record, one database transaction);
5. render the result, or the error as a RegistryResponse with its IHE code (ebXML
   transactions) or a SOAP 1.2 fault (envelope, security, addressing, DMP web services).

No exception escapes as an HTTP 500: an unexpected error is logged, traced and answered with
XDSRegistryError / XDSRepositoryError (or a Receiver fault for the DMP web services).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, Request, g
from flask import Response as FlaskResponse
from lxml import etree
from sqlalchemy import select
from werkzeug.exceptions import RequestEntityTooLarge

from espace.errors import AccessDenied, DomainError, UnknownSpace
from espace.models import PatientSpace
from espace.registry import RegistryConfig, RegistryError, RegistryErrorCode, RegistryIssue
from espace.service import Espace
from espace.trace import Source, TraceEntry
from habilitation.model import Actor, ActorKind, Decision
from xds import ns
from xds.mtom import MtomError, MtomErrorCode, build_mtom_response, parse_mtom, resolve_xop_includes
from xds.transactions import TRANSACTIONS
from xds.transactions.base import REPOSITORY, RequestContext, Response, Transaction
from xds.xml import XmlSecurityError, parse_xml, xml_safe_text

log = logging.getLogger("mes.xds")

FAULT_ACTION = "http://www.w3.org/2005/08/addressing/soap/fault"
UNAUTHENTICATED = Actor(ActorKind.PROFESSIONAL, id="unauthenticated")


class SoapFault(Exception):
    """A SOAP 1.2 fault (W3C SOAP 1.2 Part 1 §5.4) with an optional subcode QName."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "Sender",
        subcode: tuple[str, str] | None = None,
        status: int = 400,
        trace_code: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.subcode = subcode
        self.status = status
        self.trace_code = trace_code or (subcode[1] if subcode else code)


# ----------------------------------------------------------------------------- rendering
def _envelope(body_child: etree._Element, action: str, relates_to: str) -> etree._Element:
    envelope = etree.Element(f"{{{ns.SOAP12}}}Envelope", nsmap={"soap": ns.SOAP12, "wsa": ns.WSA})
    header = etree.SubElement(envelope, f"{{{ns.SOAP12}}}Header")
    etree.SubElement(header, f"{{{ns.WSA}}}Action").text = action
    etree.SubElement(header, f"{{{ns.WSA}}}MessageID").text = f"urn:uuid:{uuid.uuid4()}"
    etree.SubElement(header, f"{{{ns.WSA}}}To").text = ns.WSA_ANONYMOUS
    if relates_to:
        etree.SubElement(header, f"{{{ns.WSA}}}RelatesTo").text = relates_to
    etree.SubElement(envelope, f"{{{ns.SOAP12}}}Body").append(body_child)
    return envelope


def _serialize(envelope: etree._Element) -> bytes:
    data: bytes = etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
    return data


def fault_response(fault: SoapFault, relates_to: str = "") -> FlaskResponse:
    s = ns.SOAP12
    node = etree.Element(f"{{{s}}}Fault", nsmap={"soap": s, "wsse": ns.WSSE, "wsa": ns.WSA})
    code = etree.SubElement(node, f"{{{s}}}Code")
    etree.SubElement(code, f"{{{s}}}Value").text = f"soap:{fault.code}"
    if fault.subcode is not None:
        namespace, local = fault.subcode
        prefix = {ns.WSSE: "wsse", ns.WSA: "wsa"}.get(namespace, "")
        sub = etree.SubElement(code, f"{{{s}}}Subcode")
        value = etree.SubElement(sub, f"{{{s}}}Value", nsmap={prefix or "x": namespace})
        value.text = f"{prefix or 'x'}:{local}"
    reason = etree.SubElement(node, f"{{{s}}}Reason")
    etree.SubElement(reason, f"{{{s}}}Text", {f"{{{ns.XML}}}lang": "en"}).text = xml_safe_text(
        fault.message
    )
    body = _serialize(_envelope(node, FAULT_ACTION, relates_to))
    return FlaskResponse(
        body, status=fault.status, content_type="application/soap+xml; charset=UTF-8"
    )


_PLACEHOLDER = b"<mes-serialized-body/>"


def _soap_response(response: Response, action: str, relates_to: str) -> FlaskResponse:
    if isinstance(response.body, bytes):  # already serialized: spliced into the envelope
        shell = _serialize(_envelope(etree.Element("mes-serialized-body"), action, relates_to))
        head, _, tail = shell.partition(_PLACEHOLDER)
        envelope = b"".join((head, response.body, tail))
    else:
        envelope = _serialize(_envelope(response.body, action, relates_to))
    if response.mtom:
        body, content_type = build_mtom_response(envelope, response.attachments, action=action)
        return FlaskResponse(body, status=200, content_type=content_type)
    return FlaskResponse(
        envelope,
        status=200,
        content_type=f'application/soap+xml; charset=UTF-8; action="{action}"',
    )


# ----------------------------------------------------------------------------- configuration
def trusted_ca_pems(app: Flask) -> list[bytes]:
    """The trusted CA certificates: ``PKI_DIR/ca.cert.pem`` plus ``XDS_TRUSTED_CA_FILES``."""
    cached = app.extensions.get("xds_trusted_cas")
    if cached is not None:
        return list(cached)
    pems: list[bytes] = []
    pki_dir = app.config.get("PKI_DIR")
    if pki_dir and (Path(pki_dir) / "ca.cert.pem").exists():
        pems.append((Path(pki_dir) / "ca.cert.pem").read_bytes())
    for name in str(app.config.get("XDS_TRUSTED_CA_FILES") or "").split(","):
        if name.strip():
            pems.append(Path(name.strip()).read_bytes())
    app.extensions["xds_trusted_cas"] = pems
    return pems


def _replay_cache(app: Flask) -> Any:
    from xds.vihf import InMemoryReplayCache

    cache = app.extensions.get("xds_replay_cache")
    if cache is None:
        cache = app.extensions["xds_replay_cache"] = InMemoryReplayCache()
    return cache


# ----------------------------------------------------------------------------- the endpoint
def _header_text(header: etree._Element | None, local: str) -> str:
    if header is None:
        return ""
    node = header.find(f"{{{ns.WSA}}}{local}")
    return (node.text or "").strip() if node is not None else ""


def _check_envelope(root: etree._Element) -> tuple[etree._Element | None, etree._Element]:
    soap = etree.QName(root).namespace
    if etree.QName(root).localname != "Envelope" or soap not in (ns.SOAP12, ns.SOAP11):
        raise SoapFault("not a SOAP envelope", code="VersionMismatch", trace_code="bad_envelope")
    header = root.find(f"{{{soap}}}Header")
    body = root.find(f"{{{soap}}}Body")
    if body is None:
        raise SoapFault("SOAP envelope without Body", trace_code="bad_envelope")
    children = [c for c in body if isinstance(c.tag, str)]
    if len(children) != 1:
        raise SoapFault("the SOAP Body must hold exactly one element", trace_code="bad_envelope")
    if header is not None:
        for block in header:
            if not isinstance(block.tag, str):
                continue
            must = block.get(f"{{{soap}}}mustUnderstand", "").strip().lower()
            namespace = etree.QName(block).namespace
            if must in ("1", "true") and namespace not in (ns.WSA, ns.WSSE, ns.WSSE11, ns.WSU):
                raise SoapFault(
                    f"header {block.tag} is not understood",
                    code="MustUnderstand",
                    trace_code="must_understand",
                )
    return header, children[0]


def handle_soap(
    app: Flask, request: Request, *, services: frozenset[str], dmp_path: bool
) -> FlaskResponse:
    """Answer one SOAP request on an endpoint offering ``services`` (see the module docstring)."""
    espace: Espace = app.extensions["espace"]
    settings: Mapping[str, Any] = app.config
    source = Source(
        face="xds",
        address=request.remote_addr or "",
        request_id=str(g.get("request_id", "")),
    )
    relates_to = ""
    try:
        message = parse_mtom(
            request.stream,
            request.content_type or "",
            max_part_bytes=int(settings.get("MAX_ATTACHMENT_BYTES") or 50 * 1024 * 1024),
            max_total_bytes=int(settings.get("MAX_REQUEST_BYTES") or 64 * 1024 * 1024),
        )
        root = parse_xml(
            message.root_xml, max_bytes=int(settings.get("XDS_MAX_ENVELOPE_BYTES") or 16 << 20)
        )
        header, body = _check_envelope(root)
        relates_to = _header_text(header, "MessageID")
        action = _header_text(header, "Action")
        if not action:
            raise SoapFault(
                "WS-Addressing Action is required",
                subcode=(ns.WSA, "MessageAddressingHeaderRequired"),
            )
        transaction = TRANSACTIONS.get(action)
        if transaction is None or not services & transaction.services:
            raise SoapFault(
                f"Action {action} is not supported on this endpoint",
                subcode=(ns.WSA, "ActionNotSupported"),
            )
        if etree.QName(body).text != transaction.body_element:
            raise SoapFault(
                f"{transaction.name} expects {transaction.body_element}", trace_code="bad_body"
            )
        verified = _verify(app, espace, root, source, transaction)
        resolved = resolve_xop_includes(root, message.attachments)
        referenced = frozenset(_cid(i.get("href") or "") for i in root.iter(f"{{{ns.XOP}}}Include"))
    except SoapFault as fault:
        _trace_refused(espace, source, UNAUTHENTICATED, "soap", fault.trace_code, None)
        return fault_response(fault, relates_to)
    except XmlSecurityError as exc:
        _trace_refused(espace, source, UNAUTHENTICATED, "soap", f"xml_{exc.refusal}", None)
        return fault_response(SoapFault(exc.message), relates_to)
    except MtomError as exc:
        _trace_refused(espace, source, UNAUTHENTICATED, "soap", f"mtom_{exc.code}", None)
        status = 413 if exc.code is MtomErrorCode.TOO_LARGE else 400
        return fault_response(SoapFault(exc.message, status=status), relates_to)
    except RequestEntityTooLarge:
        _trace_refused(espace, source, UNAUTHENTICATED, "soap", "too_large", None)
        return fault_response(SoapFault("request too large", status=413), relates_to)

    actor: Actor = verified.actor
    source = Source(source.face, source.address, source.request_id, actor.software or "")
    ctx = RequestContext(
        envelope=root,
        body=body,
        resolved=resolved,
        attachments=message.attachments,
        referenced_cids=referenced,
        patient_ins=verified.patient_ins,
        patient_ins_oid=verified.patient_ins_oid,
        config=RegistryConfig.from_settings(settings),
        settings=settings,
        multipart=message.multipart,
        service=sorted(services & transaction.services)[0],
        dmp_path=dmp_path,
        espace=espace,
    )
    return _run(espace, transaction, ctx, actor, source, relates_to)


def _cid(href: str) -> str:
    from urllib.parse import unquote

    scheme, _, rest = href.partition(":")
    return unquote(rest) if scheme.lower() == "cid" else ""


def _verify(
    app: Flask, espace: Espace, root: etree._Element, source: Source, transaction: Transaction
) -> Any:
    from xds.vihf import VihfError, verify_vihf

    try:
        return verify_vihf(
            root,
            trusted_ca_pems=trusted_ca_pems(app),
            now=espace.clock.now(),
            clock_skew=timedelta(seconds=int(app.config.get("VIHF_CLOCK_SKEW_SECONDS") or 300)),
            allow_sha1=bool(app.config.get("VIHF_ALLOW_SHA1")),
            replay_cache=_replay_cache(app),
        )
    except VihfError as exc:
        raise SoapFault(
            exc.message, subcode=(ns.WSSE, exc.code.fault_subcode), trace_code=f"vihf_{exc.code}"
        ) from None


def _trace_refused(
    espace: Espace,
    source: Source,
    actor: Actor,
    event_type: str,
    code: str,
    space_id: str | None,
    action: str = "soap",
) -> None:
    try:
        espace.record(
            TraceEntry(
                actor=actor,
                action=action,
                event_type=event_type,
                decision=Decision.deny("xds_request_refused", code),
                outcome="denied" if code.startswith("vihf") else "failure",
                source=source,
                space_id=space_id,
                error_code=code,
                detail={"face": "xds"},
            )
        )
    except Exception:  # the refusal is answered even if the trace store is down
        log.exception("could not trace a refused XDS request")


def _space_id(espace: Espace, ins: str | None) -> tuple[str | None, str | None]:
    if not ins:
        return None, None
    with espace.session_factory() as session:
        row = session.execute(
            select(PatientSpace.id, PatientSpace.status).where(PatientSpace.ins == ins)
        ).first()
    return (row[0], row[1]) if row is not None else (None, None)


def _issue_response(
    transaction: Transaction, ctx: RequestContext, issues: list[RegistryIssue], relates_to: str
) -> FlaskResponse:
    if transaction.soap_faults:
        first = issues[0]
        return fault_response(SoapFault(f"{first.code}: {first.message}"), relates_to)
    return _soap_response(
        transaction.render_issues(issues, ctx), transaction.response_action_for(ctx), relates_to
    )


def _internal_code(transaction: Transaction) -> RegistryErrorCode:
    if REPOSITORY in transaction.services:
        return RegistryErrorCode.REPOSITORY_ERROR
    return RegistryErrorCode.REGISTRY_ERROR


def _run(
    espace: Espace,
    transaction: Transaction,
    ctx: RequestContext,
    actor: Actor,
    source: Source,
    relates_to: str,
) -> FlaskResponse:
    """Parse the body, then run the transaction in one ``Espace.operation``."""
    try:
        parsed = transaction.parse(ctx)
        space_ins = transaction.space_ins(parsed, ctx)
        if transaction.requires_space and not space_ins:
            raise RegistryError(
                RegistryErrorCode.UNKNOWN_PATIENT_ID,
                "the VIHF names no patient (resource-id)",
            )
        action = transaction.pdp_action(parsed, ctx)
    except RegistryError as exc:
        _trace_refused(
            espace,
            source,
            actor,
            transaction.event_type,
            exc.code,
            _space_id(espace, ctx.patient_ins)[0],
            transaction.name,
        )
        return _issue_response(transaction, ctx, list(exc.issues), relates_to)
    except DomainError as exc:
        _trace_refused(
            espace,
            source,
            actor,
            transaction.event_type,
            exc.code,
            _space_id(espace, ctx.patient_ins)[0],
            transaction.name,
        )
        return _issue_response(
            transaction,
            ctx,
            [RegistryIssue(_internal_code(transaction), exc.message, exc.code)],
            relates_to,
        )
    try:
        with espace.operation(
            actor,
            action,
            event_type=transaction.event_type,
            source=source,
            space_ins=space_ins,
            require_space=transaction.requires_space or space_ins is not None,
        ) as op:
            op.detail.update(
                {"transaction": transaction.name, "atna_event": transaction.atna_event}
            )
            result = transaction.handle(op, parsed, ctx)
        return _soap_response(
            transaction.render(result, ctx), transaction.response_action_for(ctx), relates_to
        )
    except RegistryError as exc:
        return _issue_response(transaction, ctx, list(exc.issues), relates_to)
    except UnknownSpace:
        if transaction.on_unknown_space is not None:
            return _soap_response(
                transaction.on_unknown_space(ctx), transaction.response_action_for(ctx), relates_to
            )
        issue = RegistryIssue(
            RegistryErrorCode.UNKNOWN_PATIENT_ID, "no DMP for this patient", space_ins or ""
        )
        return _issue_response(transaction, ctx, [issue], relates_to)
    except AccessDenied as exc:
        _, status = _space_id(espace, space_ins)
        if status is not None and status != "active" and not transaction.soap_faults:
            issue = RegistryIssue(
                RegistryErrorCode.UNKNOWN_PATIENT_ID,
                f"the DMP of this patient is {status}",
                space_ins or "",
            )
            return _issue_response(transaction, ctx, [issue], relates_to)
        decision = exc.decision
        if transaction.soap_faults:
            return fault_response(
                SoapFault(f"access denied ({decision.rule_id}): {decision.reason}", status=403),
                relates_to,
            )
        issue = RegistryIssue(
            _internal_code(transaction),
            f"Accès refusé ({decision.rule_id}) : {decision.reason}",
            f"PDP:{decision.rule_id}",
        )
        return _issue_response(transaction, ctx, [issue], relates_to)
    except DomainError as exc:
        issue = RegistryIssue(_internal_code(transaction), exc.message, exc.code)
        return _issue_response(transaction, ctx, [issue], relates_to)
    except Exception:
        log.exception("XDS %s failed", transaction.name)
        if transaction.soap_faults:
            return fault_response(
                SoapFault("internal error", code="Receiver", status=500), relates_to
            )
        issue = RegistryIssue(_internal_code(transaction), "internal error", "")
        return _issue_response(transaction, ctx, [issue], relates_to)
