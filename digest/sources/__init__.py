"""Fetch one source (a feed over HTTP(S), a local feed file, or a post folder) into posts.

``fetch_source`` is the single entry point: it returns sanitized, de-duplicated
posts, the state to save for the next conditional GET, and the per-item problems.
A source that cannot be read raises ``SourceError`` naming the source, the URL or
path and what to do; no httpx, feedparser or OS exception escapes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

import httpx

from digest.config import SourceConfig
from digest.errors import SourceError
from digest.models import Post, SourceState
from digest.sources.download import USER_AGENT, download, feed_client, read_file
from digest.sources.feed import parse_feed
from digest.sources.folder import read_folder

__all__ = ["USER_AGENT", "FetchResult", "dedupe", "feed_client", "fetch_source"]


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What one fetch of one source produced.

    ``posts`` are sanitized and de-duplicated by GUID (first wins); a feed item
    without a GUID of its own that repeats another item's link is dropped too.
    ``state`` is what to save: validators of this response, ``last_fetched = now``
    and no error. ``not_modified`` means HTTP 304 (and ``posts`` is empty).
    ``problems`` name the item or file they are about.
    """

    source_id: str
    posts: tuple[Post, ...]
    state: SourceState
    not_modified: bool = False
    problems: tuple[str, ...] = ()


async def fetch_source(
    source: SourceConfig,
    state: SourceState | None,
    *,
    client: httpx.AsyncClient | None,
    now: datetime,
) -> FetchResult:
    """Fetch ``source`` and return its posts; raises ``SourceError`` when it cannot be read.

    A feed comes from ``source.url`` (through ``client``, conditional on ``state``; a
    source with a url needs one) or from the local file ``source.path``; a folder source
    reads ``source.path``.
    """
    if source.kind == "folder":
        if source.path is None:
            raise SourceError(
                f"source '{source.id}': a folder source needs a path; "
                f"set path in [sources.{source.id}]"
            )
        # File I/O runs in a thread so a slow disk never stalls the event loop.
        posts, problems = await asyncio.to_thread(
            read_folder, source.id, source.path, now=now, max_bytes=source.max_bytes
        )
        return _result(source, posts, problems, SourceState(source.id, last_fetched=now))

    if source.kind != "feed":
        raise SourceError(
            f"source '{source.id}': unknown kind {source.kind!r}; "
            f'use "feed" or "folder" in [sources.{source.id}]'
        )
    if source.url:
        if client is None:
            raise ValueError(f"source {source.id!r} is fetched over HTTP: give it a client")
        fetched = await download(source, state, client=client)
        new_state = SourceState(
            source.id,
            etag=fetched.etag or (state.etag if state and fetched.not_modified else ""),
            last_modified=fetched.last_modified
            or (state.last_modified if state and fetched.not_modified else ""),
            last_fetched=now,
        )
        if fetched.not_modified:
            return FetchResult(source.id, (), new_state, not_modified=True)
        body, location = fetched.body, source.url
        base_url, content_type = fetched.url, fetched.content_type
    elif source.path is not None:
        body = await asyncio.to_thread(read_file, source, source.path)
        location = str(source.path)
        # A local file has no URL of its own: its links resolve against base_url, if set.
        base_url, content_type = source.base_url, ""
        new_state = SourceState(source.id, last_fetched=now)
    else:
        raise SourceError(
            f"source '{source.id}': a feed source needs a url or a path; "
            f"set one in [sources.{source.id}]"
        )
    # Parsing a large feed takes a while: keep the event loop free meanwhile.
    posts, problems = await asyncio.to_thread(
        parse_feed,
        body,
        source_id=source.id,
        location=location,
        base_url=base_url,
        content_type=content_type,
        now=now,
    )
    return _result(source, posts, problems, new_state)


def dedupe(posts: list[Post]) -> tuple[list[Post], list[str]]:
    """Keep the first post of each GUID; report the rest.

    Not by link: a status page or podcast feed links every item to one page and each
    item counts. (Feed items without a GUID of their own fall back to their link as
    GUID, so those are de-duplicated by link; ``parse_feed`` also drops them when an
    item with a GUID has their link.)
    """
    guids: set[str] = set()
    kept: list[Post] = []
    problems: list[str] = []
    for post in posts:
        if post.guid in guids:
            problems.append(f"item '{post.title}': duplicate GUID {post.guid}; kept the first")
            continue
        guids.add(post.guid)
        kept.append(post)
    return kept, problems


def _result(
    source: SourceConfig, posts: list[Post], problems: list[str], state: SourceState
) -> FetchResult:
    unique, duplicates = dedupe(posts)
    return FetchResult(source.id, tuple(unique), state, problems=(*problems, *duplicates))
