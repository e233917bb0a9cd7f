"""The Store contract, run against SQLite (a file) and PostgreSQL (a fresh schema)."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, func, make_url, select, text

from digest.errors import AlreadyExists, NotFound, StoreError
from digest.models import (
    Delivery,
    DeliveryStatus,
    EditionStatus,
    Post,
    SendResult,
    SourceState,
    SubscriptionStatus,
)
from digest.store import SqlStore, check_schema, create_engine_for, migrate
from digest.store import tables as t
from digest.store.migrate import head_revision

from support.databases import (
    BACKENDS,
    POSTGRES_URL,
    database_url,
    engine_for,
    migrated_engine,
    postgres_schema,
)

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


def make_post(guid: str, *, source: str = "blog", title: str = "", **fields: object) -> Post:
    published = fields.pop("published", datetime(2026, 11, 20, 9, 30, tzinfo=UTC))
    return Post(
        source_id=source,
        guid=guid,
        title=title or f"Post {guid}",
        link=f"https://example.org/{source}/{guid}",
        published=published,  # type: ignore[arg-type]
        **fields,  # type: ignore[arg-type]
    )


def subscribe(
    store: SqlStore,
    email: str,
    now: datetime,
    *,
    newsletter: str = "weekly",
    status: SubscriptionStatus = SubscriptionStatus.CONFIRMED,
    resubscribe: bool = False,
) -> tuple[str, bool]:
    subscription, changed = store.add_subscription(
        email=email,
        ascii_email=email,
        newsletter_id=newsletter,
        status=status,
        now=now,
        resubscribe=resubscribe,
    )
    return subscription.subscriber.id, changed


def delivery(edition_id: str, subscriber_id: str, email: str) -> Delivery:
    return Delivery(
        edition_id=edition_id,
        subscriber_id=subscriber_id,
        email=email,
        message_id=f"<{edition_id}.{subscriber_id}@example.org>",
        status=DeliveryStatus.PENDING,
    )


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
            assert MigrationContext.configure(connection).get_current_revision() == "0001"


def test_check_schema_names_the_command_on_an_unmigrated_database(
    backend: str, tmp_path: Path
) -> None:
    with (
        engine_for(backend, tmp_path) as engine,
        pytest.raises(StoreError, match=r"never migrated.*needs 0001.*`digest migrate`"),
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


# --- sources and posts -----------------------------------------------------------------


def test_source_state_round_trips_and_is_replaced(store: SqlStore, now: datetime) -> None:
    assert store.get_source_state("blog") is None
    first = SourceState("blog", etag='"abc"', last_modified="Fri, 27 Nov 2026 06:00:00 GMT")
    store.save_source_state(first)
    assert store.get_source_state("blog") == first
    second = SourceState("blog", etag='"def"', last_fetched=now, last_error="timed out")
    store.save_source_state(second)
    assert store.get_source_state("blog") == second
    assert store.get_source_state("other") is None


def test_upsert_keeps_first_seen_and_refreshes_content(store: SqlStore, now: datetime) -> None:
    assert store.upsert_posts([make_post("1"), make_post("2")], now) == 2
    edited = make_post(
        "1",
        title="Edited",
        summary_html="<p>new</p>",
        categories=("a", "b"),
        image_url="https://example.org/i.png",
    )
    assert store.upsert_posts([edited, make_post("3")], now + LATER) == 1
    stored = {c.post.guid: c for c in store.candidate_posts("weekly", ["blog"])}
    assert stored["1"].post == edited
    assert stored["1"].first_seen == now
    assert stored["3"].first_seen == now + LATER
    assert store.upsert_posts([], now) == 0


def test_a_guid_listed_twice_in_one_batch_counts_once(store: SqlStore, now: datetime) -> None:
    twice = [make_post("1", title="old"), make_post("1", title="new")]
    assert store.upsert_posts(twice, now) == 1
    assert [p.title for p in store.get_posts([make_post("1").key])] == ["new"]


def test_get_posts_keeps_the_order_of_keys_and_skips_unknown(
    store: SqlStore, now: datetime
) -> None:
    posts = [make_post(str(i)) for i in range(5)]
    store.upsert_posts(posts, now)
    keys = [posts[3].key, "0" * 32, posts[0].key, posts[4].key]
    assert store.get_posts(keys) == [posts[3], posts[0], posts[4]]
    assert store.get_posts([]) == []


def test_candidates_exclude_posts_of_this_newsletters_editions_only(
    store: SqlStore, now: datetime
) -> None:
    a, b, c = make_post("a"), make_post("b"), make_post("c", source="news")
    store.upsert_posts([a, b, c], now)
    store.create_edition(
        newsletter_id="weekly",
        period_key="2026-W47",
        now=now,
        post_keys=[a.key],
        status=EditionStatus.SENDING,
    )
    weekly = {s.post.key for s in store.candidate_posts("weekly", ["blog", "news"])}
    daily = {s.post.key for s in store.candidate_posts("daily", ["blog", "news"])}
    assert weekly == {b.key, c.key}
    assert daily == {a.key, b.key, c.key}
    assert {s.post.key for s in store.candidate_posts("daily", ["news"])} == {c.key}
    assert store.candidate_posts("weekly", []) == []


def test_datetimes_come_back_aware_utc(store: SqlStore, now: datetime) -> None:
    paris = timezone(timedelta(hours=1))
    post = make_post("tz", published=datetime(2026, 11, 20, 10, 30, tzinfo=paris))
    store.upsert_posts([post], now.astimezone(paris))
    [stored] = store.candidate_posts("weekly", ["blog"])
    assert stored.post.published == datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    assert stored.post.published.tzinfo == UTC
    assert stored.first_seen == now
    assert stored.first_seen.tzinfo == UTC


def test_naive_datetimes_are_refused(store: SqlStore, now: datetime) -> None:
    naive = datetime(2026, 11, 27, 7, 0)
    with pytest.raises(ValueError, match="naive"):
        store.upsert_posts([make_post("x", published=naive)], now)
    with pytest.raises(ValueError, match="naive"):
        store.upsert_posts([make_post("x")], naive)
    with pytest.raises(ValueError, match="naive"):
        store.save_source_state(SourceState("blog", last_fetched=naive))
    assert store.get_posts([make_post("x").key]) == []


# --- subscribers ----------------------------------------------------------------------


def test_add_subscription_creates_once_and_keeps_status(store: SqlStore, now: datetime) -> None:
    sub, created = store.add_subscription(
        email="ana@example.org",
        ascii_email="ana@example.org",
        newsletter_id="weekly",
        status=SubscriptionStatus.PENDING,
        now=now,
    )
    assert created
    assert sub.status is SubscriptionStatus.PENDING
    assert sub.changed_at == now
    assert sub.subscriber.created_at == now
    assert len(sub.subscriber.id) >= 16
    again_id, changed = subscribe(store, "ana@example.org", now + LATER)
    assert (again_id, changed) == (sub.subscriber.id, False)
    [kept] = store.list_subscriptions("weekly")
    assert kept.status is SubscriptionStatus.PENDING
    assert kept.changed_at == now
    other_id, changed = subscribe(store, "ana@example.org", now, newsletter="daily")
    assert (other_id, changed) == (sub.subscriber.id, True)


def test_only_resubscribe_revives_an_unsubscribed_reader(store: SqlStore, now: datetime) -> None:
    sid, _ = subscribe(store, "bo@example.org", now)
    assert store.set_subscription_status(sid, "weekly", SubscriptionStatus.UNSUBSCRIBED, now)
    assert subscribe(store, "bo@example.org", now + LATER) == (sid, False)
    assert store.confirmed_subscribers("weekly") == []
    assert subscribe(store, "bo@example.org", now + LATER, resubscribe=True) == (sid, True)
    [revived] = store.list_subscriptions("weekly")
    assert revived.status is SubscriptionStatus.CONFIRMED
    assert revived.changed_at == now + LATER
    assert subscribe(store, "bo@example.org", now, resubscribe=True) == (sid, False)


def test_idn_addresses_keep_both_forms(store: SqlStore, now: datetime) -> None:
    sub, _ = store.add_subscription(
        email="zoë@bücher.example",
        ascii_email="zoë@xn--bcher-kva.example",
        newsletter_id="weekly",
        status=SubscriptionStatus.CONFIRMED,
        now=now,
    )
    assert store.get_subscriber(sub.subscriber.id) == sub.subscriber
    assert sub.subscriber.ascii_email == "zoë@xn--bcher-kva.example"


def test_get_subscriber_of_an_unknown_id_names_it(store: SqlStore) -> None:
    with pytest.raises(NotFound, match="nobody-here"):
        store.get_subscriber("nobody-here")


def test_subscriptions_are_listed_by_email_then_newsletter(store: SqlStore, now: datetime) -> None:
    subscribe(store, "zed@example.org", now, newsletter="weekly")
    subscribe(store, "amy@example.org", now, newsletter="weekly")
    subscribe(store, "amy@example.org", now, newsletter="daily")
    everything = [(s.subscriber.email, s.newsletter_id) for s in store.list_subscriptions()]
    assert everything == [
        ("amy@example.org", "daily"),
        ("amy@example.org", "weekly"),
        ("zed@example.org", "weekly"),
    ]
    assert [s.subscriber.email for s in store.list_subscriptions("daily")] == ["amy@example.org"]


def test_set_subscription_status_is_idempotent(store: SqlStore, now: datetime) -> None:
    sid, _ = subscribe(store, "cy@example.org", now, status=SubscriptionStatus.PENDING)
    assert store.set_subscription_status(sid, "weekly", SubscriptionStatus.CONFIRMED, now + LATER)
    assert not store.set_subscription_status(sid, "weekly", SubscriptionStatus.CONFIRMED, now)
    [sub] = store.list_subscriptions()
    assert (sub.status, sub.changed_at) == (SubscriptionStatus.CONFIRMED, now + LATER)
    with pytest.raises(NotFound, match="daily"):
        store.set_subscription_status(sid, "daily", SubscriptionStatus.CONFIRMED, now)
    with pytest.raises(NotFound, match="ghost"):
        store.set_subscription_status("ghost", "weekly", SubscriptionStatus.CONFIRMED, now)


def test_confirmed_subscribers_by_email(store: SqlStore, now: datetime) -> None:
    subscribe(store, "b@example.org", now)
    subscribe(store, "a@example.org", now)
    subscribe(store, "c@example.org", now, status=SubscriptionStatus.PENDING)
    subscribe(store, "d@example.org", now, newsletter="daily")
    emails = [s.email for s in store.confirmed_subscribers("weekly")]
    assert emails == ["a@example.org", "b@example.org"]


# --- editions --------------------------------------------------------------------------


def test_one_edition_per_newsletter_and_period(store: SqlStore, now: datetime) -> None:
    first = store.create_edition(
        newsletter_id="weekly",
        period_key="2026-W48",
        now=now,
        post_keys=["k3", "k1", "k2"],
        status=EditionStatus.SENDING,
        subject="Hello",
    )
    assert first is not None
    assert first.post_keys == ("k3", "k1", "k2")
    twin = store.create_edition(
        newsletter_id="weekly",
        period_key="2026-W48",
        now=now + LATER,
        post_keys=["k9"],
        status=EditionStatus.SKIPPED,
    )
    assert twin is None
    assert store.get_edition(first.id) == first
    assert store.find_edition("weekly", "2026-W48") == first
    assert store.find_edition("weekly", "2026-W49") is None
    other = store.create_edition(
        newsletter_id="daily",
        period_key="2026-W48",
        now=now,
        post_keys=[],
        status=EditionStatus.SKIPPED,
        edition_id="chosen-id",
    )
    assert other is not None
    assert other.id == "chosen-id"
    assert store.get_edition("chosen-id").post_keys == ()


def test_a_reused_edition_id_is_not_mistaken_for_a_twin(store: SqlStore, now: datetime) -> None:
    kwargs = {"now": now, "post_keys": [], "status": EditionStatus.SKIPPED, "edition_id": "x"}
    assert store.create_edition(newsletter_id="weekly", period_key="p1", **kwargs) is not None
    with pytest.raises(AlreadyExists, match="'x' is already taken"):
        store.create_edition(newsletter_id="weekly", period_key="p2", **kwargs)
    assert store.find_edition("weekly", "p2") is None


def test_last_first_and_by_status(store: SqlStore, now: datetime) -> None:
    assert store.last_edition("weekly") is None
    assert store.first_edition("weekly") is None
    made = [
        store.create_edition(
            newsletter_id="weekly",
            period_key=f"2026-W{48 + i}",
            now=now + i * LATER,
            post_keys=[],
            status=status,
        )
        for i, status in enumerate(
            [EditionStatus.SKIPPED, EditionStatus.SENT, EditionStatus.SENDING]
        )
    ]
    store.create_edition(
        newsletter_id="daily",
        period_key="d",
        now=now + 9 * LATER,
        post_keys=[],
        status=EditionStatus.SENDING,
    )
    assert store.last_edition("weekly") == made[2]
    assert store.first_edition("weekly") == made[1]  # a skipped edition does not count
    sending = store.editions_with_status(EditionStatus.SENDING)
    assert [(e.newsletter_id, e.period_key) for e in sending] == [
        ("weekly", "2026-W50"),
        ("daily", "d"),
    ]


def test_unknown_editions_raise_not_found(store: SqlStore) -> None:
    with pytest.raises(NotFound, match="no-such"):
        store.get_edition("no-such")
    with pytest.raises(NotFound, match="no-such"):
        store.set_edition_status("no-such", EditionStatus.SENT)
    with pytest.raises(NotFound, match="no-such"):
        store.save_rendering("no-such", subject="s", html="h", text="t")


def test_edition_status_and_error(store: SqlStore, now: datetime) -> None:
    ed = store.create_edition(
        newsletter_id="weekly", period_key="p", now=now, post_keys=[], status=EditionStatus.SENDING
    )
    assert ed is not None
    store.set_edition_status(ed.id, EditionStatus.PAUSED, "relay refused: 421")
    paused = store.get_edition(ed.id)
    assert (paused.status, paused.error) == (EditionStatus.PAUSED, "relay refused: 421")
    store.set_edition_status(ed.id, EditionStatus.SENDING)
    assert store.get_edition(ed.id).error == ""


def test_renderings_are_archived_and_replaced(store: SqlStore, now: datetime) -> None:
    ed = store.create_edition(
        newsletter_id="weekly", period_key="p", now=now, post_keys=[], status=EditionStatus.SENDING
    )
    assert ed is not None
    assert store.get_rendering(ed.id) is None
    store.save_rendering(ed.id, subject="S1", html="<p>1</p>", text="1")
    assert store.get_rendering(ed.id) == ("S1", "<p>1</p>", "1")
    store.save_rendering(ed.id, subject="S2", html="<p>2</p>", text="2")
    assert store.get_rendering(ed.id) == ("S2", "<p>2</p>", "2")


@pytest.mark.parametrize("rounds", [3])
def test_racing_schedulers_create_exactly_one_edition(
    backend: str, tmp_path: Path, now: datetime, rounds: int
) -> None:
    with database_url(backend, tmp_path) as url:
        engines = [create_engine_for(url) for _ in range(2)]
        try:
            migrate(engines[0])
            stores = [SqlStore(engine) for engine in engines]
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
                assert found.post_keys == ("a", "b")
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


# --- deliveries ------------------------------------------------------------------------


@pytest.fixture
def edition_with_readers(store: SqlStore, now: datetime) -> tuple[str, list[tuple[str, str]]]:
    edition = store.create_edition(
        newsletter_id="weekly", period_key="p", now=now, post_keys=[], status=EditionStatus.SENDING
    )
    assert edition is not None
    readers = []
    for email in ["cat@example.org", "ann@example.org", "bob@example.org"]:
        sid, _ = subscribe(store, email, now)
        readers.append((sid, email))
    return edition.id, readers


def test_add_deliveries_is_idempotent(
    store: SqlStore, edition_with_readers: tuple[str, list[tuple[str, str]]]
) -> None:
    edition_id, readers = edition_with_readers
    rows = [delivery(edition_id, sid, email) for sid, email in readers]
    assert store.add_deliveries(rows[:2]) == 2
    changed = Delivery(**{**_fields(rows[0]), "message_id": "<other@example.org>"})
    assert store.add_deliveries([changed, *rows]) == 1
    assert store.add_deliveries(rows) == 0
    assert store.add_deliveries([]) == 0
    listed = store.list_deliveries(edition_id)
    assert [d.email for d in listed] == ["ann@example.org", "bob@example.org", "cat@example.org"]
    assert {d.message_id for d in listed} == {r.message_id for r in rows}


def test_record_delivery_and_unfinished(
    store: SqlStore, now: datetime, edition_with_readers: tuple[str, list[tuple[str, str]]]
) -> None:
    edition_id, readers = edition_with_readers
    store.add_deliveries([delivery(edition_id, sid, email) for sid, email in readers])
    (cat, _), (ann, _), (bob, _) = readers
    store.record_delivery(edition_id, cat, SendResult(DeliveryStatus.SENT, "250 ok"), now)
    store.record_delivery(edition_id, ann, SendResult(DeliveryStatus.DEFERRED, "451 later"), now)
    store.record_delivery(
        edition_id, ann, SendResult(DeliveryStatus.DEFERRED, "452 full"), now + LATER
    )
    unfinished = store.unfinished_deliveries(edition_id)
    assert [(d.email, d.status) for d in unfinished] == [
        ("ann@example.org", DeliveryStatus.DEFERRED),
        ("bob@example.org", DeliveryStatus.PENDING),
    ]
    ann_row = unfinished[0]
    assert (ann_row.attempts, ann_row.reply, ann_row.updated_at) == (2, "452 full", now + LATER)
    assert unfinished[1].updated_at is None
    by_email = {d.email: d for d in store.list_deliveries(edition_id)}
    assert by_email["cat@example.org"].status is DeliveryStatus.SENT
    assert by_email["cat@example.org"].attempts == 1
    with pytest.raises(NotFound, match="nobody"):
        store.record_delivery(edition_id, "nobody", SendResult(DeliveryStatus.SENT), now)
    assert bob  # pending, untouched


def test_list_editions_counts_per_status_newest_first(
    store: SqlStore, now: datetime, edition_with_readers: tuple[str, list[tuple[str, str]]]
) -> None:
    edition_id, readers = edition_with_readers
    store.add_deliveries([delivery(edition_id, sid, email) for sid, email in readers])
    store.record_delivery(edition_id, readers[0][0], SendResult(DeliveryStatus.SENT), now)
    store.record_delivery(edition_id, readers[1][0], SendResult(DeliveryStatus.FAILED), now)
    newer = store.create_edition(
        newsletter_id="weekly",
        period_key="q",
        now=now + LATER,
        post_keys=["k"],
        status=EditionStatus.SKIPPED,
    )
    store.create_edition(
        newsletter_id="daily", period_key="q", now=now, post_keys=[], status=EditionStatus.SKIPPED
    )
    assert newer is not None
    summaries = store.list_editions("weekly")
    assert [s.edition.id for s in summaries] == [newer.id, edition_id]
    assert summaries[0].edition.post_keys == ("k",)
    assert summaries[0].recipients == 0
    counts = summaries[1].counts
    assert counts[DeliveryStatus.SENT] == 1
    assert counts[DeliveryStatus.FAILED] == 1
    assert counts[DeliveryStatus.PENDING] == 1
    assert counts[DeliveryStatus.DEFERRED] == 0
    assert summaries[1].recipients == 3
    assert len(store.list_editions()) == 3
    assert [s.edition.id for s in store.list_editions(limit=1)] == [newer.id]
    assert store.list_editions("monthly") == []


def _race(store: SqlStore, barrier: threading.Barrier, period: str, now: datetime) -> str | None:
    """One scheduler: wait for the other, then try to create the period's edition."""
    barrier.wait(timeout=5)
    edition = store.create_edition(
        newsletter_id="weekly",
        period_key=period,
        now=now,
        post_keys=["a", "b"],
        status=EditionStatus.SENDING,
    )
    return None if edition is None else edition.id


def _fields(row: Delivery) -> dict[str, object]:
    return {name: getattr(row, name) for name in Delivery.__slots__}


def test_sources_started_is_the_earliest_first_seen(store: SqlStore, now: datetime) -> None:
    store.upsert_posts([make_post("1"), make_post("2", source="other")], now)
    store.upsert_posts([make_post("3"), make_post("1")], now + LATER)
    started = store.sources_started(["blog", "other", "never-fetched"])
    assert started == {"blog": now, "other": now}
    assert all(moment.tzinfo is not None for moment in started.values())
    assert store.sources_started([]) == {}
