"""Use case: fetch sources into the store. A failing source never stops the others."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from digest.config import SourceConfig
from digest.errors import SourceError
from digest.models import SourceState
from digest.ports import Store
from digest.sources import FetchResult

Fetch = Callable[[SourceConfig, SourceState | None, datetime], Awaitable[FetchResult]]
"""Reads one source (``digest.sources.fetch_source`` bound to an HTTP client)."""


@dataclass(frozen=True, slots=True)
class FetchReport:
    source_id: str
    new: int = 0
    seen: int = 0
    not_modified: bool = False
    error: str = ""
    problems: tuple[str, ...] = ()


async def fetch_one(store: Store, fetch: Fetch, source: SourceConfig, now: datetime) -> FetchReport:
    """Fetch one source, store its posts and its state; errors are recorded, not raised."""
    state = await asyncio.to_thread(store.get_source_state, source.id)
    try:
        result = await fetch(source, state, now)
        new = await asyncio.to_thread(store.upsert_posts, result.posts, now) if result.posts else 0
    except Exception as exc:  # one source, whatever broke, never stops the others
        error = str(exc) if isinstance(exc, SourceError) else _unexpected(source, exc)
        failed = replace(state, last_error=error) if state else None
        failed_state = failed or SourceState(source.id, last_error=error)
        await asyncio.to_thread(store.save_source_state, failed_state)
        return FetchReport(source.id, error=error)
    await asyncio.to_thread(store.save_source_state, result.state)
    return FetchReport(
        source.id,
        new=new,
        seen=len(result.posts),
        not_modified=result.not_modified,
        problems=result.problems,
    )


async def fetch_all(
    store: Store, fetch: Fetch, sources: Sequence[SourceConfig], now: datetime
) -> list[FetchReport]:
    """Fetch every source concurrently; one report per source, in the given order."""
    return list(await asyncio.gather(*(fetch_one(store, fetch, s, now) for s in sources)))


def _unexpected(source: SourceConfig, exc: Exception) -> str:
    return (
        f"source {source.id!r}: unexpected {type(exc).__name__}: {exc}; "
        "the other sources went on (please report this)"
    )
