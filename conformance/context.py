"""What every suite needs: the transport to the target, the kit PKI, patients, token issuing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from conformance.transport import Transport
from conformance.xds.soap import XdsClient, XdsEndpoints
from habilitation.model import ActorKind
from mes.pki import TestPki


class PatientSource(Protocol):
    """Test patients: new registered spaces, named ones (DMP examples), unknown ids."""

    oid: str

    def new_patient(self) -> str: ...

    def unknown_patient(self) -> str: ...

    def ensure(self, ins: str) -> bool:
        """Make sure ``ins`` has an active space the kit is authorized on; False if it cannot."""
        ...


@dataclass
class KitContext:
    """One run against one target."""

    transport: Transport
    pki: TestPki
    pki_dir: Path
    patients: PatientSource
    xds_endpoints: XdsEndpoints = field(default_factory=XdsEndpoints)
    fhir_base: str = "/fhir"
    in_process: bool = True
    oauth_settings: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def xds_client(self) -> XdsClient:
        return XdsClient(self.transport, self.pki, self.xds_endpoints)

    def token(
        self,
        *,
        kind: ActorKind,
        subject: str,
        patient: str | None = None,
        app_id: str | None = None,
        scope: str = "",
    ) -> str:
        """A bearer token from the kit's issuer key (``<kit PKI>/oauth-issuer-key.pem``)."""
        from mes.tokens import issue_token

        settings: Mapping[str, Any] = {"PKI_DIR": str(self.pki_dir), **self.oauth_settings}
        return issue_token(
            settings,
            subject=subject,
            kind=kind,
            patient=patient,
            app_id=app_id,
            scope=scope,
            name="Conformance kit",
        )
