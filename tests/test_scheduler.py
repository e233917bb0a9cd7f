"""Tests for digest.scheduler: period keys, fire times, cron checks and the APScheduler wiring."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from digest.config import (
    Config,
    DeliveryConfig,
    NewsletterConfig,
    ScheduleConfig,
    SiteConfig,
    SourceConfig,
    one_cadence,
)
from digest.errors import ConfigError, NotFound, TransportError
from digest.scheduler import (
    DigestScheduler,
    check_schedules,
    next_fire_time,
    next_fire_times,
    period_key,
    reader_due,
)

GRACE = timedelta(hours=6)
PRAGUE = ZoneInfo("Europe/Prague")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def daily(time: str, zone: str = "Europe/Prague") -> ScheduleConfig:
    return ScheduleConfig(kind="daily", timezone=zone, time=time)


def cron(expr: str, zone: str = "Europe/Prague") -> ScheduleConfig:
    return ScheduleConfig(kind="cron", timezone=zone, cron=expr)


def make_config(schedules: dict[str, ScheduleConfig], every: int = 30) -> Config:
    sources = {
        sid: SourceConfig(id=sid, kind="folder", path=Path("/srv/posts"), fetch_every_minutes=every)
        for sid in ("posts", "feed")
    }
    newsletters = {
        nid: NewsletterConfig(
            id=nid,
            title=nid.title(),
            description="",
            source_ids=("posts",),
            cadences=one_cadence(schedule),
        )
        for nid, schedule in schedules.items()
    }
    site = SiteConfig(
        name="Transmission",
        base_url="http://127.0.0.1:8000",
        postal_address="1 Example Street, Prague",
        sender_name="Transmission",
        sender_email="digest@transmission.example.org",
    )
    return Config(
        path=Path("/etc/digest/digest.toml"),
        site=site,
        delivery=DeliveryConfig(transport="outbox", outbox_dir=Path("/var/digest/outbox")),
        data_dir=Path("/var/digest"),
        database_url="sqlite:////var/digest/digest.db",
        sources=sources,
        newsletters=newsletters,
    )


# --- period_key -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "now", "key"),
    [
        # 07:00 Prague is 06:00 UTC in November (CET)
        (daily("07:00"), utc(2026, 11, 27, 6, 0), "2026-11-27T07:00"),
        (daily("07:00"), utc(2026, 11, 27, 6, 0, 30), "2026-11-27T07:00"),
        (daily("7:05"), utc(2026, 11, 27, 6, 5), "2026-11-27T07:05"),
        # 2026-11-27 is a Friday
        (
            ScheduleConfig(kind="weekly", timezone="Europe/Prague", time="07:00", weekday="fri"),
            utc(2026, 11, 27, 6, 0),
            "2026-11-27T07:00",
        ),
        # crontab weekdays: 1-5 is Monday to Friday (APScheduler 3 alone would read Tue-Sat)
        (cron("0 7 * * 1-5"), utc(2026, 11, 27, 6, 0), "2026-11-27T07:00"),
        (cron("0 7 * * 0"), utc(2026, 11, 29, 6, 0), "2026-11-29T07:00"),
        (cron("15 */2 * * *", zone="UTC"), utc(2026, 11, 27, 4, 15), "2026-11-27T04:15"),
    ],
)
def test_period_key_on_time(schedule: ScheduleConfig, now: datetime, key: str) -> None:
    assert period_key(schedule, now, GRACE) == key


def test_late_firing_within_grace_gets_the_scheduled_slots_key() -> None:
    slot = utc(2026, 11, 27, 6, 0)
    for late in (timedelta(seconds=1), timedelta(hours=2), GRACE):
        assert period_key(daily("07:00"), slot + late, GRACE) == "2026-11-27T07:00"


def test_coalesced_downtime_collapses_into_the_latest_slot() -> None:
    hourly = cron("0 * * * *")
    # down from 04:10 to 10:20 local: slots 05:00..10:00 were missed; one run, one key
    keys = {period_key(hourly, utc(2026, 11, 27, 9, minute), GRACE) for minute in (20, 30, 59)}
    assert keys == {"2026-11-27T10:00"}


def test_firing_a_moment_early_belongs_to_the_coming_slot() -> None:
    assert period_key(daily("07:00"), utc(2026, 11, 27, 5, 59, 58), GRACE) == "2026-11-27T07:00"


def test_off_schedule_run_beyond_grace_never_takes_a_future_slots_key() -> None:
    # 14:23 Prague: the 07:00 slot is 7 h 23 min ago (beyond grace); tomorrow's 07:00 stays free
    key = period_key(daily("07:00"), utc(2026, 11, 27, 13, 23, 40), GRACE)
    assert key == "off-schedule-2026-11-27T13:23:40"
    assert key not in {"2026-11-27T07:00", "2026-11-28T07:00"}


def test_dst_fall_back_double_firing_yields_one_key() -> None:
    schedule = cron("30 2 * * *")
    # 2026-10-25: 03:00 CEST -> 02:00 CET, so 02:30 local happens at 00:30 and 01:30 UTC
    first = next_fire_time(schedule, utc(2026, 10, 24, 23, 0))
    second = next_fire_time(schedule, first + timedelta(seconds=1))
    assert (first, second) == (utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30))
    keys = {period_key(schedule, instant, GRACE) for instant in (first, second)}
    assert keys == {"2026-10-25T02:30"}
    assert next_fire_time(schedule, second + timedelta(seconds=1)) == utc(2026, 10, 26, 1, 30)


@pytest.mark.parametrize("schedule", [cron("30 2 * * *"), daily("02:30")])
def test_dst_spring_forward_gap_fires_once_at_the_first_valid_instant(
    schedule: ScheduleConfig,
) -> None:
    # 2026-03-29: 02:00 CET -> 03:00 CEST; 02:30 does not exist and fires at 03:30 CEST
    fire = next_fire_time(schedule, utc(2026, 3, 28, 23, 0))
    assert fire == utc(2026, 3, 29, 1, 30)
    assert fire.astimezone(PRAGUE).hour == 3
    assert period_key(schedule, fire, GRACE) == "2026-03-29T03:30"
    assert period_key(schedule, fire + timedelta(hours=3), GRACE) == "2026-03-29T03:30"
    assert period_key(schedule, utc(2026, 3, 28, 1, 30), GRACE) == "2026-03-28T02:30"
    assert next_fire_time(schedule, fire + timedelta(seconds=1)) == utc(2026, 3, 30, 0, 30)


# --- next_fire_time -------------------------------------------------------------------


def test_next_fire_time_in_a_non_utc_zone_is_aware_utc(now: datetime) -> None:
    # now = 2026-11-27 07:00 UTC = 02:00 EST; 07:00 New York is 12:00 UTC
    fire = next_fire_time(daily("07:00", zone="America/New_York"), now)
    assert fire == utc(2026, 11, 27, 12, 0)
    assert fire.utcoffset() == timedelta(0)
    # in summer (EDT) the same schedule fires at 11:00 UTC
    assert next_fire_time(daily("07:00", zone="America/New_York"), utc(2026, 7, 1)) == utc(
        2026, 7, 1, 11, 0
    )


def test_next_fire_time_weekly_and_crontab_weekdays(now: datetime) -> None:
    weekly = ScheduleConfig(kind="weekly", timezone="Europe/Prague", time="07:30", weekday="mon")
    assert next_fire_time(weekly, now) == utc(2026, 11, 30, 6, 30)
    # Friday 07:00 UTC is past 07:00 Prague: next weekday slot is Monday
    assert next_fire_time(cron("0 7 * * 1-5"), now) == utc(2026, 11, 30, 6, 0)
    assert next_fire_time(cron("0 7 * * sat,sun"), now) == utc(2026, 11, 28, 6, 0)
    assert next_fire_time(cron("0 7 * * 7"), now) == utc(2026, 11, 29, 6, 0)


@pytest.mark.parametrize(
    ("zone", "time", "day_before"),
    [("Europe/Berlin", "02:30", 24), ("America/New_York", "01:30", 31)],  # the fall-back days
)
def test_next_fire_times_lists_a_slot_in_the_fall_back_hour_once_and_goes_on(
    zone: str, time: str, day_before: int
) -> None:
    fires = next_fire_times(daily(time, zone), utc(2026, 10, day_before, 0, 0), 4)
    local = [fire.astimezone(ZoneInfo(zone)) for fire in fires]
    first = datetime(2026, 10, day_before).date()
    assert [moment.date() for moment in local] == [first + timedelta(days=n) for n in range(4)]
    assert {f"{moment:%H:%M}" for moment in local} == {time}
    assert local[1].dst()  # the fold's first firing (still summer time) is the one that sends


# --- check_schedules ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        ("61 * * * *", "maximum value (59)"),
        ("0 7 * *", "it has 4 fields"),
        ("0 7 * * 8", "weekday '8'"),
        ("0 7 * * 5-1", "runs backwards"),
        ("0 7 1 * mon", "both day of month and weekday"),
        ("0 7 * * mo", "weekday 'mo'"),
    ],
)
def test_check_schedules_names_file_newsletter_and_reason(expr: str, reason: str) -> None:
    config = make_config({"daily": daily("07:00"), "weekly": cron(expr)})
    with pytest.raises(ConfigError) as caught:
        check_schedules(config)
    message = str(caught.value)
    assert message.startswith(
        f"/etc/digest/digest.toml: [newsletters.weekly.schedule] cron {expr!r}"
    )
    assert "is not valid: " in message
    assert reason in message
    assert message.endswith("use five fields: minute hour day month weekday")
    assert "daily" not in message


def test_check_schedules_refuses_a_cron_that_never_fires() -> None:
    config = make_config({"feb": cron("0 0 31 2 *")})
    with pytest.raises(ConfigError, match=r"\[newsletters\.feb\.schedule\] cron .* never fires"):
        check_schedules(config)


def test_check_schedules_accepts_valid_schedules() -> None:
    check_schedules(make_config({"a": daily("07:00"), "b": cron("0 7 * * 1-5")}))


# --- DigestScheduler ------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.newsletters: list[tuple[str, str, datetime]] = []
        self.fetches: list[tuple[str, datetime]] = []
        self.fired = asyncio.Event()

    async def on_newsletter(
        self, newsletter_id: str, cadence_id: str, key: str, now: datetime, due: object
    ) -> None:
        self.newsletters.append((newsletter_id, key, now))
        self.fired.set()

    async def on_fetch(self, source_id: str, now: datetime) -> None:
        self.fetches.append((source_id, now))


def make_scheduler(config: Config, clock: datetime | None, rec: Recorder) -> DigestScheduler:
    return DigestScheduler(
        config=config,
        clock=(lambda: clock) if clock else (lambda: datetime.now(UTC)),
        on_newsletter=rec.on_newsletter,
        on_fetch=rec.on_fetch,
        grace=GRACE,
    )


async def test_fire_newsletter_passes_the_period_key_and_the_clocks_now() -> None:
    rec = Recorder()
    late = utc(2026, 11, 27, 8, 12, 5)  # 09:12 Prague, 2 h 12 min after the 07:00 slot
    digest = make_scheduler(make_config({"daily": daily("07:00")}), late, rec)
    await digest.fire_newsletter("daily")
    await digest.fire_fetch("feed")
    assert rec.newsletters == [("daily", "daily@2026-11-27T07:00", late)]
    assert rec.fetches == [("feed", late)]


async def test_a_failing_run_is_logged_not_raised(
    now: datetime, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: object) -> None:
        raise RuntimeError("database is down")

    digest = DigestScheduler(
        config=make_config({"daily": daily("07:00")}),
        clock=lambda: now,
        on_newsletter=broken,
        on_fetch=broken,
    )
    with caplog.at_level(logging.ERROR, logger="digest.scheduler"):
        await digest.fire_newsletter("daily")
        await digest.fire_fetch("posts")
    messages = [r.getMessage() for r in caplog.records if r.name == "digest.scheduler"]
    assert messages == [
        "newsletter 'daily', period daily@2026-11-27T07:00: the run failed",
        "source 'posts': the fetch failed",
    ]
    assert all(r.exc_info and "database is down" in str(r.exc_info[1]) for r in caplog.records)


async def test_a_known_fault_is_logged_as_its_message_without_traceback(
    now: datetime, caplog: pytest.LogCaptureFixture
) -> None:
    async def refused(*args: object) -> None:
        raise TransportError("cannot connect to smtp.example.org:587: refused")

    digest = DigestScheduler(
        config=make_config({"daily": daily("07:00")}),
        clock=lambda: now,
        on_newsletter=refused,
        on_fetch=refused,
    )
    with caplog.at_level(logging.ERROR, logger="digest.scheduler"):
        await digest.fire_newsletter("daily")
    [record] = [r for r in caplog.records if r.name == "digest.scheduler"]
    assert record.getMessage() == (
        "newsletter 'daily', period daily@2026-11-27T07:00: "
        "cannot connect to smtp.example.org:587: refused"
    )
    assert record.exc_info is None


async def test_fire_unknown_ids_raise_not_found(now: datetime) -> None:
    rec = Recorder()
    digest = make_scheduler(make_config({"daily": daily("07:00")}), now, rec)
    with pytest.raises(NotFound, match="'weekly'"):
        await digest.fire_newsletter("weekly")
    with pytest.raises(NotFound, match="'nope'"):
        await digest.fire_fetch("nope")
    assert rec.newsletters == rec.fetches == []


def test_a_bad_cron_is_refused_at_construction(now: datetime) -> None:
    with pytest.raises(ConfigError, match=r"\[newsletters\.daily\.schedule\]"):
        make_scheduler(make_config({"daily": cron("0 25 * * *")}), now, Recorder())


async def test_start_registers_one_job_per_newsletter_and_source() -> None:
    # a clock far in the future: nothing comes due while the test runs
    now = utc(2099, 1, 5, 5, 0)  # Monday 06:00 Prague (CET)
    schedules = {
        "daily": daily("07:00"),
        "weekly": ScheduleConfig(kind="weekly", timezone="Europe/Prague", weekday="wed"),
        "workdays": cron("30 7 * * 1-5", zone="America/New_York"),
        "early": daily("05:30"),  # 30 min ago: within grace, so it catches up at once
    }
    rec = Recorder()
    digest = make_scheduler(make_config(schedules, every=15), now, rec)
    assert digest.next_runs() == {}
    digest.start()
    try:
        assert digest.running
        assert digest.next_runs() == {
            "daily:daily": utc(2099, 1, 5, 6, 0),
            "weekly:weekly": utc(2099, 1, 7, 7, 0),
            "workdays:cron": utc(2099, 1, 5, 12, 30),
            "early:daily": now,
        }
        # the caller fetches before start(); the jobs take over one interval later
        in_15_min = now + timedelta(minutes=15)
        assert digest.next_fetches() == {"posts": in_15_min, "feed": in_15_min}
        with pytest.raises(RuntimeError, match="already running"):
            digest.start()
    finally:
        digest.shutdown()
    await asyncio.sleep(0)
    assert not digest.running
    assert rec.newsletters == rec.fetches == []


async def test_jobs_fire_through_apscheduler_and_shut_down_cleanly() -> None:
    # the real clock: a per-minute cron always has a slot within grace, so it fires at start
    rec = Recorder()
    digest = make_scheduler(make_config({"minutely": cron("* * * * *")}), None, rec)
    digest.start()
    try:
        await asyncio.wait_for(rec.fired.wait(), timeout=5)
    finally:
        digest.shutdown()
    await asyncio.sleep(0)
    assert not digest.running
    [(newsletter_id, key, fired_at)] = rec.newsletters
    assert newsletter_id == "minutely"
    assert key == fired_at.astimezone(PRAGUE).strftime("cron@%Y-%m-%dT%H:%M")
    assert rec.fetches == []
    assert digest.next_runs() == {}


# --- a new install, a late firing, a reader's own time zone -------------------------------


def test_a_new_install_does_not_catch_up_a_slot_that_passed_before_it_was_scheduled() -> None:
    now = utc(2099, 1, 5, 8, 55)  # 09:55 Prague: the 07:00 slot passed 2 h 55 min ago
    config = make_config({"daily": daily("07:00")})
    rec = Recorder()

    def jobs(since: datetime) -> dict[str, datetime]:
        digest = DigestScheduler(
            config=config,
            clock=lambda: now,
            on_newsletter=rec.on_newsletter,
            on_fetch=rec.on_fetch,
            scheduled_since={("daily", "daily"): since},
        )
        digest.start()
        try:
            return digest.next_runs()
        finally:
            digest.shutdown()

    async def both() -> tuple[dict[str, datetime], dict[str, datetime]]:
        return jobs(now), jobs(now - timedelta(days=1))

    fresh, scheduled_before = asyncio.run(both())
    assert fresh == {"daily:daily": utc(2099, 1, 6, 6, 0)}  # tomorrow's 07:00, not now
    assert scheduled_before == {"daily:daily": now}  # it was due before the downtime


async def test_a_firing_later_than_late_after_hours_folds_into_the_next_slot(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rec = Recorder()
    late = utc(2026, 11, 27, 13, 23)  # 14:23 Prague: 7 h 23 min after 07:00, grace 6 h
    digest = make_scheduler(make_config({"daily": daily("07:00")}), late, rec)
    with caplog.at_level(logging.WARNING, logger="digest.scheduler"):
        await digest.fire_newsletter("daily")
    assert rec.newsletters == []
    assert "folds into the next slot" in caplog.text


@pytest.mark.parametrize(
    ("zone", "local_days"),
    [
        # Europe/Berlin springs forward on 2026-03-29 and falls back on 2026-10-25
        ("Europe/Berlin", [(2026, 3, 28), (2026, 3, 29), (2026, 3, 30)]),
        ("Europe/Berlin", [(2026, 10, 24), (2026, 10, 25), (2026, 10, 26)]),
        # America/New_York: 2026-03-08 and 2026-11-01
        ("America/New_York", [(2026, 3, 7), (2026, 3, 8), (2026, 3, 9)]),
        ("America/New_York", [(2026, 10, 31), (2026, 11, 1), (2026, 11, 2)]),
    ],
)
@pytest.mark.parametrize("time", ["01:30", "02:30", "07:00"])
def test_a_reader_in_their_own_zone_gets_one_digest_a_local_day_across_dst(
    zone: str, local_days: list[tuple[int, int, int]], time: str
) -> None:
    schedule = ScheduleConfig(
        kind="daily", timezone="Europe/Prague", time=time, reader_timezone=True
    )
    start = datetime(*local_days[0], tzinfo=ZoneInfo(zone)).astimezone(UTC)
    last_sent: datetime | None = None
    sent: list[datetime] = []
    # the service checks every 15 minutes, through the three local days
    last_day = datetime(*local_days[-1]).date()
    now = start
    while now.astimezone(ZoneInfo(zone)).date() <= last_day:
        if reader_due(schedule, now, GRACE)(zone, last_sent):
            sent.append(now)
            last_sent = now
        now += timedelta(minutes=15)
    local = [moment.astimezone(ZoneInfo(zone)) for moment in sent]
    assert [moment.date() for moment in local] == [datetime(*d).date() for d in local_days]
    hour, minute = (int(part) for part in time.split(":"))
    for moment in local:
        wall = moment.hour * 60 + moment.minute
        # at the reader's time, or in a spring-forward gap at the first check after it
        assert 0 <= wall - (hour * 60 + minute) <= 60


def test_a_reader_without_a_zone_is_served_in_the_schedules_zone() -> None:
    schedule = ScheduleConfig(
        kind="weekly", timezone="Europe/Prague", time="07:00", weekday="mon", reader_timezone=True
    )
    monday_7 = utc(2026, 11, 30, 6, 0)  # 07:00 in Prague
    due = reader_due(schedule, monday_7, GRACE)
    assert due("", None)
    assert not due("America/New_York", None)  # 01:00 there: not yet
    assert not due("", monday_7)  # already sent this local day
    assert not reader_due(schedule, monday_7 + timedelta(days=1), GRACE)("", None)  # Tuesday


# --- digest reload ----------------------------------------------------------------------


async def test_reconfigure_keeps_unchanged_jobs_and_reschedules_the_changed_ones() -> None:
    now = utc(2099, 1, 5, 5, 0)  # Monday 06:00 Prague: nothing is due while the test runs
    clock = [now]
    config = make_config({"daily": daily("07:00"), "evening": daily("19:00")}, every=15)
    rec = Recorder()
    digest = DigestScheduler(
        config=config,
        clock=lambda: clock[0],
        on_newsletter=rec.on_newsletter,
        on_fetch=rec.on_fetch,
        grace=GRACE,
    )
    digest.start()
    try:
        clock[0] = now + timedelta(minutes=10)  # the reload comes later than the start
        renamed = dict(config.newsletters)
        renamed["daily"] = replace(config.newsletters["daily"], title="Renamed")
        assert digest.reconfigure(replace(config, newsletters=renamed)) == []
        assert digest.next_runs() == {
            "daily:daily": utc(2099, 1, 5, 6, 0),
            "evening:daily": utc(2099, 1, 5, 18, 0),
        }
        # the fetches were not moved by ten minutes either
        assert digest.next_fetches()["posts"] == now + timedelta(minutes=15)

        moved = make_config({"daily": daily("08:30"), "weekly": daily("09:00")}, every=20)
        changed = digest.reconfigure(moved)
        assert changed == [
            "fetch:feed",
            "fetch:posts",
            "newsletter:daily:daily",
            "newsletter:evening:daily",
            "newsletter:weekly:daily",
        ]
        assert digest.next_runs() == {
            "daily:daily": utc(2099, 1, 5, 7, 30),
            "weekly:daily": utc(2099, 1, 5, 8, 0),
        }
        assert digest.next_fetches()["feed"] == clock[0] + timedelta(minutes=20)
        # a firing now runs the new config's newsletter
        await digest.fire_newsletter("weekly", "daily")
        assert [name for name, _, _ in rec.newsletters] == []  # 07:10 Prague: no slot yet
        with pytest.raises(NotFound):
            await digest.fire_newsletter("evening", "daily")
    finally:
        digest.shutdown()
    await asyncio.sleep(0)


def test_reconfigure_refuses_a_bad_schedule_and_changes_nothing() -> None:
    now = utc(2099, 1, 5, 5, 0)
    config = make_config({"daily": daily("07:00")})
    rec = Recorder()

    async def attempt() -> dict[str, datetime]:
        digest = make_scheduler(config, now, rec)
        digest.start()
        try:
            with pytest.raises(ConfigError, match="never fires"):
                digest.reconfigure(make_config({"daily": cron("0 7 31 2 *")}))
            return digest.next_runs()
        finally:
            digest.shutdown()

    assert asyncio.run(attempt()) == {"daily:daily": utc(2099, 1, 5, 6, 0)}
