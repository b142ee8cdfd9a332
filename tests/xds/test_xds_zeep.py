"""ITI-18 with a real SOAP client: zeep loads our WSDL over HTTP and queries the live server."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from flask.testing import FlaskClient
from xds_support import (
    AUTHOR,
    FIND_DOCUMENTS,
    ITI41,
    PATIENT,
    PATIENT_OID,
    REPOSITORY,
    Doc,
    post,
    provide_and_register,
    setup_space,
    vihf,
)

from espace.clock import FrozenClock
from espace.service import Espace
from xds.vihf import wrap_in_security_header

zeep = pytest.importorskip("zeep")


@pytest.fixture(autouse=True)
def _real_time(clock: FrozenClock) -> None:
    clock.set(datetime.now(UTC).replace(microsecond=0))


@pytest.mark.parametrize(
    "path", ["/xds/registry", "/si-dmp-server/v2/services/DocumentRegistry_Service"]
)
def test_zeep_find_documents(
    live_server: str, client: FlaskClient, espace: Espace, clock: FrozenClock, pki: Any, path: str
) -> None:
    from zeep.wsa import WsAddressingPlugin

    setup_space(espace, clock)
    doc = Doc()
    body, parts = provide_and_register([doc])
    assert post(client, REPOSITORY, ITI41, body, vihf(pki, clock, AUTHOR), parts).status == 200

    wsdl = f"{live_server}{path}?wsdl"
    assert httpx.get(wsdl).status_code == 200
    soap = zeep.Client(wsdl, plugins=[WsAddressingPlugin()], settings=zeep.Settings(strict=False))
    rim = soap.type_factory("urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0")
    query_ns = soap.type_factory("urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0")

    def slot(name: str, value: str) -> Any:
        return rim.SlotType1(name=name, ValueList=rim.ValueListType(_value_1=[{"Value": value}]))

    security = wrap_in_security_header(vihf(pki, clock, AUTHOR))
    result = soap.service.DocumentRegistry_RegistryStoredQuery(
        ResponseOption=query_ns.ResponseOptionType(
            returnType="LeafClass", returnComposedObjects=True
        ),
        AdhocQuery=rim.AdhocQueryType(
            id=FIND_DOCUMENTS,
            Slot=[
                slot("$XDSDocumentEntryPatientId", f"'{PATIENT}^^^&{PATIENT_OID}&ISO^NH'"),
                slot(
                    "$XDSDocumentEntryStatus",
                    "('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')",
                ),
            ],
        ),
        _soapheaders=[security],
    )
    assert result.status.endswith(":Success")
    # zeep does not resolve the rim:Identifiable substitution group: it hands the entries over
    # as raw elements (strict=False), which we read as any zeep user would.
    rim_ns = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
    found = [
        identifier.get("value")
        for item in result.RegistryObjectList._raw_elements
        for identifier in item.iter(f"{{{rim_ns}}}ExternalIdentifier")
        if identifier.get("identificationScheme") == "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
    ]
    assert found == [doc.unique_id]
