"""Queries for sources and posts: fetch state, post upserts, the candidates of an edition.

Functions take an open connection inside a transaction; ``SqlStore`` owns the
transactions and the error handling.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, bindparam, func, select, update

from digest.models import Post, SourceState, StoredPost
from digest.store import tables as t
from digest.store.engine import insert_for

CHUNK = 500
"""Rows per IN list: far below SQLite's and PostgreSQL's bound-parameter limits."""

_CONTENT_COLUMNS = (
    "title",
    "link",
    "author",
    "published",
    "summary_html",
    "content_html",
    "image_url",
    "image_caption",
    "image_width",
    "categories",
)


MARK_STEP = timedelta(microseconds=1)  # the smallest step the stored times keep


def chunks(items: Sequence[str], size: int = CHUNK) -> Iterator[Sequence[str]]:
    """``items`` in slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def get_source_state(connection: Connection, source_id: str) -> SourceState | None:
    row = connection.execute(
        select(t.sources).where(t.sources.c.source_id == source_id)
    ).one_or_none()
    if row is None:
        return None
    return SourceState(
        source_id=row.source_id,
        etag=row.etag,
        last_modified=row.last_modified,
        last_fetched=row.last_fetched,
        last_error=row.last_error,
    )


def save_source_state(connection: Connection, state: SourceState) -> None:
    values = {
        "etag": state.etag,
        "last_modified": state.last_modified,
        "last_fetched": state.last_fetched,
        "last_error": state.last_error,
    }
    statement = insert_for(connection, t.sources).values(source_id=state.source_id, **values)
    connection.execute(
        statement.on_conflict_do_update(index_elements=[t.sources.c.source_id], set_=values)
    )


def upsert_posts(connection: Connection, posts: Sequence[Post], now: datetime) -> int:
    """Insert new posts with ``first_seen = now``; refresh the content of known ones."""
    latest = {post.key: post for post in posts}  # a feed listing a GUID twice: last wins
    if not latest:
        return 0
    floor = _after_every_mark(connection)
    rows = [
        _content(post)
        | {"key": key, "first_seen": now, "released_at": released_after(post, now, floor)}
        for key, post in latest.items()
    ]
    inserted = set(
        connection.execute(
            insert_for(connection, t.posts)
            .on_conflict_do_nothing(index_elements=[t.posts.c.key])
            .returning(t.posts.c.key),
            rows,
        ).scalars()
    )
    refresh = update(t.posts).where(t.posts.c.key == bindparam("b_key"))
    known = [(key, post) for key, post in latest.items() if key not in inserted]
    dated = [_content(post) | {"b_key": key} for key, post in known if post.dated]
    if dated:
        connection.execute(refresh, dated)
    # An undated item keeps the date it was first given (its first-seen time): re-dated
    # on every fetch, a back-catalogue post would later be sent as if it were new.
    undated = [
        {name: value for name, value in _content(post).items() if name not in _DATING}
        | {"b_key": key}
        for key, post in known
        if not post.dated
    ]
    if undated:
        connection.execute(refresh, undated)
    return len(inserted)


def released_after(post: Post, now: datetime, floor: datetime | None) -> datetime:
    """When a post seen first at ``now`` becomes due: the later of ``now`` and its date,
    and never before ``floor``, the newest reader's mark. A fetch that began before
    an edition was opened can store its posts after it: dated before the marks that
    edition set, they would count as received by readers who never got them."""
    if post.published.utcoffset() is None:  # a naive date is refused on binding
        return post.published
    released = max(now, post.published)
    return released if floor is None or released >= floor else floor + MARK_STEP


def _after_every_mark(connection: Connection) -> datetime | None:
    return connection.execute(select(func.max(t.subscriptions.c.mark_at))).scalar()


def recent_posts(
    connection: Connection, source_ids: Sequence[str], released_after: datetime, newest: int
) -> list[StoredPost]:
    """Posts of ``source_ids`` released after ``released_after``, and the ``newest`` ones."""
    if not source_ids:
        return []
    sources = t.posts.c.source_id.in_(list(dict.fromkeys(source_ids)))
    found = {
        row.key: _stored(row)
        for row in connection.execute(
            select(t.posts).where(sources, t.posts.c.released_at > released_after)
        )
    }
    if newest > 0:
        latest = (
            select(t.posts)
            .where(sources)
            .order_by(t.posts.c.published.desc(), t.posts.c.key.desc())
            .limit(newest)
        )
        for row in connection.execute(latest):
            found.setdefault(row.key, _stored(row))
    return list(found.values())


def released_count(connection: Connection, source_ids: Sequence[str], until: datetime) -> int:
    """How many posts of ``source_ids`` were released at or before ``until``."""
    if not source_ids:
        return 0
    statement = select(func.count()).where(
        t.posts.c.source_id.in_(list(dict.fromkeys(source_ids))), t.posts.c.released_at <= until
    )
    return int(connection.execute(statement).scalar_one())


def _stored(row: Row[Any]) -> StoredPost:
    return StoredPost(post=_post(row), first_seen=row.first_seen, released=row.released_at)


def sources_started(connection: Connection, source_ids: Sequence[str]) -> dict[str, datetime]:
    """When each source's first posts were seen (the earliest ``first_seen``)."""
    if not source_ids:
        return {}
    statement = (
        select(t.posts.c.source_id, func.min(t.posts.c.first_seen))
        .where(t.posts.c.source_id.in_(list(dict.fromkeys(source_ids))))
        .group_by(t.posts.c.source_id)
    )
    return {source: started for source, started in connection.execute(statement)}


def get_posts(connection: Connection, keys: Sequence[str]) -> list[Post]:
    """The posts with ``keys``, in that order; unknown keys are skipped."""
    found: dict[str, Post] = {}
    for chunk in chunks(list(dict.fromkeys(keys))):
        for row in connection.execute(select(t.posts).where(t.posts.c.key.in_(chunk))):
            found[row.key] = _post(row)
    return [found[key] for key in keys if key in found]


_DATING = ("published", "dated")


def _content(post: Post) -> dict[str, Any]:
    return {
        "source_id": post.source_id,
        "guid": post.guid,
        **{name: getattr(post, name) for name in _CONTENT_COLUMNS},
        "categories": list(post.categories),
        "dated": post.dated,
    }


def _post(row: Row[Any]) -> Post:
    return Post(
        source_id=row.source_id,
        guid=row.guid,
        title=row.title,
        link=row.link,
        published=row.published,
        author=row.author,
        summary_html=row.summary_html,
        content_html=row.content_html,
        image_url=row.image_url,
        image_caption=row.image_caption,
        image_width=row.image_width,
        categories=tuple(row.categories),
        dated=bool(row.dated),
    )
