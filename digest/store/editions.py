"""Queries for editions: opening one in a single transaction, lookups, status, renderings.

Functions take an open connection inside a transaction; ``SqlStore`` owns the
transactions and the error handling. An edition's posts live in ``edition_posts``
(ordered by position); ``newsletter_posts`` says which edition took each post for its
newsletter, and its primary key refuses a second edition with the same post.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, func, select, text, update

from digest.errors import NotFound
from digest.models import (
    DeliveryStatus,
    Edition,
    EditionStatus,
    EditionSummary,
    Rendered,
    SubscriptionStatus,
)
from digest.store import tables as t
from digest.store.engine import insert_for, placeholder

NEWEST_FIRST = (t.editions.c.created_at.desc(), t.editions.c.period_key.desc())
OLDEST_FIRST = (t.editions.c.created_at.asc(), t.editions.c.period_key.asc())
READER_PAGE = 5000  # readers read and ledger rows written per statement when opening
ANALYZE_AFTER = 1000  # ledger rows written at once that call for fresh planner statistics


_INSERT_SQL = (
    "INSERT INTO deliveries (edition_id, subscriber_id, email, message_id, status, attempts,"
    " reply, duplicate) VALUES ({p}, {p}, {p}, {p}, 'pending', 0, '', false)"
)


class PostsTaken(Exception):
    """Another edition of the newsletter took some of these posts first: select again."""


def find(connection: Connection, newsletter_id: str, period_key: str) -> Edition | None:
    found = editions(
        connection,
        t.editions.c.newsletter_id == newsletter_id,
        t.editions.c.period_key == period_key,
    )
    return found[0] if found else None


def open_edition(
    connection: Connection,
    *,
    edition_id: str,
    newsletter_id: str,
    period_key: str,
    now: datetime,
    post_keys: Sequence[str],
    rendered: Rendered | None,
    message_id: Callable[[str], str],
    no_readers: str,
) -> tuple[Edition, int]:
    """Write the edition, its posts, rendering and ledger rows; ``(edition, recipients)``.

    Raises ``PostsTaken`` when another edition of the newsletter holds one of the
    posts. With no confirmed reader (or no rendering) the edition is written as
    skipped, holding no post, with ``no_readers`` as its error when readers lacked.
    A twin (same newsletter and period) makes the driver raise ``IntegrityError``.
    """
    readers = _confirmed_count(connection, newsletter_id)
    if rendered is None or not post_keys or readers == 0:
        edition = _insert(
            connection, edition_id, newsletter_id, period_key, now, (), EditionStatus.SKIPPED
        )
        if rendered is not None and post_keys:
            set_status(connection, edition_id, EditionStatus.SKIPPED, no_readers)
            edition = one(connection, edition_id)
        return edition, 0
    taken = connection.execute(
        select(t.newsletter_posts.c.post_key).where(
            t.newsletter_posts.c.newsletter_id == newsletter_id,
            t.newsletter_posts.c.post_key.in_(list(post_keys)),
        )
    ).first()
    if taken is not None:
        raise PostsTaken(taken.post_key)
    edition = _insert(
        connection,
        edition_id,
        newsletter_id,
        period_key,
        now,
        post_keys,
        EditionStatus.SENDING,
        subject=rendered.subject,
    )
    connection.execute(
        t.newsletter_posts.insert(),
        [
            {"newsletter_id": newsletter_id, "post_key": key, "edition_id": edition_id}
            for key in post_keys
        ],
    )
    connection.execute(
        t.renderings.insert().values(
            edition_id=edition_id, subject=rendered.subject, html=rendered.html, text=rendered.text
        )
    )
    written = _materialize(connection, edition_id, newsletter_id, message_id)
    if connection.dialect.name == "postgresql" and written >= ANALYZE_AFTER:
        # Fresh statistics, or the planner keeps treating the ledger as tiny and turns
        # every claim into a scan of the whole edition.
        connection.execute(text("ANALYZE deliveries"))
    return edition, written


def _confirmed_count(connection: Connection, newsletter_id: str) -> int:
    return int(
        connection.execute(
            select(func.count()).where(
                t.subscriptions.c.newsletter_id == newsletter_id,
                t.subscriptions.c.status == SubscriptionStatus.CONFIRMED.value,
            )
        ).scalar_one()
    )


def _materialize(
    connection: Connection, edition_id: str, newsletter_id: str, message_id: Callable[[str], str]
) -> int:
    """One pending row per confirmed reader, a page of readers at a time (memory stays flat)."""
    written = 0
    after = ""
    while True:
        page = connection.execute(
            select(t.subscriptions.c.subscriber_id.label("id"), t.subscribers.c.ascii_email)
            .join(t.subscribers, t.subscribers.c.id == t.subscriptions.c.subscriber_id)
            .where(
                t.subscriptions.c.newsletter_id == newsletter_id,
                t.subscriptions.c.status == SubscriptionStatus.CONFIRMED.value,
                t.subscriptions.c.subscriber_id > after,
            )
            .order_by(t.subscriptions.c.subscriber_id)
            .limit(READER_PAGE)
        ).all()
        if not page:
            return written
        # Through the driver with plain tuples: a large edition writes one row per reader.
        connection.exec_driver_sql(
            _INSERT_SQL.format(p=placeholder(connection)),
            [(edition_id, row.id, row.ascii_email, message_id(row.id)) for row in page],
        )
        written += len(page)
        after = page[-1].id


def _insert(
    connection: Connection,
    edition_id: str,
    newsletter_id: str,
    period_key: str,
    now: datetime,
    post_keys: Sequence[str],
    status: EditionStatus,
    subject: str = "",
) -> Edition:
    connection.execute(
        t.editions.insert().values(
            id=edition_id,
            newsletter_id=newsletter_id,
            period_key=period_key,
            created_at=now,
            status=status.value,
            subject=subject,
            error="",
        )
    )
    if post_keys:
        connection.execute(
            t.edition_posts.insert(),
            [
                {"edition_id": edition_id, "position": position, "post_key": key}
                for position, key in enumerate(post_keys)
            ],
        )
    return Edition(
        id=edition_id,
        newsletter_id=newsletter_id,
        period_key=period_key,
        created_at=now,
        status=status,
        post_keys=tuple(post_keys),
        subject=subject,
    )


def editions(
    connection: Connection,
    *where: ColumnElement[bool],
    order: tuple[Any, ...] = NEWEST_FIRST,
    limit: int | None = None,
) -> list[Edition]:
    """Editions matching ``where`` with their post keys, in ``order``."""
    statement = select(t.editions).where(*where).order_by(*order)
    if limit is not None:
        statement = statement.limit(limit)
    rows = connection.execute(statement).all()
    keys = _post_keys(connection, [row.id for row in rows])
    return [_edition(row, keys.get(row.id, ())) for row in rows]


def one(connection: Connection, edition_id: str) -> Edition:
    found = editions(connection, t.editions.c.id == edition_id)
    if not found:
        raise NotFound(f"no edition with id {edition_id!r}: see `digest editions`")
    return found[0]


def resolve(connection: Connection, prefix: str) -> str:
    """The id of the one edition whose id starts with ``prefix``; ``NotFound`` otherwise."""
    ids = connection.execute(
        select(t.editions.c.id)
        .where(t.editions.c.id.startswith(prefix, autoescape=True))  # % and _ are literal
        .order_by(t.editions.c.id)
        .limit(3)
    ).scalars()
    found = list(ids)
    if len(found) == 1 and prefix:
        return str(found[0])
    if not found or not prefix:
        raise NotFound(f"no edition with id {prefix!r}: see `digest editions`")
    raise NotFound(
        f"edition id {prefix!r} is ambiguous ({', '.join(found[:2])}, …): give more characters"
    )


def summaries(
    connection: Connection, newsletter_id: str | None, limit: int
) -> list[EditionSummary]:
    where = [] if newsletter_id is None else [t.editions.c.newsletter_id == newsletter_id]
    found = editions(connection, *where, limit=limit)
    return [summary(connection, edition) for edition in found]


def summary(connection: Connection, edition: Edition) -> EditionSummary:
    counts = dict.fromkeys(DeliveryStatus, 0)
    duplicates = unfinished = 0
    grouped = (
        select(
            t.deliveries.c.status,
            t.deliveries.c.duplicate,
            func.count(),
        )
        .where(t.deliveries.c.edition_id == edition.id)
        .group_by(t.deliveries.c.status, t.deliveries.c.duplicate)
    )
    for status, duplicate, count in connection.execute(grouped):
        state = DeliveryStatus(status)
        counts[state] += count
        if duplicate:
            duplicates += count
        if not state.is_final or (state is DeliveryStatus.UNCERTAIN and not duplicate):
            unfinished += count
    return EditionSummary(
        edition=edition, counts=counts, duplicates=duplicates, unfinished=unfinished
    )


def set_status(
    connection: Connection,
    edition_id: str,
    status: EditionStatus,
    error: str,
    *,
    only_from: Sequence[EditionStatus] | None = None,
) -> bool:
    """Move the edition to ``status``; with ``only_from``, only from those; False when refused."""
    statement = update(t.editions).where(t.editions.c.id == edition_id)
    if only_from is not None:
        statement = statement.where(t.editions.c.status.in_([s.value for s in only_from]))
    result = connection.execute(statement.values(status=status.value, error=error))
    if result.rowcount == 0:
        one(connection, edition_id)  # NotFound for an unknown id
        return False
    return True


def save_rendering(
    connection: Connection, edition_id: str, *, subject: str, html: str, text: str
) -> None:
    one(connection, edition_id)  # NotFound rather than a foreign-key error
    values = {"subject": subject, "html": html, "text": text}
    statement = insert_for(connection, t.renderings).values(edition_id=edition_id, **values)
    connection.execute(
        statement.on_conflict_do_update(index_elements=[t.renderings.c.edition_id], set_=values)
    )


def get_rendering(connection: Connection, edition_id: str) -> Rendered | None:
    row = connection.execute(
        select(t.renderings.c.subject, t.renderings.c.html, t.renderings.c.text).where(
            t.renderings.c.edition_id == edition_id
        )
    ).one_or_none()
    return None if row is None else Rendered(row.subject, row.html, row.text)


def _post_keys(connection: Connection, edition_ids: list[str]) -> dict[str, tuple[str, ...]]:
    if not edition_ids:
        return {}
    keys: dict[str, list[str]] = {}
    statement = (
        select(t.edition_posts.c.edition_id, t.edition_posts.c.post_key)
        .where(t.edition_posts.c.edition_id.in_(edition_ids))
        .order_by(t.edition_posts.c.edition_id, t.edition_posts.c.position)
    )
    for edition_id, key in connection.execute(statement):
        keys.setdefault(edition_id, []).append(key)
    return {edition_id: tuple(found) for edition_id, found in keys.items()}


def _edition(row: Row[Any], post_keys: tuple[str, ...]) -> Edition:
    return Edition(
        id=row.id,
        newsletter_id=row.newsletter_id,
        period_key=row.period_key,
        created_at=row.created_at,
        status=EditionStatus(row.status),
        post_keys=post_keys,
        subject=row.subject,
        error=row.error,
    )
