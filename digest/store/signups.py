"""Queries for sign-up through the web: consent records, confirmation, rate limits, expiry.

Functions take an open connection inside a transaction; ``SqlStore`` owns the
transactions. See ``digest.ports.Signups`` for the contract.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, exists, select, update

from digest.errors import AlreadyExists, NotFound
from digest.models import Allowance, Consent, Subscription, SubscriptionStatus
from digest.store import tables as t
from digest.store.engine import insert_for
from digest.store.subscribers import (
    _set_status,
    new_subscriber_id,
    subscription_of,
    subscriptions_query,
)

PENDING = SubscriptionStatus.PENDING.value
_REVIVABLE = (SubscriptionStatus.PENDING.value, SubscriptionStatus.UNSUBSCRIBED.value)


def take_allowance(connection: Connection, allowances: Sequence[Allowance], now: datetime) -> bool:
    """See ``Signups.take_allowance``: the rows are locked in key order, then counted."""
    r = t.rate_limits.c
    ordered = sorted({a.key: a for a in allowances}.values(), key=lambda a: a.key)
    if not ordered:
        return True
    connection.execute(
        insert_for(connection, t.rate_limits).on_conflict_do_nothing(index_elements=[r.key]),
        [{"key": a.key, "since": now, "uses": 0} for a in ordered],
    )
    rows = {
        row.key: row
        for row in connection.execute(
            select(r.key, r.since, r.uses)
            .where(r.key.in_([a.key for a in ordered]))
            .order_by(r.key)
            .with_for_update()
        )
    }
    fresh: dict[str, bool] = {}
    for allowance in ordered:
        row = rows[allowance.key]
        fresh[allowance.key] = now - row.since >= allowance.window
        if not fresh[allowance.key] and row.uses >= allowance.limit:
            return False
    for allowance in ordered:
        values: dict[str, Any] = {"uses": rows[allowance.key].uses + 1}
        if fresh[allowance.key]:
            values = {"since": now, "uses": 1}
        connection.execute(update(t.rate_limits).where(r.key == allowance.key).values(**values))
    return True


def record_signup(
    connection: Connection,
    *,
    email: str,
    ascii_email: str,
    consents: Sequence[Consent],
    confirmed: bool,
    now: datetime,
) -> tuple[str, list[str]]:
    """See ``Signups.record_signup``."""
    connection.execute(
        insert_for(connection, t.subscribers)
        .values(id=new_subscriber_id(), email=email, ascii_email=ascii_email, created_at=now)
        .on_conflict_do_nothing(index_elements=[t.subscribers.c.email])
    )
    subscriber_id: str = connection.execute(
        select(t.subscribers.c.id).where(t.subscribers.c.email == email)
    ).scalar_one()
    s = t.subscriptions.c
    status = SubscriptionStatus.CONFIRMED if confirmed else SubscriptionStatus.PENDING
    changed: list[str] = []
    for consent in consents:
        if consent.newsletter_id in changed:
            continue
        current = connection.execute(
            select(s.status).where(
                s.subscriber_id == subscriber_id, s.newsletter_id == consent.newsletter_id
            )
        ).scalar_one_or_none()
        if current is None:
            connection.execute(
                t.subscriptions.insert().values(
                    subscriber_id=subscriber_id,
                    newsletter_id=consent.newsletter_id,
                    status=status.value,
                    changed_at=now,
                    created_at=now,
                    mark_at=now,
                )
            )
        elif current in _REVIVABLE:
            if not _set_status(connection, subscriber_id, consent.newsletter_id, status, now):
                _touch(connection, subscriber_id, consent.newsletter_id, now)
        else:
            continue
        changed.append(consent.newsletter_id)
        connection.execute(
            t.consents.insert().values(
                id=secrets.token_hex(16),
                subscriber_id=subscriber_id,
                newsletter_id=consent.newsletter_id,
                given_at=consent.given_at,
                source=consent.source,
                ip=consent.ip,
                text=consent.text,
                confirmed_at=now if confirmed else None,
            )
        )
    return subscriber_id, changed


def _touch(connection: Connection, subscriber_id: str, newsletter_id: str, now: datetime) -> None:
    """A pending sign-up asked for again: its expiry starts again."""
    s = t.subscriptions.c
    connection.execute(
        update(t.subscriptions)
        .where(s.subscriber_id == subscriber_id, s.newsletter_id == newsletter_id)
        .values(changed_at=now)
    )


def confirm_signup(connection: Connection, subscriber_id: str, now: datetime) -> list[str]:
    """See ``Signups.confirm_signup``."""
    s = t.subscriptions.c
    pending = list(
        connection.execute(
            select(s.newsletter_id)
            .where(s.subscriber_id == subscriber_id, s.status == PENDING)
            .order_by(s.newsletter_id)
        ).scalars()
    )
    for newsletter_id in pending:
        _set_status(connection, subscriber_id, newsletter_id, SubscriptionStatus.CONFIRMED, now)
    if pending:
        c = t.consents.c
        connection.execute(
            update(t.consents)
            .where(
                c.subscriber_id == subscriber_id,
                c.newsletter_id.in_(pending),
                c.confirmed_at.is_(None),
            )
            .values(confirmed_at=now)
        )
    return pending


def subscriptions_of(connection: Connection, subscriber_id: str) -> list[Subscription]:
    statement = subscriptions_query().where(t.subscriptions.c.subscriber_id == subscriber_id)
    rows = connection.execute(statement.order_by(t.subscriptions.c.newsletter_id))
    return [subscription_of(row) for row in rows]


def consents_of(connection: Connection, subscriber_id: str) -> list[Consent]:
    c = t.consents.c
    rows = connection.execute(
        select(t.consents)
        .where(c.subscriber_id == subscriber_id)
        .order_by(c.given_at, c.newsletter_id, c.id)
    )
    return [
        Consent(
            newsletter_id=row.newsletter_id,
            given_at=row.given_at,
            source=row.source,
            ip=row.ip,
            text=row.text,
            confirmed_at=row.confirmed_at,
        )
        for row in rows
    ]


def change_email(connection: Connection, subscriber_id: str, email: str, ascii_email: str) -> None:
    sub = t.subscribers.c
    taken = connection.execute(
        select(sub.id).where(sub.email == email, sub.id != subscriber_id)
    ).first()
    if taken is not None:
        raise AlreadyExists(f"another reader already has the address {email!r}")
    result = connection.execute(
        update(t.subscribers)
        .where(sub.id == subscriber_id)
        .values(email=email, ascii_email=ascii_email)
    )
    if result.rowcount != 1:
        raise NotFound(f"no subscriber with id {subscriber_id!r}")


def purge_pending(connection: Connection, before: datetime, limits_before: datetime) -> int:
    """See ``Signups.purge_pending``."""
    s, c = t.subscriptions.c, t.consents.c
    stale = connection.execute(
        select(s.subscriber_id, s.newsletter_id).where(s.status == PENDING, s.changed_at < before)
    ).all()
    for subscriber_id, newsletter_id in stale:
        connection.execute(
            delete(t.consents).where(
                c.subscriber_id == subscriber_id,
                c.newsletter_id == newsletter_id,
                c.confirmed_at.is_(None),
            )
        )
        connection.execute(
            delete(t.subscriptions).where(
                s.subscriber_id == subscriber_id, s.newsletter_id == newsletter_id
            )
        )
    readers = {subscriber_id for subscriber_id, _ in stale}
    if readers:
        sub = t.subscribers.c
        connection.execute(
            delete(t.subscribers).where(
                sub.id.in_(readers),
                ~exists().where(s.subscriber_id == sub.id),
                ~exists().where(t.deliveries.c.subscriber_id == sub.id),
                ~exists().where(c.subscriber_id == sub.id),
            )
        )
    connection.execute(delete(t.rate_limits).where(t.rate_limits.c.since < limits_before))
    return len(stale)
