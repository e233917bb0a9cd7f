"""The Store contract, run against every backend: SQLite, PostgreSQL and the memory store.

``SqlStore`` is what digest runs on; ``support.memory.MemoryStore`` lets the sender's
tests run without a database. Both must behave alike, so both meet this suite.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from digest.errors import AlreadyExists, NotFound
from digest.models import (
    REMOVED_ADDRESS,
    REMOVED_REPLY,
    Added,
    Allowance,
    CadenceReaders,
    Consent,
    DeliveryStatus,
    Draft,
    Edition,
    EditionStatus,
    Mark,
    NewReader,
    Outcome,
    Quota,
    Reader,
    Removal,
    Rendered,
    SourceHealth,
    SourceState,
    SubscriptionStatus,
    Variant,
    Verdict,
)
from digest.ports import Store
from digest.store import SqlStore

from support.databases import migrated_engine
from support.records import make_post, subscribe

LATER = timedelta(hours=1)
LEASE = timedelta(seconds=60)
RENDERED = Rendered("Subject", "<p>html</p>", "text")
STORES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    pytest.param("memory", id="memory"),
]


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "memory":
        from support.memory import MemoryStore

        yield MemoryStore()
        return
    with migrated_engine(request.param, tmp_path) as engine:
        yield SqlStore(engine)


EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
ALL_READERS = CadenceReaders("daily", ("daily",), default=True)


def open_edition(
    store: Store,
    now: datetime,
    *,
    period: str = "p",
    post_keys: tuple[str, ...] = ("k1", "k2"),
    newsletter: str = "weekly",
    edition_id: str | None = None,
    rendered: Rendered | None = RENDERED,
    verdicts: dict[Reader, Verdict] | None = None,
    sources: tuple[str, ...] = (),
    released: int = 0,
) -> tuple[Edition, int] | None:
    readers = CadenceReaders("daily", ("daily",), default=True)
    variants = (Variant(post_keys, rendered),) if rendered is not None and post_keys else ()
    if verdicts is None:
        verdicts = {
            reader: Verdict(0 if variants else None, Mark(now))
            for reader, _ in store.reader_groups(newsletter, readers)
        }
    draft = Draft(
        edition_id=edition_id or f"{newsletter}-{period}",
        newsletter_id=newsletter,
        readers=readers,
        period_key=period,
        now=now,
        source_ids=sources,
        released=released,
        variants=variants,
        verdicts=verdicts,
    )
    return store.open_edition(
        draft, message_id=lambda sid: f"<{sid}@example.org>", no_readers="nobody to send to"
    )


def opened(store: Store, now: datetime, **options: object) -> Edition:
    result = open_edition(store, now, **options)  # type: ignore[arg-type]
    assert result is not None
    return result[0]


# --- sources and posts -----------------------------------------------------------------


def test_source_state_round_trips_and_is_replaced(store: Store, now: datetime) -> None:
    assert store.get_source_state("blog") is None
    first = SourceState("blog", etag='"abc"', last_modified="Fri, 27 Nov 2026 06:00:00 GMT")
    store.save_source_state(first)
    assert store.get_source_state("blog") == first
    second = SourceState("blog", etag='"def"', last_fetched=now, last_error="timed out")
    store.save_source_state(second)
    assert store.get_source_state("blog") == second
    assert store.get_source_state("other") is None


def test_upsert_keeps_first_seen_and_refreshes_content(store: Store, now: datetime) -> None:
    assert store.upsert_posts([make_post("1"), make_post("2")], now) == 2
    edited = make_post(
        "1",
        title="Edited",
        summary_html="<p>new</p>",
        categories=("a", "b"),
        image_url="https://example.org/i.png",
        image_width=640,
    )
    assert store.upsert_posts([edited, make_post("3")], now + LATER) == 1
    stored = {c.post.guid: c for c in store.recent_posts(["blog"], released_after=EPOCH)}
    assert stored["1"].post == edited
    assert stored["1"].first_seen == now
    assert stored["3"].first_seen == now + LATER
    assert store.upsert_posts([], now) == 0


def test_a_guid_listed_twice_in_one_batch_counts_once(store: Store, now: datetime) -> None:
    twice = [make_post("1", title="old"), make_post("1", title="new")]
    assert store.upsert_posts(twice, now) == 1
    assert [p.title for p in store.get_posts([make_post("1").key])] == ["new"]


def test_get_posts_keeps_the_order_of_keys_and_skips_unknown(store: Store, now: datetime) -> None:
    posts = [make_post(str(i)) for i in range(5)]
    store.upsert_posts(posts, now)
    keys = [posts[3].key, "0" * 32, posts[0].key, posts[4].key]
    assert store.get_posts(keys) == [posts[3], posts[0], posts[4]]
    assert store.get_posts([]) == []


def test_recent_posts_are_those_released_after_a_time_plus_the_newest(
    store: Store, now: datetime
) -> None:
    old = make_post("old", published=now - timedelta(days=30))
    new = make_post("new", published=now - timedelta(hours=1))
    news = make_post("c", source="news", published=now - timedelta(days=40))
    store.upsert_posts([old, new, news], now - timedelta(days=20))
    after = now - timedelta(days=10)
    recent = store.recent_posts(["blog", "news"], released_after=after)
    assert {s.post.guid for s in recent} == {"new"}  # dated after it was first seen
    later = make_post("later", published=now - timedelta(days=25))  # seen late: released now
    store.upsert_posts([later], now)
    found = store.recent_posts(["blog", "news"], released_after=after, newest=1)
    assert {s.post.guid for s in found} == {"later", "new"}
    [stored_later] = [s for s in found if s.post.guid == "later"]
    assert stored_later.released_at == now
    assert store.released_count(["blog"], now) == 3
    assert store.released_count(["blog", "news"], now - timedelta(days=1)) == 2
    assert store.recent_posts([], released_after=after, newest=5) == []


def test_datetimes_come_back_aware_utc(store: Store, now: datetime) -> None:
    paris = timezone(timedelta(hours=1))
    post = make_post("tz", published=datetime(2026, 11, 20, 10, 30, tzinfo=paris))
    store.upsert_posts([post], now.astimezone(paris))
    [stored] = store.recent_posts(["blog"], released_after=EPOCH)
    assert stored.post.published == datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    assert stored.post.published.tzinfo == UTC
    assert stored.first_seen == now
    assert stored.first_seen.tzinfo == UTC


def test_naive_datetimes_are_refused(store: Store, now: datetime) -> None:
    naive = datetime(2026, 11, 27, 7, 0)
    with pytest.raises(ValueError, match="naive"):
        store.upsert_posts([make_post("x", published=naive)], now)
    with pytest.raises(ValueError, match="naive"):
        store.upsert_posts([make_post("x")], naive)
    with pytest.raises(ValueError, match="naive"):
        store.save_source_state(SourceState("blog", last_fetched=naive))
    assert store.get_posts([make_post("x").key]) == []


def test_known_posts_match_a_guid_or_a_link_of_that_source_only(
    store: Store, now: datetime
) -> None:
    a = make_post("a")
    b = replace(make_post("b"), link="https://example.org/shared")
    other = replace(make_post("c", source="news"), link="https://example.org/shared")
    store.upsert_posts([a, b, other], now)
    links = ["https://example.org/shared", "https://example.org/none", ""]
    assert store.known_posts("blog", ["a", "zz", ""], links) == {
        ("a", a.link),
        ("b", "https://example.org/shared"),
    }
    assert store.known_posts("news", ["a"], []) == set()
    assert store.known_posts("blog", [], [""]) == set()
    many = [make_post(f"m{i}") for i in range(1200)]  # more than one IN list holds
    store.upsert_posts(many, now)
    found = store.known_posts("blog", [p.guid for p in many[:700]], [p.link for p in many[600:]])
    assert found == {(p.guid, p.link) for p in many}


def test_source_health_round_trips_is_replaced_and_listed_by_id(
    store: Store, now: datetime
) -> None:
    assert store.get_source_health("blog") is None
    assert store.list_source_health() == []
    paris = timezone(timedelta(hours=1))
    failing = SourceHealth(
        "blog",
        last_fetch=now.astimezone(paris),
        last_success=now - LATER,
        last_error="answered HTTP 503",
        failures=2,
        failing_since=now - LATER / 2,
        undated=3,
        churn=1,
        churn_total=4,
        newest_post=now - 10 * LATER,
    )
    store.save_source_health(failing)
    stored = store.get_source_health("blog")
    assert stored == failing
    assert stored is not None
    assert stored.last_fetch is not None
    assert stored.last_fetch.tzinfo == UTC
    recovered = SourceHealth("blog", last_fetch=now, last_success=now, churn_total=4)
    store.save_source_health(recovered)
    store.save_source_health(SourceHealth("a-b"))
    store.save_source_health(SourceHealth("ab", last_fetch=now, last_error="x", failures=1))
    assert store.get_source_health("blog") == recovered
    assert [h.source_id for h in store.list_source_health()] == ["a-b", "ab", "blog"]
    with pytest.raises(ValueError, match="naive"):
        store.save_source_health(SourceHealth("x", last_fetch=datetime(2026, 11, 27, 7, 0)))
    assert store.get_source_health("x") is None


# --- subscribers ----------------------------------------------------------------------


def test_add_subscription_creates_once_and_keeps_status(store: Store, now: datetime) -> None:
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


def test_only_resubscribe_revives_an_unsubscribed_reader(store: Store, now: datetime) -> None:
    sid, _ = subscribe(store, "bo@example.org", now)
    assert store.set_subscription_status(sid, "weekly", SubscriptionStatus.UNSUBSCRIBED, now)
    assert subscribe(store, "bo@example.org", now + LATER) == (sid, False)
    assert store.reader_groups("weekly", ALL_READERS) == []
    assert subscribe(store, "bo@example.org", now + LATER, resubscribe=True) == (sid, True)
    [revived] = store.list_subscriptions("weekly")
    assert revived.status is SubscriptionStatus.CONFIRMED
    assert revived.changed_at == now + LATER
    assert subscribe(store, "bo@example.org", now, resubscribe=True) == (sid, False)


def test_idn_addresses_keep_both_forms(store: Store, now: datetime) -> None:
    sub, _ = store.add_subscription(
        email="zoë@bücher.example",
        ascii_email="zoë@xn--bcher-kva.example",
        newsletter_id="weekly",
        status=SubscriptionStatus.CONFIRMED,
        now=now,
    )
    assert store.get_subscriber(sub.subscriber.id) == sub.subscriber
    assert sub.subscriber.ascii_email == "zoë@xn--bcher-kva.example"


def test_get_subscriber_of_an_unknown_id_names_it(store: Store) -> None:
    with pytest.raises(NotFound, match="nobody-here"):
        store.get_subscriber("nobody-here")


def test_subscriptions_are_listed_by_email_then_newsletter(store: Store, now: datetime) -> None:
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


def test_set_subscription_status_is_idempotent(store: Store, now: datetime) -> None:
    sid, _ = subscribe(store, "cy@example.org", now, status=SubscriptionStatus.PENDING)
    assert store.set_subscription_status(sid, "weekly", SubscriptionStatus.CONFIRMED, now + LATER)
    assert not store.set_subscription_status(sid, "weekly", SubscriptionStatus.CONFIRMED, now)
    [sub] = store.list_subscriptions()
    assert (sub.status, sub.changed_at) == (SubscriptionStatus.CONFIRMED, now + LATER)
    with pytest.raises(NotFound, match="daily"):
        store.set_subscription_status(sid, "daily", SubscriptionStatus.CONFIRMED, now)
    with pytest.raises(NotFound, match="ghost"):
        store.set_subscription_status("ghost", "weekly", SubscriptionStatus.CONFIRMED, now)


def test_sources_started_is_the_earliest_first_seen(store: Store, now: datetime) -> None:
    store.upsert_posts([make_post("1"), make_post("2", source="other")], now)
    store.upsert_posts([make_post("3"), make_post("1")], now + LATER)
    started = store.sources_started(["blog", "other", "never-fetched"])
    assert started == {"blog": now, "other": now}
    assert all(moment.tzinfo is not None for moment in started.values())
    assert store.sources_started([]) == {}


# --- editions --------------------------------------------------------------------------


def test_opening_writes_posts_rendering_and_a_row_per_confirmed_reader(
    store: Store, now: datetime
) -> None:
    ids = {email: subscribe(store, email, now)[0] for email in ("cat@x.org", "ann@x.org")}
    subscribe(store, "gone@x.org", now, status=SubscriptionStatus.UNSUBSCRIBED)
    subscribe(store, "daily@x.org", now, newsletter="daily")
    result = open_edition(store, now, post_keys=("k3", "k1", "k2"))
    assert result is not None
    edition, recipients = result
    assert recipients == 2
    assert (edition.status, edition.post_keys, edition.subject) == (
        EditionStatus.SENDING,
        ("k3", "k1", "k2"),
        "Subject",
    )
    assert store.get_edition(edition.id) == edition
    assert store.get_renderings(edition.id) == {0: RENDERED}
    rows = store.list_deliveries(edition.id)
    assert [(r.email, r.status, r.attempts, r.duplicate) for r in rows] == [
        ("ann@x.org", DeliveryStatus.PENDING, 0, False),
        ("cat@x.org", DeliveryStatus.PENDING, 0, False),
    ]
    assert [r.message_id for r in rows] == [
        f"<{ids['ann@x.org']}@example.org>",
        f"<{ids['cat@x.org']}@example.org>",
    ]


def test_one_edition_per_newsletter_and_period(store: Store, now: datetime) -> None:
    subscribe(store, "a@x.org", now)
    first = opened(store, now, period="2026-W48")
    assert open_edition(store, now + LATER, period="2026-W48", edition_id="other") == (first, -1)
    assert store.find_edition("weekly", "2026-W48") == first
    assert store.find_edition("weekly", "2026-W49") is None
    with pytest.raises(NotFound, match="other"):
        store.get_edition("other")


def test_a_draft_made_before_another_edition_moved_the_marks_sends_nobody_twice(
    store: Store, now: datetime
) -> None:
    subscribe(store, "a@x.org", now)
    stale = {r: Verdict(0, Mark(now)) for r, _ in store.reader_groups("weekly", ALL_READERS)}
    assert opened(store, now, period="p1", post_keys=("k1", "k2"), verdicts=stale).status == (
        EditionStatus.SENDING
    )
    again = opened(store, now, period="p2", post_keys=("k1", "k2"), verdicts=stale)
    assert again.status is EditionStatus.SKIPPED  # the reader's mark moved: no verdict fits
    assert store.list_deliveries(again.id) == []
    [(reader, count)] = store.reader_groups("weekly", ALL_READERS)
    assert (reader.mark, reader.first, count) == (Mark(now), False, 1)


def test_a_draft_is_refused_when_posts_were_released_since(store: Store, now: datetime) -> None:
    subscribe(store, "a@x.org", now)
    store.upsert_posts([make_post("a")], now)
    assert open_edition(store, now, period="p1", sources=("blog",), released=0) is None
    assert store.find_edition("weekly", "p1") is None  # nothing of it was written
    assert opened(store, now, period="p1", sources=("blog",), released=1).status == (
        EditionStatus.SENDING
    )


def test_a_post_stored_after_an_edition_moved_the_marks_is_released_after_them(
    store: Store, now: datetime
) -> None:
    # A slow poll: it began at `now`, an edition opened an hour later moved the reader's
    # mark to then, and only after that were the poll's posts stored, seen "at `now`".
    ana, _ = subscribe(store, "ana@x.org", now)
    store.upsert_posts([make_post("a")], now + LATER)
    opened(store, now + LATER, period="p1", post_keys=(make_post("a").key,))
    mark = store.reader_state(ana, "weekly").mark
    assert mark == Mark(now + LATER)

    store.upsert_posts([make_post("b")], now)

    [late] = store.recent_posts(["blog"], released_after=mark.at)
    assert late.post.guid == "b"
    assert late.released_at > mark.at  # still owed to the reader
    assert late.first_seen == now  # what the poll saw is kept as it was


def test_readers_of_a_cadence_and_their_preferences(store: Store, now: datetime) -> None:
    ana, _ = subscribe(store, "ana@x.org", now)
    ben, _ = subscribe(store, "ben@x.org", now)
    subscribe(store, "cy@x.org", now)
    store.set_preferences(ana, "weekly", cadence="instant", topics=["asia", "eu"], now=now)
    store.set_preferences(ben, "weekly", cadence="gone", topics=None, now=now)
    instant = CadenceReaders("instant", ("daily", "instant"), default=False)
    daily = CadenceReaders("daily", ("daily", "instant"), default=True)
    [(reader, count)] = store.reader_groups("weekly", instant)
    assert (reader.topics, reader.first, count) == (frozenset({"asia", "eu"}), True, 1)
    # ben chose a cadence no longer offered: he gets the default one
    assert [(r.topics, n) for r, n in store.reader_groups("weekly", daily)] == [(None, 2)]
    assert store.reader_state(ana, "weekly") == reader
    assert {s.subscriber.email: (s.cadence, s.topics) for s in store.list_subscriptions()} == {
        "ana@x.org": ("instant", ("asia", "eu")),
        "ben@x.org": ("gone", None),
        "cy@x.org": (None, None),
    }
    with pytest.raises(NotFound):
        store.set_preferences(ana, "daily", cadence=None, topics=None, now=now)
    found = store.find_subscription("ana@x.org", "weekly")
    assert found is not None
    assert (found.subscriber.id, found.cadence) == (ana, "instant")
    assert store.find_subscription("ana@x.org", "daily") is None
    assert store.find_subscription("nobody@x.org", "weekly") is None
    assert store.schedule_start("weekly", "daily", now) == now
    assert store.schedule_start("weekly", "daily", now + LATER) == now


def test_without_readers_or_posts_an_edition_is_skipped_and_holds_no_post(
    store: Store, now: datetime
) -> None:
    post = make_post("a")
    store.upsert_posts([post], now)
    result = open_edition(store, now, period="p1", post_keys=(post.key,))
    assert result is not None
    lonely, recipients = result
    assert (lonely.status, lonely.error, lonely.post_keys, recipients) == (
        EditionStatus.SKIPPED,
        "nobody to send to",
        (),
        0,
    )
    subscribe(store, "a@x.org", now)
    empty = opened(store, now, period="p2", post_keys=(), rendered=None)
    assert (empty.status, empty.error) == (EditionStatus.SKIPPED, "")
    assert store.list_deliveries(empty.id) == []


def test_a_reused_edition_id_is_not_mistaken_for_a_twin(store: Store, now: datetime) -> None:
    subscribe(store, "a@x.org", now)
    opened(store, now, period="p1", edition_id="x", post_keys=("k1",))
    with pytest.raises(AlreadyExists, match="'x' is already taken"):
        open_edition(store, now, period="p2", edition_id="x", post_keys=("k2",))
    assert store.find_edition("weekly", "p2") is None


def test_editions_by_status_oldest_first(store: Store, now: datetime) -> None:
    skipped = opened(store, now, period="w1", rendered=None, post_keys=())
    subscribe(store, "a@x.org", now)
    subscribe(store, "b@x.org", now, newsletter="daily")
    sent = opened(store, now + LATER, period="w2", post_keys=("k1",))
    store.set_edition_status(sent.id, EditionStatus.SENT)
    sending = opened(store, now + 2 * LATER, period="w3", post_keys=("k2",))
    daily = opened(store, now + 9 * LATER, period="d", newsletter="daily")
    assert skipped.status is EditionStatus.SKIPPED
    assert [e.id for e in store.editions_with_status(EditionStatus.SENDING)] == [
        sending.id,
        daily.id,
    ]


def test_unknown_editions_raise_not_found(store: Store) -> None:
    with pytest.raises(NotFound, match="no-such"):
        store.get_edition("no-such")
    with pytest.raises(NotFound, match="no-such"):
        store.set_edition_status("no-such", EditionStatus.SENT)
    with pytest.raises(NotFound, match="no-such"):
        store.edition_summary("no-such")
    with pytest.raises(NotFound, match="no-such"):
        store.iter_deliveries("no-such")


def test_edition_status_error_and_guarded_moves(store: Store, now: datetime) -> None:
    subscribe(store, "a@x.org", now)
    edition = opened(store, now)
    assert store.set_edition_status(edition.id, EditionStatus.PAUSED, "relay refused: 421")
    paused = store.get_edition(edition.id)
    assert (paused.status, paused.error) == (EditionStatus.PAUSED, "relay refused: 421")
    assert not store.set_edition_status(
        edition.id, EditionStatus.SENT, only_from=[EditionStatus.SENDING]
    )
    assert store.get_edition(edition.id).status is EditionStatus.PAUSED
    assert store.set_edition_status(edition.id, EditionStatus.SENDING)
    assert store.get_edition(edition.id).error == ""


def test_edition_ids_are_found_by_their_prefix(store: Store, now: datetime) -> None:
    assert store.edition_ids() == []
    for period, edition_id in (("p1", "abd456"), ("p2", "abc123"), ("p3", "a_c%99")):
        opened(store, now, period=period, edition_id=edition_id, rendered=None, post_keys=())
    assert store.edition_ids() == ["a_c%99", "abc123", "abd456"]
    assert store.edition_ids("ab") == ["abc123", "abd456"]
    assert store.edition_ids("abd456") == ["abd456"]
    assert store.edition_ids("zz") == []
    assert store.edition_ids("a%") == []  # no wildcard in a prefix
    assert store.edition_ids("a_") == ["a_c%99"]
    assert store.edition_ids("a_c%") == ["a_c%99"]


def test_list_editions_counts_per_status_newest_first(store: Store, now: datetime) -> None:
    for email in ("a@x.org", "b@x.org", "c@x.org"):
        subscribe(store, email, now)
    edition = opened(store, now, period="p")
    claimed = store.claim_batch(edition.id, "me", now, now + LEASE, 2).rows
    outcomes = [
        Outcome(claimed[0].subscriber_id, DeliveryStatus.SENT, "250 ok"),
        Outcome(claimed[1].subscriber_id, DeliveryStatus.FAILED, "550 gone"),
    ]
    assert store.record_batch(edition.id, "me", outcomes, now) == 2
    newer = opened(store, now + LATER, period="q", rendered=None, post_keys=())
    opened(store, now, period="q", newsletter="daily", rendered=None, post_keys=())
    summaries = store.list_editions("weekly")
    assert [s.edition.id for s in summaries] == [newer.id, edition.id]
    assert summaries[0].recipients == 0
    counts = summaries[1].counts
    assert (counts[DeliveryStatus.SENT], counts[DeliveryStatus.FAILED]) == (1, 1)
    assert (counts[DeliveryStatus.PENDING], counts[DeliveryStatus.DEFERRED]) == (1, 0)
    assert (summaries[1].recipients, summaries[1].unfinished) == (3, 1)
    assert len(store.list_editions()) == 3
    assert [s.edition.id for s in store.list_editions(limit=1)] == [newer.id]
    assert store.list_editions("monthly") == []


# --- the ledger ------------------------------------------------------------------------


@pytest.fixture
def edition(store: Store, now: datetime) -> Edition:
    for email in ("e@x.org", "d@x.org", "c@x.org", "b@x.org", "a@x.org"):
        subscribe(store, email, now)
    return opened(store, now)


def test_claims_come_in_batches_and_no_row_twice(
    store: Store, edition: Edition, now: datetime
) -> None:
    first = store.claim_batch(edition.id, "one", now, now + LEASE, 2)
    second = store.claim_batch(edition.id, "two", now, now + LEASE, 2)
    third = store.claim_batch(edition.id, "one", now, now + LEASE, 2)
    assert [len(c.rows) for c in (first, second, third)] == [2, 2, 1]
    assert store.claim_batch(edition.id, "two", now, now + LEASE, 2).rows == []
    taken = [row.subscriber_id for c in (first, second, third) for row in c.rows]
    assert len(set(taken)) == 5
    assert all(not row.duplicate and row.attempts == 0 for c in (first, third) for row in c.rows)
    assert {r.status for r in store.list_deliveries(edition.id)} == {DeliveryStatus.SENDING}
    assert store.edition_summary(edition.id).unfinished == 5


def test_a_dead_senders_rows_are_taken_over_as_possible_duplicates_and_fenced(
    store: Store, edition: Edition, now: datetime
) -> None:
    dead = store.claim_batch(edition.id, "dead", now, now + LEASE, 5).rows
    assert store.claim_batch(edition.id, "alive", now + LEASE / 2, now + LEASE, 5).rows == []
    later = now + LEASE + timedelta(seconds=1)
    taken = store.claim_batch(edition.id, "alive", later, later + LEASE, 5).rows
    assert {r.subscriber_id for r in taken} == {r.subscriber_id for r in dead}
    assert all(row.duplicate for row in taken)
    row = taken[0].subscriber_id
    # The dead sender wakes up: its late records must not overwrite the new owner's.
    stale = [Outcome(row, DeliveryStatus.FAILED, "550 from the old owner")]
    assert store.record_batch(edition.id, "dead", stale, later) == 0
    fresh = [Outcome(row, DeliveryStatus.SENT, "250 new owner")]
    assert store.record_batch(edition.id, "alive", fresh, later) == 1
    assert store.record_batch(edition.id, "dead", stale, later) == 0
    by_id = {r.subscriber_id: r for r in store.list_deliveries(edition.id)}
    assert (by_id[row].status, by_id[row].reply, by_id[row].duplicate) == (
        DeliveryStatus.SENT,
        "250 new owner",
        True,
    )
    assert store.edition_summary(edition.id).duplicates == 5


def test_a_live_sender_renews_its_leases(store: Store, edition: Edition, now: datetime) -> None:
    mine = store.claim_batch(edition.id, "me", now, now + LEASE, 3).rows
    assert store.renew_leases(edition.id, "me", now + 3 * LEASE) == 3
    assert store.renew_leases(edition.id, "someone-else", now + 3 * LEASE) == 0
    later = now + 2 * LEASE
    others = store.claim_batch(edition.id, "other", later, later + LEASE, 5).rows
    assert len(others) == 2  # only the two rows nobody held
    assert not {r.subscriber_id for r in others} & {r.subscriber_id for r in mine}


def test_outcomes_attempts_and_retry_times(store: Store, edition: Edition, now: datetime) -> None:
    rows = store.claim_batch(edition.id, "me", now, now + LEASE, 5).rows
    a, b, c, d, e = (row.subscriber_id for row in rows)
    retry = now + timedelta(minutes=10)
    outcomes = [
        Outcome(a, DeliveryStatus.SENT, "250 ok"),
        Outcome(b, DeliveryStatus.DEFERRED, "451 later", retry),
        Outcome(c, DeliveryStatus.UNCERTAIN, "no reply", retry),
        Outcome(d, DeliveryStatus.PENDING, "", count_attempt=False),  # given back unsent
        Outcome(e, DeliveryStatus.EXPIRED, "gave up"),
    ]
    assert store.record_batch(edition.id, "me", outcomes, now) == 5
    by_id = {r.subscriber_id: r for r in store.list_deliveries(edition.id)}
    assert [by_id[x].attempts for x in (a, b, c, d, e)] == [1, 1, 1, 0, 1]
    assert by_id[b].updated_at == now
    assert store.edition_summary(edition.id).unfinished == 3  # b, c (one retry), d
    soon = store.claim_batch(edition.id, "me", now, now + LEASE, 5).rows
    assert [r.subscriber_id for r in soon] == [d]
    store.record_batch(edition.id, "me", [Outcome(d, DeliveryStatus.SENT, "250 ok")], now)
    due = store.claim_batch(edition.id, "me", retry, retry + LEASE, 5).rows
    assert {r.subscriber_id: r.duplicate for r in due} == {b: False, c: True}
    final = [
        Outcome(b, DeliveryStatus.SENT, "250 ok"),
        Outcome(c, DeliveryStatus.UNCERTAIN, "no reply again"),
    ]
    assert store.record_batch(edition.id, "me", final, retry) == 2
    summary = store.edition_summary(edition.id)
    assert (summary.unfinished, summary.duplicates) == (0, 1)
    assert store.claim_batch(edition.id, "me", retry + LATER, retry + LATER, 5).rows == []


def test_readers_who_left_or_bounced_are_suppressed_at_their_turn(
    store: Store, edition: Edition, now: datetime
) -> None:
    rows = {r.email: r.subscriber_id for r in store.list_deliveries(edition.id)}
    store.set_subscription_status(rows["a@x.org"], "weekly", SubscriptionStatus.UNSUBSCRIBED, now)
    store.set_subscription_status(rows["b@x.org"], "weekly", SubscriptionStatus.BOUNCED, now)
    claimed = store.claim_batch(edition.id, "me", now, now + LEASE, 5)
    assert (len(claimed.rows), claimed.suppressed) == (3, 2)
    by_email = {r.email: r for r in store.list_deliveries(edition.id)}
    assert by_email["a@x.org"].status is DeliveryStatus.SUPPRESSED
    assert "unsubscribed" in by_email["a@x.org"].reply
    assert "bounced" in by_email["b@x.org"].reply


def test_a_hard_bounce_marks_the_reader_bounced_in_every_newsletter(
    store: Store, edition: Edition, now: datetime
) -> None:
    rows = {r.email: r.subscriber_id for r in store.list_deliveries(edition.id)}
    subscribe(store, "a@x.org", now, newsletter="daily")
    store.claim_batch(edition.id, "me", now, now + LEASE, 5)
    failed = [Outcome(rows["a@x.org"], DeliveryStatus.FAILED, "550 5.1.1 no such user")]
    store.record_batch(edition.id, "me", failed, now)
    statuses = {(s.subscriber.email, s.newsletter_id): s.status for s in store.list_subscriptions()}
    assert statuses[("a@x.org", "weekly")] is SubscriptionStatus.BOUNCED
    assert statuses[("a@x.org", "daily")] is SubscriptionStatus.BOUNCED
    assert statuses[("b@x.org", "weekly")] is SubscriptionStatus.CONFIRMED
    _, changed = subscribe(store, "a@x.org", now)  # an import
    assert not changed
    assert store.get_subscriber(rows["a@x.org"]).email == "a@x.org"
    assert {s.status for s in store.list_subscriptions() if s.subscriber.email == "a@x.org"} == {
        SubscriptionStatus.BOUNCED
    }


def test_nothing_is_claimed_unless_the_edition_is_sending(
    store: Store, edition: Edition, now: datetime
) -> None:
    for status in (EditionStatus.HELD, EditionStatus.PAUSED, EditionStatus.CANCELLED):
        store.set_edition_status(edition.id, status)
        assert store.claim_batch(edition.id, "me", now, now + LEASE, 5).rows == []
    store.set_edition_status(edition.id, EditionStatus.SENDING)
    assert len(store.claim_batch(edition.id, "me", now, now + LEASE, 5).rows) == 5


def test_quotas_count_what_was_sent_in_the_window_and_what_is_held(
    store: Store, edition: Edition, now: datetime
) -> None:
    hour = Quota("hour", now - LATER, 3)
    first = store.claim_batch(edition.id, "me", now, now + LEASE, 2, [hour])
    assert len(first.rows) == 2
    assert store.sent_since(now - LATER) == 0
    sent = [Outcome(r.subscriber_id, DeliveryStatus.SENT, "250") for r in first.rows]
    store.record_batch(edition.id, "me", sent, now)
    assert store.sent_since(now - LATER) == 2
    assert store.sent_since(now) == 0
    second = store.claim_batch(edition.id, "other", now, now + LEASE, 5, [hour])
    assert len(second.rows) == 1
    blocked = store.claim_batch(edition.id, "other", now, now + LEASE, 5, [hour])
    assert (blocked.rows, blocked.blocked_by) == ([], "hour")
    later = now + 2 * LATER  # the window has moved on; the one held row still counts
    moved = store.claim_batch(edition.id, "me", later, later + LEASE, 5, [Quota("hour", now, 3)])
    assert len(moved.rows) == 2


def test_cancel_and_reopen(store: Store, edition: Edition, now: datetime) -> None:
    rows = store.claim_batch(edition.id, "me", now, now + LEASE, 3).rows
    a, b, c = (r.subscriber_id for r in rows)
    outcomes = [
        Outcome(a, DeliveryStatus.SENT, "250"),
        Outcome(b, DeliveryStatus.FAILED, "550 no"),
        Outcome(c, DeliveryStatus.UNCERTAIN, "lost"),
    ]
    store.record_batch(edition.id, "me", outcomes, now)
    assert store.cancel_unsent(edition.id, now) == 2  # the uncertain row stays uncertain
    counts = store.edition_summary(edition.id).counts
    assert (counts[DeliveryStatus.CANCELLED], counts[DeliveryStatus.UNCERTAIN]) == (2, 1)
    reopened = store.reopen_deliveries(
        edition.id, [DeliveryStatus.FAILED, DeliveryStatus.CANCELLED]
    )
    assert reopened == 3
    by_id = {r.subscriber_id: r for r in store.list_deliveries(edition.id)}
    assert (by_id[b].status, by_id[b].attempts) == (DeliveryStatus.PENDING, 0)
    assert (by_id[c].status, by_id[c].duplicate) == (DeliveryStatus.UNCERTAIN, False)
    assert store.reopen_deliveries(edition.id, [DeliveryStatus.UNCERTAIN]) == 1
    resent = {r.subscriber_id: r for r in store.list_deliveries(edition.id)}[c]
    assert (resent.status, resent.duplicate) == (DeliveryStatus.PENDING, True)
    bounced = [s for s in store.list_subscriptions() if s.subscriber.id == b]
    assert [s.status for s in bounced] == [SubscriptionStatus.CONFIRMED]
    assert by_id[a].status is DeliveryStatus.SENT


def test_deliveries_are_listed_by_email_and_filtered(
    store: Store, edition: Edition, now: datetime
) -> None:
    rows = store.claim_batch(edition.id, "me", now, now + LEASE, 1).rows
    store.record_batch(edition.id, "me", [Outcome(rows[0].subscriber_id, DeliveryStatus.SENT)], now)
    emails = [r.email for r in store.iter_deliveries(edition.id)]
    assert emails == ["a@x.org", "b@x.org", "c@x.org", "d@x.org", "e@x.org"]
    sent = list(store.iter_deliveries(edition.id, status=DeliveryStatus.SENT))
    assert [r.subscriber_id for r in sent] == [rows[0].subscriber_id]
    assert [r.email for r in store.iter_deliveries(edition.id, email="C@X")] == ["c@x.org"]
    assert list(store.iter_deliveries(edition.id, email="%")) == []


def test_racing_claims_from_threads_never_share_a_row(
    store: Store, edition: Edition, now: datetime
) -> None:
    barrier = threading.Barrier(4)

    def claim(owner: str) -> list[str]:
        barrier.wait(timeout=5)
        taken: list[str] = []
        while rows := store.claim_batch(edition.id, owner, now, now + LEASE, 1).rows:
            taken.extend(row.subscriber_id for row in rows)
        return taken

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(claim, ["w1", "w2", "w3", "w4"]))
    everything = [sid for found in results for sid in found]
    assert sorted(everything) == sorted(r.subscriber_id for r in store.list_deliveries(edition.id))


def test_ledger_times_must_be_aware(store: Store, edition: Edition, now: datetime) -> None:
    naive = now.replace(tzinfo=None)
    with pytest.raises(ValueError, match="naive"):
        store.claim_batch(edition.id, "me", naive, now, 1)
    other_zone = now.astimezone(timezone(timedelta(hours=2)))
    assert len(store.claim_batch(edition.id, "me", other_zone, now + LEASE, 1).rows) == 1


def test_a_fenced_off_failure_bounces_nobody(store: Store, edition: Edition, now: datetime) -> None:
    [row] = store.claim_batch(edition.id, "dead", now, now + LEASE, 1).rows
    later = now + LEASE + timedelta(seconds=1)
    store.claim_batch(edition.id, "alive", later, later + LEASE, 5)
    failed = [Outcome(row.subscriber_id, DeliveryStatus.FAILED, "550 5.1.1 late")]
    assert store.record_batch(edition.id, "dead", failed, later) == 0
    assert {s.status for s in store.list_subscriptions()} == {SubscriptionStatus.CONFIRMED}


def test_a_resend_undoes_a_bounce_in_every_newsletter(
    store: Store, edition: Edition, now: datetime
) -> None:
    [row] = store.claim_batch(edition.id, "me", now, now + LEASE, 1).rows
    subscribe(store, row.email, now, newsletter="daily")
    failed = [Outcome(row.subscriber_id, DeliveryStatus.FAILED, "550 5.7.1 misjudged")]
    store.record_batch(edition.id, "me", failed, now)
    mine = [s for s in store.list_subscriptions() if s.subscriber.id == row.subscriber_id]
    assert {s.status for s in mine} == {SubscriptionStatus.BOUNCED}
    assert store.reopen_deliveries(edition.id, [DeliveryStatus.FAILED]) == 1
    mine = [s for s in store.list_subscriptions() if s.subscriber.id == row.subscriber_id]
    assert {s.status for s in mine} == {SubscriptionStatus.CONFIRMED}
    with pytest.raises(NotFound, match="no-such"):
        store.cancel_unsent("no-such", now)


def test_bulk_subscriptions_create_what_is_missing_and_revive_nobody(
    store: Store, now: datetime
) -> None:
    gone, _ = subscribe(store, "gone@x.org", now, status=SubscriptionStatus.UNSUBSCRIBED)
    entries = [
        ("gone@x.org", "gone@x.org", "weekly"),
        ("new@x.org", "new@x.org", "weekly"),
        ("new@x.org", "new@x.org", "daily"),
        ("idn@xn--bcher-kva.example", "idn@xn--bcher-kva.example", "weekly"),
    ]
    assert store.add_subscriptions(entries, SubscriptionStatus.CONFIRMED, now) == 3
    assert store.add_subscriptions(entries, SubscriptionStatus.CONFIRMED, now) == 0
    found = {(s.subscriber.email, s.newsletter_id): s.status for s in store.list_subscriptions()}
    assert found == {
        ("gone@x.org", "weekly"): SubscriptionStatus.UNSUBSCRIBED,
        ("idn@xn--bcher-kva.example", "weekly"): SubscriptionStatus.CONFIRMED,
        ("new@x.org", "daily"): SubscriptionStatus.CONFIRMED,
        ("new@x.org", "weekly"): SubscriptionStatus.CONFIRMED,
    }
    assert store.get_subscriber(gone).email == "gone@x.org"
    assert store.add_subscriptions([], SubscriptionStatus.CONFIRMED, now) == 0


def test_an_undated_item_keeps_the_date_it_was_first_given(store: Store, now: datetime) -> None:
    undated = make_post("u", published=now, dated=False)
    store.upsert_posts([undated], now)
    later = now + LATER
    refetched = replace(undated, published=later, title="Retitled")  # the fetch time again
    assert store.upsert_posts([refetched], later) == 0
    [stored] = store.recent_posts(["blog"], released_after=EPOCH)
    assert (stored.post.title, stored.post.published, stored.post.dated) == (
        "Retitled",
        now,
        False,
    )
    dated = replace(refetched, published=now - LATER, dated=True)  # the feed now gives one
    store.upsert_posts([dated], later)
    [stored] = store.recent_posts(["blog"], released_after=EPOCH)
    assert (stored.post.published, stored.post.dated) == (now - LATER, True)


# --- the reader list: bulk adds, pages, suppression, erasure --------------------------


def test_bulk_readers_count_people_and_subscriptions_and_keep_what_exists(
    store: Store, now: datetime
) -> None:
    gone, _ = subscribe(store, "gone@x.org", now, status=SubscriptionStatus.UNSUBSCRIBED)
    entries = [
        NewReader("gone@x.org", "gone@x.org", "weekly", name="Gone", cadence="instant"),
        NewReader("ana@x.org", "ana@x.org", "weekly", "Ana Novak", "instant", ("tech", "arts")),
        NewReader("ana@x.org", "ana@x.org", "daily", name="Someone else"),
        NewReader("ana@x.org", "ana@x.org", "weekly", name="Twice"),
    ]
    later = now + LATER
    assert store.add_readers(entries, SubscriptionStatus.CONFIRMED, later) == Added(1, 2)
    assert store.add_readers(entries, SubscriptionStatus.CONFIRMED, later) == Added(0, 0)
    assert store.add_readers([], SubscriptionStatus.CONFIRMED, later) == Added(0, 0)
    found = {
        (s.subscriber.email, s.newsletter_id): (
            s.subscriber.name, s.status, s.cadence, s.topics, s.created_at
        )
        for s in store.list_subscriptions()
    }  # fmt: skip
    assert found == {
        ("ana@x.org", "daily"): ("Ana Novak", SubscriptionStatus.CONFIRMED, None, None, later),
        ("ana@x.org", "weekly"): (
            "Ana Novak", SubscriptionStatus.CONFIRMED, "instant", ("arts", "tech"), later
        ),
        ("gone@x.org", "weekly"): ("", SubscriptionStatus.UNSUBSCRIBED, None, None, now),
    }  # fmt: skip
    assert store.get_subscriber(gone).name == ""


def test_subscriptions_are_read_in_pages_in_order_and_filtered(store: Store, now: datetime) -> None:
    emails = [f"r{n:04}@x.org" for n in range(2_100)]  # more than two pages of SqlStore
    entries = [NewReader(e, e, "weekly") for e in emails] + [
        NewReader(e, e, "daily") for e in emails[::7]
    ]
    store.add_readers(entries, SubscriptionStatus.CONFIRMED, now)
    [left] = [s for s in store.list_subscriptions("daily") if s.subscriber.email == emails[7]]
    store.set_subscription_status(left.subscriber.id, "daily", SubscriptionStatus.UNSUBSCRIBED, now)
    everything = [(s.subscriber.email, s.newsletter_id) for s in store.iter_subscriptions()]
    assert everything == sorted(everything)
    assert len(everything) == len(entries)
    weekly = [s.subscriber.email for s in store.iter_subscriptions("weekly")]
    assert weekly == emails
    daily = store.iter_subscriptions("daily", SubscriptionStatus.CONFIRMED)
    assert [s.subscriber.email for s in daily] == [e for e in emails[::7] if e != emails[7]]
    gone = store.iter_subscriptions(status=SubscriptionStatus.UNSUBSCRIBED)
    assert [(s.subscriber.email, s.newsletter_id) for s in gone] == [(emails[7], "daily")]
    assert list(store.iter_subscriptions("monthly")) == []


def test_removing_a_reader_erases_them_keeps_anonymous_ledger_rows_and_suppresses(
    store: Store, now: datetime
) -> None:
    ana, _ = subscribe(store, "ana@x.org", now)
    subscribe(store, "ana@x.org", now, newsletter="daily")
    ben, _ = subscribe(store, "ben@x.org", now)
    first = opened(store, now, period="p")
    claimed = store.claim_batch(first.id, "me", now, now + LEASE, 10).rows
    replies = {ana: "250 2.0.0 <ANA@x.org> queued", ben: "250 2.0.0 <ben@x.org> queued"}
    outcomes = [Outcome(row.subscriber_id, DeliveryStatus.SENT, replies[row.subscriber_id])
                for row in claimed]  # fmt: skip
    store.record_batch(first.id, "me", outcomes, now)
    second = opened(store, now + LATER, period="q", post_keys=("k3",))  # not sent yet
    removed_at = now + 2 * LATER

    removal = store.remove_subscriber("ana@x.org", "key-ana", removed_at)

    assert removal == Removal(True, removed_at, subscriptions=2, deliveries=2)
    assert [s.subscriber.email for s in store.list_subscriptions()] == ["ben@x.org"]
    assert store.find_subscription("ana@x.org", "weekly") is None
    with pytest.raises(NotFound):
        store.get_subscriber(ana)
    sent = {row.email: row for row in store.list_deliveries(first.id)}
    assert set(sent) == {REMOVED_ADDRESS, "ben@x.org"}
    anonymous = sent[REMOVED_ADDRESS]
    assert anonymous.subscriber_id not in (ana, ben)
    assert (anonymous.status, anonymous.message_id) == (DeliveryStatus.SENT, "")
    assert anonymous.reply == f"250 2.0.0 <{REMOVED_ADDRESS}> queued"
    assert sent["ben@x.org"].reply == replies[ben]
    unsent = {row.email: row for row in store.iter_deliveries(second.id)}
    assert (unsent[REMOVED_ADDRESS].status, unsent[REMOVED_ADDRESS].reply) == (
        DeliveryStatus.SUPPRESSED,
        REMOVED_REPLY,
    )
    summary = store.edition_summary(second.id)
    assert (summary.recipients, summary.unfinished) == (2, 1)
    [row] = store.claim_batch(second.id, "me", removed_at, removed_at + LEASE, 10).rows
    assert row.subscriber_id == ben
    assert store.edition_summary(first.id).counts[DeliveryStatus.SENT] == 2

    assert store.suppressions(["key-ana", "key-other"]) == {"key-ana": removed_at}
    again = store.remove_subscriber("ana@x.org", "key-ana", removed_at + LATER)
    assert again == Removal(False, removed_at)  # the first removal's date
    stranger = store.remove_subscriber("cy@x.org", "key-cy", removed_at)
    assert (stranger.found, store.suppressions(["key-cy"])) == (False, {"key-cy": removed_at})
    back, created = subscribe(store, "ana@x.org", removed_at)  # the use cases refuse this
    assert created
    assert back != ana


# --- sign-up: consent records, confirmation, rate limits, expiry ----------------------------


def consent(newsletter: str, now: datetime, source: str = "home page") -> Consent:
    return Consent(newsletter, now, source, "203.0.113.7", f"Send me {newsletter} by email.")


def signup(
    store: Store, email: str, now: datetime, *newsletters: str, confirmed: bool = False
) -> tuple[str, list[str]]:
    return store.record_signup(
        email=email,
        ascii_email=email,
        consents=[consent(n, now) for n in newsletters],
        confirmed=confirmed,
        now=now,
    )


def statuses(store: Store, subscriber_id: str) -> dict[str, SubscriptionStatus]:
    return {s.newsletter_id: s.status for s in store.subscriptions_of(subscriber_id)}


def test_a_signup_is_pending_with_its_consent_until_confirmed(store: Store, now: datetime) -> None:
    reader, pending = signup(store, "ana@example.org", now, "weekly", "daily", "weekly")
    assert pending == ["weekly", "daily"]
    assert statuses(store, reader) == {"daily": "pending", "weekly": "pending"}
    assert store.consents_of(reader) == [consent("daily", now), consent("weekly", now)]
    assert store.confirm_signup(reader, now + LATER) == ["daily", "weekly"]
    assert statuses(store, reader) == {"daily": "confirmed", "weekly": "confirmed"}
    assert {c.confirmed_at for c in store.consents_of(reader)} == {now + LATER}
    assert store.confirm_signup(reader, now + 2 * LATER) == []  # nothing pending any more
    assert store.confirm_signup("no-such-reader", now) == []


def test_a_confirmed_readers_mark_starts_at_confirmation(store: Store, now: datetime) -> None:
    reader, _ = signup(store, "ana@example.org", now, "weekly")
    store.confirm_signup(reader, now + LATER)
    assert store.reader_state(reader, "weekly").mark == Mark(now + LATER)


def test_signing_up_again_records_only_what_is_not_confirmed(store: Store, now: datetime) -> None:
    reader, _ = signup(store, "ana@example.org", now, "weekly")
    store.confirm_signup(reader, now)
    bounced, _ = subscribe(store, "bob@example.org", now, status=SubscriptionStatus.BOUNCED)
    left, _ = subscribe(store, "eve@example.org", now, status=SubscriptionStatus.UNSUBSCRIBED)
    assert signup(store, "ana@example.org", now + LATER, "weekly", "daily") == (reader, ["daily"])
    assert signup(store, "bob@example.org", now + LATER, "weekly") == (bounced, [])
    assert signup(store, "eve@example.org", now + LATER, "weekly") == (left, ["weekly"])
    assert statuses(store, reader) == {"daily": "pending", "weekly": "confirmed"}
    assert statuses(store, bounced) == {"weekly": "bounced"}
    assert statuses(store, left) == {"weekly": "pending"}
    assert len(store.consents_of(reader)) == 2
    assert store.consents_of(bounced) == []


def test_a_signup_by_a_proven_address_is_confirmed_at_once(store: Store, now: datetime) -> None:
    reader, _ = subscribe(store, "ana@example.org", now, status=SubscriptionStatus.UNSUBSCRIBED)
    assert signup(store, "ana@example.org", now + LATER, "weekly", "daily", confirmed=True) == (
        reader,
        ["weekly", "daily"],
    )
    assert statuses(store, reader) == {"daily": "confirmed", "weekly": "confirmed"}
    assert {c.confirmed_at for c in store.consents_of(reader)} == {now + LATER}


def test_allowances_count_uses_per_key_in_a_window(store: Store, now: datetime) -> None:
    window = timedelta(hours=24)
    address = Allowance("to:ana", 1, window)
    site = Allowance("all", 3, timedelta(hours=1))
    assert store.take_allowance([address, site], now)
    assert not store.take_allowance([address, site], now + LATER / 2)  # the address is used up
    assert store.take_allowance([Allowance("to:bob", 1, window), site], now)
    assert store.take_allowance([Allowance("to:eve", 1, window), site], now)
    # The site's limit is used up: nothing is taken, not even bob2's use.
    assert not store.take_allowance([Allowance("to:bob2", 1, window), site], now)
    assert store.take_allowance([Allowance("to:bob2", 1, window)], now)
    assert store.take_allowance([address, site], now + window)  # both windows started again
    assert store.take_allowance([], now)


def test_racing_allowances_are_taken_once(store: Store, now: datetime) -> None:
    allowance = Allowance("to:ana", 1, timedelta(hours=24))
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: store.take_allowance([allowance], now), range(8)))
    assert results.count(True) == 1


def test_pending_signups_expire_with_their_consent_and_lone_readers(
    store: Store, now: datetime
) -> None:
    old, _ = signup(store, "old@example.org", now, "weekly")
    kept, _ = signup(store, "kept@example.org", now, "weekly", "daily")
    store.confirm_signup(kept, now)
    signup(store, "kept@example.org", now, "extra")  # pending beside a confirmed one
    fresh, _ = signup(store, "fresh@example.org", now + 2 * LATER, "weekly")
    store.take_allowance([Allowance("to:old", 1, timedelta(hours=1))], now)
    store.take_allowance([Allowance("to:fresh", 1, timedelta(hours=1))], now + 2 * LATER)
    assert store.purge_pending(now + LATER, limits_before=now + LATER) == 2
    with pytest.raises(NotFound):
        store.get_subscriber(old)
    assert store.find_subscription("old@example.org", "weekly") is None
    assert statuses(store, kept) == {"daily": "confirmed", "weekly": "confirmed"}
    assert [c.newsletter_id for c in store.consents_of(kept)] == ["daily", "weekly"]
    assert statuses(store, fresh) == {"weekly": "pending"}
    # The old window went with the purge; the fresh one still counts.
    assert store.take_allowance([Allowance("to:old", 1, timedelta(days=9))], now + LATER)
    assert not store.take_allowance([Allowance("to:fresh", 1, timedelta(days=9))], now + LATER)
    assert store.purge_pending(now + LATER, limits_before=now + LATER) == 0


def test_asking_again_restarts_a_pending_signups_expiry(store: Store, now: datetime) -> None:
    reader, _ = signup(store, "ana@example.org", now, "weekly")
    signup(store, "ana@example.org", now + 2 * LATER, "weekly")
    assert store.purge_pending(now + LATER, limits_before=now + LATER) == 0
    assert statuses(store, reader) == {"weekly": "pending"}


def test_a_reader_changes_address_unless_another_has_it(store: Store, now: datetime) -> None:
    reader, _ = subscribe(store, "ana@example.org", now)
    subscribe(store, "bob@example.org", now)
    store.change_email(reader, "ana@new.example", "ana@new.example")
    assert store.get_subscriber(reader).email == "ana@new.example"
    found = store.find_subscription("ana@new.example", "weekly")
    assert found is not None
    assert found.subscriber.id == reader
    assert store.find_subscription("ana@example.org", "weekly") is None
    with pytest.raises(AlreadyExists, match=r"bob@example\.org"):
        store.change_email(reader, "bob@example.org", "bob@example.org")
    with pytest.raises(NotFound):
        store.change_email("nobody", "new@example.org", "new@example.org")
    store.change_email(reader, "ana@new.example", "ana@new.example")  # the same: fine


def test_removing_a_reader_who_signed_up_on_the_web_erases_their_consent_records(
    store: Store, now: datetime
) -> None:
    reader, _ = store.record_signup(
        email="ana@x.org",
        ascii_email="ana@x.org",
        consents=[consent("weekly", now)],
        confirmed=False,
        now=now,
    )
    store.confirm_signup(reader, now + LATER)
    assert len(store.consents_of(reader)) == 1

    removal = store.remove_subscriber("ana@x.org", "key-ana", now + 2 * LATER)

    assert removal.found
    assert store.consents_of(reader) == []
    assert store.list_subscriptions() == []
    # The address can sign up again only through a new, explicit request: the erasure
    # suppressed it, and nothing of the old record is left to revive.
    assert store.suppressions(["key-ana"]) == {"key-ana": now + 2 * LATER}


def test_the_archive_lists_editions_that_went_out_newest_first(store: Store, now: datetime) -> None:
    subscribe(store, "ana@example.org", now)
    ids = [opened(store, now + n * LATER, period=f"p{n}").id for n in range(4)]
    store.set_edition_status(ids[1], EditionStatus.CANCELLED)
    store.set_edition_status(ids[2], EditionStatus.SENT)
    skipped = opened(store, now + 5 * LATER, period="nobody", post_keys=())
    assert skipped.status is EditionStatus.SKIPPED
    opened(store, now + 6 * LATER, period="other", newsletter="daily")
    found = store.archived_editions("weekly", offset=0, limit=10)
    assert [e.id for e in found] == [ids[3], ids[2], ids[0]]
    assert found[1].subject == "Subject"
    assert [e.id for e in store.archived_editions("weekly", offset=1, limit=1)] == [ids[2]]
    assert store.archived_editions("weekly", offset=3, limit=10) == []


def test_a_readers_time_zone_is_stored_and_given_to_due_when_an_edition_opens(
    store: Store, now: datetime
) -> None:
    ana, _ = subscribe(store, "ana@x.org", now)
    ben, _ = subscribe(store, "ben@x.org", now)
    store.set_timezone(ana, "America/New_York")
    assert store.get_subscriber(ana).timezone == "America/New_York"
    assert store.get_subscriber(ben).timezone == ""
    with pytest.raises(NotFound):
        store.set_timezone("nobody", "Europe/Prague")
    asked: list[str] = []

    def due(zone: str, last_sent: datetime | None) -> bool:
        asked.append(zone)
        return zone == "America/New_York"

    readers = CadenceReaders("daily", ("daily",), default=True)
    verdicts = {
        reader: Verdict(0, Mark(now)) for reader, _ in store.reader_groups("weekly", readers)
    }
    draft = Draft(
        edition_id="zoned",
        newsletter_id="weekly",
        readers=readers,
        period_key="z",
        now=now,
        source_ids=(),
        released=0,
        variants=(Variant(("k1",), RENDERED),),
        verdicts=verdicts,
    )
    result = store.open_edition(draft, message_id=lambda sid: f"<{sid}@example.org>", due=due)
    assert result is not None
    assert sorted(asked) == ["", "America/New_York"]
    assert [row.email for row in store.list_deliveries("zoned")] == ["ana@x.org"]


def test_readers_by_zone_give_the_oldest_last_send_of_each_zone(
    store: Store, now: datetime
) -> None:
    readers = CadenceReaders("daily", ("daily",), default=True)
    assert store.readers_by_zone("weekly", readers) == []
    ana, _ = subscribe(store, "ana@x.org", now)
    ben, _ = subscribe(store, "ben@x.org", now)
    subscribe(store, "cy@x.org", now)
    subscribe(store, "dee@x.org", now, status=SubscriptionStatus.UNSUBSCRIBED)
    store.set_timezone(ana, "Asia/Tokyo")
    store.set_timezone(ben, "Asia/Tokyo")
    assert sorted(store.readers_by_zone("weekly", readers)) == [
        ("", None),
        ("Asia/Tokyo", None),
    ]
    verdicts = {r: Verdict(0, Mark(now)) for r, _ in store.reader_groups("weekly", readers)}
    draft = Draft(
        edition_id="tokyo-1",
        newsletter_id="weekly",
        readers=readers,
        period_key="t1",
        now=now,
        source_ids=(),
        released=0,
        variants=(Variant(("k1",), RENDERED),),
        verdicts=verdicts,
    )
    store.open_edition(
        draft, message_id=lambda sid: f"<{sid}@example.org>", due=lambda z, _: z != ""
    )
    # Both Tokyo readers were sent at `now`; cy (no zone) never was.
    assert sorted(store.readers_by_zone("weekly", readers)) == [
        ("", None),
        ("Asia/Tokyo", now),
    ]
