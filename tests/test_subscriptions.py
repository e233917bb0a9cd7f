from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from digest import subscriptions
from digest.config import CadenceConfig, NewsletterConfig, ScheduleConfig, TopicConfig
from digest.errors import InvalidAddress, NotFound, Suppressed
from digest.models import Subscriber, Subscription, SubscriptionStatus
from digest.reader_csv import ReaderRow
from digest.store import SqlStore
from digest.subscriptions import (
    ImportDefaults,
    add_reader,
    add_subscriber,
    check_choices,
    effective_choices,
    import_csv,
    import_readers,
    normalize_address,
    remove_reader,
    suppression_key,
    unsubscribe,
)

from support.databases import migrated_engine

NOW = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
SECRET = b"s" * 32


def newsletter(
    ident: str, *, cadences: tuple[str, ...] = ("daily",), topics: str = ""
) -> NewsletterConfig:
    return NewsletterConfig(
        id=ident,
        title=ident.title(),
        description="",
        source_ids=("blog",),
        cadences=tuple(
            CadenceConfig(c, c.title(), ScheduleConfig(kind="daily", timezone="UTC"))
            for c in cadences
        ),
        topics=tuple(TopicConfig(t, t.title(), (t,)) for t in topics.split()),
    )


DAILY = newsletter("daily", cadences=("daily", "weekly"), topics="tech arts")
WEEKLY = newsletter("weekly")
NEWSLETTERS = {"daily": DAILY, "weekly": WEEKLY}


@pytest.fixture
def store(tmp_path: Path) -> SqlStore:
    with migrated_engine("sqlite", tmp_path) as engine:
        return SqlStore(engine)


def rows(*specs: tuple[str, ...]) -> list[ReaderRow]:
    """``(email, newsletters, cadence, topics, status)`` prefixes as rows from line 2 on."""
    made = []
    for line, spec in enumerate(specs, start=2):
        email, lists, cadence, topics, status = (*spec, "", "", "", "")[:5]
        made.append(
            ReaderRow(line, email, f"Reader {line}", tuple(lists.split()), cadence,
                      tuple(topics.split()) or None, status)
        )  # fmt: skip
    return made


def importing(
    store: SqlStore, *specs: tuple[str, ...], **defaults: object
) -> subscriptions.ImportReport:
    return import_readers(
        store,
        rows(*specs),
        defaults=ImportDefaults(**defaults),  # type: ignore[arg-type]
        newsletters=NEWSLETTERS,
        secret=SECRET,
        now=NOW,
    )


def chosen(store: SqlStore) -> dict[tuple[str, str], tuple[str | None, tuple[str, ...] | None]]:
    return {
        (s.subscriber.email, s.newsletter_id): (s.cadence, s.topics)
        for s in store.list_subscriptions()
    }


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
        store, "email\nANA@Example.net\nben@example.org\n", ["daily"], NEWSLETTERS, NOW,
        secret=SECRET,
    )  # fmt: skip
    assert (report.added, report.unchanged, report.errors) == (1, 1, [])
    assert (report.people, report.new_people) == (2, 1)
    statuses = {s.subscriber.email: s.status for s in store.list_subscriptions("daily")}
    assert statuses == {
        "ana@example.net": SubscriptionStatus.UNSUBSCRIBED,
        "ben@example.org": SubscriptionStatus.CONFIRMED,
    }


def test_import_reads_a_newsletters_column_and_reports_unknown_ones(store: SqlStore) -> None:
    text = "name,email,newsletters\nAna,ana@example.net,daily;weekly\nBen,ben@example.org,monthly\n"
    report = import_csv(store, text, [], NEWSLETTERS, NOW, secret=SECRET)
    assert (report.added, report.people) == (2, 1)
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


# --- choices: cadence and topics ------------------------------------------------------


def test_choices_are_stored_sorted_and_unknown_ids_are_named_with_the_allowed_ones() -> None:
    assert check_choices(DAILY, None, None) == (None, None)
    assert check_choices(DAILY, "weekly", ["tech", "tech"]) == ("weekly", ("tech",))
    assert check_choices(DAILY, "", ["tech", "arts"]) == (None, None)  # all of them
    with pytest.raises(
        NotFound, match=r"cadence 'hourly' of newsletter daily; it offers: daily, weekly"
    ):
        check_choices(DAILY, "hourly", None)
    with pytest.raises(NotFound, match=r"topic 'sport' of newsletter daily; it offers: tech, arts"):
        check_choices(DAILY, None, ["tech", "sport"])
    with pytest.raises(NotFound, match=r"it offers: no topics"):
        check_choices(WEEKLY, None, ["tech"])


def test_effective_choices_spell_the_defaults_out() -> None:
    reader = Subscriber("id", "ana@x.org", "ana@x.org", NOW)
    free = Subscription(reader, "daily", SubscriptionStatus.CONFIRMED, NOW)
    assert effective_choices(free, DAILY) == ("daily", ("tech", "arts"))
    picky = replace(free, cadence="weekly", topics=("gone", "tech"))
    assert effective_choices(picky, DAILY) == ("weekly", ("tech",))
    assert effective_choices(picky, None) == ("weekly", ("gone", "tech"))  # not configured now


def test_an_editor_adds_with_choices_and_changes_them_later(store: SqlStore) -> None:
    subscription, changed = add_reader(
        store, "Ana@Example.net", DAILY, cadence="weekly", topics=["tech"], secret=SECRET, now=NOW
    )
    assert changed
    assert (subscription.cadence, subscription.topics) == ("weekly", ("tech",))
    _, changed = add_reader(store, "ana@example.net", DAILY, secret=SECRET, now=NOW)
    assert not changed  # no choices given: the reader keeps theirs
    _, changed = add_reader(
        store, "ana@example.net", DAILY, topics=["arts"], secret=SECRET, now=NOW
    )
    assert changed
    assert chosen(store) == {("ana@example.net", "daily"): ("weekly", ("arts",))}
    with pytest.raises(NotFound, match="hourly"):
        add_reader(store, "ben@example.net", DAILY, cadence="hourly", secret=SECRET, now=NOW)
    assert store.find_subscription("ben@example.net", "daily") is None


def test_import_takes_choices_from_columns_else_from_the_defaults_and_names_bad_ones(
    store: SqlStore,
) -> None:
    report = importing(
        store,
        ("ana@x.org", "daily", "", "tech"),
        ("ben@x.org", "daily", "daily"),
        ("cy@x.org", "daily", "hourly"),
        ("dee@x.org", "weekly"),  # the default cadence is not one of weekly's
        ("eve@x.org", "daily", "", "sport"),
        newsletters=("daily",),
        cadence="weekly",
    )
    assert report.errors == [
        (4, "unknown cadence 'hourly' of newsletter daily; it offers: daily, weekly"),
        (5, "unknown cadence 'weekly' of newsletter weekly; it offers: daily"),
        (6, "unknown topic 'sport' of newsletter daily; it offers: tech, arts"),
    ]
    assert chosen(store) == {
        ("ana@x.org", "daily"): ("weekly", ("tech",)),
        ("ben@x.org", "daily"): ("daily", None),
    }
    [ana, _] = store.list_subscriptions()
    assert ana.subscriber.name == "Reader 2"


def test_import_counts_people_and_subscriptions_across_batches(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(subscriptions, "IMPORT_BATCH", 2)
    add_subscriber(store, "old@x.org", "daily", ["daily"], NOW)
    seen: list[int] = []
    report = import_readers(
        store,
        rows(
            ("old@x.org", "daily weekly"),
            ("new@x.org", "daily"),
            ("NEW@x.org", "daily weekly"),  # the same person again, one more subscription
            ("bad@", "daily"),
            ("gone@x.org", "daily", "", "", "unsubscribed"),
            ("cleaned@x.org", "daily", "", "", "cleaned"),
            ("yes@x.org", "daily", "", "", "subscribed"),
        ),
        defaults=ImportDefaults(),
        newsletters=NEWSLETTERS,
        secret=SECRET,
        now=NOW,
        progress=seen.append,
    )
    assert (report.rows, report.people, report.new_people) == (7, 3, 2)
    assert (report.added, report.unchanged) == (4, 2)
    assert [line for line, _ in report.errors] == [5]
    assert report.skipped == [
        (6, "status 'unsubscribed' in the file: not imported"),
        (7, "status 'cleaned' in the file: not imported"),
    ]
    assert seen[-1] == 7
    assert seen == sorted(seen)
    assert len(seen) > 1


# --- removal and suppression ----------------------------------------------------------


def test_the_suppression_key_is_keyed_by_the_site_secret() -> None:
    key = suppression_key(SECRET, "ana@x.org")
    assert len(key) == 64
    assert "ana" not in key
    assert key == suppression_key(SECRET, "ana@x.org")
    assert key != suppression_key(b"t" * 32, "ana@x.org")
    assert key != suppression_key(SECRET, "ben@x.org")


def test_a_removed_reader_is_refused_by_add_and_skipped_by_import(store: SqlStore) -> None:
    add_reader(store, "ana@x.org", DAILY, secret=SECRET, now=NOW)
    removal = remove_reader(store, "  ANA@x.org ", secret=SECRET, now=NOW + timedelta(days=1))
    assert (removal.found, removal.subscriptions) == (True, 1)
    assert store.list_subscriptions() == []
    with pytest.raises(Suppressed, match=r"ana@x\.org is suppressed \(removed on 2026-11-28\)"):
        add_reader(store, "Ana@X.org", DAILY, secret=SECRET, now=NOW)
    report = importing(store, ("ben@x.org", "daily"), ("Ana@x.org", "daily weekly"))
    assert report.suppressed == [(3, "ana@x.org", NOW + timedelta(days=1))]
    assert (report.people, report.added) == (1, 1)
    assert [s.subscriber.email for s in store.list_subscriptions()] == ["ben@x.org"]
    with pytest.raises(InvalidAddress):
        remove_reader(store, "not an address", secret=SECRET, now=NOW)
