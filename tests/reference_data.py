"""Where the shared reference data (XSD/WSDL, DMP kit messages, attack samples...) lives.

The developers' guide puts it at ``../shared/reference`` beside the clone; a clone made elsewhere
(CI, a colleague's machine) finds it through ``MES_REFERENCE_DIR`` or the workplace's absolute path.
Tests that read it call :func:`require` so that, where it is absent, they skip with a clear reason
instead of failing on a missing file.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_CANDIDATES = [
    os.environ.get("MES_REFERENCE_DIR", ""),
    str(Path(__file__).resolve().parents[1].parent / "shared" / "reference"),
    "/work/shared/reference",
]


def _find() -> Path:
    for candidate in _CANDIDATES:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return Path(_CANDIDATES[1])  # absent: tests that need it skip through require()


REFERENCE: Path = _find()
SHARED: Path = REFERENCE.parent


def require(path: Path) -> Path:
    """``path`` if it exists, else skip the calling test (reference data not on this machine)."""
    if not path.exists():
        pytest.skip(f"reference data absent: {path} (set MES_REFERENCE_DIR)")
    return path
