"""Pure rules of source health: backoff while failing, alerts, GUID churn, staleness.

A source is fetched every ``fetch_every_minutes``. After ``n`` failed fetches in a row
the next one waits ``interval x 2**n``, at most 16 intervals and at most 24 hours (never
less than one interval); the first success resets it. The editors hear about a source
twice per bad spell: when the ``alert_after_failures``-th failure in a row happens, and
at the first success after it. Nothing here does I/O or reads the clock.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from digest.config import SourceConfig
from digest.models import Post, SourceHealth

MAX_BACKOFF = timedelta(hours=24)
MAX_BACKOFF_INTERVALS = 16
SLACK = timedelta(minutes=1)
"""A firing this early still counts as due: the scheduler's clock and the fetch's differ a
little, and a retry due at 10:00:00.2 must not wait for the 10:30 firing."""


def longest_backoff(interval: timedelta) -> timedelta:
    """The longest wait between attempts at a failing source polled every ``interval``."""
    return max(interval, min(interval * MAX_BACKOFF_INTERVALS, MAX_BACKOFF))


def backoff(interval: timedelta, failures: int) -> timedelta:
    """How long after an attempt the next one is due, after ``failures`` in a row."""
    if failures <= 0:
        return interval
    # 2**failures grows without bound over a long outage; the cap is reached by 2**4.
    return min(interval * (1 << min(failures, 8)), longest_backoff(interval))


def next_attempt(health: SourceHealth, interval: timedelta) -> datetime | None:
    """When a failing source may be fetched again (None: it is not failing)."""
    if health.failures == 0 or health.last_fetch is None:
        return None
    return health.last_fetch + backoff(interval, health.failures)


def is_due(health: SourceHealth | None, interval: timedelta, now: datetime) -> bool:
    """Whether a scheduled fetch should read the source now (always, unless backing off)."""
    due = None if health is None else next_attempt(health, interval)
    return due is None or now >= due - min(SLACK, interval / 10)


def churned(posts: Sequence[Post], known: Iterable[tuple[str, str]]) -> list[Post]:
    """The posts of a fetch that are known posts under a new GUID.

    ``known`` is (GUID, link) of the source's stored posts with one of these GUIDs or
    links. A post is churn when its GUID is new and its link was stored under GUIDs of
    which none is in this fetch any more (the item was re-identified, not joined by a
    sibling). A link that several items of the fetch share (a status page, a podcast
    feed pointing every item at one page) says nothing and is never counted.
    """
    stored: dict[str, set[str]] = {}
    for guid, link in known:
        stored.setdefault(link, set()).add(guid)
    known_guids = set().union(*stored.values()) if stored else set()
    in_fetch = {post.guid for post in posts}
    links = Counter(post.link for post in posts)
    return [
        post
        for post in posts
        if post.guid not in known_guids
        and post.link
        and links[post.link] == 1
        and stored.get(post.link)
        and not stored[post.link] & in_fetch
    ]


def after_success(
    before: SourceHealth | None,
    source_id: str,
    posts: Sequence[Post],
    known: Iterable[tuple[str, str]],
    now: datetime,
) -> SourceHealth:
    """The health after a fetch that read ``posts`` (``known`` as for :func:`churned`)."""
    known = list(known)
    known_guids = {guid for guid, _ in known}
    churn = len(churned(posts, known))
    # An undated item is dated when digest first sees it: only a new one is news.
    dates = [
        post.published
        for post in posts
        if (post.dated or post.guid not in known_guids) and post.published <= now
    ]
    previous = before or SourceHealth(source_id)
    newest = max([*dates, previous.newest_post] if previous.newest_post else dates, default=None)
    return SourceHealth(
        source_id,
        last_fetch=now,
        last_success=now,
        undated=sum(not post.dated for post in posts),
        churn=churn,
        churn_total=previous.churn_total + churn,
        newest_post=newest,
    )


def after_not_modified(before: SourceHealth | None, source_id: str, now: datetime) -> SourceHealth:
    """The health after an HTTP 304: a success that found nothing new to count."""
    previous = before or SourceHealth(source_id)
    return replace(
        previous,
        last_fetch=now,
        last_success=now,
        last_error="",
        failures=0,
        failing_since=None,
        churn=0,
    )


def after_failure(
    before: SourceHealth | None, source_id: str, error: str, now: datetime
) -> SourceHealth:
    """The health after a fetch that failed with ``error``."""
    previous = before or SourceHealth(source_id)
    return replace(
        previous,
        last_fetch=now,
        last_error=error,
        failures=previous.failures + 1,
        failing_since=previous.failing_since or now,
    )


class AlertKind(enum.StrEnum):
    FAILING = "failing"
    RECOVERED = "recovered"


@dataclass(frozen=True, slots=True)
class Alert:
    """What the editors are told about a source: it is failing, or works again."""

    kind: AlertKind
    source: SourceConfig
    failures: int  # failed attempts in a row (for a recovery: the spell that ended)
    since: datetime  # first failure of the spell
    error: str  # the last error
    at: datetime  # the attempt that crossed the threshold, or the one that succeeded


def alert(before: SourceHealth | None, after: SourceHealth, source: SourceConfig) -> Alert | None:
    """The alert a fetch calls for, if any: once per bad spell, and once when it ends."""
    threshold = source.alert_after_failures
    failures_before = before.failures if before else 0
    at = after.last_fetch
    if at is None:
        return None
    if failures_before < threshold <= after.failures and after.failing_since is not None:
        return Alert(
            AlertKind.FAILING, source, after.failures, after.failing_since, after.last_error, at
        )
    if before and before.failing_since and after.failures == 0 and failures_before >= threshold:
        return Alert(
            AlertKind.RECOVERED,
            source,
            failures_before,
            before.failing_since,
            before.last_error,
            at,
        )
    return None


def failed_fetches(count: int) -> str:
    """ "1 failed fetch", "3 failed fetches": for messages."""
    return "1 failed fetch" if count == 1 else f"{count} failed fetches"


def days_without_new_post(health: SourceHealth | None, now: datetime) -> int | None:
    """Whole days since the newest post (None: no post seen yet)."""
    if health is None or health.newest_post is None:
        return None
    return max(0, (now - health.newest_post).days)


def is_stale(source: SourceConfig, health: SourceHealth | None, now: datetime) -> bool:
    """Whether the newest post is older than the source's ``stale_after_days`` (if set)."""
    days = days_without_new_post(health, now)
    return bool(source.stale_after_days) and days is not None and days >= source.stale_after_days


def newly_stale(source: SourceConfig, before: SourceHealth | None, after: SourceHealth) -> int:
    """Days without a new post if this fetch is the first to find the source stale, else 0
    (so that it is logged once, not at every fetch)."""
    at = after.last_success
    if at is None or not is_stale(source, after, at):
        return 0
    earlier = before.last_success if before else None
    if earlier is not None and is_stale(source, before, earlier):
        return 0
    return days_without_new_post(after, at) or 0


@dataclass(frozen=True, slots=True)
class HealthView:
    """One source as ``digest sources`` shows it."""

    source: SourceConfig
    health: SourceHealth | None
    status: str  # "not fetched", "ok", "stale" or "failing"
    next_attempt: datetime | None  # while failing: the earliest scheduled retry
    quiet_days: int | None  # days since the newest post
    stale: bool
    alerted: bool  # it reached the alert threshold: the alert was raised (logged, mailed)


def view(source: SourceConfig, health: SourceHealth | None, now: datetime) -> HealthView:
    """The source's health as of ``now``, with its status as a word."""
    stale = is_stale(source, health, now)
    interval = timedelta(minutes=source.fetch_every_minutes)
    if health is None or health.last_fetch is None:
        status = "not fetched"
    elif health.failures:
        status = "failing"
    else:
        status = "stale" if stale else "ok"
    return HealthView(
        source=source,
        health=health,
        status=status,
        next_attempt=None if health is None else next_attempt(health, interval),
        quiet_days=days_without_new_post(health, now),
        stale=stale,
        alerted=health is not None and health.failures >= source.alert_after_failures,
    )
