from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.errors import InvalidAddress, NotFound
from digest.models import SubscriptionStatus
from digest.store import SqlStore
from digest.subscriptions import add_subscriber, import_csv, normalize_address, unsubscribe

from support.databases import migrated_engine

NOW = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> SqlStore:
    with migrated_engine("sqlite", tmp_path) as engine:
        return SqlStore(engine)


def test_normalize_lowercases_and_uses_a_labels() -> None:
    assert normalize_address("  Ana.Novak@Example.ORG ") == (
        "ana.novak@example.org",
        "ana.novak@example.org",
    )
    assert normalize_address("reader@bücher.example") == (
        "reader@bücher.example",
        "reader@xn--bcher-kva.example",
    )


@pytest.mark.parametrize("raw", ["nobody", "a@@b.org", "ana@example", "jöran@example.org"])
def test_unusable_addresses_are_named(raw: str) -> None:
    with pytest.raises(InvalidAddress, match=raw):
        normalize_address(raw)


def test_import_never_revives_an_unsubscribe_whatever_the_case(store: SqlStore) -> None:
    subscription, _ = add_subscriber(store, "ana@example.net", "daily", ["daily"], NOW)
    unsubscribe(store, subscription.subscriber.id, "daily", NOW)
    report = import_csv(
        store, "email\nANA@Example.net\nben@example.org\n", ["daily"], ["daily"], NOW
    )
    assert (report.added, report.unchanged, report.errors) == (1, 1, [])
    statuses = {s.subscriber.email: s.status for s in store.list_subscriptions("daily")}
    assert statuses == {
        "ana@example.net": SubscriptionStatus.UNSUBSCRIBED,
        "ben@example.org": SubscriptionStatus.CONFIRMED,
    }


def test_import_reads_a_newsletters_column_and_reports_unknown_ones(store: SqlStore) -> None:
    text = "name,email,newsletters\nAna,ana@example.net,daily;weekly\nBen,ben@example.org,monthly\n"
    report = import_csv(store, text, [], ["daily", "weekly"], NOW)
    assert report.added == 2
    assert report.errors == [
        (3, "unknown newsletter 'monthly'; the config declares: daily, weekly")
    ]


def test_editor_add_revives_an_unsubscribe(store: SqlStore) -> None:
    subscription, _ = add_subscriber(store, "ana@example.net", "daily", ["daily"], NOW)
    unsubscribe(store, subscription.subscriber.id, "daily", NOW)
    _, changed = add_subscriber(store, "Ana@example.net", "daily", ["daily"], NOW)
    assert changed
    [again] = store.list_subscriptions("daily")
    assert again.status is SubscriptionStatus.CONFIRMED
    with pytest.raises(NotFound, match="weekly"):
        add_subscriber(store, "ana@example.net", "weekly", ["daily"], NOW)
