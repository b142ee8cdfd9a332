"""Building the process's one ``Espace`` from settings (database, policy, keys, clock)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from espace.clock import Clock, SystemClock
from espace.crypto import DocumentCipher
from espace.db import Base, make_engine, make_session_factory
from espace.service import Espace
from espace.trace import TraceSigner
from habilitation.pdp import PolicyDecisionPoint


def build_espace(settings: Mapping[str, Any], *, clock: Clock | None = None) -> Espace:
    document_key = settings.get("DOCUMENT_KEY")
    trace_key = settings.get("TRACE_SIGNING_KEY")
    if not document_key or not trace_key:
        raise RuntimeError(
            "DOCUMENT_KEY and TRACE_SIGNING_KEY are not configured: set MES_DOCUMENT_KEY and "
            "MES_TRACE_SIGNING_KEY, or run `mes init` for development keys"
        )
    engine = make_engine(str(settings["DATABASE_URL"]))
    matrix_path = settings.get("HABILITATION_MATRIX")
    pdp = PolicyDecisionPoint.from_path(matrix_path) if matrix_path else PolicyDecisionPoint()
    return Espace(
        session_factory=make_session_factory(engine),
        pdp=pdp,
        clock=clock or SystemClock(),
        cipher=DocumentCipher.from_config_value(str(document_key)),
        signer=TraceSigner.from_config_value(str(trace_key)),
        settings=dict(settings),
    )


def create_schema(espace: Espace) -> None:
    """Create every table (tests); production uses ``mes db upgrade`` (Alembic)."""
    import_all_models()
    engine = espace.session_factory.kw["bind"]
    Base.metadata.create_all(engine)


def import_all_models() -> None:
    """Import every module declaring tables, so ``Base.metadata`` is complete."""
    import importlib

    import espace.models  # noqa: F401

    for name in MODEL_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise


# Modules of other packages that declare tables on ``espace.db.Base``.
MODEL_MODULES = (
    "espace.registry",
    "espace.fhir_store",
    "espace.mailbox",
    "espace.lifecycle",
    "espace.agenda",
    "espace.profile",
    "espace.measurements",
)
