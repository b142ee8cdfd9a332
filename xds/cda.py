"""Reading the patient of a CDA R2 document (HL7 CDA R2 ``recordTarget/patientRole/id``).

ANS CI-SIS "Volet Structuration minimale": the recordTarget carries the INS (root
1.2.250.1.213.1.4.8 / .10 / .11) of the patient; the registry checks it against the
submission's patientId (``espace.registry.submit.ContentInspector``).
"""

from __future__ import annotations

from espace.registry.model import DocumentEntry
from xds import ns
from xds.xml import XmlSecurityError, parse_xml

CDA_MIME_TYPES = frozenset({"text/xml", "application/xml", "application/hl7-v3+xml"})


class CdaInspector:
    """The XDS face's ``ContentInspector``: parses XML documents through ``parse_xml``."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes

    def record_target_ids(
        self, content: bytes, entry: DocumentEntry
    ) -> list[tuple[str, str]] | None:
        if entry.mime_type.split(";")[0].strip().lower() not in CDA_MIME_TYPES:
            return None
        try:
            root = parse_xml(content, max_bytes=self.max_bytes)
        except XmlSecurityError:
            return None  # not an XML document we can read: the repository stores bytes as is
        if root.tag != f"{{{ns.HL7}}}ClinicalDocument":
            return None
        path = f"{{{ns.HL7}}}recordTarget/{{{ns.HL7}}}patientRole/{{{ns.HL7}}}id"
        return [(i.get("extension") or "", i.get("root") or "") for i in root.findall(path)]
