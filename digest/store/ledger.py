"""Queries of the deliveries ledger: batch claims under a lease, fenced group records.

Functions take an open connection inside a transaction; ``SqlStore`` owns the
transactions. A claim takes up to ``limit`` rows in one transaction (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already serializes writers) and
stamps them with the sender's ``owner`` name and lease. Outcomes are written only where
that owner still holds the row, so a sender whose lease was taken over cannot overwrite
the new owner's result.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Select,
    and_,
    func,
    select,
    text,
    update,
)

from digest.models import (
    Claimed,
    ClaimedRow,
    Delivery,
    DeliveryStatus,
    EditionStatus,
    Outcome,
    Quota,
    SubscriptionStatus,
)
from digest.store import tables as t
from digest.store.engine import placeholder

d = t.deliveries
PENDING = DeliveryStatus.PENDING.value
SENDING = DeliveryStatus.SENDING.value
DEFERRED = DeliveryStatus.DEFERRED.value
UNCERTAIN = DeliveryStatus.UNCERTAIN.value
LEFT_REPLY = {
    SubscriptionStatus.UNSUBSCRIBED.value: "not sent: the reader unsubscribed before their turn",
    SubscriptionStatus.BOUNCED.value: "not sent: the address bounced earlier",
    SubscriptionStatus.PENDING.value: "not sent: the subscription is not confirmed",
}


QUOTA_LOCK_KEY = 0x6469676573747174  # "digestqt": serializes quota checks on PostgreSQL


def claim_batch(
    connection: Connection,
    *,
    edition_id: str,
    owner: str,
    now: datetime,
    lease_until: datetime,
    limit: int,
    quotas: Sequence[Quota] = (),
) -> Claimed:
    """Take up to ``limit`` rows for ``owner``; see ``digest.ports.Ledger.claim_batch``.

    Only while the edition is ``sending``. Rows come pending first, then deferred and
    uncertain ones whose retry time has come, then ``sending`` rows whose lease ran out
    (their sender died). The last two kinds are marked ``duplicate``: the reader may
    already have the message. Readers who left or bounced are recorded ``suppressed``.
    Each quota caps the batch at what its window has left: messages sent in the window
    and rows held by any sender count as used, so processes and restarts share it.
    """
    status = connection.execute(
        select(t.editions.c.status, t.editions.c.newsletter_id).where(t.editions.c.id == edition_id)
    ).one_or_none()
    if status is None or status.status != EditionStatus.SENDING.value:
        return Claimed([], 0)
    if quotas:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": QUOTA_LOCK_KEY})
        holding = _count(connection, d.c.status == SENDING)
        for quota in quotas:
            left = quota.limit - sent_since(connection, quota.since) - holding
            if left < limit:
                limit = max(0, left)
                if limit == 0:
                    return Claimed([], 0, blocked_by=quota.window)
    kinds: list[tuple[ColumnElement[bool], bool]] = [
        (d.c.status == PENDING, False),
        ((d.c.status == DEFERRED) & (d.c.not_before <= now), False),
        ((d.c.status == UNCERTAIN) & ~d.c.duplicate & (d.c.not_before <= now), True),
        ((d.c.status == SENDING) & (d.c.lease_until < now), True),
    ]
    claimed: list[ClaimedRow] = []
    suppressed = 0
    for where, duplicate in kinds:
        wanted = limit - len(claimed)
        if wanted <= 0:
            break
        rows = connection.execute(
            _candidates(status.newsletter_id, edition_id, where, wanted, connection)
        ).all()
        if not rows:
            continue
        gone = [row for row in rows if row.subscription != SubscriptionStatus.CONFIRMED.value]
        for reason, group in _by_reason(gone).items():
            connection.execute(
                update(d)
                .where(d.c.edition_id == edition_id, d.c.subscriber_id.in_(group))
                .values(
                    status=DeliveryStatus.SUPPRESSED.value,
                    reply=reason,
                    updated_at=now,
                    owner=None,
                    lease_until=None,
                )
            )
        suppressed += len(gone)
        taking = [row for row in rows if row.subscription == SubscriptionStatus.CONFIRMED.value]
        if not taking:
            continue
        values: dict[str, Any] = {"status": SENDING, "owner": owner, "lease_until": lease_until}
        if duplicate:
            values["duplicate"] = True
        connection.execute(
            update(d)
            .where(
                d.c.edition_id == edition_id,
                d.c.subscriber_id.in_([row.subscriber_id for row in taking]),
            )
            .values(**values)
        )
        claimed.extend(
            ClaimedRow(
                subscriber_id=row.subscriber_id,
                email=row.email,
                message_id=row.message_id,
                attempts=row.attempts,
                duplicate=duplicate or row.duplicate,
                variant=row.variant,
            )
            for row in taking
        )
    return Claimed(claimed, suppressed)


def _count(connection: Connection, where: ColumnElement[bool]) -> int:
    return int(connection.execute(select(func.count()).select_from(d).where(where)).scalar_one())


def _candidates(
    newsletter_id: str,
    edition_id: str,
    where: ColumnElement[bool],
    limit: int,
    connection: Connection,
) -> Select[Any]:
    subscription = (
        select(t.subscriptions.c.status)
        .where(
            t.subscriptions.c.subscriber_id == d.c.subscriber_id,
            t.subscriptions.c.newsletter_id == newsletter_id,
        )
        .scalar_subquery()
        .label("subscription")
    )
    statement = (
        select(
            d.c.subscriber_id,
            d.c.email,
            d.c.message_id,
            d.c.attempts,
            d.c.duplicate,
            d.c.variant,
            subscription,
        )
        .where(d.c.edition_id == edition_id, where)
        .limit(limit)
    )
    if connection.dialect.name == "postgresql":
        statement = statement.with_for_update(skip_locked=True, of=d)
    return statement


def _by_reason(rows: Sequence[Row[Any]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for row in rows:
        reason = LEFT_REPLY.get(row.subscription or "", "not sent: no subscription")
        grouped.setdefault(reason, []).append(row.subscriber_id)
    return grouped


# The hot statement of the ledger, run for every message: executed through the driver
# with plain tuples, so no per-row SQL compilation or type processing holds the GIL that
# the event loop needs. Column for column it is the Core UPDATE this would otherwise be.
_RECORD_SQL = (
    "UPDATE deliveries SET status = {p}, reply = {p}, attempts = attempts + {p},"
    " updated_at = {p}, not_before = {p}, owner = NULL, lease_until = NULL"
    " WHERE edition_id = {p} AND subscriber_id = {p} AND owner = {p} AND status = 'sending'"
)
# PostgreSQL: one statement and one round trip for the whole batch.
_RECORD_VALUES_SQL = (
    "UPDATE deliveries AS d SET status = v.status, reply = v.reply,"
    " attempts = d.attempts + v.counted, updated_at = %s, not_before = v.retry,"
    " owner = NULL, lease_until = NULL"
    " FROM (VALUES {rows}) AS v (subscriber_id, status, reply, counted, retry)"
    " WHERE d.edition_id = %s AND d.subscriber_id = v.subscriber_id AND d.owner = %s"
    " AND d.status = 'sending'"
)
_VALUES_ROW = "(%s, %s, %s, %s::integer, %s::timestamptz)"


def record_batch(
    connection: Connection,
    *,
    edition_id: str,
    owner: str,
    outcomes: Sequence[Outcome],
    now: datetime,
) -> int:
    """Write ``outcomes`` where ``owner`` still holds the rows; returns how many were written.

    A ``failed`` outcome (5xx for the address) also marks the reader ``bounced`` in every
    newsletter, so no edition mails the address again.
    """
    if not outcomes:
        return 0
    for outcome in outcomes:  # what the driver would refuse, refused here with a clear error
        if outcome.retry_at is not None and outcome.retry_at.utcoffset() is None:
            raise ValueError(f"retry_at {outcome.retry_at.isoformat()} is naive: pass aware UTC")
    if connection.dialect.name == "postgresql":
        values = [
            item
            for o in outcomes
            for item in (
                o.subscriber_id,
                o.status.value,
                o.reply,
                1 if o.count_attempt else 0,
                o.retry_at,
            )
        ]
        sql = _RECORD_VALUES_SQL.format(rows=", ".join([_VALUES_ROW] * len(outcomes)))
        written = connection.exec_driver_sql(sql, (now, *values, edition_id, owner)).rowcount
    else:
        written = _record_each(connection, edition_id, owner, outcomes, now)
    _bounce(connection, edition_id, outcomes, now)
    return int(written)


def _record_each(
    connection: Connection,
    edition_id: str,
    owner: str,
    outcomes: Sequence[Outcome],
    now: datetime,
) -> int:
    statement = _RECORD_SQL.format(p=placeholder(connection))
    stamp = t.utc_for_driver(connection.dialect, now)
    rows = [
        (
            outcome.status.value,
            outcome.reply,
            1 if outcome.count_attempt else 0,
            stamp,
            t.utc_for_driver(connection.dialect, outcome.retry_at),
            edition_id,
            outcome.subscriber_id,
            owner,
        )
        for outcome in outcomes
    ]
    return int(connection.exec_driver_sql(statement, rows).rowcount)


def _bounce(
    connection: Connection, edition_id: str, outcomes: Sequence[Outcome], now: datetime
) -> None:
    bounced = [o.subscriber_id for o in outcomes if o.status is DeliveryStatus.FAILED]
    if bounced:
        written = select(d.c.subscriber_id).where(  # a fenced-off failure bounces nobody
            d.c.edition_id == edition_id,
            d.c.subscriber_id.in_(bounced),
            d.c.status == DeliveryStatus.FAILED.value,
            d.c.updated_at == now,
        )
        connection.execute(
            update(t.subscriptions)
            .where(
                t.subscriptions.c.subscriber_id.in_(written),
                t.subscriptions.c.status == SubscriptionStatus.CONFIRMED.value,
            )
            .values(status=SubscriptionStatus.BOUNCED.value, changed_at=now)
        )


def renew_leases(
    connection: Connection, *, edition_id: str, owner: str, lease_until: datetime
) -> int:
    """Extend every lease ``owner`` holds on the edition; returns how many rows it holds."""
    return int(
        connection.execute(
            update(d)
            .where(d.c.edition_id == edition_id, d.c.status == SENDING, d.c.owner == owner)
            .values(lease_until=lease_until)
        ).rowcount
    )


def sent_since(connection: Connection, since: datetime) -> int:
    """Messages handed to the relay since ``since``, by any sender (for per-day quotas)."""
    return int(
        connection.execute(
            select(func.count()).where(
                d.c.status == DeliveryStatus.SENT.value, d.c.updated_at > since
            )
        ).scalar_one()
    )


def cancel_unsent(connection: Connection, edition_id: str, now: datetime) -> int:
    """Cancel every pending or deferred row; returns how many (uncertain rows stay so)."""
    return int(
        connection.execute(
            update(d)
            .where(d.c.edition_id == edition_id, d.c.status.in_([PENDING, DEFERRED]))
            .values(
                status=DeliveryStatus.CANCELLED.value,
                reply="not sent: the edition was cancelled",
                updated_at=now,
            )
        ).rowcount
    )


def reopen(connection: Connection, edition_id: str, statuses: Sequence[DeliveryStatus]) -> int:
    """Make rows in ``statuses`` pending again for a resend; returns how many.

    Their readers' bounced subscriptions (in every newsletter) are confirmed again: the
    operator judged the failure not to be the address's. An uncertain row resent is a
    possible duplicate.
    """
    values = [status.value for status in statuses]
    chosen = and_(d.c.edition_id == edition_id, d.c.status.in_(values))
    if DeliveryStatus.FAILED in statuses:
        connection.execute(  # undone everywhere, as the bounce was made everywhere
            update(t.subscriptions)
            .where(
                t.subscriptions.c.status == SubscriptionStatus.BOUNCED.value,
                t.subscriptions.c.subscriber_id.in_(
                    select(d.c.subscriber_id).where(
                        d.c.edition_id == edition_id, d.c.status == DeliveryStatus.FAILED.value
                    )
                ),
            )
            .values(status=SubscriptionStatus.CONFIRMED.value)
        )
    if DeliveryStatus.UNCERTAIN in statuses:
        connection.execute(update(d).where(chosen, d.c.status == UNCERTAIN).values(duplicate=True))
    return int(
        connection.execute(
            update(d)
            .where(chosen)
            .values(status=PENDING, attempts=0, not_before=None, owner=None, lease_until=None)
        ).rowcount
    )


def page(
    connection: Connection,
    edition_id: str,
    *,
    after: tuple[str, str] | None,
    size: int,
    status: DeliveryStatus | None = None,
    email: str | None = None,
) -> list[Delivery]:
    """One page of the edition's rows by (email, subscriber id), after the key ``after``."""
    statement = select(d).where(d.c.edition_id == edition_id)
    if status is not None:
        statement = statement.where(d.c.status == status.value)
    if email:
        # autoescape: a % or _ in the text is matched as itself, not as a wildcard.
        statement = statement.where(func.lower(d.c.email).contains(email.lower(), autoescape=True))
    if after is not None:
        statement = statement.where(
            (d.c.email > after[0]) | ((d.c.email == after[0]) & (d.c.subscriber_id > after[1]))
        )
    statement = statement.order_by(d.c.email, d.c.subscriber_id).limit(size)
    return [_delivery(row) for row in connection.execute(statement)]


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
        duplicate=bool(row.duplicate),
    )
