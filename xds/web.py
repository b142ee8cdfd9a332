"""Flask wiring of the XDS face: one SOAP endpoint per service path, WSDLs with our address.

Paths (POST = SOAP, GET ``?wsdl`` = the WSDL naming this very URL):

- ``/xds/repository`` and ``/si-dmp-server/v2/services/DocumentRepository_Service``: ITI-41, ITI-43;
- ``/xds/registry`` and ``/si-dmp-server/v2/services/DocumentRegistry_Service``: ITI-18, ITI-42,
  ITI-57, ITI-62;
- ``/xds/habilitations`` and ``/si-dmp-server/v2/services/Habilitations``: TD0.3, TD1.6;
- ``/xds/patients`` and ``/si-dmp-server/v2/services/PatientsSpecific``: TD0.4;
- ``/xds/gdp`` and ``/si-dmp-server/v2/services/GDP_Service``: TD0.2;
- ``/xds/pdq`` and ``/si-dmp-server/v2/services/PDQSupplier_Service``: TD0.5;
- ``/si-dmp-server/v2/services/`` (the address the DMP's non-XDS WSDLs give): TD0.2-TD1.6, TD0.5.

The registry WSDLs describe exactly ITI-42, ITI-18, ITI-57 and ITI-62; the DMP-path one carries
the DMP's ITI-57 response Action (``UpdateDocumentSet-Response``).

The schemas the WSDLs import are served under ``/xds/wsdl/schema/``.
"""

from __future__ import annotations

import re
from importlib.resources import files

from flask import Flask, Response, current_app, request

from xds.endpoint import handle_soap
from xds.transactions.base import GDP, HABILITATIONS, PATIENTS, REGISTRY, REPOSITORY
from xds.transactions.td05_patient_search import PDQ

DMP = "/si-dmp-server/v2/services"

# path -> (services, WSDL file, DMP path?)
ENDPOINTS: dict[str, tuple[frozenset[str], str, bool]] = {
    "/xds/repository": (frozenset({REPOSITORY}), "XDS.b_DocumentRepository.wsdl", False),
    "/xds/registry": (frozenset({REGISTRY}), "XDS.b_DocumentRegistry.wsdl", False),
    "/xds/habilitations": (frozenset({HABILITATIONS}), "Habilitations.wsdl", False),
    "/xds/patients": (frozenset({PATIENTS}), "PatientsSpecific.wsdl", False),
    "/xds/gdp": (frozenset({GDP}), "GestionDossierPatientPartage.wsdl", False),
    "/xds/pdq": (frozenset({PDQ}), "PDQSupplier.wsdl", False),
    f"{DMP}/DocumentRepository_Service": (
        frozenset({REPOSITORY}),
        "XDS.b_DocumentRepository.wsdl",
        True,
    ),
    f"{DMP}/DocumentRegistry_Service": (
        frozenset({REGISTRY}),
        "DMP_XDS.b_DocumentRegistry.wsdl",
        True,
    ),
    f"{DMP}/Habilitations": (frozenset({HABILITATIONS}), "Habilitations.wsdl", True),
    f"{DMP}/PatientsSpecific": (frozenset({PATIENTS}), "PatientsSpecific.wsdl", True),
    f"{DMP}/GDP_Service": (frozenset({GDP}), "GestionDossierPatientPartage.wsdl", True),
    f"{DMP}/PDQSupplier_Service": (frozenset({PDQ}), "PDQSupplier.wsdl", True),
    f"{DMP}/": (frozenset({HABILITATIONS, PATIENTS, GDP, PDQ}), "Habilitations.wsdl", True),
}
SCHEMAS = {
    "ebRS/rim.xsd",
    "ebRS/rs.xsd",
    "ebRS/lcm.xsd",
    "ebRS/query.xsd",
    "ebRS/cms.xsd",
    "ebRS/xml.xsd",
    "IHE/XDS.b_DocumentRepository.xsd",
}
_ADDRESS = re.compile(rb'(<(?:\w+:)?address\s+location=")[^"]*(")')
_SCHEMA_LOCATION = re.compile(rb'schemaLocation="\.\./schema/([^"]+)"')


def _base_url() -> str:
    configured = current_app.config.get("PUBLIC_BASE_URL")
    return str(configured).rstrip("/") if configured else request.host_url.rstrip("/")


def wsdl(name: str) -> Response:
    """The WSDL with its service address set to this URL and absolute schema locations."""
    data = files("xds.wsdl.wsdl").joinpath(name).read_bytes()
    base = _base_url()
    address = (base + request.path).encode()
    data = _ADDRESS.sub(lambda m: m.group(1) + address + m.group(2), data)
    data = _SCHEMA_LOCATION.sub(
        lambda m: b'schemaLocation="' + base.encode() + b"/xds/wsdl/schema/" + m.group(1) + b'"',
        data,
    )
    return Response(data, content_type="text/xml; charset=UTF-8")


def schema(name: str) -> Response:
    if name not in SCHEMAS:
        return Response("not found", status=404, content_type="text/plain")
    folder, _, file = name.partition("/")
    data = files(f"xds.wsdl.schema.{folder}").joinpath(file).read_bytes()
    return Response(data, content_type="text/xml; charset=UTF-8")


def _view(path: str):  # type: ignore[no-untyped-def]
    services, wsdl_name, dmp_path = ENDPOINTS[path]

    def view() -> Response:
        if request.method == "GET":
            if "wsdl" in {k.lower() for k in request.args}:
                return wsdl(wsdl_name)
            return Response(
                "SOAP 1.2 endpoint: POST a SOAP envelope, or GET ?wsdl",
                status=405,
                content_type="text/plain",
                headers={"Allow": "GET, POST"},
            )
        app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
        return handle_soap(app, request, services=services, dmp_path=dmp_path)

    view.__name__ = "xds_" + re.sub(r"\W", "_", path)
    return view


def init_app(app: Flask) -> None:
    """Register the XDS endpoints (``mes.app`` calls it for every face)."""
    for path in ENDPOINTS:
        view = _view(path)
        app.add_url_rule(
            path,
            endpoint=view.__name__,
            view_func=view,
            methods=["GET", "POST"],
            strict_slashes=False,
        )
    app.add_url_rule("/xds/wsdl/schema/<path:name>", endpoint="xds_schema", view_func=schema)
