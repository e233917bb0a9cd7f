"""Queries for editions: opening one in a single transaction, lookups, status, renderings.

Functions take an open connection inside a transaction; ``SqlStore`` owns the
transactions and the error handling. An edition has one or more variants (readers with
the same pending posts share one): its posts live in ``edition_posts`` and its renderings
in ``renderings``, both by variant. Opening moves each reader's mark in the same
transaction as their ledger row, so no post is offered to a reader twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, func, select, text, update

from digest.errors import NotFound
from digest.models import (
    DeliveryStatus,
    Draft,
    Edition,
    EditionStatus,
    EditionSummary,
    Rendered,
    SubscriptionStatus,
    Variant,
)
from digest.ports import Due
from digest.store import tables as t
from digest.store.engine import placeholder
from digest.store.posts import released_count
from digest.store.subscribers import cadence_filter, reader_of
from digest.store.tables import utc_for_driver

NEWEST_FIRST = (t.editions.c.created_at.desc(), t.editions.c.period_key.desc())
OLDEST_FIRST = (t.editions.c.created_at.asc(), t.editions.c.period_key.asc())
READER_PAGE = 5000  # readers read and ledger rows written per statement when opening
ANALYZE_AFTER = 1000  # ledger rows written at once that call for fresh planner statistics

_INSERT_SQL = (
    "INSERT INTO deliveries (edition_id, subscriber_id, email, message_id, status, attempts,"
    " reply, duplicate, variant) VALUES ({p}, {p}, {p}, {p}, 'pending', 0, '', false, {p})"
)
_MARK_SQL = (
    "UPDATE subscriptions SET mark_at = {p}, mark_key = {p}, last_sent_at = COALESCE({p},"
    " last_sent_at) WHERE subscriber_id = {p} AND newsletter_id = {p}"
)


class PostsChanged(Exception):
    """Posts arrived after the selection was made: select again."""


def find(connection: Connection, newsletter_id: str, period_key: str) -> Edition | None:
    found = editions(
        connection,
        t.editions.c.newsletter_id == newsletter_id,
        t.editions.c.period_key == period_key,
    )
    return found[0] if found else None


def open_edition(
    connection: Connection,
    draft: Draft,
    *,
    message_id: Callable[[str], str],
    due: Due | None,
    no_readers: str,
) -> tuple[Edition, int]:
    """Write the edition, its variants, ledger rows and readers' new marks.

    Raises ``PostsChanged`` when the count of released posts is no longer ``released``.
    A reader whose state has no verdict (they joined or changed since the selection) is
    left for the next edition. With no ledger row written the edition is ``skipped``,
    holding no post (``no_readers`` is its error if there was something to send).
    A twin (same newsletter and period) makes the driver raise ``IntegrityError``.
    """
    edition_id, variants = draft.edition_id, draft.variants
    if released_count(connection, draft.source_ids, draft.now) != draft.released:
        raise PostsChanged(draft.newsletter_id)
    subject = variants[0].rendered.subject if variants else ""
    _insert(connection, draft, subject)
    written = _materialize(connection, draft, message_id, due)
    if written == 0:
        nobody = variants or not draft.verdicts  # something to send, or no reader at all
        connection.execute(
            update(t.editions)
            .where(t.editions.c.id == edition_id)
            .values(
                status=EditionStatus.SKIPPED.value,
                error=no_readers if nobody else "",
                subject="",
            )
        )
        return one(connection, edition_id), 0
    _write_variants(connection, edition_id, variants)
    if connection.dialect.name == "postgresql" and written >= ANALYZE_AFTER:
        # Fresh statistics, or the planner keeps treating the ledger as tiny and turns
        # every claim into a scan of the whole edition.
        connection.execute(text("ANALYZE deliveries"))
    return one(connection, edition_id), written


def _write_variants(connection: Connection, edition_id: str, variants: Sequence[Variant]) -> None:
    if not variants:
        return
    connection.execute(
        t.renderings.insert(),
        [
            {
                "edition_id": edition_id,
                "variant": number,
                "subject": variant.rendered.subject,
                "html": variant.rendered.html,
                "text": variant.rendered.text,
            }
            for number, variant in enumerate(variants)
        ],
    )
    connection.execute(
        t.edition_posts.insert(),
        [
            {"edition_id": edition_id, "variant": number, "position": position, "post_key": key}
            for number, variant in enumerate(variants)
            for position, key in enumerate(variant.post_keys)
        ],
    )


def _materialize(
    connection: Connection, draft: Draft, message_id: Callable[[str], str], due: Due | None
) -> int:
    """Ledger rows and new marks, a page of readers at a time (memory stays flat)."""
    edition_id, newsletter_id, verdicts = draft.edition_id, draft.newsletter_id, draft.verdicts
    s = t.subscriptions.c
    written = 0
    after = ""
    p = placeholder(connection)
    dialect = connection.dialect
    sent_at = utc_for_driver(dialect, draft.now)
    while True:
        statement = (
            select(
                s.subscriber_id.label("id"),
                t.subscribers.c.ascii_email,
                t.subscribers.c.timezone,
                s.mark_at,
                s.mark_key,
                s.topics,
                s.last_sent_at,
            )
            .join(t.subscribers, t.subscribers.c.id == s.subscriber_id)
            .where(
                s.newsletter_id == newsletter_id,
                s.status == SubscriptionStatus.CONFIRMED.value,
                cadence_filter(draft.readers),
                s.subscriber_id > after,
            )
            .order_by(s.subscriber_id)
            .limit(READER_PAGE)
        )
        if dialect.name == "postgresql":  # a racing edition waits, then sees the new marks
            statement = statement.with_for_update(of=t.subscriptions)
        page = connection.execute(statement).all()
        if not page:
            return written
        rows: list[tuple[Any, ...]] = []
        marks: list[tuple[Any, ...]] = []
        for row in page:
            reader = reader_of(row)
            verdict = verdicts.get(reader)
            if verdict is None or (due is not None and not due(row.timezone, row.last_sent_at)):
                continue
            sent = verdict.variant is not None
            if not sent and verdict.mark == reader.mark:
                continue  # held for min_items: nothing to write
            if sent:
                rows.append(
                    (edition_id, row.id, row.ascii_email, message_id(row.id), verdict.variant)
                )
            mark_at = utc_for_driver(dialect, verdict.mark.at)
            marks.append(
                (mark_at, verdict.mark.key, sent_at if sent else None, row.id, newsletter_id)
            )
        # Through the driver with plain tuples: a large edition writes one row per reader.
        if rows:
            connection.exec_driver_sql(_INSERT_SQL.format(p=p), rows)
        if marks:
            connection.exec_driver_sql(_MARK_SQL.format(p=p), marks)
        written += len(rows)
        after = page[-1].id


def _insert(connection: Connection, draft: Draft, subject: str) -> None:
    connection.execute(
        t.editions.insert().values(
            id=draft.edition_id,
            newsletter_id=draft.newsletter_id,
            period_key=draft.period_key,
            created_at=draft.now,
            status=EditionStatus.SENDING.value,
            subject=subject,
            error="",
            cadence=draft.readers.cadence_id,
        )
    )


def editions(
    connection: Connection,
    *where: ColumnElement[bool],
    order: tuple[Any, ...] = NEWEST_FIRST,
    limit: int | None = None,
    offset: int = 0,
) -> list[Edition]:
    """Editions matching ``where`` with their post keys, in ``order``."""
    statement = select(t.editions).where(*where).order_by(*order)
    if limit is not None:
        statement = statement.limit(limit)
    if offset:
        statement = statement.offset(offset)
    rows = connection.execute(statement).all()
    ids = [row.id for row in rows]
    keys, variants = _post_keys(connection, ids), _variant_counts(connection, ids)
    return [_edition(row, keys.get(row.id, ()), variants.get(row.id, 1)) for row in rows]


def one(connection: Connection, edition_id: str) -> Edition:
    found = editions(connection, t.editions.c.id == edition_id)
    if not found:
        raise NotFound(f"no edition with id {edition_id!r}: see `digest editions`")
    return found[0]


def ids(connection: Connection, prefix: str) -> list[str]:
    """The ids of the editions whose id starts with ``prefix``, sorted by code point (not
    by the database's collation, which may skip punctuation)."""
    statement = select(t.editions.c.id)
    if prefix:
        # % and _ are literal
        statement = statement.where(t.editions.c.id.startswith(prefix, autoescape=True))
    return sorted(str(edition_id) for edition_id in connection.execute(statement).scalars())


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


def get_renderings(connection: Connection, edition_id: str) -> dict[int, Rendered]:
    r = t.renderings.c
    statement = select(r.variant, r.subject, r.html, r.text).where(r.edition_id == edition_id)
    return {
        row.variant: Rendered(row.subject, row.html, row.text)
        for row in connection.execute(statement.order_by(r.variant))
    }


def _post_keys(connection: Connection, edition_ids: list[str]) -> dict[str, tuple[str, ...]]:
    if not edition_ids:
        return {}
    keys: dict[str, dict[str, int]] = {}
    p = t.edition_posts.c
    statement = (
        select(p.edition_id, p.post_key, p.variant)
        .where(p.edition_id.in_(edition_ids))
        .order_by(p.edition_id, p.variant, p.position)
    )
    for edition_id, key, variant in connection.execute(statement):
        keys.setdefault(edition_id, {}).setdefault(key, variant)
    return {edition_id: tuple(found) for edition_id, found in keys.items()}


def _variant_counts(connection: Connection, edition_ids: list[str]) -> dict[str, int]:
    if not edition_ids:
        return {}
    r = t.renderings.c
    statement = (
        select(r.edition_id, func.count())
        .where(r.edition_id.in_(edition_ids))
        .group_by(r.edition_id)
    )
    return {edition_id: int(count) for edition_id, count in connection.execute(statement)}


def _edition(row: Row[Any], post_keys: tuple[str, ...], variants: int) -> Edition:
    return Edition(
        id=row.id,
        newsletter_id=row.newsletter_id,
        period_key=row.period_key,
        created_at=row.created_at,
        status=EditionStatus(row.status),
        post_keys=post_keys,
        subject=row.subject,
        error=row.error,
        cadence=row.cadence,
        variants=variants,
    )
