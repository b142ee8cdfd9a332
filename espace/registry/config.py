"""Registry settings read from the application settings (``Espace.settings``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: The DMP repository's uniqueId, as in the DMP kit's TD3.2 example (ITI-43 request).
DEFAULT_REPOSITORY_UNIQUE_ID = "1.2.250.1.213.4.1.1.1.2"


@dataclass(frozen=True, slots=True)
class RegistryConfig:
    repository_unique_id: str = DEFAULT_REPOSITORY_UNIQUE_ID
    home_community_id: str = ""
    affinity_domain: str = "dmp"
    max_query_results: int = 500

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> RegistryConfig:
        return cls(
            repository_unique_id=str(
                settings.get("XDS_REPOSITORY_UNIQUE_ID") or DEFAULT_REPOSITORY_UNIQUE_ID
            ),
            home_community_id=str(settings.get("XDS_HOME_COMMUNITY_ID") or ""),
            affinity_domain=str(settings.get("AFFINITY_DOMAIN") or "dmp"),
            max_query_results=int(settings.get("XDS_MAX_QUERY_RESULTS") or 500),
        )
