"""Queries for source health: its rows, and the known posts a fetch measures churn against.

Functions take an open connection inside a transaction; ``SqlStore`` owns the
transactions and the error handling.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, select

from digest.models import SourceHealth
from digest.store import tables as t
from digest.store.engine import insert_for
from digest.store.posts import chunks

_COLUMNS = (
    "last_fetch",
    "last_success",
    "last_error",
    "failures",
    "failing_since",
    "undated",
    "churn",
    "churn_total",
    "newest_post",
)


def get_source_health(connection: Connection, source_id: str) -> SourceHealth | None:
    statement = select(t.source_health).where(t.source_health.c.source_id == source_id)
    row = connection.execute(statement).one_or_none()
    return None if row is None else _health(row)


def list_source_health(connection: Connection) -> list[SourceHealth]:
    # Sorted here: PostgreSQL's collation would order "a-b" and "ab" unlike SQLite.
    rows = connection.execute(select(t.source_health))
    return sorted((_health(row) for row in rows), key=lambda health: health.source_id)


def save_source_health(connection: Connection, health: SourceHealth) -> None:
    values = {name: getattr(health, name) for name in _COLUMNS}
    statement = insert_for(connection, t.source_health).values(source_id=health.source_id, **values)
    connection.execute(
        statement.on_conflict_do_update(index_elements=[t.source_health.c.source_id], set_=values)
    )


def known_posts(
    connection: Connection, source_id: str, guids: Sequence[str], links: Sequence[str]
) -> set[tuple[str, str]]:
    """(GUID, link) of the source's posts with one of ``guids`` or one of ``links``."""
    found: set[tuple[str, str]] = set()
    posts = t.posts.c
    for column, values in ((posts.guid, guids), (posts.link, links)):
        for chunk in chunks(list(dict.fromkeys(v for v in values if v))):
            statement = select(posts.guid, posts.link).where(
                posts.source_id == source_id, column.in_(chunk)
            )
            found.update((guid, link) for guid, link in connection.execute(statement))
    return found


def _health(row: Row[Any]) -> SourceHealth:
    return SourceHealth(row.source_id, **{name: getattr(row, name) for name in _COLUMNS})
