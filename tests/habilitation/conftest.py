from __future__ import annotations

import pytest

from habilitation.pdp import PolicyDecisionPoint


@pytest.fixture(scope="session")
def pdp() -> PolicyDecisionPoint:
    return PolicyDecisionPoint()
