"""`digest run` in-process: starts on embedded defaults, serves, catches up, stops cleanly."""

from __future__ import annotations

import asyncio
import logging
import mailbox
import socket
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from digest import editions as edition_use_cases
from digest.app import build_app, utc_now
from digest.editorial import load_config
from digest.errors import ConfigError
from digest.models import Consent, EditionStatus, SubscriptionStatus
from digest.service import forget_expired_signups, run_service
from digest.subscriptions import add_subscriber
from digest.tokens import unsubscribe_token

from support.deployment import SECRET_ENV, write_config
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
