"""The server under test: in-process on a temporary SQLite database, or a remote target.

In process, the kit builds the app with :func:`mes.app.create_app` (``AFFINITY_DOMAIN`` =
``connectathon`` so the registry enforces the testkit's code sets, ``PKI_DIR`` = the kit PKI so
the kit's VIHF signer is trusted) and serves it with werkzeug's ``make_server`` on a free
loopback port. Patients are registered straight in the database (the "patient identity feed"
of an XDS affinity domain is, for the DMP, the creation of the patient's space).

Against a remote target (``--target``), patients must exist already: ``mes conformance
setup`` registers the kit's deterministic patient pool in the database of the configured
server (``MES_DATABASE_URL``), and :class:`PooledPatients` hands them out in order.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Final

from werkzeug.serving import BaseWSGIServer, make_server

from espace.admin import link_professional, register_space, upsert_professional
from espace.crypto import DocumentCipher
from espace.service import Espace
from espace.spaces import INS_OID_TEST, find_space_by_ins
from espace.trace import TraceSigner
from mes.pki import TestPki

#: Serial base of the kit's patients (department 99 "abroad", commune 999): never a real NIR.
_POOL_PREFIX: Final = "1700199999"
#: Prefix of the kit's patients (sex 2, 1970-02, department 99, commune 999).
_KIT_PREFIX: Final = "2700299999"


def make_ins(serial: int, *, prefix: str = _POOL_PREFIX) -> str:
    """A 15-character matricule INS with a valid NIR key (97 - n mod 97)."""
    body = f"{prefix}{serial % 1000:03d}"
    return body + f"{97 - int(body) % 97:02d}"


class EspacePatients:
    """Patients registered directly in an :class:`Espace` (in-process runs, ``setup``)."""

    oid = INS_OID_TEST

    def __init__(
        self, espace: Espace, pki: TestPki, *, prefix: str = _KIT_PREFIX, start: int = 0
    ) -> None:
        self.espace = espace
        self.pki = pki
        self.prefix = prefix
        self.serial = start
        self.unknown_serial = 999

    def _next(self) -> str:
        while True:
            self.serial += 1
            if self.serial >= 999:
                raise RuntimeError("the kit's patient pool is exhausted")
            ins = make_ins(self.serial, prefix=self.prefix)
            with self.espace.session_factory() as session:
                if find_space_by_ins(session, ins) is None:
                    return ins

    def new_patient(self) -> str:
        ins = self._next()
        register_patient(self.espace, self.pki, ins)
        return ins

    def unknown_patient(self) -> str:
        """A well-formed INS with no space (ITI TF-3 XDSUnknownPatientId cases)."""
        return make_ins(self.unknown_serial, prefix=self.prefix)

    def ensure(self, ins: str) -> bool:
        with self.espace.session_factory() as session:
            exists = find_space_by_ins(session, ins) is not None
        if not exists:
            register_patient(self.espace, self.pki, ins)
        return True


def register_patient(espace: Espace, pki: TestPki, ins: str) -> None:
    """Create an active space for ``ins`` and authorize the kit's professional on it (TD0.3)."""
    now = espace.clock.now()
    with espace.session_factory() as session:
        space = register_space(
            session,
            ins=ins,
            now=now,
            family_name="CONFORMITE",
            given_names="KIT",
            birth_date=date(1970, 1, 1),
            sex="M",
            ins_oid=INS_OID_TEST,
        )
        upsert_professional(
            session,
            pki.professional_id,
            name="Dr Conformité Kit",
            profession="10",
            specialty="SM26",
            structure_id=pki.structure_id,
        )
        link_professional(
            session, space, pki.professional_id, "authorized", declared_by="conformance", now=now
        )
        session.commit()


class PooledPatients:
    """Patients of a remote target, registered beforehand by ``mes conformance setup``."""

    oid = INS_OID_TEST

    def __init__(self, prefix: str = _KIT_PREFIX, start: int = 0) -> None:
        self.prefix = prefix
        self.serial = start

    def new_patient(self) -> str:
        self.serial += 1
        return make_ins(self.serial, prefix=self.prefix)

    def unknown_patient(self) -> str:
        return make_ins(999, prefix=self.prefix)

    def ensure(self, ins: str) -> bool:
        """Named patients (DMP examples) are registered by ``mes conformance setup``."""
        return ins in DMP_EXAMPLE_PATIENTS


#: A pool patient ``setup`` registers without the kit app's consent (MES API 403 cases).
NO_CONSENT_PATIENT: Final = make_ins(998, prefix=_KIT_PREFIX)
#: Patients of the official DMP example messages (test INS OID 1.2.250.1.213.1.4.10).
DMP_EXAMPLE_PATIENTS: Final = ("207058575627097",)


def setup_pool(espace: Espace, pki: TestPki, count: int, prefix: str = _KIT_PREFIX) -> int:
    """Register ``count`` kit patients (the kit's app paired with each), the DMP example
    patients and :data:`NO_CONSENT_PATIENT` (idempotent); return how many were new."""
    from conformance.fhir.kit import KIT_APP_ID, KIT_APP_OID, MEASUREMENT_PURPOSES
    from espace.admin import grant_app_consent, register_app

    created = 0
    for ins in DMP_EXAMPLE_PATIENTS:
        with espace.session_factory() as session:
            missing = find_space_by_ins(session, ins) is None
        if missing:
            register_patient(espace, pki, ins)
            created += 1
    for serial in range(1, count + 1):
        ins = make_ins(serial, prefix=prefix)
        with espace.session_factory() as session:
            exists = find_space_by_ins(session, ins) is not None
        if not exists:
            register_patient(espace, pki, ins)
            created += 1
            now = espace.clock.now()
            with espace.session_factory() as session:
                register_app(
                    session,
                    KIT_APP_ID,
                    name="MES conformance kit",
                    allowed_purposes=MEASUREMENT_PURPOSES,
                    now=now,
                    oid=KIT_APP_OID,
                )
                space = find_space_by_ins(session, ins)
                assert space is not None
                grant_app_consent(
                    session, space, KIT_APP_ID, MEASUREMENT_PURPOSES, granted_by=ins, now=now
                )
                session.commit()
    with espace.session_factory() as session:
        missing = find_space_by_ins(session, NO_CONSENT_PATIENT) is None
    if missing:
        register_patient(espace, pki, NO_CONSENT_PATIENT)
        created += 1
    return created


@dataclass
class InProcessServer:
    base_url: str
    espace: Espace
    settings: dict[str, Any]


def in_process_settings(
    directory: Path, pki_dir: Path, affinity_domain: str = "connectathon"
) -> dict[str, Any]:
    return {
        "VAR_DIR": str(directory / "var"),
        "DATABASE_URL": f"sqlite:///{directory / 'conformance.db'}",
        "DOCUMENT_KEY": DocumentCipher.generate_key(),
        "TRACE_SIGNING_KEY": TraceSigner.generate_key(),
        "PKI_DIR": str(pki_dir),
        "LOG_JSON": False,
        "AFFINITY_DOMAIN": affinity_domain,
    }


@contextmanager
def serve_in_process(
    pki_dir: Path,
    *,
    affinity_domain: str = "connectathon",
    overrides: Mapping[str, Any] | None = None,
) -> Iterator[InProcessServer]:
    """Start the whole app on a fresh SQLite database and a free loopback port."""
    import logging

    from mes.app import create_app
    from mes.wiring import build_espace, create_schema

    with tempfile.TemporaryDirectory(prefix="mes-conformance-") as temp:
        settings = in_process_settings(Path(temp), pki_dir, affinity_domain)
        settings.update(overrides or {})
        espace = build_espace(settings)
        create_schema(espace)
        app = create_app(settings, espace=espace)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield InProcessServer(
                f"http://127.0.0.1:{server.server_port}", espace, dict(app.config)
            )
        finally:
            server.shutdown()
            thread.join(timeout=10)
            espace.session_factory.kw["bind"].dispose()
