"""A deployment whose time the test drives: the scheduler fired as `digest run` fires it.

The config is a real TOML file with the test's schedule tables, the store a migrated
SQLite file (or the URL given), the posts a folder the test publishes into and the mail
an outbox folder read back as (reader, post) pairs. :class:`Newsroom` starts a
``DigestScheduler`` wired as ``digest.service`` wires it (the newsletter job runs
``App.run_newsletter``, the schedule's start is recorded in the store) and fires its jobs
at the instants APScheduler would, with the injected clock set to each: the catch-up
firing ``start()`` puts at once, then the trigger's fire times (both firings of a DST
fold), or every quarter hour for a cadence sent in each reader's own zone.

Clocks are far in the future (2099): APScheduler's own timers never come due while the
test fires the jobs itself.
"""

from __future__ import annotations

import mailbox
import re
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from digest.app import App, build_app
from digest.editorial import load_config
from digest.models import Edition, EditionStatus
from digest.ports import Due
from digest.scheduler import READER_ZONE_STEP, DigestScheduler, next_fire_time
from digest.subscriptions import add_subscriber

from support.deployment import SECRET_ENV, Clock, write_config

DAILY_0700 = '[newsletters.daily.schedule]\ndaily = "07:00"\n'
POST_LINK = re.compile(r"https://example\.org/p/([\w-]+)/")


def schedule_config(
    folder: Path, schedule: str, *, database_url: str = "", max_items: int = 10, web_port: int = 1
) -> Path:
    """A config file in ``folder`` whose newsletter "daily" has the ``schedule`` tables
    (TOML, ``[newsletters.daily.schedule]`` or cadences) and ``max_items``, reading
    the post folder ``folder/posts`` and delivering into the outbox ``folder/var/outbox``."""
    posts = folder / "posts"
    posts.mkdir(parents=True, exist_ok=True)
    path = write_config(
        folder,
        smtp_port=1,
        web_port=web_port,
        posts_dir=posts,
        transport="outbox",
        database_url=database_url,
    )
    text = path.read_text(encoding="utf-8")
    assert DAILY_0700 in text
    text = text.replace("max_items = 10\n", f"max_items = {max_items}\n")
    path.write_text(text.replace(DAILY_0700, schedule), encoding="utf-8")
    return path


def publish(folder: Path, name: str, dated: datetime, categories: Sequence[str] = ()) -> None:
    """Drop post ``name`` (dated ``dated``) into the post folder of :func:`schedule_config`."""
    listed = ", ".join(categories)
    (folder / "posts" / f"{name}.md").write_text(
        f"---\ntitle: Post {name}\ndate: {dated.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}\n"
        f"link: https://example.org/p/{name}/\ncategories: [{listed}]\n---\n"
        f"The text of {name}.\n",
        encoding="utf-8",
    )


def received(outbox: Path) -> Counter[tuple[str, str]]:
    """How often each (reader, post name) pair reached the outbox."""
    pairs: Counter[tuple[str, str]] = Counter()
    if not outbox.exists():
        return pairs
    for message in mailbox.Maildir(outbox, create=False):
        parsed = BytesParser(policy=policy.default).parsebytes(message.as_bytes())
        text = parsed.get_body(("plain",))
        assert text is not None
        for name in POST_LINK.findall(str(text.get_content())):
            pairs[(str(parsed["To"]), name)] += 1
    return pairs


class Newsroom:
    """One deployment (config file, database) and the processes that run it in turn."""

    def __init__(self, folder: Path, schedule: str, now: datetime, **config: Any) -> None:
        self.folder = folder
        self.path = schedule_config(folder, schedule, **config)
        self.clock = Clock(now)
        self._apps: list[App] = []
        self.app = self.process()
        self.outbox = self.app.config.delivery.outbox_dir

    async def __aenter__(self) -> Newsroom:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for app in self._apps:
            await app.aclose()

    def process(self) -> App:
        """Another process on the same config and database (a restart, a second one)."""
        app = build_app(load_config(self.path), environ=SECRET_ENV, clock=self.clock)
        self._apps.append(app)
        return app

    def subscribe(self, *emails: str) -> list[str]:
        """Confirmed readers of "daily", subscribed now; their subscriber ids."""
        newsletters = self.app.config.newsletters
        return [
            add_subscriber(self.app.store, email, "daily", newsletters, self.clock())[
                0
            ].subscriber.id
            for email in emails
        ]

    def publish(self, name: str, dated: datetime, categories: Sequence[str] = ()) -> None:
        publish(self.folder, name, dated, categories)

    def received(self) -> Counter[tuple[str, str]]:
        return received(self.outbox)

    def editions(self) -> list[Edition]:
        """Every edition of "daily", oldest first."""
        return [summary.edition for summary in reversed(self.app.store.list_editions("daily"))]

    def sent_keys(self) -> list[str]:
        return [e.period_key for e in self.editions() if e.status is EditionStatus.SENT]

    def start(self, app: App | None = None) -> Process:
        """A process starting now: its scheduler as ``digest.service`` builds and starts it."""
        app = app or self.app

        async def on_newsletter(
            newsletter_id: str, cadence_id: str, period_key: str, now: datetime, due: Due | None
        ) -> None:
            await app.run_newsletter(newsletter_id, period_key, now, cadence_id=cadence_id, due=due)

        async def on_fetch(source_id: str, now: datetime) -> None:
            await app.fetch([source_id], now, due_only=True)

        started = self.clock()
        since = {
            (n.id, c.id): app.store.schedule_start(n.id, c.id, started)
            for n in app.config.newsletters.values()
            for c in n.cadences
        }
        scheduler = DigestScheduler(
            config=app.config,
            clock=self.clock,
            on_newsletter=on_newsletter,
            on_fetch=on_fetch,
            scheduled_since=since,
        )
        scheduler.start()
        return Process(self, scheduler, started)

    async def run(self, until: datetime) -> None:
        """A process that starts at the clock's now and stops at ``until``."""
        process = self.start()
        try:
            await process.advance(until)
        finally:
            process.stop()


class Process:
    """One running `digest run`: its scheduler's jobs fired as the clock moves on."""

    def __init__(self, newsroom: Newsroom, scheduler: DigestScheduler, started: datetime) -> None:
        self.newsroom, self.scheduler = newsroom, scheduler
        self.at = started
        self.catch_up = [
            job for job, when in sorted(scheduler.next_runs().items()) if when == started
        ]  # start() put these jobs at once

    def firings(self, until: datetime) -> list[tuple[datetime, str, str]]:
        """``(instant, newsletter, cadence)`` of every job firing after now, to ``until``."""
        found: list[tuple[datetime, str, str]] = []
        for newsletter in self.newsroom.app.config.newsletters.values():
            for cadence in newsletter.cadences:
                schedule = cadence.schedule
                if schedule.reader_timezone:  # a cron trigger of every quarter hour, in UTC
                    step = timedelta(minutes=READER_ZONE_STEP)
                    fire = self.at.replace(minute=0, second=0, microsecond=0)
                    fires = []
                    while fire <= until:
                        fires.append(fire)
                        fire += step
                else:
                    fires = []
                    fire = next_fire_time(schedule, self.at)
                    while fire <= until:
                        fires.append(fire)
                        fire = next_fire_time(schedule, fire + timedelta(microseconds=1))
                found += [(f, newsletter.id, cadence.id) for f in fires if f > self.at]
        return sorted(found)

    async def advance(
        self, until: datetime, *, only: Callable[[datetime], bool] | None = None
    ) -> None:
        """Move the clock to ``until``, firing every job that comes due on the way (``only``
        those at instants it accepts: a firing nobody is due in changes nothing but its
        skipped edition, and each costs a fetch)."""
        clock = self.newsroom.clock
        for job in self.catch_up:
            newsletter_id, _, cadence_id = job.partition(":")
            await self.scheduler.fire_newsletter(newsletter_id, cadence_id)
        self.catch_up = []
        for when, newsletter_id, cadence_id in self.firings(until):
            if only is None or only(when):
                clock.now = self.at = when
                await self.scheduler.fire_newsletter(newsletter_id, cadence_id)
        clock.now = self.at = until

    async def poll(self) -> None:
        """The source's poll job, now."""
        await self.scheduler.fire_fetch("posts")

    def stop(self) -> None:
        self.scheduler.shutdown()
