"""Alembic's entry point for digest's migrations: runs them on the connection it is given.

``digest.store.migrate`` passes an open connection in ``config.attributes["connection"]``;
a bare ``sqlalchemy.url`` main option works too (for ad-hoc use of the alembic API).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from digest.store.engine import create_engine_for
from digest.store.tables import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things: future migrations get copy-and-move batches.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    given = context.config.attributes.get("connection")
    if isinstance(given, Connection):
        _run(given)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("digest migrations need a connection: use `digest migrate`")
    engine = create_engine_for(url)
    try:
        with engine.begin() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("digest migrations run online only: use `digest migrate`")
run_migrations_online()
