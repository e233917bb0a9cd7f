"""Real databases for tests: a SQLite file in tmp_path, or a throwaway PostgreSQL schema.

Use ``BACKENDS`` as fixture params and ``migrated_engine(backend, tmp_path)`` inside the
fixture::

    @pytest.fixture(params=BACKENDS)
    def store(request, tmp_path):
        with migrated_engine(request.param, tmp_path) as engine:
            yield SqlStore(engine)

PostgreSQL runs at ``POSTGRES_URL`` (trust auth). Each use gets a fresh schema
``digest_t_<random>`` on the search path, dropped afterwards. When the server is
unreachable the test is skipped, except under CI (``CI=true``), where it fails.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from digest.store.engine import create_engine_for
from digest.store.migrate import migrate

POSTGRES_URL = os.environ.get(
    "DIGEST_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


def sqlite_url(tmp_path: Path, name: str = "digest.db") -> str:
    """A SQLite URL for a file in ``tmp_path`` (in a subfolder the engine must create)."""
    return f"sqlite:///{tmp_path / 'data' / name}"


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A database URL whose search path is a fresh, empty schema; dropped on exit."""
    schema = f"digest_t_{secrets.token_hex(6)}"
    admin = create_engine(POSTGRES_URL, pool_pre_ping=False)
    try:
        try:
            with admin.begin() as connection:
                connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        except OperationalError as exc:
            reason = f"PostgreSQL at {POSTGRES_URL} is unreachable: {exc.orig}"
            if os.environ.get("CI") == "true":
                pytest.fail(reason)
            pytest.skip(reason)
        try:
            yield f"{POSTGRES_URL}?options={quote(f'-csearch_path={schema}')}"
        finally:
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


@contextmanager
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database of ``backend`` ("sqlite" or "postgres")."""
    if backend == "sqlite":
        yield sqlite_url(tmp_path)
    elif backend == "postgres":
        with postgres_schema() as url:
            yield url
    else:
        raise ValueError(f"unknown test database backend {backend!r}")


@contextmanager
def engine_for(backend: str, tmp_path: Path) -> Iterator[Engine]:
    """An engine (from ``create_engine_for``) on an empty, unmigrated database."""
    with database_url(backend, tmp_path) as url:
        engine = create_engine_for(url)
        try:
            yield engine
        finally:
            engine.dispose()


@contextmanager
def migrated_engine(backend: str, tmp_path: Path) -> Iterator[Engine]:
    """An engine on a database migrated to head with ``migrate()``."""
    with engine_for(backend, tmp_path) as engine:
        migrate(engine)
        yield engine
