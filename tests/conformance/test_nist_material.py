"""The NIST testkit interpreter's pieces: ebRIM 2.1 -> 3.0, toolkit id assignment, checks."""

from __future__ import annotations

from lxml import etree

from conformance.data import NIST_TESTS
from conformance.xds.nist.expectations import check_contents
from conformance.xds.nist.metadata import (
    PATIENT_ID_SCHEMES,
    UNIQUE_ID_SCHEMES,
    parse_file,
    prepare_submission,
    substitute,
    unresolved_symbols,
)
from conformance.xds.nist.translate import RS21, to_v3
from conformance.xds.schema import validate
from xds import ns

SINGLE_DOC = NIST_TESTS / "11966" / "submit" / "single_doc.xml"
PATIENT = "270029999900139^^^&1.2.250.1.213.1.4.10&ISO"


def test_v21_submission_becomes_schema_valid_v3() -> None:
    raw = etree.parse(str(SINGLE_DOC)).getroot()
    assert etree.QName(raw).namespace == RS21
    converted = to_v3(raw)
    assert converted.tag == f"{{{ns.LCM}}}SubmitObjectsRequest"
    assert validate(converted) == []
    association = converted.find(f".//{{{ns.RIM}}}Association")
    assert association is not None
    assert association.get("associationType") == (
        "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
    )
    for identifier in converted.iter(f"{{{ns.RIM}}}ExternalIdentifier"):
        assert identifier.get("id") and identifier.get("registryObject")


def test_every_v21_file_of_the_kit_translates_to_valid_v3() -> None:
    invalid = []
    for path in NIST_TESTS.rglob("*.xml"):
        if b"rim:xsd:2.1" not in path.read_bytes()[:400]:
            continue
        if validate(to_v3(etree.parse(str(path)).getroot())):
            invalid.append(path)
    assert invalid == []


def test_toolkit_assignments_keep_references_consistent() -> None:
    root = parse_file(SINGLE_DOC.read_bytes(), {})
    prepared = prepare_submission(
        root,
        patient_id=PATIENT,
        assign_uids=True,
        no_assign_uid_ids=frozenset(),
        assign_uuids=True,
    )
    ids = {e.get("id") for e in root.iter() if isinstance(e.tag, str) and e.get("id")}
    assert all(i.startswith("urn:uuid:") for i in ids)
    for element in root.iter():
        for attribute in ("classifiedObject", "registryObject", "sourceObject", "targetObject"):
            value = element.get(attribute) if isinstance(element.tag, str) else None
            assert value is None or value in ids, (attribute, value)
    assert set(prepared.assigned_uuids) >= {"Document01", "SubmissionSet01"}
    assert prepared.assigned_patient["SubmissionSet01"] == PATIENT
    uids = [
        e.get("value")
        for e in root.iter(f"{{{ns.RIM}}}ExternalIdentifier")
        if e.get("identificationScheme") in UNIQUE_ID_SCHEMES
    ]
    assert prepared.assigned_uids["Document01"] in uids
    assert all(u and u.startswith("2.25.") for u in uids)
    patients = {
        e.get("value")
        for e in root.iter(f"{{{ns.RIM}}}ExternalIdentifier")
        if e.get("identificationScheme") in PATIENT_ID_SCHEMES
    }
    assert patients == {PATIENT}


def test_no_assign_uids_for_one_object_keeps_its_unique_id() -> None:
    root = parse_file(SINGLE_DOC.read_bytes(), {})
    before = {
        e.get("registryObject"): e.get("value")
        for e in root.iter(f"{{{ns.RIM}}}ExternalIdentifier")
        if e.get("identificationScheme") in UNIQUE_ID_SCHEMES
    }
    prepared = prepare_submission(
        root,
        patient_id=None,
        assign_uids=True,
        no_assign_uid_ids=frozenset({"Document01"}),
        assign_uuids=False,
    )
    assert prepared.assigned_uids["Document01"] == before["Document01"]
    assert prepared.assigned_uids["SubmissionSet01"] != before["SubmissionSet01"]


def test_substitution_escapes_values_and_reports_leftovers() -> None:
    text = "<v>'$patientid$'</v><w>$other$</w>"
    done = substitute(text, {"$patientid$": PATIENT})
    assert "&amp;1.2.250.1.213.1.4.10&amp;ISO" in done
    assert unresolved_symbols(done) == ["$other$"]


def _response(*objects: str) -> etree._Element:
    body = "".join(objects)
    return etree.fromstring(
        f'<q:AdhocQueryResponse xmlns:q="{ns.QUERY}" xmlns:rim="{ns.RIM}" status="x">'
        f"<rim:RegistryObjectList>{body}</rim:RegistryObjectList></q:AdhocQueryResponse>"
    )


def test_expected_contents_count_and_shape() -> None:
    approved = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
    response = _response(
        f'<rim:ExtrinsicObject id="d1" status="{approved}"/>',
        '<rim:RegistryPackage id="s1"><rim:Classification classifiedObject="s1" '
        'classificationNode="urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd" id="c"/>'
        "</rim:RegistryPackage>",
        '<rim:Association id="a" sourceObject="s1" targetObject="d1" associationType='
        '"urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"/>',
    )
    good = etree.fromstring("<E><SSwithOneDoc/><DocApp/><Documents count='1'/></E>")
    assert check_contents(good, response) == []
    bad = etree.fromstring("<E><Documents count='2'/><DocDep/><Folders count='0'/></E>")
    problems = check_contents(bad, response)
    assert len(problems) == 2 and problems[0].startswith("Documents: expected 2, got 1")
    unknown = etree.fromstring("<E><Whatever/></E>")
    assert check_contents(unknown, response)[0].startswith("kit:")
