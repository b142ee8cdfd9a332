"""A JSON FHIR client over the kit's recording transport."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from conformance.model import CaseResult
from conformance.transport import Transport

FHIR_JSON = "application/fhir+json"


@dataclass
class Reply:
    status: int
    body: dict[str, Any] | None
    headers: dict[str, str]

    def issue(self) -> dict[str, Any]:
        """The first OperationOutcome issue (empty if none)."""
        if not self.body or self.body.get("resourceType") != "OperationOutcome":
            return {}
        issues = self.body.get("issue") or [{}]
        first: dict[str, Any] = issues[0]
        return first


class FhirClient:
    def __init__(self, transport: Transport, base: str, token: str | None) -> None:
        self.transport = transport
        self.base = base.rstrip("/")
        self.token = token

    def with_token(self, token: str | None) -> FhirClient:
        return FhirClient(self.transport, self.base, token)

    def request(
        self,
        case: CaseResult | None,
        label: str,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        raw: bytes | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        sent = {"Accept": FHIR_JSON, **(headers or {})}
        if self.token:
            sent["Authorization"] = f"Bearer {self.token}"
        content = raw
        if body is not None:
            content = json.dumps(body, ensure_ascii=False).encode()
        if content is not None:
            sent.setdefault("Content-Type", FHIR_JSON)
        url = path if path.startswith("http") else f"{self.base}/{path.lstrip('/')}"
        response = self.transport.send(
            case, label, method, url, headers=sent, content=content, params=params
        )
        parsed: dict[str, Any] | None = None
        if response.content:
            try:
                loaded = json.loads(response.content)
                parsed = loaded if isinstance(loaded, dict) else None
            except ValueError:
                parsed = None
        return Reply(response.status_code, parsed, dict(response.headers))
