"""Shared constants of the attack suite: the canary file's secret and the loopback listener."""

from __future__ import annotations

from dataclasses import dataclass, field

CANARY_SECRET = "MES-CANARY-7f3a9c1e-do-not-echo"


@dataclass
class Listener:
    """A loopback TCP listener counting every connection (an SSRF would show up here)."""

    port: int
    connections: list[bytes] = field(default_factory=list)
