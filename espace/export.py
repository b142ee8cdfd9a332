"""Portability (RGPD art. 20, CSP R.1111-36): export everything of a space.

This module builds the archive; ``espace.lifecycle.export_jobs`` handles the request (HTTP 202),
the job that builds and encrypts it, its status, the download and the expiry.

The export is a ZIP archive holding ``bundle.json`` — a FHIR R4 ``collection`` Bundle of plain
dicts (Patient, DocumentReference, Consent, AuditEvent, plus any FHIR resource stored by the
other bricks) — the document files under ``documents/``, and a raw JSON dump of every other
table of the space under ``data/``.
"""

from __future__ import annotations

import base64
import io
import json
import zipfile
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from espace.clock import as_utc
from espace.crypto import DecryptionError
from espace.db import Base
from espace.models import (
    AppConsent,
    DocumentContent,
    DocumentEntryRow,
    PatientSpace,
    SpaceProfessionalLink,
    TraceRecord,
    unflat,
)
from espace.service import Operation
from espace.store import visibility_clause

DEFAULT_TTL = timedelta(hours=168)
INS_SYSTEM = "urn:oid:1.2.250.1.213.1.4.8"
PS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
# Versions of resources already exported as their current version (kept in the raw dump only).
HISTORY_TABLES = frozenset({"fhir_resource_version", "fhir_search_index"})
# Tables exported through their own mapping (everything else with a space_id is dumped raw).
MAPPED_TABLES = frozenset(
    {
        "patient_space",
        "document_entry",
        "document_content",
        "space_professional_link",
        "app_consent",
        "trace_record",
        "export_archive",
        "enrolment_code",
        "code_letter",
        "notification_outbox",
        "mail_message",
        "fhir_search_index",
        # registry metadata could reveal entries hidden from the caller (minor's secret,
        # INVISIBLE_PATIENT): documents are exported through the visibility predicate only
        "submission_set",
        "folder",
        "association",
        # secrets and encrypted blobs with no meaning for the patient
        "pairing_code",
        "mail_outbound",
        "mail_attachment",
        "mail_draft",
    }
)


# --------------------------------------------------------------------------- FHIR mapping
def _iso(value: datetime | date | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    return value.isoformat()


def patient_resource(space: PatientSpace) -> dict[str, Any]:
    telecom = []
    if space.email:
        telecom.append({"system": "email", "value": space.email})
    if space.phone:
        telecom.append({"system": "phone", "value": space.phone})
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": space.id,
        "identifier": [{"system": f"urn:oid:{space.ins_oid}", "value": space.ins}],
        "name": [{"family": space.family_name, "given": space.given_names.split()}],
        "gender": {"M": "male", "F": "female"}.get(space.sex, "unknown"),
    }
    if telecom:
        resource["telecom"] = telecom
    if space.birth_date:
        resource["birthDate"] = space.birth_date.isoformat()
    if space.death_date:
        resource["deceasedDateTime"] = space.death_date.isoformat()
    if space.medecin_traitant_id:
        resource["generalPractitioner"] = [
            {"identifier": {"system": PS_SYSTEM, "value": space.medecin_traitant_id}}
        ]
    return resource


def document_reference(row: DocumentEntryRow, path: str | None) -> dict[str, Any]:
    attachment: dict[str, Any] = {"contentType": row.mime_type or "application/octet-stream"}
    if path:
        attachment["url"] = path
    if row.title:
        attachment["title"] = row.title
    if row.size:
        attachment["size"] = row.size
    if row.hash:
        attachment["hash"] = base64.b64encode(bytes.fromhex(row.hash)).decode()
    return {
        "resourceType": "DocumentReference",
        "id": row.entry_uuid.removeprefix("urn:uuid:"),
        "masterIdentifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:oid:{row.unique_id}"},
        "status": "current" if row.status == "Approved" else "superseded",
        "type": {"coding": [{"system": row.type_code_system or None, "code": row.type_code}]},
        "date": _iso(row.submission_time),
        "author": [{"identifier": {"value": a}} for a in sorted(unflat(row.author_ids))],
        "securityLabel": [
            {"coding": [{"code": c}]} for c in sorted(unflat(row.confidentiality_codes))
        ],
        "content": [{"attachment": attachment}],
    }


def _consent(
    space: PatientSpace, cid: str, text: str, permit: bool, **extra: Any
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Consent",
        "id": cid,
        "status": "active",
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                }
            ]
        },
        "category": [{"text": text}],
        "patient": {"reference": f"Patient/{space.id}"},
        "policyRule": {"text": text},
        "provision": {"type": "permit" if permit else "deny", **extra},
    }
    return resource


def consents(session: Session, space: PatientSpace) -> list[dict[str, Any]]:
    """The patient's settings and app pairings as FHIR Consent resources."""
    out = [
        _consent(space, "break-glass", "bris_de_glace", space.break_glass_allowed),
        _consent(space, "regulation", "centre_15", space.regulation_allowed),
        _consent(space, "auto-unmask", "auto_unmask_in_emergency", space.auto_unmask_in_emergency),
        _consent(space, "prevention", "personalised_prevention", not space.prevention_opposed),
    ]
    for kind, pid in session.execute(
        select(SpaceProfessionalLink.kind, SpaceProfessionalLink.professional_id).where(
            SpaceProfessionalLink.space_id == space.id
        )
    ).all():
        out.append(
            _consent(
                space,
                f"{kind}-{pid}",
                kind,
                kind.startswith("authorized"),
                actor=[{"reference": {"identifier": {"system": PS_SYSTEM, "value": pid}}}],
            )
        )
    for consent in session.execute(
        select(AppConsent).where(AppConsent.space_id == space.id)
    ).scalars():
        item = _consent(
            space,
            f"app-{consent.id}",
            f"app:{consent.app_id}",
            consent.withdrawn_at is None,
            purpose=[{"code": p} for p in sorted(unflat(consent.purposes))],
        )
        if consent.withdrawn_at is not None:
            item["status"] = "inactive"
        out.append(item)
    return out


def audit_event(record: TraceRecord) -> dict[str, Any]:
    return {
        "resourceType": "AuditEvent",
        "id": f"trace-{record.seq}",
        "type": {"code": record.event_type},
        "action": "E",
        "recorded": _iso(record.recorded_at),
        "outcome": {"success": "0", "failure": "8", "denied": "4"}.get(record.outcome, "8"),
        "agent": [
            {
                "who": {"identifier": {"value": record.actor_id}, "display": record.actor_name},
                "type": {"text": record.actor_kind},
                "requestor": True,
                "purposeOfUse": [{"text": record.access_mode}],
            }
        ],
        "source": {"observer": {"display": record.source_face or "mes"}},
        "entity": [
            {
                "what": {"identifier": {"value": record.target_id}},
                "type": {"code": record.target_type},
            }
        ],
        "extension": [
            {"url": "urn:mes:decision", "valueString": f"{record.decision}:{record.rule_id}"}
        ],
    }


# --------------------------------------------------------------------------- building
def _decrypt(op: Operation, content: DocumentContent) -> bytes | None:
    """Decrypt a stored document (tries the object ids the repository may bind)."""
    for object_id in (
        content.unique_id,
        f"{content.repository_unique_id}/{content.unique_id}",
        str(content.id),
    ):
        try:
            return op.espace.cipher.decrypt(
                content.encrypted, space_id=content.space_id, object_id=object_id
            )
        except DecryptionError:
            continue
    return None


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return _iso(value)
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode()}
    return value


def build_archive(op: Operation) -> tuple[bytes, int, int]:
    """The plain ZIP of the space as the actor sees it: (bytes, documents, resources)."""
    space = op.space
    assert space is not None
    session = op.session
    entries: list[dict[str, Any]] = [{"resource": patient_resource(space)}]
    buffer = io.BytesIO()
    documents = 0
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        rows = session.execute(
            select(DocumentEntryRow)
            .where(DocumentEntryRow.space_id == space.id, visibility_clause(op.visibility()))
            .order_by(DocumentEntryRow.submission_time)
        ).scalars()
        for row in rows:
            content = session.execute(
                select(DocumentContent).where(
                    DocumentContent.space_id == space.id,
                    DocumentContent.unique_id == row.unique_id,
                )
            ).scalar_one_or_none()
            path = None
            data = _decrypt(op, content) if content is not None else None
            if data is not None:
                path = f"documents/{_safe(row.unique_id)}{_extension(row.mime_type)}"
                archive.writestr(path, data)
                documents += 1
            entries.append({"resource": document_reference(row, path)})
        entries += [{"resource": c} for c in consents(session, space)]
        from espace.settings import trace_page

        for record in reversed(trace_page(op, limit=10**9)):
            entries.append({"resource": audit_event(record)})
        entries += [{"resource": c} for c in _messages(op, archive)]
        for table in Base.metadata.sorted_tables:
            if table.name in MAPPED_TABLES or "space_id" not in table.c:
                continue
            dump = []
            for item in session.execute(select(table).where(table.c.space_id == space.id)):
                values = {k: _jsonable(v) for k, v in item._mapping.items()}
                dump.append(values)
                for value in values.values():
                    resource = _as_resource(value)
                    if resource is not None and table.name not in HISTORY_TABLES:
                        entries.append({"resource": resource})
            if dump:
                archive.writestr(f"data/{table.name}.json", json.dumps(dump, indent=1, default=str))
        bundle = {
            "resourceType": "Bundle",
            "type": "collection",
            "timestamp": _iso(op.now),
            "meta": {"tag": [{"code": "mes-export"}]},
            "entry": entries,
        }
        archive.writestr("bundle.json", json.dumps(bundle, indent=1, ensure_ascii=False))
    return buffer.getvalue(), documents, len(entries)


def _messages(op: Operation, archive: zipfile.ZipFile) -> list[dict[str, Any]]:
    """Secure messages (``espace.mailbox``) as FHIR Communication resources, bodies decrypted."""
    import importlib

    try:
        mailbox = importlib.import_module("espace.mailbox")
    except ModuleNotFoundError:
        return []
    space = op.space
    assert space is not None
    out: list[dict[str, Any]] = []
    for conversation in mailbox.conversations(op.session, space.id):
        for message in mailbox.messages_of(op.session, space.id, conversation.id):
            try:
                body = mailbox.message_body(op.espace.cipher, message)
            except DecryptionError:
                body = ""
            path = f"messages/{_safe(message.id)}.txt"
            archive.writestr(path, body)
            out.append(
                {
                    "resourceType": "Communication",
                    "id": message.id,
                    "status": "completed",
                    "identifier": [{"value": message.message_id}],
                    "topic": {"text": message.subject},
                    "sent": _iso(message.received_at),
                    "sender": {"display": f"{message.from_name} <{message.from_address}>"},
                    "category": [{"text": message.direction}],
                    "payload": [
                        {"contentString": body},
                        {"contentAttachment": {"contentType": "text/plain", "url": path}},
                    ],
                }
            )
    return out


def _as_resource(value: Any) -> dict[str, Any] | None:
    """A FHIR resource stored by another brick (a dict, or its JSON text), else None."""
    if isinstance(value, str) and value.startswith("{") and '"resourceType"' in value[:200]:
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if isinstance(value, dict) and isinstance(value.get("resourceType"), str):
        return value
    return None


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in ".-_" else "_" for c in name)[:120]


def _extension(mime: str) -> str:
    return {
        "text/xml": ".xml",
        "application/xml": ".xml",
        "application/pdf": ".pdf",
        "text/plain": ".txt",
        "image/jpeg": ".jpg",
        "image/png": ".png",
    }.get(mime, ".bin")
