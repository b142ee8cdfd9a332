"""Domain errors. Each carries a stable code; every face maps codes to its wire form
(XDS error code in a RegistryResponse, FHIR OperationOutcome, SMTP reply)."""

from __future__ import annotations

from habilitation.model import Decision


class DomainError(Exception):
    """A use case refused its input. ``code`` is stable; tests assert on it."""

    code = "domain_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message


class UnknownSpace(DomainError):
    code = "unknown_space"


class SpaceNotOpen(DomainError):
    code = "space_not_open"


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class InvalidInput(DomainError):
    code = "invalid_input"


class AccessDenied(Exception):
    """The policy decision point said no; the decision names the rule."""

    code = "access_denied"

    def __init__(self, decision: Decision) -> None:
        super().__init__(f"{decision.rule_id}: {decision.reason}")
        self.decision = decision
