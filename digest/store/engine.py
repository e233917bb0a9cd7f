"""Database engines for digest: SQLite tuned for one busy process, or PostgreSQL.

SQLite gets WAL (readers never block the writer), a busy timeout, enforced foreign
keys, and SQLAlchemy in charge of BEGIN: write transactions start with
``BEGIN IMMEDIATE`` so that a read-then-write transaction takes the write lock up
front instead of failing halfway when another writer got there first.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import Connection, Engine, Table, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.pool import ConnectionPoolEntry

from digest.errors import StoreError

BUSY_TIMEOUT_MS = 5000

READ_ONLY = "digest_read_only"
"""Connection execution option: on SQLite, begin with a plain (deferred) ``BEGIN``."""

_USAGE = "use sqlite:///path/to/digest.db or postgresql+psycopg://user:password@host/dbname"


def create_engine_for(database_url: str) -> Engine:
    """An engine for ``database_url`` (``sqlite:///...`` or ``postgresql+psycopg://...``).

    For a SQLite file the parent directory is created if missing. A bare
    ``postgresql://`` URL is taken to mean the psycopg (3) driver.
    Raises ``StoreError`` for a malformed or unsupported URL.
    """
    try:
        url = make_url(database_url)
    except ArgumentError as exc:
        raise StoreError(f"database URL {database_url!r} is malformed ({exc}): {_USAGE}") from None
    backend = url.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url)
    if backend == "postgresql":
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        return _create(url, pool_pre_ping=True)
    raise StoreError(f"database URL {masked(url)} is not supported: {_USAGE}")


def masked(url: URL | Engine | str) -> str:
    """The URL as text with its password replaced by ``***``, for messages and logs."""
    if isinstance(url, Engine):
        url = url.url
    if isinstance(url, str):
        try:
            url = make_url(url)
        except ArgumentError:
            return "<malformed database URL>"
    return url.render_as_string(hide_password=True)


def unreachable(engine: Engine, exc: BaseException) -> StoreError:
    """The error to raise when the database cannot be reached or refuses to work."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    detail = reason[0] if reason else type(exc).__name__
    if "no such table" in detail:  # SQLite's word for an unmigrated database
        return StoreError(
            f"database {masked(engine)} has no digest schema ({detail}): run `digest migrate`"
        )
    return StoreError(
        f"database {masked(engine)} is unreachable or failing ({detail}): check that the "
        "server is running and that the database URL (host, user, password, name) is right"
    )


def _create(url: URL, **kwargs: Any) -> Engine:
    try:
        return sqlalchemy.create_engine(url, **kwargs)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise StoreError(f"cannot use database {masked(url)} ({exc}): {_USAGE}") from None


def _sqlite_engine(url: URL) -> Engine:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        try:
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the directory of SQLite database {database}: {exc}"
            ) from None
    engine = _create(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
    event.listen(engine, "connect", _on_sqlite_connect)
    event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def _on_sqlite_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    assert isinstance(dbapi_connection, sqlite3.Connection)
    # Take BEGIN away from the sqlite3 module (it would defer it past SELECTs
    # and skip it for DDL); _on_sqlite_begin emits it instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _on_sqlite_begin(connection: Connection) -> None:
    if connection.get_execution_options().get(READ_ONLY):
        connection.exec_driver_sql("BEGIN")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def insert_for(connection: Connection, table: Table) -> sqlite.Insert | postgresql.Insert:
    """An INSERT with the dialect's ``ON CONFLICT`` clauses (SQLite and PostgreSQL share them)."""
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def placeholder(connection: Connection) -> str:
    """The driver's parameter marker, for the few statements run through the driver."""
    return "?" if connection.dialect.paramstyle == "qmark" else "%s"
