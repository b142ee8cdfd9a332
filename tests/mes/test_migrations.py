"""The Alembic migrations build exactly the schema the models declare (on SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from espace.db import Base, make_engine
from mes.migrate import upgrade
from mes.wiring import import_all_models


def _url(tmp_path: Path) -> str:
    base = os.environ.get("MES_TEST_DATABASE_URL")
    if not base:
        return f"sqlite:///{tmp_path / 'migrated.db'}"
    import psycopg

    schema = f"mes_test_migrations_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


def test_upgrade_head_matches_the_models(tmp_path: Path) -> None:
    url = _url(tmp_path)
    upgrade(url)
    import_all_models()
    engine = make_engine(url)
    with engine.connect() as conn, warnings.catch_warnings():
        # SQLite's reflection skips expression indexes (upper(family_name)); alembic then
        # leaves them out of the comparison (they are created by migration 0005)
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based")
        warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression")
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": False}), Base.metadata
        )
    engine.dispose()
    assert diff == [], f"models and migrations differ; run alembic revision --autogenerate: {diff}"


def test_upgrade_is_idempotent(tmp_path: Path) -> None:
    url = _url(tmp_path)
    upgrade(url)
    upgrade(url)  # a second run finds nothing to do and does not fail


@pytest.mark.parametrize("table", ["trace_record", "document_entry", "patient_space"])
def test_core_tables_exist_after_upgrade(tmp_path: Path, table: str) -> None:
    from sqlalchemy import inspect

    url = _url(tmp_path)
    upgrade(url)
    engine = make_engine(url)
    assert table in inspect(engine).get_table_names()
    engine.dispose()
