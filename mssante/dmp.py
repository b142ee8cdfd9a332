"""Saving a received XDM document to the DMP through the XDS submission use case.

The DocumentEntry metadata come from the archive's ``METADATA.XML`` (IHE ITI TF-3 §4.3: the
XDM entry is an XDS entry), the author stays the sender's (authorPerson / authorInstitution);
the submission set is new (``2.25.<uuid>`` uniqueId, ITU-T X.667), its source is this service.
``espace.registry.submit.submit_document_set`` then applies the same checks, policy (the
patient's ``SUBMIT_DOCUMENT``), storage, notification and trace as an ITI-41 would.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from espace.errors import InvalidInput
from espace.mailbox import MailAttachment, attachment_bytes
from espace.registry.config import RegistryConfig
from espace.registry.model import (
    HAS_MEMBER,
    Association,
    Author,
    Code,
    DocumentEntry,
    SubmissionRequest,
    SubmissionSet,
    SubmitResult,
)
from espace.registry.store import format_dtm
from espace.registry.submit import submit_document_set
from espace.service import Operation
from mssante.xdm import XdmError, cda_record_target_ids, cx_ins, document_content

DEFAULT_SOURCE_ID = "1.2.250.1.213.4.1.9"  # this service as a document source (configurable)


class CdaInspector:
    """``ContentInspector`` of the registry: recordTarget ids of a CDA (hardened parser)."""

    def record_target_ids(
        self, content: bytes, entry: DocumentEntry
    ) -> list[tuple[str, str]] | None:
        try:
            return cda_record_target_ids(content)
        except XdmError:
            return None


def _code(value: Any) -> Code | None:
    if not isinstance(value, Mapping) or not value.get("code"):
        return None
    return Code(str(value["code"]), str(value.get("scheme", "")), str(value.get("display", "")))


def _split_code(setting: str) -> Code | None:
    code, _, scheme = setting.partition("|")
    return Code(code, scheme) if code else None


def _patient_cx(op: Operation) -> str:
    assert op.space is not None
    return f"{op.space.ins}^^^&{op.space.ins_oid}&ISO^NH"


def _authors(meta: Mapping[str, Any]) -> list[Author]:
    persons = list(meta.get("author_persons") or [])
    institutions = list(meta.get("author_institutions") or [])
    if not persons and not institutions:
        return []
    return [
        Author(
            person=persons[0] if persons else "",
            institutions=institutions,
            roles=list(meta.get("author_roles") or []),
            specialties=list(meta.get("author_specialties") or []),
        )
    ] + [Author(person=p) for p in persons[1:]]


def build_request(
    op: Operation,
    attachment: MailAttachment,
    document: Mapping[str, Any],
    content: bytes,
    *,
    settings: Mapping[str, Any],
    sender_author: Author | None,
) -> SubmissionRequest:
    """Map one XDM DocumentEntry (JSON from :mod:`mssante.xdm`) to a submission request."""
    patient = _patient_cx(op)
    xdm_ss = (attachment.xdm.get("submission_sets") or [{}])[0]
    patient_id = document.get("patient_id") or ""
    source_patient = document.get("source_patient_id") or patient_id
    entry = DocumentEntry(
        id="Document01",
        unique_id=str(document.get("unique_id") or ""),
        patient_id=patient
        if cx_ins(patient_id) in (None, op.space.ins if op.space else None)
        else patient_id,
        mime_type=str(document.get("mime_type") or ""),
        class_code=_code(document.get("class_code")),
        type_code=_code(document.get("type_code")),
        format_code=_code(document.get("format_code")),
        practice_setting_code=_code(document.get("practice_setting_code")),
        healthcare_facility_type_code=_code(document.get("healthcare_facility_type_code")),
        confidentiality_codes=[
            c for c in map(_code, document.get("confidentiality_codes") or []) if c is not None
        ],
        event_codes=[c for c in map(_code, document.get("event_codes") or []) if c is not None],
        authors=_authors(document) or ([sender_author] if sender_author else []),
        creation_time=str(document.get("creation_time") or ""),
        service_start_time=str(document.get("service_start_time") or ""),
        service_stop_time=str(document.get("service_stop_time") or ""),
        title=str(document.get("title") or ""),
        comments=str(document.get("comments") or ""),
        language_code=str(document.get("language_code") or "fr-FR"),
        legal_authenticator=str(document.get("legal_authenticator") or ""),
        source_patient_id=str(source_patient or patient),
        source_patient_info=list(document.get("source_patient_info") or []),
        hash=str(document.get("hash") or ""),
        size=len(content),
    )
    content_type = _code(xdm_ss.get("content_type_code")) or _split_code(
        str(settings.get("MAIL_DMP_DEFAULT_CONTENT_TYPE") or "04|1.2.250.1.213.2.2")
    )
    submission = SubmissionSet(
        id="SubmissionSet01",
        unique_id=f"2.25.{uuid.uuid4().int}",
        source_id=str(settings.get("MAIL_DMP_SOURCE_ID") or DEFAULT_SOURCE_ID),
        patient_id=patient,
        submission_time=format_dtm(op.now),
        content_type_code=content_type,
        authors=_authors(xdm_ss) or list(entry.authors),
        title=str(xdm_ss.get("title") or ""),
    )
    return SubmissionRequest(
        submission_set=submission,
        documents=[entry],
        associations=[
            Association(
                id="Association01",
                type=HAS_MEMBER,
                source=submission.id,
                target=entry.id,
                slots={"SubmissionSetStatus": ["Original"]},
            )
        ],
        contents={entry.id: content},
    )


def save_to_dmp(
    op: Operation,
    attachment: MailAttachment,
    *,
    document_unique_id: str | None,
    settings: Mapping[str, Any],
    sender_author: Author | None = None,
) -> list[SubmitResult]:
    """Submit the XDM document(s) of ``attachment`` (all, or the one named) to the DMP."""
    if not attachment.is_xdm:
        raise InvalidInput(
            "only an IHE_XDM.ZIP attachment can be saved to the DMP", code="not_an_xdm_attachment"
        )
    documents = [
        d
        for d in attachment.xdm.get("documents", [])
        if document_unique_id is None or d.get("unique_id") == document_unique_id
    ]
    if not documents:
        raise InvalidInput("no such document in the archive", code="xdm_document_not_found")
    archive = attachment_bytes(op.espace.cipher, attachment)
    config = RegistryConfig.from_settings(settings)
    results = []
    for document in documents:
        content = document_content(archive, document)
        request = build_request(
            op, attachment, document, content, settings=settings, sender_author=sender_author
        )
        results.append(
            submit_document_set(
                op, request, config=config, provide=True, inspector=CdaInspector(), origin="mail"
            )
        )
    return results
