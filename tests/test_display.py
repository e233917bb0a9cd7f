"""Short ids, times, counts and JSON values as the command line shows them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from digest import display
from digest.models import DeliveryStatus, EditionStatus

PRAGUE = ZoneInfo("Europe/Prague")


def test_ids_are_shortened_to_at_least_eight_characters_when_nothing_else_is_near() -> None:
    ids = ["5a3655250000aaaa", "298f1b75ffff0000"]
    assert display.unique_prefixes(ids) == {
        "5a3655250000aaaa": "5a365525",
        "298f1b75ffff0000": "298f1b75",
    }


def test_ids_sharing_a_long_prefix_get_one_character_more_than_they_share() -> None:
    shown = display.unique_prefixes(["deadbeef01x", "deadbeef02y", "cafe0000zz"])
    assert shown == {
        "deadbeef01x": "deadbeef01",
        "deadbeef02y": "deadbeef02",
        "cafe0000zz": "cafe0000",
    }


def test_a_prefix_is_unique_among_ids_not_shown_too() -> None:
    shown = display.unique_prefixes(["abcdefgh1"], among=["abcdefgh2", "zzz"])
    assert shown == {"abcdefgh1": "abcdefgh1"}
    assert display.unique_prefixes([]) == {}
    assert display.unique_prefixes(["short"]) == {"short": "short"}


def test_every_shortened_id_matches_back_to_itself_only() -> None:
    ids = [f"{n:08x}{n % 7:024x}" for n in range(0, 5000, 3)] + ["0000000300", "00000003"]
    for full, prefix in display.unique_prefixes(ids).items():
        assert display.match(prefix, ids).one == full


def test_a_match_is_the_only_id_with_the_prefix_or_one_spelled_in_full() -> None:
    ids = ["abc123", "abd456", "ab"]
    assert display.match("abc", ids).one == "abc123"
    assert display.match("ab", ids) == display.Match("ab", ("ab", "abc123", "abd456"))
    assert display.match("ab", ids).one == "ab"  # the whole id, though others start with it
    assert display.match("a", ids).one is None
    assert display.match("a", ids).found == ("ab", "abc123", "abd456")
    assert display.match("", ids).found == ()
    assert display.match("zz", ids).one is None


def test_times_for_people_are_local_and_for_machines_exact_utc() -> None:
    moment = datetime(2026, 12, 1, 14, 5, 3, 120, tzinfo=UTC)
    assert display.local_time(moment, PRAGUE) == "2026-12-01 15:05"
    assert display.local_time(moment, PRAGUE, with_zone=True) == "2026-12-01 15:05 CET"
    assert display.local_and_utc(moment, PRAGUE) == "2026-12-01 15:05 CET (14:05 UTC)"
    late = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)
    assert display.local_and_utc(late, PRAGUE) == "2026-12-02 00:30 CET (2026-12-01 23:30 UTC)"
    assert display.local_and_utc(moment, ZoneInfo("UTC")) == "2026-12-01 14:05 UTC"
    assert display.iso_utc(moment.astimezone(PRAGUE)) == "2026-12-01T14:05:03.000120+00:00"
    assert display.iso_utc(None) is None
    assert display.local_time(None, PRAGUE) == display.local_and_utc(None, PRAGUE) == "-"


@pytest.mark.parametrize(
    ("seconds", "shown"), [(-5, "now"), (59, "now"), (60, "1m"), (7_199, "1h"), (86_400, "1d")]
)
def test_an_age_is_one_unit(seconds: int, shown: str) -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    assert display.age(datetime.fromtimestamp(now.timestamp() - seconds, UTC), now) == shown
    assert display.age(None, now) == "-"


def test_counts_are_words_in_the_statuses_order_without_zeros() -> None:
    numbers = {
        DeliveryStatus.FAILED: 1,
        DeliveryStatus.SENT: 3,
        DeliveryStatus.PENDING: 0,
        DeliveryStatus.DEFERRED: 2,
    }
    assert display.counts(numbers) == "sent: 3, deferred: 2, failed: 1"
    assert display.counts(numbers, skip=[DeliveryStatus.SENT]) == "deferred: 2, failed: 1"
    assert display.counts({}) == ""


def test_plain_values_are_json_with_words_and_exact_times() -> None:
    moment = datetime(2026, 12, 1, 15, 5, tzinfo=PRAGUE)
    value = {
        "status": EditionStatus.SENT,
        "at": moment,
        "counts": {DeliveryStatus.SENT: 2},
        "keys": ("a", "b"),
        "path": Path("/tmp/x"),
        "none": None,
        "flag": True,
    }
    assert json.loads(json.dumps(display.plain(value))) == {
        "status": "sent",
        "at": "2026-12-01T14:05:00+00:00",
        "counts": {"sent": 2},
        "keys": ["a", "b"],
        "path": "/tmp/x",
        "none": None,
        "flag": True,
    }
    with pytest.raises(TypeError, match="object"):
        display.plain(object())
