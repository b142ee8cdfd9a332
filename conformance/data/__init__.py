"""Test material shipped with the kit (see ``docs/conformance.md`` for sources and licences)."""

from pathlib import Path
from typing import Final

DATA_DIR: Final = Path(__file__).resolve().parent
NIST_TESTS: Final = DATA_DIR / "nist-testkit" / "tests"
