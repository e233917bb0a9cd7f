"""The SQL store itself: engines, migrations, and races between real connections.

The behaviour every store shares is in ``test_store_contract.py``.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, func, make_url, select, text

from digest.errors import StoreError
from digest.models import (
    DeliveryStatus,
    Rendered,
    SourceState,
)
from digest.store import SqlStore, check_schema, create_engine_for, migrate
from digest.store import tables as t
from digest.store.migrate import alembic_config, head_revision

from support.databases import (
    BACKENDS,
    POSTGRES_URL,
    database_url,
    engine_for,
    migrated_engine,
    postgres_schema,
)
from support.records import open_for_all, subscribe

LATER = timedelta(hours=1)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def engine(backend: str, tmp_path: Path) -> Iterator[Engine]:
    with migrated_engine(backend, tmp_path) as engine:
        yield engine


@pytest.fixture
def store(engine: Engine) -> SqlStore:
    return SqlStore(engine)


# --- engine and migrations -------------------------------------------------------------


def test_sqlite_engine_creates_the_folder_and_sets_pragmas(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'a' / 'b' / 'digest.db'}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert (tmp_path / "a" / "b" / "digest.db").is_file()
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "url", ["mysql+pymysql://root:hunter2@localhost/digest", "not a url at all"]
)
def test_unsupported_or_malformed_urls_are_store_errors(url: str) -> None:
    with pytest.raises(StoreError, match="sqlite:///") as raised:
        create_engine_for(url)
    assert "hunter2" not in str(raised.value)


def test_an_unreachable_database_is_a_store_error_without_the_password() -> None:
    engine = create_engine_for("postgresql://digest:hunter2@127.0.0.1:1/digest")
    try:
        assert engine.url.drivername == "postgresql+psycopg"
        with pytest.raises(StoreError, match=r"digest:\*\*\*@127\.0\.0\.1:1/digest") as raised:
            SqlStore(engine).get_source_state("blog")
        assert "hunter2" not in str(raised.value)
        with pytest.raises(StoreError, match="unreachable"):
            check_schema(engine)
    finally:
        engine.dispose()


def test_migrate_is_idempotent_and_reaches_head(backend: str, tmp_path: Path) -> None:
    with engine_for(backend, tmp_path) as engine:
        assert migrate(engine) == head_revision()
        assert migrate(engine) == head_revision()
        check_schema(engine)
        with engine.connect() as connection:
            assert MigrationContext.configure(connection).get_current_revision() == "0007_signup"


def test_upgrading_keeps_the_ledger_and_marks_what_each_reader_was_offered(
    backend: str, tmp_path: Path, now: datetime
) -> None:
    with engine_for(backend, tmp_path) as engine:
        config = alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0001")
        with engine.begin() as connection:
            connection.execute(
                text("INSERT INTO subscribers VALUES ('s1', 'a@example.org', 'a@example.org', :n)"),
                {"n": now},
            )
            connection.execute(
                text("INSERT INTO subscriptions VALUES ('s1', 'daily', 'confirmed', :n, :n)"),
                {"n": now - timedelta(days=3)},
            )
            for ident, minutes in (("old", 0), ("twin", 5)):  # the double-send bug's twins
                connection.execute(
                    text("INSERT INTO editions VALUES (:i, 'daily', :i, :n, 'sent', 'S', '')"),
                    {"i": ident, "n": now + timedelta(minutes=minutes)},
                )
                connection.execute(
                    text("INSERT INTO edition_posts VALUES (:i, 0, 'k1')"), {"i": ident}
                )
                connection.execute(
                    text(
                        "INSERT INTO deliveries VALUES (:i, 's1', 'a@example.org', '<m>',"
                        " 'sent', 1, '250 ok', :n)"
                    ),
                    {"i": ident, "n": now},
                )
        migrate(engine)
        store = SqlStore(engine)
        (row,) = store.list_deliveries("old")
        assert (row.status, row.duplicate, row.attempts) == (DeliveryStatus.SENT, False, 1)
        reader = store.reader_state("s1", "daily")  # marked at the newest edition they were in
        assert (reader.mark.at, reader.first, reader.topics) == (
            now + timedelta(minutes=5),
            False,
            None,
        )
        assert store.get_edition("twin").post_keys == ("k1",)


def test_check_schema_names_the_command_on_an_unmigrated_database(
    backend: str, tmp_path: Path
) -> None:
    with (
        engine_for(backend, tmp_path) as engine,
        pytest.raises(StoreError, match=r"never migrated.*needs 0007_signup.*`digest migrate`"),
    ):
        check_schema(engine)


def test_a_revision_from_a_newer_digest_is_refused(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'ffff'"))
    with pytest.raises(StoreError, match=r"revision ffff.*upgrade digest"):
        check_schema(engine)
    with pytest.raises(StoreError, match="newer digest"):
        migrate(engine)


@pytest.mark.postgres
def test_processes_migrating_a_fresh_postgres_database_at_once_wait_for_each_other() -> None:
    # Every `digest worker` may run `digest migrate` as it starts: without the advisory lock
    # all but one die on "duplicate key value violates unique constraint" (or worse).
    with postgres_schema() as url:
        # Without the advisory lock, these threads deadlock (a database lock against
        # alembic's module loading): lock_timeout turns that into a failure, not a hang.
        options = make_url(url).query["options"] + " -clock_timeout=10s"
        url = make_url(url).update_query_dict({"options": options}).render_as_string(False)
        engines = [create_engine_for(url) for _ in range(4)]
        barrier = threading.Barrier(len(engines))

        def run(engine: Engine) -> str:
            barrier.wait(timeout=5)
            return migrate(engine)

        try:
            with ThreadPoolExecutor(max_workers=len(engines)) as pool:
                revisions = list(pool.map(run, engines))
            assert revisions == [head_revision()] * len(engines)
            check_schema(engines[0])
            with engines[0].connect() as connection:
                versions = connection.execute(text("SELECT version_num FROM alembic_version"))
                assert versions.scalars().all() == [head_revision()]
        finally:
            for engine in engines:
                engine.dispose()


@pytest.mark.postgres
def test_a_user_without_create_on_the_schema_is_told_what_to_grant() -> None:
    role = f"digest_t_{secrets.token_hex(4)}"
    with postgres_schema() as url:
        schema = make_url(url).query["options"].partition("search_path=")[2]
        admin = create_engine(POSTGRES_URL)
        try:
            with admin.begin() as connection:  # PostgreSQL 15's default for a non-owner
                connection.execute(text(f'CREATE ROLE "{role}" LOGIN'))
                connection.execute(text(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"'))
            engine = create_engine_for(
                make_url(url).set(username=role, password="hunter2").render_as_string(False)
            )
            try:
                with pytest.raises(StoreError) as raised:
                    migrate(engine)
            finally:
                engine.dispose()
        finally:
            with admin.begin() as connection:
                connection.execute(text(f'DROP OWNED BY "{role}"'))
                connection.execute(text(f'DROP ROLE "{role}"'))
            admin.dispose()
    message = str(raised.value)
    assert message.startswith(f"database postgresql+psycopg://{role}:***@")
    assert f"does not let {role} create digest's tables (permission denied for schema " in message
    assert f"GRANT CREATE ON SCHEMA {schema} TO {role}" in message
    assert "as the database owner" in message
    assert "hunter2" not in message


def test_the_migrated_schema_matches_tables_py(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, t.metadata) == []


@pytest.mark.parametrize("rounds", [3])
def test_racing_schedulers_create_exactly_one_edition(
    backend: str, tmp_path: Path, now: datetime, rounds: int
) -> None:
    with database_url(backend, tmp_path) as url:
        engines = [create_engine_for(url) for _ in range(2)]
        try:
            migrate(engines[0])
            stores = [SqlStore(engine) for engine in engines]
            subscribe(stores[0], "reader@example.org", now)
            for round_ in range(rounds):
                barrier = threading.Barrier(len(stores))
                with ThreadPoolExecutor(max_workers=len(stores)) as pool:
                    outcomes = list(
                        pool.map(
                            lambda store, b=barrier, p=f"2026-W{round_}": _race(store, b, p, now),
                            stores,
                        )
                    )
                winners = [o for o in outcomes if o is not None]
                assert len(winners) == 1
                found = stores[0].find_edition("weekly", f"2026-W{round_}")
                assert found is not None
                assert found.id == winners[0]
                assert found.post_keys == (f"a-2026-W{round_}", f"b-2026-W{round_}")
            with engines[0].connect() as connection:
                count = connection.execute(select(func.count()).select_from(t.editions))
                assert count.scalar_one() == rounds
                posts = connection.execute(select(func.count()).select_from(t.edition_posts))
                assert posts.scalar_one() == 2 * rounds
        finally:
            for engine in engines:
                engine.dispose()


def test_concurrent_sign_ups_of_one_address_make_one_reader(
    backend: str, tmp_path: Path, now: datetime
) -> None:
    with database_url(backend, tmp_path) as url:
        engines = [create_engine_for(url) for _ in range(4)]
        try:
            migrate(engines[0])
            barrier = threading.Barrier(len(engines))

            def sign_up(engine: Engine) -> list[str]:
                barrier.wait(timeout=5)
                store = SqlStore(engine)
                return [
                    subscribe(store, email, now, newsletter=newsletter)[0]
                    for email in ("same@example.org", "also@example.org")
                    for newsletter in ("weekly", "daily")
                ]

            with ThreadPoolExecutor(max_workers=len(engines)) as pool:
                ids = {i for found in pool.map(sign_up, engines) for i in found}
            assert len(ids) == 2
            assert len(SqlStore(engines[0]).list_subscriptions()) == 4
        finally:
            for engine in engines:
                engine.dispose()


def test_sqlite_reads_do_not_wait_for_a_writer(tmp_path: Path, now: datetime) -> None:
    with migrated_engine("sqlite", tmp_path) as engine:
        store = SqlStore(engine)
        store.save_source_state(SourceState("blog", etag="e"))
        writer = create_engine_for(str(engine.url))
        try:
            with writer.begin() as connection:  # holds SQLite's write lock (BEGIN IMMEDIATE)
                connection.execute(t.sources.delete())
                started = time.monotonic()
                assert store.get_source_state("blog") == SourceState("blog", etag="e")
                assert time.monotonic() - started < 1
        finally:
            writer.dispose()


def _race(store: SqlStore, barrier: threading.Barrier, period: str, now: datetime) -> str | None:
    """One scheduler: wait for the other, then try to open the period's edition."""
    barrier.wait(timeout=5)
    opened = open_for_all(
        store,
        newsletter_id="weekly",
        period_key=period,
        now=now,
        post_keys=[f"a-{period}", f"b-{period}"],
        rendered=Rendered("S", "<p>h</p>", "t"),
        message_id=lambda sid: f"<{sid}@example.org>",
        edition_id=secrets.token_hex(8),
        no_readers="none",
    )
    assert opened is not None
    edition, recipients = opened
    return None if recipients < 0 else edition.id
