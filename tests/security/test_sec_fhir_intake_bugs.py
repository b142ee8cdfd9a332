"""Regression test of a bug found by fuzzing the FHIR JSON intake (test_sec_fuzz.py,
``fhir_parser``) (FHIR R4 http.html §3.1.0.1: an invalid resource is refused with 400/422 and
an OperationOutcome, never a 500). Fixed in the same session by the FHIR face (``except
LookupError`` in ``validate``).

Bug 11: ``fhir_server/models.py::validate`` turns pydantic's ``ValidationError``, ``TypeError``
and ``ValueError`` into ``ResourceInvalid``, but fhir.resources (fhir_core
``types.py::fhir_model_validator``) looks a nested resource's ``resourceType`` up in
``FHIR_TYPES_MAPS`` and raises ``KeyError`` for an unknown one (``'R4.Conditi/nType'``) in a
Bundle entry's ``resource``. The ``KeyError`` escapes ``validate``. Over HTTP the transaction
handler checks each entry's type before validating it, and 10,000 end-to-end inputs
(``fhir_http``) met no 5xx: a latent bug for any caller of ``validate`` on a whole Bundle.
"""

from __future__ import annotations

from typing import Any

import pytest

from fhir_server.models import ResourceInvalid, validate

BUNDLE_WITH_UNKNOWN_ENTRY_TYPE: dict[str, Any] = {
    "resourceType": "Bundle",
    "type": "transaction",
    "entry": [
        {
            "resource": {"resourceType": "Conditi/n", "code": {"text": "y"}},
            "request": {"method": "POST", "url": "Condition"},
        }
    ],
}


def test_unknown_nested_resource_type_is_resource_invalid() -> None:
    with pytest.raises(ResourceInvalid):
        validate(BUNDLE_WITH_UNKNOWN_ENTRY_TYPE)
