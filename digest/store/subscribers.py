"""Queries for subscribers and their subscriptions, one row per (reader, newsletter).

Functions take an open connection inside a transaction; ``SqlStore`` owns the
transactions and the error handling.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Select,
    Text,
    cast,
    func,
    or_,
    select,
    update,
)

from digest.errors import NotFound
from digest.models import (
    ALL_AT,
    CadenceReaders,
    Mark,
    Reader,
    Subscriber,
    Subscription,
    SubscriptionStatus,
)
from digest.store import tables as t
from digest.store.engine import insert_for


def new_subscriber_id() -> str:
    """An opaque, unguessable id for links (128 random bits, URL-safe)."""
    return secrets.token_urlsafe(16)


def add_subscription(
    connection: Connection,
    *,
    email: str,
    ascii_email: str,
    newsletter_id: str,
    status: SubscriptionStatus,
    now: datetime,
    resubscribe: bool,
) -> tuple[Subscription, bool]:
    """See ``Store.add_subscription``: create what is missing, revive only on request."""
    # ON CONFLICT DO NOTHING: a concurrent sign-up with the same address is not an error.
    connection.execute(
        insert_for(connection, t.subscribers)
        .values(id=new_subscriber_id(), email=email, ascii_email=ascii_email, created_at=now)
        .on_conflict_do_nothing(index_elements=[t.subscribers.c.email])
    )
    subscriber_id = connection.execute(
        select(t.subscribers.c.id).where(t.subscribers.c.email == email)
    ).scalar_one()
    created = connection.execute(
        insert_for(connection, t.subscriptions)
        .values(
            subscriber_id=subscriber_id,
            newsletter_id=newsletter_id,
            status=status.value,
            changed_at=now,
            created_at=now,
            mark_at=now,
        )
        .on_conflict_do_nothing(
            index_elements=[t.subscriptions.c.subscriber_id, t.subscriptions.c.newsletter_id]
        )
        .returning(t.subscriptions.c.subscriber_id)
    ).first()
    changed = created is not None
    if not changed and resubscribe:
        changed = _set_status(connection, subscriber_id, newsletter_id, status, now)
    row = connection.execute(
        subscriptions_query().where(
            t.subscriptions.c.subscriber_id == subscriber_id,
            t.subscriptions.c.newsletter_id == newsletter_id,
        )
    ).one()
    return subscription_of(row), changed


def get_subscriber(connection: Connection, subscriber_id: str) -> Subscriber:
    row = connection.execute(
        select(t.subscribers).where(t.subscribers.c.id == subscriber_id)
    ).one_or_none()
    if row is None:
        raise NotFound(f"no subscriber with id {subscriber_id!r}")
    return _subscriber(row)


def find_subscription(
    connection: Connection, email: str, newsletter_id: str
) -> Subscription | None:
    row = connection.execute(
        subscriptions_query().where(
            t.subscribers.c.email == email, t.subscriptions.c.newsletter_id == newsletter_id
        )
    ).one_or_none()
    return None if row is None else subscription_of(row)


def set_subscription_status(
    connection: Connection,
    subscriber_id: str,
    newsletter_id: str,
    status: SubscriptionStatus,
    now: datetime,
) -> bool:
    if _set_status(connection, subscriber_id, newsletter_id, status, now):
        return True
    exists = connection.execute(
        select(t.subscriptions.c.status).where(
            t.subscriptions.c.subscriber_id == subscriber_id,
            t.subscriptions.c.newsletter_id == newsletter_id,
        )
    ).one_or_none()
    if exists is None:
        raise NotFound(
            f"subscriber {subscriber_id!r} has no subscription to newsletter {newsletter_id!r}"
        )
    return False


def _set_status(
    connection: Connection,
    subscriber_id: str,
    newsletter_id: str,
    status: SubscriptionStatus,
    now: datetime,
) -> bool:
    """Change the status if it differs; True when a row changed.

    A reader who comes back starts from now: what went out while they were away is not
    owed to them.
    """
    values: dict[str, Any] = {"status": status.value, "changed_at": now}
    if status is SubscriptionStatus.CONFIRMED:
        values |= {"mark_at": now, "mark_key": ALL_AT}
    result = connection.execute(
        update(t.subscriptions)
        .where(
            t.subscriptions.c.subscriber_id == subscriber_id,
            t.subscriptions.c.newsletter_id == newsletter_id,
            t.subscriptions.c.status != status.value,
        )
        .values(**values)
    )
    return result.rowcount == 1


def set_preferences(
    connection: Connection,
    subscriber_id: str,
    newsletter_id: str,
    *,
    cadence: str | None,
    topics: Sequence[str] | None,
    now: datetime,
) -> None:
    """See ``Readers.set_preferences``."""
    result = connection.execute(
        update(t.subscriptions)
        .where(
            t.subscriptions.c.subscriber_id == subscriber_id,
            t.subscriptions.c.newsletter_id == newsletter_id,
        )
        .values(
            cadence=cadence,
            topics=None if topics is None else sorted(set(topics)),
            changed_at=now,
        )
    )
    if result.rowcount != 1:
        raise NotFound(
            f"subscriber {subscriber_id!r} has no subscription to newsletter {newsletter_id!r}"
        )


def cadence_filter(readers: CadenceReaders) -> ColumnElement[bool]:
    """The subscriptions an edition of ``readers.cadence_id`` is for."""
    cadence = t.subscriptions.c.cadence
    chosen = cadence == readers.cadence_id
    if not readers.default:
        return chosen
    return or_(chosen, cadence.is_(None), cadence.not_in(list(readers.offered)))


def reader_of(row: Any) -> Reader:
    """The selection state of a subscription row (mark_at, mark_key, topics, last_sent_at)."""
    topics = row.topics
    if isinstance(topics, str):  # read back as text from a GROUP BY
        topics = json.loads(topics)
    return Reader(
        mark=Mark(row.mark_at, row.mark_key),
        topics=None if topics is None else frozenset(topics),
        first=row.last_sent_at is None,
    )


def reader_groups(
    connection: Connection, newsletter_id: str, readers: CadenceReaders
) -> list[tuple[Reader, int]]:
    """See ``Readers.reader_groups``."""
    s = t.subscriptions.c
    topics = cast(s.topics, Text).label("topics")
    never = s.last_sent_at.is_(None)
    statement = (
        select(
            s.mark_at,
            s.mark_key,
            topics,
            func.min(s.last_sent_at).label("last_sent_at"),
            func.count(),
        )
        .where(
            s.newsletter_id == newsletter_id,
            s.status == SubscriptionStatus.CONFIRMED.value,
            cadence_filter(readers),
        )
        .group_by(s.mark_at, s.mark_key, topics, never)
    )
    groups: dict[Reader, int] = {}
    for row in connection.execute(statement):
        reader = reader_of(row)
        groups[reader] = groups.get(reader, 0) + int(row[4])
    return list(groups.items())


def readers_by_zone(
    connection: Connection, newsletter_id: str, readers: CadenceReaders
) -> list[tuple[str, datetime | None]]:
    """See ``Readers.readers_by_zone``."""
    s = t.subscriptions.c
    zone = t.subscribers.c.timezone
    statement = (
        select(
            zone,
            func.min(s.last_sent_at),
            func.count() - func.count(s.last_sent_at),  # readers never sent a digest
        )
        .join(t.subscribers, t.subscribers.c.id == s.subscriber_id)
        .where(
            s.newsletter_id == newsletter_id,
            s.status == SubscriptionStatus.CONFIRMED.value,
            cadence_filter(readers),
        )
        .group_by(zone)
    )
    return [
        (name, None if never else oldest) for name, oldest, never in connection.execute(statement)
    ]


def reader_state(connection: Connection, subscriber_id: str, newsletter_id: str) -> Reader:
    """See ``Readers.reader_state``."""
    s = t.subscriptions.c
    row = connection.execute(
        select(s.mark_at, s.mark_key, s.topics, s.last_sent_at).where(
            s.subscriber_id == subscriber_id, s.newsletter_id == newsletter_id
        )
    ).one_or_none()
    if row is None:
        raise NotFound(
            f"subscriber {subscriber_id!r} has no subscription to newsletter {newsletter_id!r}"
        )
    return reader_of(row)


def subscriptions_query() -> Select[Any]:
    """Subscriptions with their subscriber, as ``subscription_of`` reads them."""
    return select(
        t.subscribers,
        t.subscriptions.c.newsletter_id,
        t.subscriptions.c.status,
        t.subscriptions.c.changed_at,
        t.subscriptions.c.cadence,
        t.subscriptions.c.topics,
        t.subscriptions.c.created_at.label("subscribed_at"),
    ).join(t.subscriptions, t.subscriptions.c.subscriber_id == t.subscribers.c.id)


def _subscriber(row: Row[Any]) -> Subscriber:
    return Subscriber(
        id=row.id,
        email=row.email,
        ascii_email=row.ascii_email,
        created_at=row.created_at,
        name=row.name,
        timezone=row.timezone,
    )


def subscription_of(row: Row[Any]) -> Subscription:
    return Subscription(
        subscriber=_subscriber(row),
        newsletter_id=row.newsletter_id,
        status=SubscriptionStatus(row.status),
        changed_at=row.changed_at,
        cadence=row.cadence,
        topics=None if row.topics is None else tuple(row.topics),
        created_at=row.subscribed_at,
    )


def schedule_start(
    connection: Connection, newsletter_id: str, cadence: str, now: datetime
) -> datetime:
    """See ``Readers.schedule_start``."""
    connection.execute(
        insert_for(connection, t.schedule_starts)
        .values(newsletter_id=newsletter_id, cadence=cadence, since=now)
        .on_conflict_do_nothing(
            index_elements=[t.schedule_starts.c.newsletter_id, t.schedule_starts.c.cadence]
        )
    )
    since: datetime = connection.execute(
        select(t.schedule_starts.c.since).where(
            t.schedule_starts.c.newsletter_id == newsletter_id,
            t.schedule_starts.c.cadence == cadence,
        )
    ).scalar_one()
    return since


def set_timezone(connection: Connection, subscriber_id: str, zone: str) -> None:
    """See ``Readers.set_timezone``."""
    found = connection.execute(
        update(t.subscribers).where(t.subscribers.c.id == subscriber_id).values(timezone=zone)
    ).rowcount
    if not found:
        raise NotFound(f"no subscriber with id {subscriber_id!r}")
