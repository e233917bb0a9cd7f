"""The ledger's claim contract (part of the Store contract), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from digest.models import Claim, Delivery, DeliveryStatus, EditionStatus, SendResult
from digest.models import SubscriptionStatus as Sub
from digest.store import SqlStore

from support.databases import BACKENDS, migrated_engine

NOW = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
LEASE = timedelta(minutes=15)


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with migrated_engine(str(request.param), tmp_path) as engine:
        yield engine


@pytest.fixture
def ledger(engine: Engine) -> tuple[SqlStore, str, str]:
    """A store with one edition and one pending delivery: (store, edition id, reader id)."""
    store = SqlStore(engine)
    subscription, _ = store.add_subscription(
        email="ana@example.net",
        ascii_email="ana@example.net",
        newsletter_id="daily",
        status=Sub.CONFIRMED,
        now=NOW,
    )
    edition = store.create_edition(
        newsletter_id="daily", period_key="p", now=NOW, post_keys=[], status=EditionStatus.SENDING
    )
    assert edition is not None
    reader = subscription.subscriber.id
    store.add_deliveries(
        [Delivery(edition.id, reader, "ana@example.net", "<m@x>", DeliveryStatus.PENDING)]
    )
    return store, edition.id, reader


def status(store: SqlStore, edition_id: str) -> DeliveryStatus:
    [row] = store.list_deliveries(edition_id)
    return row.status


def test_only_one_claim_wins(ledger: tuple[SqlStore, str, str]) -> None:
    store, edition, reader = ledger
    assert store.claim_delivery(edition, reader, "daily", NOW, NOW - LEASE) is Claim.CLAIMED
    assert status(store, edition) is DeliveryStatus.SENDING
    assert store.claim_delivery(edition, reader, "daily", NOW, NOW - LEASE) is Claim.TAKEN
    assert [row.subscriber_id for row in store.unfinished_deliveries(edition)] == [reader]


def test_racing_claims_from_many_threads(ledger: tuple[SqlStore, str, str]) -> None:
    store, edition, reader = ledger
    with ThreadPoolExecutor(8) as pool:
        claims = list(
            pool.map(
                lambda _: store.claim_delivery(edition, reader, "daily", NOW, NOW - LEASE),
                range(8),
            )
        )
    assert claims.count(Claim.CLAIMED) == 1


def test_a_stale_claim_is_taken_over(ledger: tuple[SqlStore, str, str]) -> None:
    store, edition, reader = ledger
    store.claim_delivery(edition, reader, "daily", NOW, NOW - LEASE)
    soon = NOW + LEASE / 2
    assert store.claim_delivery(edition, reader, "daily", soon, soon - LEASE) is Claim.TAKEN
    later = NOW + LEASE + timedelta(seconds=1)
    assert store.claim_delivery(edition, reader, "daily", later, later - LEASE) is Claim.CLAIMED


def test_release_and_final_rows(ledger: tuple[SqlStore, str, str]) -> None:
    store, edition, reader = ledger
    store.claim_delivery(edition, reader, "daily", NOW, NOW - LEASE)
    store.release_delivery(edition, reader)
    assert status(store, edition) is DeliveryStatus.PENDING
    store.claim_delivery(edition, reader, "daily", NOW, NOW - LEASE)
    store.record_delivery(edition, reader, SendResult(DeliveryStatus.SENT, "250 ok"), NOW)
    assert store.claim_delivery(edition, reader, "daily", NOW, NOW + LEASE) is Claim.TAKEN
    # A late answer from a sender whose lease was taken over cannot undo a final status.
    store.record_delivery(edition, reader, SendResult(DeliveryStatus.DEFERRED, "451"), NOW)
    assert status(store, edition) is DeliveryStatus.SENT
    [row] = store.list_deliveries(edition)
    assert row.attempts == 1


def test_a_reader_who_left_is_suppressed_at_claim(ledger: tuple[SqlStore, str, str]) -> None:
    store, edition, reader = ledger
    store.set_subscription_status(reader, "daily", Sub.UNSUBSCRIBED, NOW)
    assert store.claim_delivery(edition, reader, "daily", NOW, NOW - LEASE) is Claim.LEFT
    [row] = store.list_deliveries(edition)
    assert row.status is DeliveryStatus.SUPPRESSED
    assert row.reply == "unsubscribed before sending"
    assert store.unfinished_deliveries(edition) == []
