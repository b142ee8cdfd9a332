"""The kit's own PKI: the certificate that signs every VIHF the kit sends.

A target must trust the kit's CA (``mes conformance cert`` prints it) to accept the kit's
assertions. The PKI lives in ``CONFORMANCE_PKI_DIR`` (default ``<VAR_DIR>/conformance-pki``)
and is created once, then reused, so a target configured to trust it keeps trusting it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mes.pki import TestPki, generate_test_pki


def kit_pki_dir(settings: Mapping[str, Any]) -> Path:
    configured = settings.get("CONFORMANCE_PKI_DIR")
    if configured:
        return Path(str(configured))
    return Path(str(settings.get("VAR_DIR") or "var")) / "conformance-pki"


def kit_pki(directory: Path) -> TestPki:
    """Load the kit PKI from ``directory``, creating it on first use."""
    directory.mkdir(parents=True, exist_ok=True)
    return generate_test_pki(directory)
