"""Tests for digest.source_health: backoff, alerts once per bad spell, churn, staleness."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from digest import source_health as rules
from digest.config import SourceConfig
from digest.models import Post, SourceHealth

NOW = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
SOURCE = SourceConfig(id="blog", kind="feed", url="https://blog.example/feed")


def post(guid: str, link: str = "", *, dated: bool = True, published: datetime = NOW) -> Post:
    return Post("blog", guid, f"Post {guid}", link or f"https://blog.example/{guid}", published,
                dated=dated)  # fmt: skip


def failing(failures: int, last_fetch: datetime = NOW) -> SourceHealth:
    return SourceHealth(
        "blog",
        last_fetch=last_fetch,
        last_error="answered HTTP 503",
        failures=failures,
        failing_since=last_fetch - failures * MINUTE,
    )


@pytest.mark.parametrize(
    ("minutes", "waits"),
    [
        (30, [30, 60, 120, 240, 480, 480, 480]),  # capped at 16 intervals
        (10, [10, 20, 40, 80, 160, 160, 160]),
        (120, [120, 240, 480, 960, 1440, 1440, 1440]),  # capped at 24 hours
        (2880, [2880] * 7),  # never less than the interval itself
    ],
)
def test_backoff_doubles_while_failing_up_to_its_cap(minutes: int, waits: list[int]) -> None:
    interval = timedelta(minutes=minutes)
    assert [rules.backoff(interval, n) / MINUTE for n in range(7)] == waits
    assert rules.backoff(interval, 10_000) == rules.longest_backoff(interval)


def test_a_source_is_due_unless_it_backs_off() -> None:
    interval = timedelta(minutes=30)
    assert rules.is_due(None, interval, NOW)
    ok = SourceHealth("blog", last_fetch=NOW, last_success=NOW)
    assert rules.is_due(ok, interval, NOW + MINUTE)  # the scheduler's interval rules
    assert rules.next_attempt(ok, interval) is None
    two = failing(2)
    assert rules.next_attempt(two, interval) == NOW + 4 * interval
    assert not rules.is_due(two, interval, NOW + 3 * interval)
    # A firing a moment before the retry is due still fetches: it must not wait 30 minutes.
    assert rules.is_due(two, interval, NOW + 4 * interval - timedelta(milliseconds=200))
    assert rules.is_due(two, interval, NOW + 4 * interval)


def test_churn_is_a_new_guid_for_a_link_whose_old_guid_left_the_feed() -> None:
    known = {("1", "https://blog.example/a"), ("2", "https://blog.example/b")}
    fetched = [
        post("1-new", "https://blog.example/a"),  # re-identified: churn
        post("2", "https://blog.example/b"),  # known
        post("3", "https://blog.example/c"),  # new
    ]
    assert [p.guid for p in rules.churned(fetched, known)] == ["1-new"]


def test_a_sibling_sharing_a_link_or_a_shared_page_is_not_churn() -> None:
    status_page = "https://status.example/"
    known = {("1", status_page), ("2", "https://blog.example/b")}
    still_there = [post("1", status_page), post("9", status_page)]
    assert rules.churned(still_there, known) == []
    shared_in_fetch = [post("7", status_page), post("8", status_page)]
    assert rules.churned(shared_in_fetch, known) == []
    assert rules.churned([replace(post("x"), link="")], {("y", "")}) == []


def test_a_success_resets_failures_and_measures_the_fetch() -> None:
    before = replace(failing(4), churn_total=2, newest_post=NOW - timedelta(days=9))
    known = {("1", "https://blog.example/a"), ("old-undated", "https://blog.example/u")}
    fetched = [
        post("1-new", "https://blog.example/a", published=NOW - timedelta(days=3)),
        post("future", published=NOW + timedelta(days=2)),  # waits: not the newest post
        post("old-undated", "https://blog.example/u", dated=False),  # dated when first seen
    ]
    after = rules.after_success(before, "blog", fetched, known, NOW)
    assert after == SourceHealth(
        "blog",
        last_fetch=NOW,
        last_success=NOW,
        undated=1,
        churn=1,
        churn_total=3,
        newest_post=NOW - timedelta(days=3),
    )
    new_undated = [post("fresh", dated=False)]
    assert rules.after_success(after, "blog", new_undated, set(), NOW).newest_post == NOW
    older = [post("a", published=NOW - timedelta(days=30))]
    kept = rules.after_success(after, "blog", older, set(), NOW)
    assert kept.newest_post == NOW - timedelta(days=3)


def test_a_failure_counts_in_a_row_from_its_first() -> None:
    first = rules.after_failure(None, "blog", "timed out", NOW)
    assert (first.failures, first.failing_since, first.last_error) == (1, NOW, "timed out")
    second = rules.after_failure(first, "blog", "refused", NOW + MINUTE)
    assert (second.failures, second.failing_since, second.last_fetch) == (2, NOW, NOW + MINUTE)
    unchanged = rules.after_not_modified(second, "blog", NOW + 2 * MINUTE)
    assert (unchanged.failures, unchanged.failing_since, unchanged.last_error) == (0, None, "")
    assert unchanged.last_success == NOW + 2 * MINUTE


def test_the_editors_are_alerted_once_per_spell_and_once_on_recovery() -> None:
    health: SourceHealth | None = None
    alerts: list[rules.Alert] = []
    moment = NOW
    for _ in range(6):
        after = rules.after_failure(health, "blog", "answered HTTP 503", moment)
        found = rules.alert(health, after, SOURCE)
        alerts += [found] if found else []
        health, moment = after, moment + 30 * MINUTE
    assert [(a.kind, a.failures, a.since, a.at) for a in alerts] == [
        (rules.AlertKind.FAILING, 3, NOW, NOW + 60 * MINUTE)
    ]
    recovered = rules.after_success(health, "blog", [], set(), moment)
    found = rules.alert(health, recovered, SOURCE)
    assert found is not None
    assert (found.kind, found.failures, found.since, found.error) == (
        rules.AlertKind.RECOVERED,
        6,
        NOW,
        "answered HTTP 503",
    )
    assert (
        rules.alert(recovered, rules.after_success(recovered, "blog", [], set(), NOW), SOURCE)
        is None
    )


def test_a_short_spell_below_the_threshold_alerts_nobody() -> None:
    two = failing(2)
    assert rules.alert(failing(1), two, SOURCE) is None
    assert rules.alert(two, rules.after_success(two, "blog", [], set(), NOW), SOURCE) is None
    eager = replace(SOURCE, alert_after_failures=1)
    first = rules.alert(None, rules.after_failure(None, "blog", "x", NOW), eager)
    assert first is not None
    assert first.kind is rules.AlertKind.FAILING


def test_staleness_is_noticed_once_and_shown_until_a_new_post() -> None:
    weekly = replace(SOURCE, stale_after_days=7)
    newest = NOW - timedelta(days=6, hours=23)
    fresh = SourceHealth("blog", last_fetch=NOW, last_success=NOW, newest_post=newest)
    assert not rules.is_stale(weekly, fresh, NOW)
    assert rules.newly_stale(weekly, None, fresh) == 0
    later = NOW + timedelta(hours=2)
    quiet = rules.after_success(fresh, "blog", [], set(), later)
    assert rules.newly_stale(weekly, fresh, quiet) == 7
    again = rules.after_success(quiet, "blog", [], set(), later + timedelta(days=1))
    assert rules.newly_stale(weekly, quiet, again) == 0  # logged once, not at every fetch
    assert rules.is_stale(weekly, again, later + timedelta(days=1))
    assert not rules.is_stale(SOURCE, again, later)  # stale_after_days not set
    assert rules.days_without_new_post(again, later + timedelta(days=1)) == 8


def test_the_view_names_the_status_in_words() -> None:
    weekly = replace(SOURCE, stale_after_days=7)
    assert rules.view(weekly, None, NOW).status == "not fetched"
    ok = SourceHealth("blog", last_fetch=NOW, last_success=NOW, newest_post=NOW)
    assert rules.view(weekly, ok, NOW).status == "ok"
    assert rules.view(weekly, ok, NOW + timedelta(days=8)).status == "stale"
    shown = rules.view(weekly, failing(3), NOW)
    assert (shown.status, shown.alerted) == ("failing", True)
    assert shown.next_attempt == NOW + 8 * 30 * MINUTE
    assert not rules.view(weekly, failing(2), NOW).alerted
    assert (rules.failed_fetches(1), rules.failed_fetches(4)) == (
        "1 failed fetch",
        "4 failed fetches",
    )
