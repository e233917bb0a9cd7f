"""digest.scheduler as `digest run` drives it, through the app, with an injected clock.

Every firing goes through ``DigestScheduler.fire_newsletter`` and ``App.run_newsletter``
(fetch, open once, send to the outbox) at the instants APScheduler would fire: see
``support.schedule``. Schedules are in Europe/Berlin and America/New_York.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

from digest.models import EditionStatus
from digest.store import tables

from support.databases import BACKENDS, database_url
from support.schedule import Newsroom

READERS = ("ana@example.net", "ben@example.org")
SECRET = b"k" * 32

# The DST changes of 2099 (the same days as in 2026): spring forward, then fall back.
TRANSITIONS = [
    pytest.param("Europe/Berlin", date(2099, 3, 29), id="berlin-spring"),
    pytest.param("Europe/Berlin", date(2099, 10, 25), id="berlin-fall"),
    pytest.param("America/New_York", date(2099, 3, 8), id="newyork-spring"),
    pytest.param("America/New_York", date(2099, 11, 1), id="newyork-fall"),
]


def local(day: date, at: str, zone: str) -> datetime:
    """A wall-clock time in ``zone`` as aware UTC (fold=0: the first of a repeated hour)."""
    hour, minute = (int(part) for part in at.split(":"))
    return datetime.combine(day, time(hour, minute), ZoneInfo(zone)).astimezone(UTC)


def schedule(at: str, zone: str) -> str:
    return f'[newsletters.daily.schedule]\ndaily = "{at}"\ntimezone = "{zone}"\n'


def each_once(readers: tuple[str, ...], names: list[str]) -> Counter[tuple[str, str]]:
    return Counter({(reader, name): 1 for reader in readers for name in names})


# --- DST in the schedule's own zone ------------------------------------------------------


@pytest.mark.parametrize(("zone", "change"), TRANSITIONS)
@pytest.mark.parametrize("at", ["01:30", "02:30", "07:00"])
async def test_a_daily_slot_sends_one_edition_a_day_across_a_dst_change(
    tmp_path: Path, zone: str, change: date, at: str
) -> None:
    days = [change - timedelta(days=1), change, change + timedelta(days=1)]
    async with Newsroom(tmp_path, schedule(at, zone), local(days[0], "00:00", zone)) as newsroom:
        newsroom.subscribe(*READERS)
        process = newsroom.start()
        newsroom.publish("before", newsroom.clock())
        names = ["before"]
        for day in days:  # a post at noon each day: it goes in the next day's edition
            await process.advance(local(day, "12:00", zone))
            names.append(f"noon-{day:%d}")
            newsroom.publish(names[-1], newsroom.clock())
        await process.advance(local(days[-1], "23:59", zone))
        process.stop()

        hour, minute = (int(part) for part in at.split(":"))
        gap = newsroom.editions()[1].created_at.astimezone(ZoneInfo(zone)).hour != hour
        # A slot in the spring-forward gap goes at the first instant after it, an hour later.
        expected = [f"daily@{day}T{at}" for day in days]
        if change.month == 3 and at == "02:30":
            expected[1] = f"daily@{change}T03:30"
        assert gap == (change.month == 3 and at == "02:30")
        assert newsroom.sent_keys() == expected
        assert len(newsroom.editions()) == 3  # a fold's second firing opens nothing
        for edition in newsroom.editions():
            assert edition.created_at.astimezone(ZoneInfo(zone)).minute == minute
        # In a fold the edition goes at the first of the two firings (still summer time).
        if change.month != 3 and (zone, at) in {
            ("Europe/Berlin", "02:30"),
            ("America/New_York", "01:30"),
        }:
            assert newsroom.editions()[1].created_at == local(change, at, zone)
        assert newsroom.received() == each_once(READERS, names[:-1])  # the last waits for tomorrow


# --- a reader's own time zone across a DST change -------------------------------------------


async def test_readers_get_one_digest_a_local_day_at_their_own_time_across_dst(
    tmp_path: Path,
) -> None:
    # Berlin falls back on 25 October (02:30 happens twice); New York keeps its time.
    days = [date(2099, 10, 24), date(2099, 10, 25), date(2099, 10, 26)]
    own_zone = (
        '[newsletters.daily.schedule]\ndaily = "02:30"\ntimezone = "America/New_York"\n'
        "reader_timezone = true\n"
    )
    start = local(days[0], "00:00", "Europe/Berlin")
    async with Newsroom(tmp_path, own_zone, start) as newsroom:
        berlin, _ = newsroom.subscribe("berlin@example.net", "nozone@example.org")
        with newsroom.app.store.engine.begin() as connection:  # nothing sets it yet but SQL
            connection.execute(
                update(tables.subscribers)
                .where(tables.subscribers.c.id == berlin)
                .values(timezone="Europe/Berlin")
            )
        times = {
            "berlin@example.net": [local(day, "02:30", "Europe/Berlin") for day in days],
            "nozone@example.org": [local(day, "02:30", "America/New_York") for day in days],
        }

        def near_a_readers_time(when: datetime) -> bool:  # the fold's second 02:30 too
            return any(
                timedelta(minutes=-15) <= when - at <= timedelta(minutes=75)
                for ats in times.values()
                for at in ats
            )

        process = newsroom.start()
        names = []
        for day in days:
            names.append(f"news-{day:%d}")
            newsroom.publish(names[-1], newsroom.clock())
            await process.advance(local(day, "23:45", "Europe/Berlin"), only=near_a_readers_time)
        process.stop()

        sent_at: dict[str, list[datetime]] = {reader: [] for reader in times}
        for edition in newsroom.editions():
            for row in newsroom.app.store.list_deliveries(edition.id):
                sent_at[row.email].append(edition.created_at)
        assert sent_at == times
        assert newsroom.received() == each_once(tuple(times), names)


# --- a post published just before, at and just after a fire time ---------------------------


async def test_posts_around_a_fire_time_each_reach_each_reader_once(tmp_path: Path) -> None:
    zone = "Europe/Berlin"
    day = date(2099, 11, 26)
    fire = local(day, "07:00", zone)
    async with Newsroom(tmp_path, schedule("07:00", zone), fire - timedelta(hours=2)) as newsroom:
        newsroom.subscribe(*READERS)
        process = newsroom.start()
        await process.advance(fire - timedelta(minutes=10))
        newsroom.publish("future-dated", fire + timedelta(seconds=1))  # known early, dated later
        await process.poll()
        await process.advance(fire - timedelta(seconds=1))
        newsroom.publish("second-before", newsroom.clock())
        await process.poll()
        await process.advance(fire - timedelta(microseconds=1))
        newsroom.publish("at-the-fire-time", fire)  # there when the firing fetches
        await process.advance(fire)
        assert newsroom.received() == each_once(READERS, ["second-before", "at-the-fire-time"])

        await process.advance(fire + timedelta(seconds=1))
        newsroom.publish("second-after", newsroom.clock())
        await process.poll()
        await process.advance(fire + timedelta(minutes=5))
        # Dated a second before the fire time, but only seen now (a feed that lags).
        newsroom.publish("seen-late", fire - timedelta(seconds=1))
        await process.poll()
        await process.advance(fire + timedelta(days=1, minutes=1))
        process.stop()

        everything = [
            "second-before",
            "at-the-fire-time",
            "future-dated",
            "second-after",
            "seen-late",
        ]
        assert newsroom.received() == each_once(READERS, everything)
        assert newsroom.sent_keys() == [
            f"daily@{day}T07:00",
            f"daily@{day + timedelta(days=1)}T07:00",
        ]


# --- more posts at once than max_items -------------------------------------------------------


async def test_posts_seen_in_one_fetch_beyond_max_items_carry_over_and_none_is_lost(
    tmp_path: Path,
) -> None:
    zone = "Europe/Berlin"
    day = date(2099, 11, 26)
    async with Newsroom(
        tmp_path, schedule("07:00", zone), local(day, "00:00", zone), max_items=2
    ) as newsroom:
        newsroom.subscribe(*READERS)
        newsroom.publish("seed", newsroom.clock())
        process = newsroom.start()
        await process.poll()  # the source's first fetch: its back catalogue is the seed
        names = [f"post-{n}" for n in range(5)]
        for number, name in enumerate(names):  # published overnight, first seen together
            newsroom.publish(name, local(day, "01:00", zone) + timedelta(minutes=number))
        await process.advance(local(day, "08:00", zone))
        first = newsroom.received()
        assert sorted(first.values()) == [1] * 4  # two posts each, the same two
        assert len({name for _, name in first}) == 2
        await process.advance(local(day + timedelta(days=2), "08:00", zone))
        process.stop()
        assert newsroom.received() == each_once(READERS, names)  # the rest in two editions


# --- readers switching cadence and topics between editions --------------------------------

CADENCES_AND_TOPICS = """
[newsletters.daily.cadences.daily]
title = "Every morning"
daily = "07:00"
timezone = "Europe/Berlin"

[newsletters.daily.cadences.weekly]
title = "Monday mornings"
weekly = "mon 07:00"
timezone = "Europe/Berlin"

[newsletters.daily.topics.europe]
title = "Europe"
categories = ["Europe"]

[newsletters.daily.topics.asia]
title = "Asia"
categories = ["Asia"]
"""


async def test_cadence_and_topic_switches_between_editions_lose_and_repeat_nothing(
    tmp_path: Path,
) -> None:
    zone = "Europe/Berlin"
    sunday = date(2099, 3, 1)  # the Sunday before Monday 2 March
    async with Newsroom(tmp_path, CADENCES_AND_TOPICS, local(sunday, "00:00", zone)) as newsroom:
        ana, ben, cy = newsroom.subscribe("ana@example.net", "ben@example.org", "cy@example.com")
        store, now = newsroom.app.store, newsroom.clock
        store.set_preferences(ben, "daily", cadence="daily", topics=["europe"], now=now())
        store.set_preferences(cy, "daily", cadence="weekly", topics=None, now=now())
        process = newsroom.start()

        def publish(suffix: str) -> None:
            for name, categories in (("eu", ["Europe"]), ("as", ["Asia"]), ("gen", ["Opinion"])):
                newsroom.publish(f"{name}{suffix}", now(), categories)

        def on(day: int, at: str) -> datetime:
            return local(sunday + timedelta(days=day), at, zone)

        await process.advance(on(0, "12:00"))
        publish("1")
        await process.advance(on(1, "12:00"))  # Monday: the daily and the weekly edition
        store.set_preferences(ana, "daily", cadence="weekly", topics=None, now=now())
        store.set_preferences(ben, "daily", cadence="daily", topics=["asia"], now=now())
        store.set_preferences(cy, "daily", cadence="daily", topics=None, now=now())
        await process.advance(on(1, "13:00"))
        publish("2")
        await process.advance(on(3, "12:00"))  # Tuesday and Wednesday: daily editions
        publish("3")
        store.set_preferences(ben, "daily", cadence="weekly", topics=["europe"], now=now())
        await process.advance(on(8, "12:00"))  # up to the next Monday's editions
        process.stop()

        def got(reader: str, *names: str) -> Counter[tuple[str, str]]:
            return Counter({(reader, name): 1 for name in names})

        assert newsroom.received() == (
            # daily on Monday, then weekly: the posts of the week wait for the next Monday
            got("ana@example.net", "eu1", "as1", "gen1", "eu2", "as2", "gen2", "eu3", "as3", "gen3")
            # daily for Europe, daily for Asia (as1 was passed over, not owed again), then
            # weekly for Europe: the third posts go next Monday, under the new choice
            + got("ben@example.org", "eu1", "gen1", "as2", "gen2", "eu3", "gen3")
            # weekly on Monday, then daily from Tuesday
            + got(
                "cy@example.com", "eu1", "as1", "gen1", "eu2", "as2", "gen2", "eu3", "as3", "gen3"
            )
        )


# --- two schedulers firing the same slot ----------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
async def test_two_processes_firing_the_same_slot_make_one_edition(
    tmp_path: Path, backend: str
) -> None:
    zone = "America/New_York"
    fire = local(date(2099, 11, 26), "07:00", zone)
    readers = tuple(f"r{n:02}@example.net" for n in range(20))
    with database_url(backend, tmp_path) as url:
        async with Newsroom(
            tmp_path, schedule("07:00", zone), fire - timedelta(hours=1), database_url=url
        ) as newsroom:
            newsroom.subscribe(*readers)
            newsroom.publish("news", newsroom.clock())
            first, second = newsroom.start(), newsroom.start(newsroom.process())
            try:
                await asyncio.gather(first.advance(fire), second.advance(fire))
            finally:
                first.stop()
                second.stop()
            assert newsroom.received() == each_once(readers, ["news"])
            [edition] = newsroom.editions()
            assert edition.period_key == "daily@2099-11-26T07:00"
            assert edition.status is EditionStatus.SENT
