"""The bench database: a schema ``bench`` of its own on PostgreSQL (dropped at the end), or a
SQLite file when no PostgreSQL answers. Never touches other schemas (tests use ``mes_test_*``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
SCHEMA = "bench"


def postgres_answers(url: str) -> bool:
    try:
        import psycopg

        psycopg.connect(url, connect_timeout=3).close()
    except Exception:
        return False
    return True


@dataclass
class BenchDb:
    """Where the bench data lives. ``url`` is what the server under test gets (MES_DATABASE_URL)."""

    base_url: str
    schema: str = SCHEMA
    sqlite_path: Path | None = None

    @property
    def kind(self) -> str:
        return "sqlite" if self.sqlite_path is not None else "postgresql"

    @property
    def url(self) -> str:
        if self.sqlite_path is not None:
            return f"sqlite:///{self.sqlite_path}"
        sep = "&" if "?" in self.base_url else "?"
        return f"{self.base_url}{sep}options=-csearch_path%3D{self.schema}"

    @classmethod
    def choose(cls, pg_url: str, workdir: Path, schema: str = SCHEMA) -> BenchDb:
        """PostgreSQL when it answers at ``pg_url``, else a SQLite file under ``workdir``."""
        if not schema.isidentifier() or schema.startswith("mes_test"):
            raise ValueError(f"refusing schema {schema!r}")
        if pg_url and postgres_answers(pg_url):
            return cls(pg_url, schema=schema)
        workdir.mkdir(parents=True, exist_ok=True)
        return cls("", sqlite_path=workdir / "bench.db")

    # ------------------------------------------------------------------ schema
    def reset(self) -> None:
        """Drop and recreate the bench schema with every table of the application."""
        from espace.db import Base
        from mes.wiring import import_all_models

        import_all_models()
        if self.sqlite_path is not None:
            for suffix in ("", "-wal", "-shm"):
                Path(str(self.sqlite_path) + suffix).unlink(missing_ok=True)
        else:
            with self.raw() as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
                conn.execute(f'CREATE SCHEMA "{self.schema}"')
        engine = self.engine()
        Base.metadata.create_all(engine)
        engine.dispose()

    def drop(self) -> None:
        if self.sqlite_path is not None:
            for suffix in ("", "-wal", "-shm"):
                Path(str(self.sqlite_path) + suffix).unlink(missing_ok=True)
            return
        with self.raw() as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')

    def engine(self) -> Engine:
        from espace.db import make_engine

        return make_engine(self.url)

    @contextmanager
    def raw(self) -> Iterator[Any]:
        """A DB-API connection in autocommit mode (psycopg 3, or sqlite3)."""
        if self.sqlite_path is not None:
            conn = sqlite3.connect(self.sqlite_path, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            try:
                yield conn
            finally:
                conn.close()
            return
        import psycopg

        with psycopg.connect(self.base_url, autocommit=True) as pg:
            pg.execute(f'SET search_path TO "{self.schema}"')
            yield pg

    def placeholder(self) -> str:
        return "?" if self.sqlite_path is not None else "%s"

    def analyze(self) -> None:
        with self.raw() as conn:
            conn.execute("ANALYZE")

    def size_bytes(self) -> int:
        if self.sqlite_path is not None:
            return sum(
                Path(str(self.sqlite_path) + s).stat().st_size
                for s in ("", "-wal")
                if Path(str(self.sqlite_path) + s).exists()
            )
        with self.raw() as conn:
            row = conn.execute(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relkind = 'r'",
                (self.schema,),
            ).fetchone()
            return int(row[0])
