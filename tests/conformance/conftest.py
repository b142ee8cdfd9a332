"""Fixtures of the conformance-kit tests: the app under the Connectathon affinity domain."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The root ``settings``, with the value sets of the NIST testkit (IHE Connectathon)."""
    settings["AFFINITY_DOMAIN"] = "connectathon"
    return settings
