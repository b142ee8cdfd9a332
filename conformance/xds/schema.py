"""Validate XDS.b messages against the NIST XDS Toolkit schema set (ebRS 3.0 + IHE XDS.b).

The XSDs are copies of ``usnistgov/iheos-toolkit2`` ``toolkitx/schema/v3`` (public domain,
``conformance/data/nist-schema-v3``): flat, with a local ``xml.xsd``, so validation works
offline. Before validation, XOP includes are put back inline as base64 (XOP 1.0 §3.2: the
reconstructed infoset is what the schema describes).
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Mapping
from functools import lru_cache

from lxml import etree

from conformance.data import DATA_DIR


@lru_cache(maxsize=1)
def _schema() -> etree.XMLSchema:
    path = DATA_DIR / "nist-schema-v3" / "driver.xsd"
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.XMLSchema(etree.parse(str(path), parser))


def _inline_xop(
    element: etree._Element, resolved: Mapping[etree._Element, bytes]
) -> etree._Element:
    """A copy of ``element`` with each XOP-optimized element holding its base64 text again."""
    if not resolved:
        return element
    clone = copy.deepcopy(element)
    pairs = list(zip(element.iter(), clone.iter(), strict=True))
    for original, copied in pairs:
        if original in resolved:
            for child in list(copied):
                copied.remove(child)
            copied.text = base64.b64encode(resolved[original]).decode("ascii")
    return clone


def validate(
    element: etree._Element, resolved: Mapping[etree._Element, bytes] | None = None
) -> list[str]:
    """Return the schema errors of ``element`` (empty when valid)."""
    schema = _schema()
    candidate = _inline_xop(element, resolved or {})
    if schema.validate(candidate):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log][:20]
