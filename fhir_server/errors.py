"""Errors that render themselves as an OperationOutcome (FHIR R4 operationoutcome.html,
http.html §3.1.0.2 status codes), and the mapping of domain errors to them."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError

from espace.errors import (
    AccessDenied,
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    SpaceNotOpen,
    UnknownSpace,
)
from espace.fhir_store import Gone, VersionConflict
from espace.measurements import CONSENT_REFUSED, MeasurementError
from fhir_server.models import ResourceInvalid


class FhirError(Exception):
    """An HTTP status with one OperationOutcome issue (``issue`` is an issue-type code)."""

    def __init__(
        self,
        status: int,
        issue: str,
        diagnostics: str,
        *,
        details: str | None = None,
        expression: list[str] | None = None,
        headers: dict[str, str] | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(diagnostics)
        self.status = status
        self.issue = issue
        self.diagnostics = diagnostics
        self.details = details
        self.expression = expression or []
        self.headers = headers or {}
        self.code = code or issue

    def outcome(self) -> dict[str, Any]:
        return operation_outcome(
            self.issue, self.diagnostics, details=self.details, expression=self.expression
        )


def operation_outcome(
    issue: str,
    diagnostics: str,
    *,
    severity: str = "error",
    details: str | None = None,
    expression: list[str] | None = None,
) -> dict[str, Any]:
    entry: dict[str, Any] = {"severity": severity, "code": issue, "diagnostics": diagnostics}
    if details:
        entry["details"] = {"text": details}
    if expression:
        entry["expression"] = expression
    return {"resourceType": "OperationOutcome", "issue": [entry]}


# Denials of apps for want of consent answer with the MES API catalogue text (§2.2.8, §2.3.3).
_CONSENT_RULES = frozenset(
    {"app_purpose_not_consented", "app_not_paired", "app_action_not_pairable"}
)


def to_fhir_error(exc: BaseException) -> FhirError:
    """Map any domain exception to its FHIR status and issue type."""
    if isinstance(exc, FhirError):
        return exc
    if isinstance(exc, MeasurementError):
        return FhirError(exc.status, exc.issue, exc.diagnostics, details=exc.message, code=exc.code)
    if isinstance(exc, ResourceInvalid):
        return FhirError(400 if exc.syntax else 422, "structure", exc.diagnostics,
                         expression=exc.expression, code="invalid_resource")
    if isinstance(exc, AccessDenied):
        rule = exc.decision.rule_id
        if rule in _CONSENT_RULES:
            return FhirError(403, "forbidden", CONSENT_REFUSED, details="Forbidden",
                             code=f"denied.{rule}")
        return FhirError(403, "forbidden", f"access denied ({rule}): {exc.decision.reason}",
                         code=f"denied.{rule}")
    if isinstance(exc, Gone):
        return FhirError(410, "deleted", exc.message, code=exc.code)
    if isinstance(exc, VersionConflict):
        return FhirError(412, "conflict", exc.message, code=exc.code)
    if isinstance(exc, NotFound):
        return FhirError(404, "not-found", exc.message, code=exc.code)
    if isinstance(exc, UnknownSpace):
        return FhirError(404, "not-found", "no patient space for this caller", code=exc.code)
    if isinstance(exc, SpaceNotOpen):
        return FhirError(403, "forbidden", exc.message, code=exc.code)
    if isinstance(exc, Conflict):
        return FhirError(409, "conflict", exc.message, code=exc.code)
    if isinstance(exc, InvalidInput):
        return FhirError(400, "invalid", exc.message, code=exc.code)
    if isinstance(exc, DomainError):
        return FhirError(422, "business-rule", exc.message, code=exc.code)
    if isinstance(exc, IntegrityError):  # a concurrent write took the same version first
        return FhirError(409, "conflict", "a concurrent change won; read and retry",
                         code="concurrent_write")
    return FhirError(500, "exception", "internal error", code="internal")
