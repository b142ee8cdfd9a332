"""The policy decision point: who may do what on a patient space, and why.

Pure Python, no I/O (no Flask, SQLAlchemy, lxml, SMTP): a layering test enforces it.
"""

from habilitation.matrix import HabilitationMatrix
from habilitation.model import (
    AccessMode,
    AccessRequest,
    Action,
    Actor,
    ActorKind,
    AuthenticationMode,
    Decision,
    DocumentFacts,
    DocumentStatus,
    DocumentVisibility,
    Effect,
    Obligation,
    Purpose,
    SpaceFacts,
    SpaceStatus,
)
from habilitation.pdp import PolicyDecisionPoint
from habilitation.rights import FunctionalRights

__all__ = [
    "AccessMode",
    "AccessRequest",
    "Action",
    "Actor",
    "ActorKind",
    "AuthenticationMode",
    "Decision",
    "DocumentFacts",
    "DocumentStatus",
    "DocumentVisibility",
    "Effect",
    "FunctionalRights",
    "HabilitationMatrix",
    "Obligation",
    "PolicyDecisionPoint",
    "Purpose",
    "SpaceFacts",
    "SpaceStatus",
]
