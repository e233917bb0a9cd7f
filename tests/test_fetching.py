from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from digest.config import SourceConfig
from digest.errors import SourceError
from digest.fetching import fetch_all
from digest.models import Post, SourceState
from digest.source_health import Alert, AlertKind
from digest.sources import FetchResult
from digest.store import SqlStore

from support.databases import migrated_engine

NOW = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
SOURCES = [SourceConfig(id=name, kind="feed", url=f"https://{name}.example/") for name in "abc"]


@pytest.fixture
def store(tmp_path: Path) -> SqlStore:
    with migrated_engine("sqlite", tmp_path) as engine:
        return SqlStore(engine)


async def fetch(source: SourceConfig, state: SourceState | None, now: datetime) -> FetchResult:
    if source.id == "a":
        raise SourceError(f"source {source.id!r}: answered HTTP 404; check the url")
    if source.id == "b":
        raise KeyError("a bug in a reader")
    post = Post(source_id=source.id, guid="1", title="One", link="https://c/1", published=now)
    return FetchResult(source.id, (post,), SourceState(source.id, last_fetched=now))


async def test_one_broken_source_never_stops_the_others(store: SqlStore) -> None:
    reports = await fetch_all(store, fetch, SOURCES, NOW)
    assert [r.source_id for r in reports] == ["a", "b", "c"]
    assert "HTTP 404" in reports[0].error
    assert "unexpected KeyError" in reports[1].error
    assert (reports[2].error, reports[2].new) == ("", 1)
    state_b = store.get_source_state("b")
    assert state_b is not None
    assert "unexpected KeyError" in state_b.last_error
    assert len(store.recent_posts(["c"], released_after=datetime(2000, 1, 1, tzinfo=UTC))) == 1


class Feed:
    """A feed that fails while ``down`` and otherwise lists ``posts``; records each read."""

    def __init__(self, *posts: Post) -> None:
        self.posts, self.down, self.reads = list(posts), False, list[datetime]()

    async def __call__(
        self, source: SourceConfig, state: SourceState | None, now: datetime
    ) -> FetchResult:
        self.reads.append(now)
        if self.down:
            raise SourceError(f"source {source.id!r}: answered HTTP 503; check the url")
        return FetchResult(source.id, tuple(self.posts), SourceState(source.id, last_fetched=now))


def item(guid: str, link: str, *, published: datetime = NOW, dated: bool = True) -> Post:
    return Post("blog", guid, f"Post {guid}", link, published, dated=dated)


BLOG = SourceConfig(id="blog", kind="feed", url="https://blog.example/feed")


async def poll(store: SqlStore, feed: Feed, source: SourceConfig, at: datetime) -> list[Alert]:
    alerts: list[Alert] = []

    async def notify(alert: Alert) -> None:
        alerts.append(alert)

    await fetch_all(store, feed, [source], at, due_only=True, notify=notify)
    return alerts


async def test_a_failing_source_is_polled_less_often_and_normally_again_once_it_works(
    store: SqlStore,
) -> None:
    feed = Feed(item("1", "https://blog.example/1"))
    feed.down = True
    every = timedelta(minutes=30)
    # The scheduler fires every 30 minutes, a little late each time, for 36 hours.
    firings = [NOW + n * every + timedelta(milliseconds=n) for n in range(72)]
    for at in firings[:48]:
        await poll(store, feed, BLOG, at)
    waits = [(b - a) // every for a, b in zip(feed.reads, feed.reads[1:], strict=False)]
    assert waits == [2, 4, 8, 16, 16]  # doubling, capped at 16 intervals (8 hours)
    health = store.get_source_health("blog")
    assert health is not None
    assert (health.failures, health.failing_since) == (6, NOW)
    feed.down = False
    for at in firings[48:]:
        await poll(store, feed, BLOG, at)
    assert feed.reads[6:] == firings[62:]  # the retry due after 8 hours works: every firing
    health = store.get_source_health("blog")
    assert health is not None
    assert (health.failures, health.last_error, health.last_success) == (0, "", firings[-1])


async def test_the_alert_comes_once_at_the_threshold_and_once_on_recovery(
    store: SqlStore, caplog: pytest.LogCaptureFixture
) -> None:
    feed = Feed()
    feed.down = True
    alerts: list[Alert] = []
    for n in range(5):  # hourly, past any backoff of a 1-minute source: each one fails
        alerts += await poll(store, feed, replace(BLOG, fetch_every_minutes=1), NOW + n * HOUR)
    assert [(a.kind, a.failures) for a in alerts] == [(AlertKind.FAILING, 3)]
    failing = [r for r in caplog.records if r.name == "digest.sources" and r.levelname == "ERROR"]
    assert [r.getMessage() for r in failing] == [
        "source 'blog': 3 failed fetches in a row (since 2026-11-27 06:00 UTC): source 'blog':"
        " answered HTTP 503; check the url"
    ]
    feed.down = False
    alerts += await poll(store, feed, replace(BLOG, fetch_every_minutes=1), NOW + 6 * HOUR)
    alerts += await poll(store, feed, replace(BLOG, fetch_every_minutes=1), NOW + 7 * HOUR)
    assert [(a.kind, a.failures) for a in alerts] == [
        (AlertKind.FAILING, 3),
        (AlertKind.RECOVERED, 5),
    ]
    assert "source 'blog' works again after 5 failed fetches" in caplog.text


async def test_a_notifier_that_breaks_never_breaks_the_fetch(
    store: SqlStore, caplog: pytest.LogCaptureFixture
) -> None:
    feed = Feed()
    feed.down = True
    source = replace(BLOG, alert_after_failures=1)

    async def broken(alert: Alert) -> None:
        raise RuntimeError("mail is down")

    [report] = await fetch_all(store, feed, [source], NOW, notify=broken)
    assert (report.failures, "HTTP 503" in report.error) == (1, True)
    assert "source 'blog': telling the editors failed" in caplog.text


async def test_guid_churn_is_counted_per_fetch_and_in_total(
    store: SqlStore, caplog: pytest.LogCaptureFixture
) -> None:
    feed = Feed(item("1", "https://blog.example/a"), item("2", "https://blog.example/b"))
    await fetch_all(store, feed, [BLOG], NOW)
    feed.posts = [item("a-1", "https://blog.example/a"), item("2", "https://blog.example/b")]
    [report] = await fetch_all(store, feed, [BLOG], NOW + HOUR)
    assert report.problems == (
        "item 'Post a-1': its link https://blog.example/a came back under a new GUID; it counts"
        " as a new post (the feed re-identified it)",
    )
    health = store.get_source_health("blog")
    assert health is not None
    assert (health.churn, health.churn_total) == (1, 1)
    assert "source 'blog': 1 known post(s) came back under a new GUID (1 in all)" in caplog.text
    feed.posts.append(item("c-3", "https://blog.example/c"))
    await fetch_all(store, feed, [BLOG], NOW + 2 * HOUR)
    health = store.get_source_health("blog")
    assert health is not None
    assert (health.churn, health.churn_total) == (0, 1)


async def test_undated_items_and_a_quiet_source_are_reported(
    store: SqlStore, caplog: pytest.LogCaptureFixture
) -> None:
    old = NOW - timedelta(days=20)
    feed = Feed(item("1", "https://blog.example/1", published=old),
                item("2", "https://blog.example/2", dated=False))  # fmt: skip
    source = replace(BLOG, stale_after_days=14)
    await fetch_all(store, feed, [source], NOW)
    health = store.get_source_health("blog")
    assert health is not None
    assert (health.undated, health.newest_post) == (1, NOW)  # the undated item is news
    later = NOW + timedelta(days=15)
    feed.posts[1] = item("2", "https://blog.example/2", published=later, dated=False)
    await fetch_all(store, feed, [source], later)
    await fetch_all(store, feed, [source], later + HOUR)
    quiet = [r.getMessage() for r in caplog.records if "no new post" in r.getMessage()]
    assert quiet == ["source 'blog': no new post for 15 days (stale_after_days = 14)"]
