"""`digest run` in-process: starts on embedded defaults, serves, catches up, stops cleanly."""

from __future__ import annotations

import asyncio
import logging
import mailbox
import socket
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import time_machine

from digest import editions as edition_use_cases
from digest.app import build_app, utc_now
from digest.editorial import load_config
from digest.errors import ConfigError
from digest.models import Consent, EditionStatus, SubscriptionStatus
from digest.service import forget_expired_signups, run_service
from digest.subscriptions import add_subscriber
from digest.tokens import unsubscribe_token

from support.deployment import SECRET_ENV, write_config
from support.schedule import publish, received, schedule_config
from support.smtpd import running_smtpd


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def wait_until_healthy(url: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(100):
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError(f"{url} never answered")


def daily_at(moment: datetime) -> str:
    """A daily schedule whose slot was a minute before ``moment`` (in Prague)."""
    local = (moment - timedelta(minutes=1)).astimezone(ZoneInfo("Europe/Prague"))
    return f"{local:%H:%M}"


async def test_run_serves_logs_catches_up_and_stops(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="digest")
    port = free_port()
    path = write_config(tmp_path, smtp_port=1, web_port=port, transport="outbox")
    # Shift today's slot to a minute ago, so that starting now is "just after the slot".
    text = path.read_text().replace('daily = "07:00"', f'daily = "{daily_at(utc_now())}"')
    path.write_text(text)
    app = build_app(load_config(path), environ=SECRET_ENV)
    add_subscriber(app.store, "ana@example.net", "daily", ["daily"], utc_now())
    # Scheduled since yesterday (an earlier run): the slot a minute ago is caught up.
    app.store.schedule_start("daily", "daily", utc_now() - timedelta(days=1))
    stop = asyncio.Event()
    service = asyncio.create_task(run_service(app, stop))
    try:
        await wait_until_healthy(f"http://127.0.0.1:{port}/healthz")
        # The slot a minute ago is caught up at once: one edition, into the outbox.
        outbox = tmp_path / "var" / "outbox"
        for _ in range(100):
            made = app.store.list_editions("daily")
            if made and made[0].edition.status is not EditionStatus.SENDING:
                break
            await asyncio.sleep(0.05)
        [edition] = [s.edition for s in app.store.list_editions("daily")]
        assert edition.status is EditionStatus.SENT
        assert len(list(mailbox.Maildir(outbox, create=False))) == 1
    finally:
        stop.set()
        await asyncio.wait_for(service, 10)
    logs = caplog.text
    assert f"delivering to the outbox {outbox}" in logs
    assert "newsletter daily:daily fires next at" in logs
    assert "fetched posts: 3 new post(s)" in logs
    assert "stopped" in logs
    with socket.socket() as probe:  # the port is free again
        probe.bind(("127.0.0.1", port))


async def test_a_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        path = write_config(tmp_path, smtp_port=1, web_port=port, transport="outbox")
        app = build_app(load_config(path), environ=SECRET_ENV)
        with pytest.raises(ConfigError, match=rf"\[web\].*{port}"):
            await run_service(app, asyncio.Event())


async def test_a_stop_during_the_start_up_resume_ends_it_cleanly(tmp_path: Path) -> None:
    async with running_smtpd() as smtpd:
        smtpd.faults.data_delay = 0.02  # a slow relay: the resume is still running
        path = write_config(tmp_path, smtp_port=smtpd.port, web_port=free_port())
        app = build_app(load_config(path), environ=SECRET_ENV)
        now = utc_now()
        app.store.add_subscriptions(
            [(f"r{i:03}@example.net", f"r{i:03}@example.net", "daily") for i in range(200)],
            SubscriptionStatus.CONFIRMED,
            now,
        )
        await app.fetch(None, now)
        opened = edition_use_cases.open_edition(
            app.store, app.renderer, app.config.site, app.newsletter("daily"), app.secret,
            "left-over", now,
        )  # fmt: skip
        stop = asyncio.Event()
        service = asyncio.create_task(run_service(app, stop))
        for _ in range(500):
            if len(smtpd.messages) >= 10:
                break
            await asyncio.sleep(0.01)
        stop.set()  # what SIGTERM does
        await asyncio.wait_for(service, 10)
        rows = app.store.list_deliveries(opened.edition.id)
        sent = {row.email for row in rows if row.status == "sent"}
        assert sent == {m.recipients[0] for m in smtpd.messages}
        assert {(r.status, r.attempts) for r in rows if r.email not in sent} == {("pending", 0)}
        assert len(sent) < 200


async def test_a_reload_applies_the_new_config_and_refuses_a_broken_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="digest")
    port = free_port()
    path = write_config(tmp_path, smtp_port=1, web_port=port, transport="outbox")
    app = build_app(load_config(path), environ=SECRET_ENV)
    subscription, _ = add_subscriber(app.store, "ana@example.net", "daily", ["daily"], utc_now())
    page = f"http://127.0.0.1:{port}/u/" + unsubscribe_token(
        app.secret, subscription.subscriber.id, "daily"
    )
    stop, reload = asyncio.Event(), asyncio.Event()
    service = asyncio.create_task(
        run_service(app, stop, reload=reload, load_config=lambda: load_config(path))
    )

    async def reloaded(times: int) -> None:
        reload.set()
        for _ in range(100):
            said = [r.message for r in caplog.records if r.message.startswith("reload")]
            if len(said) >= times:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"no reload logged: {caplog.text}")

    try:
        await wait_until_healthy(f"http://127.0.0.1:{port}/healthz")
        async with httpx.AsyncClient() as client:
            assert "Transmission Daily" in (await client.get(page)).text
            text = path.read_text()
            renamed = text.replace('title = "Transmission Daily"', 'title = "Morning Brief"')
            path.write_text(renamed.replace('transport = "outbox"', 'transport = "smtp"'))
            await reloaded(2)
            body = (await client.get(page)).text
            assert "Morning Brief" in body
            assert "Transmission Daily" not in body
            assert app.newsletter("daily").title == "Morning Brief"
            assert app.config.delivery.transport == "outbox"  # a restart key: kept
            assert "[delivery] changed" in caplog.text
            assert "reloaded " in caplog.text
            assert ": newsletter(s) changed: daily (title)" in caplog.text  # what changed, in words

            path.write_text(
                renamed.replace("[newsletters.daily]", "[newsletters.daily]\nbogus = 1")
            )
            await reloaded(3)  # "reload: ... changed", "reloaded", then the refusal
            assert "reload refused, still running the previous config" in caplog.text
            assert "bogus" in caplog.text
            assert "Morning Brief" in (await client.get(page)).text
    finally:
        stop.set()
        await asyncio.wait_for(service, 10)


# --- restarts and downtime, on a clock moved by time-machine ---------------------------------

BERLIN = ZoneInfo("Europe/Berlin")
DAILY_BERLIN = '[newsletters.daily.schedule]\ndaily = "07:00"\ntimezone = "Europe/Berlin"\n'
SLOT = datetime(2099, 11, 23, 7, 0, tzinfo=BERLIN)  # a Monday
READERS = ("ana@example.net", "ben@example.org")


class Lives:
    """One deployment and its `digest run` processes, started one after another, each on
    a clock frozen (time-machine) at its start in Berlin's local time."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = schedule_config(folder, DAILY_BERLIN, web_port=free_port())
        self.outbox = folder / "var" / "outbox"

    async def run(self, at: datetime, *, subscribe: bool = False) -> str:
        """Start `digest run` at ``at``, let the newsletter job it fires at once finish,
        stop it. Returns the edition that firing logged ("" when it fired none)."""
        logged: list[str] = []
        handler = logging.Handler()
        handler.emit = lambda record: logged.append(record.getMessage())  # type: ignore[method-assign]
        log = logging.getLogger("digest.service")
        level = log.level
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        try:
            with time_machine.travel(at, tick=False):
                app = build_app(load_config(self.path), environ=SECRET_ENV)
                if subscribe:
                    for reader in READERS:
                        add_subscriber(app.store, reader, "daily", ["daily"], utc_now())
                stop = asyncio.Event()
                service = asyncio.create_task(run_service(app, stop))
                fires = await self._line(logged, "newsletter daily:daily fires next at ")
                fired = ""
                if fires.startswith(f"{at.astimezone(BERLIN):%Y-%m-%d %H:%M} "):  # at once
                    fired = await self._line(logged, "daily daily@")
                stop.set()
                await asyncio.wait_for(service, 10)
        finally:
            log.removeHandler(handler)
            log.setLevel(level)
        return fired

    @staticmethod
    async def _line(logged: list[str], prefix: str) -> str:
        """The rest of the first log line that starts with ``prefix``, once logged."""
        for _ in range(1000):
            for line in logged:
                if line.startswith(prefix):
                    return line.removeprefix(prefix)
            await asyncio.sleep(0.01)
        raise AssertionError(f"the service never logged {prefix!r}: {logged}")

    def publish(self, name: str, dated: datetime) -> None:
        publish(self.folder, name, dated)

    def received(self) -> Counter[tuple[str, str]]:
        return received(self.outbox)


def each_once(names: list[str]) -> Counter[tuple[str, str]]:
    return Counter({(reader, name): 1 for reader in READERS for name in names})


async def test_a_restart_just_after_a_fire_time_sends_the_slot_once(tmp_path: Path) -> None:
    lives = Lives(tmp_path)
    assert await lives.run(SLOT - timedelta(hours=1), subscribe=True) == ""
    lives.publish("morning", SLOT - timedelta(minutes=30))
    # Down at 07:00; back 20 seconds later: the slot is sent at once.
    fired = await lives.run(SLOT + timedelta(seconds=20))
    assert fired.startswith("2099-11-23T07:00: edition ")
    assert " sent, 2 recipient(s)" in fired
    assert lives.received() == each_once(["morning"])
    # Restarted again 20 seconds later: the firing finds that edition, nothing goes twice.
    assert (await lives.run(SLOT + timedelta(seconds=40))).split()[2] == fired.split()[2]
    assert lives.received() == each_once(["morning"])


async def test_a_fresh_install_after_the_days_slot_sends_nothing_until_the_next(
    tmp_path: Path,
) -> None:
    lives = Lives(tmp_path)
    lives.publish("yesterday", SLOT - timedelta(days=1))
    assert await lives.run(SLOT + timedelta(hours=2, minutes=55), subscribe=True) == ""
    assert await lives.run(SLOT + timedelta(hours=5)) == ""  # a restart that day: still not
    assert lives.received() == Counter()
    lives.publish("today", SLOT + timedelta(hours=6))
    fired = await lives.run(SLOT + timedelta(days=1, seconds=10))  # the next slot
    assert fired.startswith("2099-11-24T07:00: edition ")
    assert lives.received() == each_once(["yesterday", "today"])  # a new reader's catch-up


@pytest.mark.parametrize(
    ("down", "back", "late_key"),
    [
        # down for an hour across the slot: one late edition
        (timedelta(minutes=-30), timedelta(minutes=30), "2099-11-23T07:00"),
        # down for three days after a slot: one late edition of the last slot, not one a day
        (timedelta(0), timedelta(days=3, hours=1), "2099-11-26T07:00"),
        # the same, back beyond late_after_hours (6): nothing until the next slot
        (timedelta(0), timedelta(days=3, hours=7), ""),
    ],
)
async def test_downtime_gives_one_late_edition_or_folds_into_the_next_slot(
    tmp_path: Path, down: timedelta, back: timedelta, late_key: str
) -> None:
    lives = Lives(tmp_path)
    assert await lives.run(SLOT - timedelta(days=1, hours=1), subscribe=True) == ""
    lives.publish("before", SLOT - timedelta(days=1))
    ran_the_slot = await lives.run(SLOT + down)  # the last start before the downtime
    assert ran_the_slot.startswith("2099-11-23T07:00: edition ") == (down == timedelta(0))
    names = ["before"]
    for hours in range(1, int(back.total_seconds() // 3600), 12):  # published while down
        names.append(f"down-{hours}h")
        lives.publish(names[-1], SLOT + timedelta(hours=hours))
    fired = await lives.run(SLOT + back)
    if late_key:
        assert fired.startswith(f"{late_key}: edition ")
        assert " sent, 2 recipient(s)" in fired
    else:
        assert fired == ""
        fired = await lives.run(SLOT + timedelta(days=4, seconds=5))
        assert fired.startswith("2099-11-27T07:00: edition ")
    assert lives.received() == each_once(names)  # every post, each once
    with time_machine.travel(SLOT + timedelta(days=4, minutes=1), tick=False):
        app = build_app(load_config(lives.path), environ=SECRET_ENV)
        editions = app.store.list_editions("daily")
        await app.aclose()
    assert len(editions) == (2 if ran_the_slot else 1)  # never a burst


async def test_the_service_forgets_signups_left_unconfirmed(tmp_path: Path) -> None:
    path = write_config(
        tmp_path, smtp_port=1, web_port=1, transport="outbox", extra="", delivery=""
    )
    path.write_text(
        path.read_text().replace("port = 1\n", "port = 1\npending_expiry_hours = 48\n", 1)
    )
    app = build_app(load_config(path), environ=SECRET_ENV)
    now = utc_now()
    for email, when in (("old@example.net", now - timedelta(hours=49)), ("new@example.net", now)):
        app.store.record_signup(
            email=email,
            ascii_email=email,
            consents=[Consent("daily", when, "test", "127.0.0.1", "yes")],
            confirmed=False,
            now=when,
        )
    try:
        assert await forget_expired_signups(app) == 1
        assert [s.subscriber.email for s in app.store.list_subscriptions()] == ["new@example.net"]
    finally:
        await app.aclose()
