"""Queries for editions, their archived renderings and the deliveries ledger.

Functions take an open connection inside a transaction; ``SqlStore`` owns the
transactions and the error handling. An edition's posts live in ``edition_posts``
(ordered by position) and are read back with one query per batch of editions.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, func, select, update

from digest.errors import NotFound
from digest.models import (
    Claim,
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    EditionSummary,
    SendResult,
    SubscriptionStatus,
)
from digest.store import tables as t
from digest.store.engine import insert_for

UNFINISHED = (
    DeliveryStatus.PENDING.value,
    DeliveryStatus.SENDING.value,
    DeliveryStatus.DEFERRED.value,
)
CLAIMABLE = (DeliveryStatus.PENDING.value, DeliveryStatus.DEFERRED.value)

NEWEST_FIRST = (t.editions.c.created_at.desc(), t.editions.c.period_key.desc())
OLDEST_FIRST = (t.editions.c.created_at.asc(), t.editions.c.period_key.asc())


# --- editions ---------------------------------------------------------------------------


def insert_edition(
    connection: Connection,
    *,
    edition_id: str,
    newsletter_id: str,
    period_key: str,
    now: datetime,
    post_keys: Sequence[str],
    status: EditionStatus,
    subject: str,
) -> Edition:
    """Insert the edition and its posts; a twin raises the driver's IntegrityError."""
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


def one_edition(connection: Connection, edition_id: str) -> Edition:
    found = editions(connection, t.editions.c.id == edition_id)
    if not found:
        raise NotFound(f"no edition with id {edition_id!r}")
    return found[0]


def list_editions(
    connection: Connection, newsletter_id: str | None, limit: int
) -> list[EditionSummary]:
    where = [] if newsletter_id is None else [t.editions.c.newsletter_id == newsletter_id]
    found = editions(connection, *where, limit=limit)
    counts: dict[str, dict[DeliveryStatus, int]] = {
        edition.id: dict.fromkeys(DeliveryStatus, 0) for edition in found
    }
    if found:
        grouped = (
            select(t.deliveries.c.edition_id, t.deliveries.c.status, func.count())
            .where(t.deliveries.c.edition_id.in_(list(counts)))
            .group_by(t.deliveries.c.edition_id, t.deliveries.c.status)
        )
        for edition_id, status, count in connection.execute(grouped):
            counts[edition_id][DeliveryStatus(status)] = count
    return [EditionSummary(edition=edition, counts=counts[edition.id]) for edition in found]


def set_edition_status(
    connection: Connection, edition_id: str, status: EditionStatus, error: str
) -> None:
    result = connection.execute(
        update(t.editions)
        .where(t.editions.c.id == edition_id)
        .values(status=status.value, error=error)
    )
    if result.rowcount == 0:
        raise NotFound(f"no edition with id {edition_id!r}")


def save_rendering(
    connection: Connection, edition_id: str, *, subject: str, html: str, text: str
) -> None:
    one_edition(connection, edition_id)  # NotFound rather than a foreign-key error
    values = {"subject": subject, "html": html, "text": text}
    statement = insert_for(connection, t.renderings).values(edition_id=edition_id, **values)
    connection.execute(
        statement.on_conflict_do_update(index_elements=[t.renderings.c.edition_id], set_=values)
    )


def get_rendering(connection: Connection, edition_id: str) -> tuple[str, str, str] | None:
    row = connection.execute(
        select(t.renderings.c.subject, t.renderings.c.html, t.renderings.c.text).where(
            t.renderings.c.edition_id == edition_id
        )
    ).one_or_none()
    return None if row is None else (row.subject, row.html, row.text)


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


# --- deliveries ---------------------------------------------------------------------------


def add_deliveries(connection: Connection, deliveries: Sequence[Delivery]) -> int:
    """Insert the rows that do not exist yet for (edition, subscriber); returns how many."""
    if not deliveries:
        return 0
    rows = [
        {
            "edition_id": delivery.edition_id,
            "subscriber_id": delivery.subscriber_id,
            "email": delivery.email,
            "message_id": delivery.message_id,
            "status": delivery.status.value,
            "attempts": delivery.attempts,
            "reply": delivery.reply,
            "updated_at": delivery.updated_at,
        }
        for delivery in deliveries
    ]
    statement = (
        insert_for(connection, t.deliveries)
        .on_conflict_do_nothing(
            index_elements=[t.deliveries.c.edition_id, t.deliveries.c.subscriber_id]
        )
        .returning(t.deliveries.c.subscriber_id)
    )
    return len(connection.execute(statement, rows).all())


def deliveries(connection: Connection, edition_id: str, *, unfinished: bool) -> list[Delivery]:
    statement = select(t.deliveries).where(t.deliveries.c.edition_id == edition_id)
    if unfinished:
        statement = statement.where(t.deliveries.c.status.in_(UNFINISHED))
    statement = statement.order_by(t.deliveries.c.email, t.deliveries.c.subscriber_id)
    return [_delivery(row) for row in connection.execute(statement)]


def record_delivery(
    connection: Connection,
    edition_id: str,
    subscriber_id: str,
    result: SendResult,
    now: datetime,
) -> None:
    row = _row(edition_id, subscriber_id)
    changed = connection.execute(
        update(t.deliveries)
        .where(row, t.deliveries.c.status.in_(UNFINISHED))
        .values(
            status=result.status.value,
            reply=result.reply,
            updated_at=now,
            attempts=t.deliveries.c.attempts + 1,
        )
    ).rowcount
    if (
        changed == 0
        and connection.execute(select(t.deliveries.c.status).where(row)).first() is None
    ):
        raise NotFound(f"no delivery of edition {edition_id!r} to subscriber {subscriber_id!r}")


def claim_delivery(
    connection: Connection,
    edition_id: str,
    subscriber_id: str,
    newsletter_id: str,
    now: datetime,
    stale_before: datetime,
) -> Claim:
    """See ``Store.claim_delivery``: one conditional UPDATE decides, so no two win."""
    free = t.deliveries.c.status.in_(CLAIMABLE) | (
        (t.deliveries.c.status == DeliveryStatus.SENDING.value)
        & (t.deliveries.c.updated_at < stale_before)
    )
    subscribed = connection.execute(
        select(t.subscriptions.c.status).where(
            t.subscriptions.c.subscriber_id == subscriber_id,
            t.subscriptions.c.newsletter_id == newsletter_id,
        )
    ).scalar()
    left = subscribed != SubscriptionStatus.CONFIRMED.value
    values = (
        {"status": DeliveryStatus.SUPPRESSED.value, "reply": "unsubscribed before sending"}
        if left
        else {"status": DeliveryStatus.SENDING.value}
    )
    changed = connection.execute(
        update(t.deliveries)
        .where(_row(edition_id, subscriber_id), free)
        .values(updated_at=now, **values)
    ).rowcount
    if changed == 0:
        return Claim.TAKEN
    return Claim.LEFT if left else Claim.CLAIMED


def release_delivery(connection: Connection, edition_id: str, subscriber_id: str) -> None:
    connection.execute(
        update(t.deliveries)
        .where(
            _row(edition_id, subscriber_id),
            t.deliveries.c.status == DeliveryStatus.SENDING.value,
        )
        .values(status=DeliveryStatus.PENDING.value)
    )


def _row(edition_id: str, subscriber_id: str) -> ColumnElement[bool]:
    return (t.deliveries.c.edition_id == edition_id) & (
        t.deliveries.c.subscriber_id == subscriber_id
    )


def _delivery(row: Row[Any]) -> Delivery:
    return Delivery(
        edition_id=row.edition_id,
        subscriber_id=row.subscriber_id,
        email=row.email,
        message_id=row.message_id,
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        reply=row.reply,
        updated_at=row.updated_at,
    )
