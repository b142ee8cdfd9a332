"""ebRIM/ebRS 2.1 metadata to 3.0, as the NIST toolkit does at send time (``TranslateToV3``).

ITI TF-3 4.2 / ebRIM 3.0 differences handled here:

- ``rs:SubmitObjectsRequest`` (registry:xsd:2.1) becomes ``lcm:SubmitObjectsRequest`` and
  ``rim:LeafRegistryObjectList`` becomes ``rim:RegistryObjectList``;
- every rim 2.1 element moves to the rim 3.0 namespace;
- short association types (``HasMember``, ``RPLC``, ``APND``, ``XFRM``, ``XFRM_RPLC``,
  ``signs``) become their URNs (ITI TF-3 4.2.2 Table 4.2.2-1);
- ``Association``, ``Classification`` and ``ExternalIdentifier`` get the ``id`` that 3.0
  requires, ``ExternalIdentifier`` its ``registryObject`` (the parent object);
- children are put in the 3.0 order: Slot, Name, Description, VersionInfo, Classification,
  ExternalIdentifier (rim.xsd ``RegistryObjectType``), then the type's own elements.
"""

from __future__ import annotations

import uuid
from typing import Final

from lxml import etree

from xds import ns

RIM21: Final = "urn:oasis:names:tc:ebxml-regrep:rim:xsd:2.1"
RS21: Final = "urn:oasis:names:tc:ebxml-regrep:registry:xsd:2.1"

ASSOCIATION_TYPES: Final = {
    "HasMember": "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember",
    "RPLC": "urn:ihe:iti:2007:AssociationType:RPLC",
    "APND": "urn:ihe:iti:2007:AssociationType:APND",
    "XFRM": "urn:ihe:iti:2007:AssociationType:XFRM",
    "XFRM_RPLC": "urn:ihe:iti:2007:AssociationType:XFRM_RPLC",
    "signs": "urn:ihe:iti:2007:AssociationType:signs",
    "IsSnapshotOf": "urn:ihe:iti:2010:AssociationType:IsSnapshotOf",
}
_ORDER: Final = {
    "Slot": 0,
    "Name": 1,
    "Description": 2,
    "VersionInfo": 3,
    "Classification": 4,
    "ExternalIdentifier": 5,
    "ContentVersionInfo": 6,
}
_NEEDS_ID: Final = frozenset({"Association", "Classification", "ExternalIdentifier"})


def is_v21(element: etree._Element) -> bool:
    return etree.QName(element).namespace in (RIM21, RS21)


def _new_id() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def _convert(element: etree._Element, parent_id: str | None) -> etree._Element:
    local = etree.QName(element).localname
    if local == "LeafRegistryObjectList":
        local = "RegistryObjectList"
    converted = etree.Element(f"{{{ns.RIM}}}{local}", nsmap={"rim": ns.RIM})
    for name, value in element.attrib.items():
        converted.set(name, value)
    if local == "Association":
        kind = converted.get("associationType", "")
        converted.set("associationType", ASSOCIATION_TYPES.get(kind, kind))
    if local in _NEEDS_ID and not converted.get("id"):
        converted.set("id", _new_id())
    if local == "ExternalIdentifier" and not converted.get("registryObject") and parent_id:
        converted.set("registryObject", parent_id)
    if local == "Classification" and not converted.get("classifiedObject") and parent_id:
        converted.set("classifiedObject", parent_id)
    converted.text = element.text
    my_id = converted.get("id") or parent_id
    children = [_convert(child, my_id) for child in element if isinstance(child.tag, str)]
    if local != "RegistryObjectList":
        children.sort(key=lambda c: _ORDER.get(etree.QName(c).localname, 10))
    for child in children:
        converted.append(child)
    return converted


def to_v3(root: etree._Element) -> etree._Element:
    """Return the ebXML 3.0 form of a 2.1 ``SubmitObjectsRequest`` (3.0 input is returned as is)."""
    if not is_v21(root):
        return root
    if etree.QName(root).localname != "SubmitObjectsRequest":
        raise ValueError(f"cannot translate {root.tag} to ebXML 3.0")
    request = etree.Element(f"{{{ns.LCM}}}SubmitObjectsRequest", nsmap={"lcm": ns.LCM})
    for child in root:
        if isinstance(child.tag, str):
            request.append(_convert(child, None))
    etree.cleanup_namespaces(request, top_nsmap={"lcm": ns.LCM, "rim": ns.RIM})
    return request
