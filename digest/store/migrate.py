"""Schema migrations, run from code: `digest migrate` upgrades, every other command checks.

Alembic is configured here rather than in an ``alembic.ini``: the scripts ship inside
the package (``digest/store/migrations``) and the connection is handed to ``env.py``
through ``Config.attributes``. Developers create a revision with::

    python -c "from digest.store.migrate import alembic_config; \
from alembic import command; command.revision(alembic_config(), 'what changed')"

and then edit it by hand (keep ``tables.py`` in sync; the store tests compare them).
"""

from __future__ import annotations

import re
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, OperationalError

from digest.errors import StoreError
from digest.store.engine import masked, unreachable

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

MIGRATION_LOCK_KEY = 0x6469676573746D67  # "digestmg": the key of no other advisory lock
"""PostgreSQL advisory lock held by the migration transaction (``pg_advisory_xact_lock``)."""

_DENIED_SCHEMA = re.compile(r"permission denied for schema (\S+)")


def alembic_config() -> Config:
    """An Alembic configuration pointing at the packaged migration scripts."""
    config = Config()
    # Config values go through configparser interpolation: a literal % must be doubled.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return config


def head_revision() -> str:
    """The revision this version of digest needs the database to be at."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships 0001
        raise StoreError(f"no migration scripts found in {MIGRATIONS_DIR}: reinstall digest")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None if it was never migrated."""
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except OperationalError as exc:
        raise unreachable(engine, exc) from None


def migrate(engine: Engine) -> str:
    """Upgrade the database to the newest schema (idempotent); returns the head revision.

    Everything happens in one transaction: on PostgreSQL and SQLite a failed
    migration leaves the schema as it was. On PostgreSQL that transaction first takes
    the advisory lock :data:`MIGRATION_LOCK_KEY`, so processes migrating at once (every
    worker starting on a fresh database) wait for each other; the later ones find the
    schema at head and do nothing. (SQLite's ``BEGIN IMMEDIATE`` already serializes.)
    A database that refuses (no right to create tables, say) raises ``StoreError``.
    """
    config = alembic_config()
    _refuse_unknown_revision(engine, current_revision(engine))
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                lock = text("SELECT pg_advisory_xact_lock(:key)")
                connection.execute(lock, {"key": MIGRATION_LOCK_KEY})
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except DBAPIError as exc:
        raise _failed(engine, exc) from None
    return head_revision()


def _failed(engine: Engine, exc: DBAPIError) -> StoreError:
    """The ``StoreError`` for a database error during a migration, saying what to do."""
    lines = str(exc.orig or exc).strip().splitlines()
    detail = lines[0] if lines else type(exc).__name__
    if getattr(exc.orig, "sqlstate", None) == "42501" or "permission denied" in detail:
        # 42501: SQLSTATE insufficient_privilege (psycopg exposes it as .sqlstate).
        user = engine.url.username or "digest's database user"
        named = _DENIED_SCHEMA.search(detail)
        return StoreError(
            f"database {masked(engine)} does not let {user} create digest's tables ({detail}):"
            f" grant it CREATE on the schema (GRANT CREATE ON SCHEMA"
            f" {named[1] if named else 'public'} TO {user}; since PostgreSQL 15 only the"
            " database owner has it on schema public), or run `digest migrate` once as the"
            " database owner; nothing was changed"
        )
    if isinstance(exc, OperationalError):
        return unreachable(engine, exc)
    return StoreError(
        f"migrating database {masked(engine)} failed ({detail}); the migration was rolled"
        " back, nothing was changed: check the database server's log and that the database"
        " URL names a database digest may use"
    )


def check_schema(engine: Engine) -> None:
    """Raise ``StoreError`` unless the database is at the head revision.

    Every command but `digest migrate` calls this first, so that an old schema is
    reported with what to do instead of failing later on a missing column.
    """
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    _refuse_unknown_revision(engine, current)
    shown = current if current is not None else "<none> (never migrated)"
    raise StoreError(
        f"database {masked(engine)} is at revision {shown}, this digest needs {head}: "
        "run `digest migrate`"
    )


def _refuse_unknown_revision(engine: Engine, current: str | None) -> None:
    """A revision this code does not know was written by a newer digest: never touch it."""
    if current is None:
        return
    script = ScriptDirectory.from_config(alembic_config())
    if current not in {rev.revision for rev in script.walk_revisions()}:
        raise StoreError(
            f"database {masked(engine)} is at revision {current}, which this digest does not "
            f"know (it needs {head_revision()}): the database was migrated by a newer "
            "digest; upgrade digest instead"
        )
