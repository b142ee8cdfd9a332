"""What the NIST toolkit does to a submission before sending it (xdstest2 ``RegisterTransaction``).

- ``$symbol$`` substitution in the file text (``UseId``/``UseReport``), XML-escaped;
- ebRIM 2.1 to 3.0 (:mod:`conformance.xds.nist.translate`);
- unless ``<NoPatientId/>``: every ``XDSSubmissionSet/XDSDocumentEntry/XDSFolder.patientId``
  ExternalIdentifier is set to the step's patient id;
- unless ``<NoAssignUids/>`` (for all objects, or ``id=`` one object): fresh ``uniqueId`` values,
  logged in the ``AssignedUids`` section;
- with ``<AssignUuids/>``: symbolic ids become ``urn:uuid:`` ids, every reference follows,
  logged in ``AssignedUuids``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final
from xml.sax.saxutils import escape

from lxml import etree

from conformance.xds.nist.translate import to_v3
from xds import ns
from xds.xml import parse_xml

PATIENT_ID_SCHEMES: Final = frozenset(
    {
        "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446",  # XDSSubmissionSet.patientId
        "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427",  # XDSDocumentEntry.patientId
        "urn:uuid:f64ffdf0-4b97-4e06-b79f-a52b38ec2f8a",  # XDSFolder.patientId
    }
)
UNIQUE_ID_SCHEMES: Final = frozenset(
    {
        "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8",  # XDSSubmissionSet.uniqueId
        "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab",  # XDSDocumentEntry.uniqueId
        "urn:uuid:75df8f67-9973-4fbe-a900-df66cefecc5a",  # XDSFolder.uniqueId
    }
)
SS_NODE: Final = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"
FOLDER_NODE: Final = "urn:uuid:d9d542f3-6cc4-48b6-8870-ea235fbc94c2"
_REFERENCE_ATTRIBUTES: Final = (
    "id",
    "classifiedObject",
    "registryObject",
    "sourceObject",
    "targetObject",
    "lid",
)
_TOP_LEVEL: Final = frozenset({"ExtrinsicObject", "RegistryPackage", "Association"})
INS_ROOT: Final = "&1.2.250.1.213.1.4."  # INS OIDs (NIR, NIA, test, demo)
_SYMBOL: Final = re.compile(r"\$[A-Za-z0-9_]+\$")


def substitute(text: str, values: Mapping[str, str], *, xml: bool = True) -> str:
    """Replace each symbol of ``values`` in ``text`` (longest first), XML-escaping values."""
    for symbol in sorted(values, key=len, reverse=True):
        value = values[symbol]
        text = text.replace(symbol, escape(value, {'"': "&quot;"}) if xml else value)
    return text


def unresolved_symbols(text: str) -> list[str]:
    """``$symbols$`` still present after substitution."""
    return sorted(set(_SYMBOL.findall(text)))


def new_unique_id() -> str:
    """A fresh OID under 2.25 (ITU-T X.667 UUID-derived OID), at most 44 characters."""
    return f"2.25.{uuid.uuid4().int}"


@dataclass
class Prepared:
    """A submission ready to send, plus what the step logs about it."""

    element: etree._Element
    assigned_uids: dict[str, str] = field(default_factory=dict)
    assigned_uuids: dict[str, str] = field(default_factory=dict)
    assigned_patient: dict[str, str] = field(default_factory=dict)
    mapping: dict[str, str] = field(default_factory=dict)  # symbolic id -> assigned UUID


def _local(element: etree._Element) -> str:
    return str(etree.QName(element).localname)


def parse_file(raw: bytes, values: Mapping[str, str]) -> etree._Element:
    """Substitute symbols in a test-material XML file and parse it (3.0 form)."""
    text = raw.decode("utf-8")
    return to_v3(parse_xml(substitute(text, values).encode("utf-8")))


AUTHOR_SCHEME: Final = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"  # XDSDocumentEntry.author


def add_author(root: etree._Element, author_xcn: str) -> None:
    """Add ``author_xcn`` as one more author of each DocumentEntry (ITI TF-3 4.2.3.1.4).

    The DMP knows who submits from the VIHF and lets a professional act on "his own documents"
    only (PDT-INF-526 note (8)): the kit therefore co-signs the testkit's documents, whose
    authors (``^Smitty^Gerald``...) are fictitious. Existing authors are kept, so author
    queries of the testkit still find what they look for.
    """
    for entry in list(root.iter(f"{{{ns.RIM}}}ExtrinsicObject")):
        classification = etree.Element(
            f"{{{ns.RIM}}}Classification",
            id=f"urn:uuid:{uuid.uuid4()}",
            classificationScheme=AUTHOR_SCHEME,
            classifiedObject=entry.get("id", ""),
            nodeRepresentation="",
        )
        slot = etree.SubElement(classification, f"{{{ns.RIM}}}Slot", name="authorPerson")
        values = etree.SubElement(slot, f"{{{ns.RIM}}}ValueList")
        etree.SubElement(values, f"{{{ns.RIM}}}Value").text = author_xcn
        existing = entry.findall(f"{{{ns.RIM}}}Classification")
        if existing:
            existing[-1].addnext(classification)
        else:
            anchor = entry.find(f"{{{ns.RIM}}}ExternalIdentifier")
            if anchor is not None:
                anchor.addprevious(classification)
            else:
                entry.append(classification)


def prepare_submission(
    root: etree._Element,
    *,
    patient_id: str | None,
    assign_uids: bool,
    no_assign_uid_ids: frozenset[str],
    assign_uuids: bool,
    foreign_patient: Callable[[str], str] | None = None,
) -> Prepared:
    """Apply the toolkit's patient id, uniqueId and UUID assignment to a 3.0 submission.

    ``foreign_patient`` maps a patient id the file keeps (``NoPatientId``) but which is not an
    INS (``12345^^^&1.3.6.1.4.1.21367.2005.3.7&ISO``) to a registered INS, one per distinct
    value, so that a test about two patients still names two patients of the DMP.
    """
    prepared = Prepared(element=root)
    objects = [e for e in root.iter(f"{{{ns.RIM}}}*") if _local(e) in _TOP_LEVEL]
    for identifier in root.iter(f"{{{ns.RIM}}}ExternalIdentifier"):
        scheme = identifier.get("identificationScheme", "")
        owner = identifier.get("registryObject") or (identifier.getparent().get("id") or "")
        if scheme in PATIENT_ID_SCHEMES and patient_id is not None:
            identifier.set("value", patient_id)
        elif scheme in PATIENT_ID_SCHEMES and foreign_patient is not None:
            value = identifier.get("value", "")
            if INS_ROOT not in value:
                identifier.set("value", foreign_patient(value))
        if scheme in PATIENT_ID_SCHEMES:
            prepared.assigned_patient[owner] = identifier.get("value", "")
        if scheme in UNIQUE_ID_SCHEMES:
            if assign_uids and owner not in no_assign_uid_ids:
                identifier.set("value", new_unique_id())
            prepared.assigned_uids[owner] = identifier.get("value", "")
    mapping: dict[str, str] = {}
    if assign_uuids:
        for element in root.iter(f"{{{ns.RIM}}}*"):
            ident = element.get("id")
            if (
                ident
                and not ident.startswith("urn:uuid:")
                and _local(element) not in ("ObjectRef", "AdhocQuery")
            ):
                mapping.setdefault(ident, f"urn:uuid:{uuid.uuid4()}")
        for element in root.iter():
            if not isinstance(element.tag, str):
                continue
            for attribute in _REFERENCE_ATTRIBUTES:
                value = element.get(attribute)
                if value in mapping:
                    element.set(attribute, mapping[value])
        for old, new in list(prepared.assigned_uids.items()):
            if old in mapping:
                prepared.assigned_uids[mapping[old]] = new
        for old, new in list(prepared.assigned_patient.items()):
            if old in mapping:
                prepared.assigned_patient[mapping[old]] = new
    for element in objects:
        original = next((k for k, v in mapping.items() if v == element.get("id")), None)
        current = element.get("id", "")
        prepared.assigned_uuids[original or current] = current
    for symbol, value in list(prepared.assigned_uids.items()):
        for original, new in mapping.items():
            if new == symbol:
                prepared.assigned_uids[original] = value
    for symbol, value in list(prepared.assigned_patient.items()):
        for original, new in mapping.items():
            if new == symbol:
                prepared.assigned_patient[original] = value
    prepared.mapping = mapping
    return prepared
