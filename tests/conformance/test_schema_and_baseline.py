"""nist-schema-v3 validation of responses, and the ratchet's comparison."""

from __future__ import annotations

from lxml import etree

from conformance.baseline import below_baseline, load_baseline
from conformance.model import SuiteSummary
from conformance.xds.schema import validate
from xds import ns

SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"


def test_a_registry_response_validates_and_a_broken_one_does_not() -> None:
    good = etree.fromstring(f'<rs:RegistryResponse xmlns:rs="{ns.RS}" status="{SUCCESS}"/>')
    assert validate(good) == []
    broken = etree.fromstring(
        f'<rs:RegistryResponse xmlns:rs="{ns.RS}"><rs:Oops/></rs:RegistryResponse>'
    )
    assert validate(broken)


def test_xop_includes_are_inlined_before_validation() -> None:
    response = etree.fromstring(
        f'<x:RetrieveDocumentSetResponse xmlns:x="{ns.XDS}" xmlns:rs="{ns.RS}" '
        f'xmlns:xop="{ns.XOP}"><rs:RegistryResponse status="{SUCCESS}"/><x:DocumentResponse>'
        "<x:RepositoryUniqueId>1.2</x:RepositoryUniqueId><x:DocumentUniqueId>1.3"
        "</x:DocumentUniqueId><x:mimeType>text/plain</x:mimeType><x:Document>"
        '<xop:Include href="cid:a"/></x:Document></x:DocumentResponse>'
        "</x:RetrieveDocumentSetResponse>"
    )
    holder = response.find(f".//{{{ns.XDS}}}Document")
    assert holder is not None
    assert validate(response) != []  # xop:Include is not base64Binary
    assert validate(response, {holder: b"hello"}) == []
    assert holder.find(f"{{{ns.XOP}}}Include") is not None  # the original is untouched


def test_below_baseline() -> None:
    summaries = {
        "xds": SuiteSummary("xds", passed=5, failed=5, errors=0, not_applicable=3),
        "fhir": SuiteSummary("fhir", passed=9, failed=1, errors=0, not_applicable=0),
    }
    assert below_baseline(summaries, {"xds": 0.5, "fhir": 0.9, "mail": 1.0}) == []
    assert below_baseline(summaries, {"xds": 0.51})[0].startswith("xds: 0.5000 < baseline")
    assert set(load_baseline()) == {"xds", "dmp", "fhir", "mail"}
