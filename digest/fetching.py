"""Use case: fetch sources into the store and keep their health. A failing source never
stops the others.

Every fetch records the source's health (``digest.source_health`` has the rules): a
scheduled poll (``due_only``) skips a source that is backing off after failures; the
``alert_after_failures``-th failure in a row and the recovery after it are logged to
the ``digest.sources`` logger and handed to ``notify`` (the editors' email), once each.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from digest import source_health as rules
from digest.config import SourceConfig
from digest.errors import SourceError
from digest.models import SourceHealth, SourceState
from digest.ports import Store
from digest.sources import FetchResult

log = logging.getLogger("digest.sources")

Fetch = Callable[[SourceConfig, SourceState | None, datetime], Awaitable[FetchResult]]
"""Reads one source (``digest.sources.fetch_source`` bound to an HTTP client)."""

Notify = Callable[[rules.Alert], Awaitable[None]]
"""Tells the editors about an alert (``digest.source_alerts.send_alert`` bound to a mailer)."""


@dataclass(frozen=True, slots=True)
class FetchReport:
    source_id: str
    new: int = 0
    seen: int = 0
    not_modified: bool = False
    error: str = ""
    problems: tuple[str, ...] = ()
    failures: int = 0  # failed fetches in a row, this one included


async def fetch_one(
    store: Store,
    fetch: Fetch,
    source: SourceConfig,
    now: datetime,
    *,
    due_only: bool = False,
    notify: Notify | None = None,
) -> FetchReport | None:
    """Fetch one source, store its posts, state and health; errors are recorded, not raised.

    With ``due_only`` a source backing off after failures is left alone (None).
    """
    health = await asyncio.to_thread(store.get_source_health, source.id)
    if due_only and not rules.is_due(health, timedelta(minutes=source.fetch_every_minutes), now):
        log.debug("source %r is backing off after %d failure(s)", source.id, _failures(health))
        return None
    state = await asyncio.to_thread(store.get_source_state, source.id)
    try:
        result = await fetch(source, state, now)
        guids, links = [p.guid for p in result.posts], [p.link for p in result.posts]
        known = (
            await asyncio.to_thread(store.known_posts, source.id, guids, links)
            if result.posts
            else []
        )
        new = await asyncio.to_thread(store.upsert_posts, result.posts, now) if result.posts else 0
    except Exception as exc:  # one source, whatever broke, never stops the others
        error = str(exc) if isinstance(exc, SourceError) else _unexpected(source, exc)
        failed = replace(state, last_error=error) if state else None
        failed_state = failed or SourceState(source.id, last_error=error)
        await asyncio.to_thread(store.save_source_state, failed_state)
        after = rules.after_failure(health, source.id, error, now)
        await _record(store, source, health, after, notify)
        return FetchReport(source.id, error=error, failures=after.failures)
    await asyncio.to_thread(store.save_source_state, result.state)
    if result.not_modified:
        after = rules.after_not_modified(health, source.id, now)
    else:
        after = rules.after_success(health, source.id, result.posts, known, now)
    await _record(store, source, health, after, notify)
    churned = rules.churned(result.posts, known)
    return FetchReport(
        source.id,
        new=new,
        seen=len(result.posts),
        not_modified=result.not_modified,
        problems=(*result.problems, *(_churn_problem(post.title, post.link) for post in churned)),
    )


async def fetch_all(
    store: Store,
    fetch: Fetch,
    sources: Sequence[SourceConfig],
    now: datetime,
    *,
    due_only: bool = False,
    notify: Notify | None = None,
) -> list[FetchReport]:
    """Fetch every source concurrently; one report per source fetched, in the given order
    (with ``due_only``, sources backing off are skipped and have none)."""
    reports = await asyncio.gather(
        *(fetch_one(store, fetch, s, now, due_only=due_only, notify=notify) for s in sources)
    )
    return [report for report in reports if report is not None]


async def _record(
    store: Store,
    source: SourceConfig,
    before: SourceHealth | None,
    after: SourceHealth,
    notify: Notify | None,
) -> None:
    """Save the health, and log (and tell the editors) what changed for the worse or better."""
    await asyncio.to_thread(store.save_source_health, after)
    if after.churn:
        log.warning(
            "source %r: %d known post(s) came back under a new GUID (%d in all); they count"
            " as new posts",
            source.id,
            after.churn,
            after.churn_total,
        )
    quiet_days = rules.newly_stale(source, before, after)
    if quiet_days:
        log.warning(
            "source %r: no new post for %d days (stale_after_days = %d)",
            source.id,
            quiet_days,
            source.stale_after_days,
        )
    alert = rules.alert(before, after, source)
    if alert is None:
        return
    if alert.kind is rules.AlertKind.FAILING:
        log.error(
            "source %r: %s in a row (since %s): %s",
            source.id,
            rules.failed_fetches(alert.failures),
            f"{alert.since:%Y-%m-%d %H:%M} UTC",
            alert.error,
        )
    else:
        log.warning(
            "source %r works again after %s (failing since %s)",
            source.id,
            rules.failed_fetches(alert.failures),
            f"{alert.since:%Y-%m-%d %H:%M} UTC",
        )
    if notify is not None:
        try:
            await notify(alert)
        except Exception:  # the editors' mail must never break a fetch
            log.exception("source %r: telling the editors failed", source.id)


def _failures(health: SourceHealth | None) -> int:
    return health.failures if health else 0


def _churn_problem(title: str, link: str) -> str:
    return (
        f"item '{title}': its link {link} came back under a new GUID; it counts as a new post"
        " (the feed re-identified it)"
    )


def _unexpected(source: SourceConfig, exc: Exception) -> str:
    return (
        f"source {source.id!r}: unexpected {type(exc).__name__}: {exc}; "
        "the other sources went on (please report this)"
    )
