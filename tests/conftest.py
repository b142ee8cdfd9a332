"""Shared fixtures: a real database (SQLite file, or PostgreSQL when MES_TEST_DATABASE_URL is
set), a movable clock, the app, a live HTTP server for real clients (zeep, fhirclient)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from werkzeug.serving import BaseWSGIServer, make_server

from espace.clock import FrozenClock
from espace.crypto import DocumentCipher
from espace.db import Base
from espace.service import Espace
from espace.trace import TraceSigner
from mes.wiring import build_espace, create_schema, import_all_models

_BASE_POSTGRES_URL = os.environ.get("MES_TEST_DATABASE_URL", "")
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")


def _worker_postgres_url() -> str:
    """One PostgreSQL schema per xdist worker, so parallel workers never share tables."""
    if not _BASE_POSTGRES_URL:
        return ""
    import psycopg

    # one schema per worker AND per run: concurrent runs on one server never share tables
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", str(os.getpid()))[:12]
    schema = f"mes_test_{_WORKER}_{run}"
    with psycopg.connect(_BASE_POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    separator = "&" if "?" in _BASE_POSTGRES_URL else "?"
    return f"{_BASE_POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"


POSTGRES_URL = _worker_postgres_url()


def _drop_worker_schema() -> None:
    import psycopg

    schema = POSTGRES_URL.rsplit("%3D", 1)[1]
    try:
        with psycopg.connect(_BASE_POSTGRES_URL, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '10s'")
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    except psycopg.Error:  # a leftover connection holds a lock: leave the schema behind
        pass


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from mes.pki import generate_test_pki

    return generate_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def _postgres_schema() -> Iterator[None]:
    """On PostgreSQL: create the schema once per run (tables are emptied per test)."""
    if not POSTGRES_URL:
        yield
        return
    from espace.db import make_engine

    import_all_models()
    engine = make_engine(POSTGRES_URL)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    engine.dispose()
    yield
    _drop_worker_schema()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def settings(tmp_path: Path, pki: Any) -> dict[str, Any]:
    return {
        "VAR_DIR": str(tmp_path / "var"),
        "DATABASE_URL": POSTGRES_URL or f"sqlite:///{tmp_path / 'test.db'}",
        "DOCUMENT_KEY": DocumentCipher.generate_key(),
        "TRACE_SIGNING_KEY": TraceSigner.generate_key(),
        "PKI_DIR": str(pki.directory),
        "LOG_JSON": False,
    }


@pytest.fixture
def espace(
    settings: dict[str, Any], clock: FrozenClock, _postgres_schema: None
) -> Iterator[Espace]:
    service = build_espace(settings, clock=clock)
    if POSTGRES_URL:
        import_all_models()
        names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        with service.session_factory() as session:
            session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            session.commit()
    else:
        create_schema(service)
    yield service
    service.session_factory.kw["bind"].dispose()


@pytest.fixture
def app(settings: dict[str, Any], espace: Espace) -> Flask:
    from mes.app import create_app

    flask_app = create_app(settings, espace=espace)
    flask_app.config["TESTING"] = True
    return flask_app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """The app on a real loopback HTTP server, for independent clients (zeep, fhirclient)."""
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)
