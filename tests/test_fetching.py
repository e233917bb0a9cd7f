from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.config import SourceConfig
from digest.errors import SourceError
from digest.fetching import fetch_all
from digest.models import Post, SourceState
from digest.sources import FetchResult
from digest.store import SqlStore

from support.databases import migrated_engine

NOW = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
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
