"""Schema migrations, run from code: `digest migrate` upgrades, every other command checks.

Alembic is configured here rather than in an ``alembic.ini``: the scripts ship inside
the package (``digest/store/migrations``) and the connection is handed to ``env.py``
through ``Config.attributes``. Developers create a revision with::

    python -c "from digest.store.migrate import alembic_config; \
from alembic import command; command.revision(alembic_config(), 'what changed')"

and then edit it by hand (keep ``tables.py`` in sync; the store tests compare them).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from digest.errors import StoreError
from digest.store.engine import masked, unreachable

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


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
    migration leaves the schema as it was.
    """
    config = alembic_config()
    _refuse_unknown_revision(engine, current_revision(engine))
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except OperationalError as exc:
        raise unreachable(engine, exc) from None
    return head_revision()


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
