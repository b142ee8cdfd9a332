"""Fixtures of the FHIR face: a patient space, a referenced app, bearer tokens."""

from __future__ import annotations

from typing import Any

import pytest
from fhir_helpers import World, make_world

from espace.clock import FrozenClock
from espace.service import Espace


@pytest.fixture
def world(espace: Espace, settings: dict[str, Any], clock: FrozenClock) -> World:
    return make_world(espace, settings, clock)
