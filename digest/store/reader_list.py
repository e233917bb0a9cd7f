"""Queries of the editor's reader list: bulk adds, pages of subscriptions, the suppression
list, and erasing a reader.

Functions take an open connection inside a transaction; ``SqlStore`` owns the
transactions. ``subscribers.py`` holds the one-reader operations and selection state.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TypeVar

from sqlalchemy import Connection, delete, select, text, update

from digest.models import (
    REMOVED_ADDRESS,
    REMOVED_REPLY,
    Added,
    DeliveryStatus,
    NewReader,
    Removal,
    Subscription,
    SubscriptionStatus,
    redacted,
)
from digest.store import tables as t
from digest.store.engine import insert_for, placeholder
from digest.store.subscribers import new_subscriber_id, subscription_of, subscriptions_query
from digest.store.tables import utc_for_driver

CHUNK = 1000  # values per IN (...) list: well inside every driver's parameter limit
ANALYZE_AFTER = 1000  # new readers in one batch that may call for fresh planner statistics
UNSENT = (DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.DEFERRED)

_T = TypeVar("_T")


def _chunks(values: Sequence[_T]) -> Iterator[Sequence[_T]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


# Imports write a row per reader: through the driver with plain tuples, so that no
# per-row type processing (three datetimes and a JSON list a row) costs more than the write.
_PEOPLE_SQL = (
    "INSERT INTO subscribers (id, email, ascii_email, created_at, timezone, name)"
    " VALUES ({p}, {p}, {p}, {p}, '', {p}) ON CONFLICT (email) DO NOTHING"
)
_SUBSCRIPTIONS_SQL = (
    "INSERT INTO subscriptions (subscriber_id, newsletter_id, status, changed_at, created_at,"
    " mark_at, mark_key, cadence, topics) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, '~', {p}, {json})"
    " ON CONFLICT (subscriber_id, newsletter_id) DO NOTHING"
)


def add_readers(
    connection: Connection, entries: Sequence[NewReader], status: SubscriptionStatus, now: datetime
) -> Added:
    """See ``Readers.add_readers``: three statements per batch, and a lookup per thousand."""
    people: dict[str, NewReader] = {}
    for entry in entries:
        people.setdefault(entry.email, entry)
    if not people:
        return Added(0, 0)
    p = placeholder(connection)
    when = utc_for_driver(connection.dialect, now)
    created = connection.exec_driver_sql(
        _PEOPLE_SQL.format(p=p),
        [(new_subscriber_id(), e.email, e.ascii_email, when, e.name) for e in people.values()],
    ).rowcount
    ids: dict[str, str] = {}
    for chunk in _chunks(list(people)):
        query = select(t.subscribers.c.email, t.subscribers.c.id)
        ids.update(connection.execute(query.where(t.subscribers.c.email.in_(chunk))).all())
    wanted: dict[tuple[str, str], NewReader] = {}
    for entry in entries:
        wanted.setdefault((ids[entry.email], entry.newsletter_id), entry)
    json_cast = f"CAST({p} AS JSON)" if connection.dialect.name == "postgresql" else p
    state = status.value
    subscribed = connection.exec_driver_sql(
        _SUBSCRIPTIONS_SQL.format(p=p, json=json_cast),
        [
            (subscriber_id, newsletter_id, state, when, when, when, e.cadence,
             None if e.topics is None else json.dumps(sorted(set(e.topics))))
            for (subscriber_id, newsletter_id), e in sorted(wanted.items())
        ],
    ).rowcount  # fmt: skip
    if connection.dialect.name == "postgresql" and created >= ANALYZE_AFTER:
        # Statistics that think the list is much smaller than it is make the planner page
        # through it by sorting all of it. Fresh ones each time the list doubles.
        believed = connection.execute(
            text("SELECT reltuples FROM pg_class WHERE oid = 'subscribers'::regclass")
        ).scalar_one()
        if created >= believed:
            connection.execute(text("ANALYZE subscribers, subscriptions"))
    return Added(people=created, subscriptions=subscribed)


def page(
    connection: Connection,
    *,
    newsletter_id: str | None,
    status: SubscriptionStatus | None,
    after: str | None,
    size: int,
) -> tuple[list[Subscription], str | None]:
    """The subscriptions of the next ``size`` readers by email after ``after`` that have one
    (of that newsletter, in that status), by email then newsletter; and the email to read
    on from, None when no reader is left.

    A page is made of whole readers, walked along the unique index on ``email``: every page
    costs the same however far into the list it is.
    """
    s = t.subscriptions.c
    matching = [s.subscriber_id == t.subscribers.c.id]
    if newsletter_id is not None:
        matching.append(s.newsletter_id == newsletter_id)
    if status is not None:
        matching.append(s.status == status.value)
    readers = (
        select(t.subscribers.c.id, t.subscribers.c.email)
        .where(select(s.subscriber_id).where(*matching).exists())
        .order_by(t.subscribers.c.email)
        .limit(size)
    )
    if after is not None:
        readers = readers.where(t.subscribers.c.email > after)
    found = connection.execute(readers).all()
    if not found:
        return [], None
    rows = connection.execute(
        subscriptions_query().where(s.subscriber_id.in_([row.id for row in found]), *matching[1:])
    )
    listed = sorted(
        (subscription_of(row) for row in rows),
        key=lambda sub: (sub.subscriber.email, sub.newsletter_id),
    )
    return listed, found[-1].email if len(found) == size else None


def suppressions(connection: Connection, keys: Sequence[str]) -> dict[str, datetime]:
    """See ``Readers.suppressions``."""
    found: dict[str, datetime] = {}
    s = t.suppressions.c
    for chunk in _chunks(sorted(set(keys))):
        query = select(s.address_key, s.removed_at).where(s.address_key.in_(chunk))
        found.update(connection.execute(query).all())
    return found


def remove_subscriber(
    connection: Connection, email: str, suppression_key: str, now: datetime
) -> Removal:
    """See ``Readers.remove_subscriber``."""
    connection.execute(
        insert_for(connection, t.suppressions)
        .values(address_key=suppression_key, removed_at=now)
        .on_conflict_do_nothing(index_elements=[t.suppressions.c.address_key])
    )
    since = connection.execute(
        select(t.suppressions.c.removed_at).where(t.suppressions.c.address_key == suppression_key)
    ).scalar_one()
    reader = connection.execute(
        select(t.subscribers.c.id, t.subscribers.c.ascii_email).where(
            t.subscribers.c.email == email
        )
    ).one_or_none()
    if reader is None:
        return Removal(False, since)
    subscriber_id, ascii_email = reader
    left = connection.execute(
        delete(t.subscriptions).where(t.subscriptions.c.subscriber_id == subscriber_id)
    ).rowcount
    d = t.deliveries.c
    # A random id per removal: the rows of one edition stay distinct, and nothing leads
    # back to the reader (not their id, which was in their unsubscribe links).
    anonymous = f"removed-{secrets.token_urlsafe(12)}"
    quoted = connection.execute(
        select(d.edition_id, d.reply).where(d.subscriber_id == subscriber_id, d.reply.contains("@"))
    ).all()
    for edition_id, reply in quoted:
        connection.execute(
            update(t.deliveries)
            .where(d.edition_id == edition_id, d.subscriber_id == subscriber_id)
            .values(reply=redacted(reply, email, ascii_email))
        )
    connection.execute(
        update(t.deliveries)
        .where(d.subscriber_id == subscriber_id, d.status.in_([s.value for s in UNSENT]))
        .values(
            status=DeliveryStatus.SUPPRESSED.value,
            reply=REMOVED_REPLY,
            updated_at=now,
            owner=None,
            lease_until=None,
            not_before=None,
        )
    )
    rows = connection.execute(
        update(t.deliveries)
        .where(d.subscriber_id == subscriber_id)
        .values(subscriber_id=anonymous, email=REMOVED_ADDRESS, message_id="")
    ).rowcount
    # The consent records go with the person: the suppression entry is what remains.
    connection.execute(delete(t.consents).where(t.consents.c.subscriber_id == subscriber_id))
    connection.execute(delete(t.subscribers).where(t.subscribers.c.id == subscriber_id))
    return Removal(True, since, subscriptions=left, deliveries=rows)
