"""When newsletters fire and sources are fetched: APScheduler 3 wiring and period keys.

The only module that imports APScheduler. Schedules are wall-clock times in the schedule's
IANA zone, so a slot inside a DST fall-back hour fires twice and one inside the
spring-forward gap fires an hour later; :func:`period_key` maps every firing to the
slot it belongs to, and the store's unique (newsletter, period key) turns twins into no-ops.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from digest.config import LAST_DAY, Config, NewsletterConfig, ScheduleConfig
from digest.errors import ConfigError, DigestError, NotFound
from digest.ports import Clock, Due

READER_ZONE_STEP = 15  # minutes between checks of a cadence sent in each reader's zone
EARLY_TOLERANCE = timedelta(minutes=1)

OnNewsletter = Callable[[str, str, str, datetime, Due | None], Awaitable[object]]
"""``(newsletter_id, cadence_id, period_key, now, due)``: open and send that edition."""
"""A firing this close before a slot belongs to it (the wall clock was stepped back)."""

_CRONTAB_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # crontab: 0 and 7 = Sunday
_CRON_HELP = "use five fields: minute hour day month weekday"
# Every weekday/date combination that ever occurs recurs within 28 years (1901-2099).
_NEVER_FROM, _NEVER_UNTIL = datetime(2000, 1, 1, tzinfo=UTC), datetime(2040, 1, 1, tzinfo=UTC)


def _day_number(token: str) -> int:
    word = token.lower()
    if word.isdigit() and int(word) <= 7:
        return int(word)
    if word in _CRONTAB_DAYS:
        return _CRONTAB_DAYS.index(word)
    raise ValueError(f"weekday {token!r} is not 0-7 or sun..sat")


def _crontab_weekdays(field: str) -> str:
    """A crontab weekday field as APScheduler 3 names (APScheduler 3 counts 0 as Monday)."""
    if field == "*":
        return "*"
    days: set[int] = set()
    for part in field.split(","):
        span, slash, step_text = part.partition("/")
        if slash and not (step_text.isdigit() and int(step_text) > 0):
            raise ValueError(f"weekday step in {part!r} is not a positive number")
        if span == "*":
            low, high = 0, 6
        else:
            first, dash, last = span.partition("-")
            low = _day_number(first)
            high = _day_number(last) if dash else (6 if slash else low)
        if high == 0 and low > 0:  # "fri-sun": Sunday is also 7
            high = 7
        if low > high:
            raise ValueError(f"weekday range {span!r} runs backwards")
        days.update(day % 7 for day in range(low, high + 1, int(step_text or 1)))
    return ",".join(_CRONTAB_DAYS[day] for day in (1, 2, 3, 4, 5, 6, 0) if day in days)


def _trigger(schedule: ScheduleConfig, end: datetime | None = None) -> CronTrigger:
    """The APScheduler trigger of a schedule; ValueError says what is wrong with it."""
    try:
        zone = ZoneInfo(schedule.timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"time zone {schedule.timezone!r} is not an IANA time zone") from None
    if schedule.kind != "cron":
        hour, minute = schedule.time.split(":")
        weekday: str | None = None
        day: str | None = None
        if schedule.kind == "weekly":
            weekday = schedule.weekday
        elif schedule.kind == "daily" and schedule.weekdays:
            weekday = ",".join(schedule.weekdays)
        elif schedule.kind == "monthly":
            day = "last" if schedule.day == LAST_DAY else str(schedule.day)
        return CronTrigger(
            day=day,
            hour=int(hour),
            minute=int(minute),
            day_of_week=weekday,
            timezone=zone,
            end_date=end,
        )
    fields = schedule.cron.split()
    if len(fields) != 5:
        raise ValueError(f"it has {len(fields)} fields")
    minute, hour, day, month, weekday = fields
    if day != "*" and weekday != "*":
        raise ValueError(
            "it restricts both day of month and weekday (crontab fires when either matches, "
            "digest would need both); restrict only one"
        )
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=_crontab_weekdays(weekday),
        timezone=zone,
        end_date=end,
    )


def _checked_trigger(schedule: ScheduleConfig, where: str = "") -> CronTrigger:
    what = f"cron {schedule.cron!r}" if schedule.kind == "cron" else f"{schedule.kind} schedule"
    try:
        trigger = _trigger(schedule)
        never = _trigger(schedule, end=_NEVER_UNTIL).get_next_fire_time(None, _NEVER_FROM) is None
    except ValueError as exc:
        raise ConfigError(f"{where}{what} is not valid: {exc}; {_CRON_HELP}") from None
    if never:
        raise ConfigError(f"{where}{what} never fires: check its day, month and weekday")
    return trigger


def check_schedule(schedule: ScheduleConfig, where: str = "") -> None:
    """ConfigError, its message starting with ``where``, unless the schedule can fire."""
    _checked_trigger(schedule, where)


def check_schedules(config: Config) -> None:
    """Build every cadence's trigger; ConfigError names file and table of each bad one."""
    problems: list[str] = []
    for newsletter_id, newsletter in config.newsletters.items():
        single = len(newsletter.cadences) == 1 and newsletter.cadences[0].id == (
            newsletter.schedule.kind
        )
        for cadence in newsletter.cadences:
            table = "schedule" if single else f"cadences.{cadence.id}"
            try:
                check_schedule(
                    cadence.schedule, f"{config.path}: [newsletters.{newsletter_id}.{table}] "
                )
            except ConfigError as exc:
                problems.append(str(exc))
    if problems:
        raise ConfigError("\n".join(problems))


def _fire_times(trigger: CronTrigger, start: datetime, end: datetime) -> Iterator[datetime]:
    """Scheduled fire times in [start, end], oldest first (both fold=0 and fold=1 in a fold)."""
    fire = trigger.get_next_fire_time(None, start)
    while fire is not None and fire <= end:
        yield fire
        fire = trigger.get_next_fire_time(fire, fire)


def _latest_slot(trigger: CronTrigger, now: datetime, grace: timedelta) -> datetime | None:
    last = deque(_fire_times(trigger, now - grace, now), maxlen=1)
    return last[0] if last else None


def period_key(schedule: ScheduleConfig, now: datetime, grace: timedelta) -> str:
    """The idempotency key of the firing that ``now`` belongs to: :func:`slot_key`, or
    "off-schedule-<now>" when it belongs to no slot (never a scheduled slot's key)."""
    return slot_key(schedule, now, grace) or f"off-schedule-{now.astimezone(UTC):%Y-%m-%dT%H:%M:%S}"


def slot_key(schedule: ScheduleConfig, now: datetime, grace: timedelta) -> str | None:
    """The slot a firing at ``now`` belongs to, "YYYY-MM-DDTHH:MM", or None.

    It is the local wall-clock time (in ``schedule.timezone``, read off the fire instant) of:

    1. the latest scheduled fire time in ``[now - grace, now]``: a late firing, and firings
       coalesced after downtime, all get the key of the latest slot - one edition, no burst.
       A slot inside a DST fall-back hour fires twice (02:30 CEST, then 02:30 CET): both
       read "02:30", so the second finds its edition already made. A slot inside the
       spring-forward gap fires at the first valid instant and is keyed by it ("03:30");
    2. else the next fire time, if it is at most :data:`EARLY_TOLERANCE` away (the clock
       was stepped back a little, the firing is for that slot);
    3. else None: a firing after downtime longer than ``grace``, which the scheduler does
       not send (the slot folds into the next).
    """
    trigger = _checked_trigger(schedule)
    slot = _latest_slot(trigger, now, grace)
    if slot is None:
        upcoming = trigger.get_next_fire_time(None, now)
        if upcoming is None or upcoming - now > EARLY_TOLERANCE:
            return None
        slot = upcoming
    return slot.astimezone(UTC).astimezone(trigger.timezone).strftime("%Y-%m-%dT%H:%M")


def reader_due(schedule: ScheduleConfig, now: datetime, grace: timedelta) -> Due:
    """Which readers a firing at ``now`` of a cadence sent "at HH:MM in each reader's
    zone" is for: ``due(reader_zone, last_sent_at)``.

    A reader is due once the local time of day has come on a scheduled day (in their
    zone, else the schedule's), at most ``grace`` late, and not yet sent that local day.
    So a reader gets one digest per local day, across DST changes and zone changes; a
    time inside a spring-forward gap is served at the first firing after it. The local
    day and time are worked out once per zone, not once per reader.
    """
    hour, minute = (int(part) for part in schedule.time.split(":"))
    instant = now.astimezone(UTC)
    zones: dict[str, tuple[ZoneInfo, date | None]] = {}

    def local_day(name: str) -> tuple[ZoneInfo, date | None]:
        """The zone, and its local date if the reader's time has come there today."""
        try:
            zone = ZoneInfo(name) if name else ZoneInfo(schedule.timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            zone = ZoneInfo(schedule.timezone)
        local = instant.astimezone(zone)
        day = _CRONTAB_DAYS[local.isoweekday() % 7]
        if schedule.kind == "weekly" and day != schedule.weekday:
            return zone, None
        if schedule.kind == "daily" and schedule.weekdays and day not in schedule.weekdays:
            return zone, None
        # Compare instants: a wall time inside a gap maps (fold=0) to an existing instant.
        target = datetime(local.year, local.month, local.day, hour, minute, tzinfo=zone)
        late = instant - target.astimezone(UTC)
        return zone, local.date() if timedelta(0) <= late <= grace else None

    def due(reader_zone: str, last_sent_at: datetime | None) -> bool:
        if reader_zone not in zones:
            zones[reader_zone] = local_day(reader_zone)
        zone, today = zones[reader_zone]
        if today is None:
            return False
        return last_sent_at is None or last_sent_at.astimezone(zone).date() < today

    return due


def next_fire_times(schedule: ScheduleConfig, now: datetime, count: int) -> list[datetime]:
    """The next ``count`` sends at or after ``now``, aware UTC: one per slot (the second
    firing of a slot in a DST fall-back hour sends nothing, so it is left out)."""
    trigger = _checked_trigger(schedule)
    fires: list[datetime] = []
    last_slot = ""
    fire: datetime | None = trigger.get_next_fire_time(None, now)
    while fire is not None and len(fires) < count:
        slot = f"{fire:%Y-%m-%dT%H:%M}"  # in the schedule's zone: both firings of a fold match
        if slot != last_slot:
            fires.append(fire.astimezone(UTC))
            last_slot = slot
        # From the fire time itself, as APScheduler steps (in UTC): a step in wall-clock
        # time from a fold's second firing lands before it and finds it again, forever.
        fire = trigger.get_next_fire_time(fire, fire)
    return fires


def next_fire_time(schedule: ScheduleConfig, now: datetime) -> datetime:
    """The first scheduled fire time at or after ``now``, aware UTC."""
    fire: datetime | None = _checked_trigger(schedule).get_next_fire_time(None, now)
    if fire is None:  # _checked_trigger refuses schedules that never fire: only past 2040
        raise ConfigError(f"{schedule.kind} schedule {schedule.cron!r} never fires again")
    return fire.astimezone(UTC)


@dataclass(frozen=True)
class _Job:
    """One APScheduler job as configured; ``signature`` changes exactly when it must move."""

    id: str
    func: Callable[..., Awaitable[None]]
    trigger: CronTrigger | IntervalTrigger
    signature: object
    options: dict[str, Any]

    def __post_init__(self) -> None:
        self.options["id"] = self.id


class DigestScheduler:
    """APScheduler 3 AsyncIOScheduler wiring: one job per newsletter and one per source.

    Jobs come from the configuration at every start (in-memory job store). A newsletter
    whose latest slot lies within ``grace`` before ``start()`` fires at once (catch-up after
    downtime: its period key makes this a no-op when the edition exists). Each source is
    fetched every ``fetch_every_minutes``, the first time one interval after ``start()``:
    the caller fetches once before starting, so that catch-up editions see fresh posts.
    A job that raises is logged to the ``digest.scheduler`` logger and never stops the
    scheduler.
    """

    def __init__(
        self,
        *,
        config: Config,
        clock: Clock,
        on_newsletter: OnNewsletter,
        on_fetch: Callable[[str, datetime], Awaitable[object]],
        grace: timedelta | None = None,
        scheduled_since: Mapping[tuple[str, str], datetime] | None = None,
    ) -> None:
        check_schedules(config)
        self._config, self._clock, self._fixed_grace = config, clock, grace
        self._since = dict(scheduled_since or {})
        self._on_newsletter, self._on_fetch = on_newsletter, on_fetch
        self._log = logging.getLogger("digest.scheduler")
        self._scheduler: AsyncIOScheduler | None = None
        self._signatures: dict[str, object] = {}

    @property
    def running(self) -> bool:
        return self._scheduler is not None and bool(self._scheduler.running)

    def start(self) -> None:
        """Add the jobs and start; call inside the running event loop."""
        if self.running:
            raise RuntimeError("DigestScheduler is already running")
        now = self._clock()
        scheduler = AsyncIOScheduler(
            timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1}
        )
        for job in self._jobs(self._config, now):
            self._signatures[job.id] = job.signature
            scheduler.add_job(job.func, job.trigger, **job.options)
        scheduler.start()
        self._scheduler = scheduler

    def reconfigure(
        self, config: Config, scheduled_since: Mapping[tuple[str, str], datetime] | None = None
    ) -> list[str]:
        """Swap in ``config`` while running (``digest reload``); the ids of the jobs it changed.

        A job whose schedule (or fetch interval) is unchanged keeps its next run, so a
        reload never moves, skips or repeats a send. A new or changed cadence is scheduled
        as :meth:`start` would schedule it (its first slot counts from ``scheduled_since``);
        a removed one stops. Raises ``ConfigError`` (and changes nothing) for a bad schedule.
        """
        check_schedules(config)
        now = self._clock()
        self._config = config
        self._since.update(scheduled_since or {})
        if self._scheduler is None:
            return []
        wanted = {job.id: job for job in self._jobs(config, now)}
        changed: list[str] = []
        for existing in self._scheduler.get_jobs():
            if existing.id not in wanted:
                existing.remove()
                del self._signatures[existing.id]
                changed.append(existing.id)
        for job_id, job in wanted.items():
            if self._signatures.get(job_id) == job.signature:
                continue
            self._signatures[job_id] = job.signature
            self._scheduler.add_job(job.func, job.trigger, replace_existing=True, **job.options)
            changed.append(job_id)
        return sorted(changed)

    def _jobs(self, config: Config, now: datetime) -> Iterator[_Job]:
        for newsletter_id, newsletter in config.newsletters.items():
            grace = self.grace(newsletter)
            for cadence in newsletter.cadences:
                schedule = cadence.schedule
                trigger = (
                    CronTrigger(minute=f"*/{READER_ZONE_STEP}", timezone=UTC)
                    if schedule.reader_timezone
                    else _checked_trigger(schedule)
                )
                slot = _latest_slot(trigger, now, grace)
                since = self._since.get((newsletter_id, cadence.id))
                # A slot that passed before the cadence was first scheduled is not caught
                # up: a new install (or a new cadence) waits for its next slot.
                catch_up = slot is not None and (since is None or slot >= since)
                yield _Job(
                    id=f"newsletter:{newsletter_id}:{cadence.id}",
                    func=self.fire_newsletter,
                    trigger=trigger,
                    signature=(schedule, grace),
                    options={
                        "args": (newsletter_id, cadence.id),
                        "next_run_time": now if catch_up else trigger.get_next_fire_time(None, now),
                        "misfire_grace_time": max(1, int(grace.total_seconds())),
                    },
                )
        for source_id, source in config.sources.items():
            first = now + timedelta(minutes=source.fetch_every_minutes)
            yield _Job(
                id=f"fetch:{source_id}",
                func=self.fire_fetch,
                trigger=IntervalTrigger(
                    minutes=source.fetch_every_minutes, start_date=first, timezone=UTC
                ),
                signature=source.fetch_every_minutes,
                options={"args": (source_id,), "next_run_time": first},
            )

    def shutdown(self) -> None:
        """Stop firing. Takes effect at the loop's next iteration (APScheduler defers it).

        Runs still in progress are cancelled, so callbacks must be safe to interrupt.
        """
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def _next(self, prefix: str) -> dict[str, datetime]:
        if self._scheduler is None:
            return {}
        return {
            job.id.removeprefix(prefix): job.next_run_time.astimezone(UTC)
            for job in self._scheduler.get_jobs()
            if job.id.startswith(prefix) and job.next_run_time is not None
        }

    def next_runs(self) -> dict[str, datetime]:
        """ "newsletter:cadence" -> its next firing, aware UTC (empty before ``start()``)."""
        return self._next("newsletter:")

    def next_fetches(self) -> dict[str, datetime]:
        """Source id -> its next fetch, aware UTC (empty before ``start()``)."""
        return self._next("fetch:")

    def grace(self, newsletter: NewsletterConfig) -> timedelta:
        """How late a slot may still be sent; later, it folds into the next one."""
        return self._fixed_grace or timedelta(hours=newsletter.late_after_hours)

    async def fire_newsletter(self, newsletter_id: str, cadence_id: str | None = None) -> None:
        """Run one cadence now: ``on_newsletter(id, cadence, period_key, now, due)``; failures
        are logged. A firing later than the newsletter's grace does nothing (the posts go
        in the next slot's digest)."""
        newsletter = self._config.newsletters.get(newsletter_id)
        if newsletter is None:
            raise NotFound(f"newsletter {newsletter_id!r} is not in {self._config.path}")
        cadence = newsletter.cadence(cadence_id)
        now = self._clock()
        grace = self.grace(newsletter)
        due: Due | None = None
        if cadence.schedule.reader_timezone:
            key = f"{cadence.id}@{now.astimezone(UTC):%Y-%m-%dT%H:%M}Z"
            due = reader_due(cadence.schedule, now, grace)
        else:
            slot = slot_key(cadence.schedule, now, grace)
            if slot is None:
                self._log.warning(
                    "newsletter %r, cadence %r: no slot within %s before %s: this firing is"
                    " late beyond late_after_hours and folds into the next slot",
                    newsletter_id,
                    cadence.id,
                    grace,
                    now.isoformat(),
                )
                return
            key = f"{cadence.id}@{slot}"
        try:
            await self._on_newsletter(newsletter_id, cadence.id, key, now, due)
        except DigestError as exc:  # a known fault of input or environment: its message says it
            self._log.error("newsletter %r, period %s: %s", newsletter_id, key, exc)
        except Exception:
            self._log.exception("newsletter %r, period %s: the run failed", newsletter_id, key)

    async def fire_fetch(self, source_id: str) -> None:
        """Fetch one source now: ``on_fetch(id, now)``; failures are logged."""
        if source_id not in self._config.sources:
            raise NotFound(f"source {source_id!r} is not in {self._config.path}")
        now = self._clock()
        try:
            await self._on_fetch(source_id, now)
        except DigestError as exc:
            self._log.error("source %r: %s", source_id, exc)
        except Exception:
            self._log.exception("source %r: the fetch failed", source_id)
