"""Tests for digest.source_alerts: the editors' email, built and sent through the real relay."""

from __future__ import annotations

import email
import shutil
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from digest.app import build_app
from digest.config import SiteConfig, SmtpConfig, SourceConfig
from digest.delivery import SmtpMailer
from digest.editorial import load_config
from digest.source_alerts import alert_message, send_alert
from digest.source_health import Alert, AlertKind

from support.deployment import SECRET_ENV, Clock
from support.smtpd import running_smtpd

NOW = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
FEEDS = Path(__file__).resolve().parent / "fixtures" / "feeds"
SITE = SiteConfig(
    name="Transmission",
    base_url="https://digest.example.org",
    postal_address="Vinohradska 12, Prague",
    sender_name="Transmission",
    sender_email="digest@transmission.example.org",
    timezone="Europe/Prague",
    editors=("desk@transmission.example.org", "ana@example.net"),
)
SOURCE = SourceConfig(id="wire", kind="feed", url="https://wire.example/feed", title="The Wire")
FAILING = Alert(AlertKind.FAILING, SOURCE, 3, NOW - timedelta(hours=1), "answered HTTP 503", NOW)


def parsed(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_the_alert_is_a_transactional_message_to_one_editor() -> None:
    raw = alert_message(SITE, FAILING, "ana@example.net", NOW)
    assert b"\r\n" in raw
    assert b"\n" not in raw.replace(b"\r\n", b"")
    message = parsed(raw)
    assert message["From"] == "Transmission <digest@transmission.example.org>"
    assert message["To"] == "ana@example.net"
    assert message["Subject"] == "[Transmission] source wire is failing"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Message-ID"].endswith("@transmission.example.org>")
    assert message["Date"] == "Fri, 27 Nov 2026 07:00:00 +0000"
    for bulk in ("List-Unsubscribe", "List-Unsubscribe-Post", "List-Id", "Precedence"):
        assert bulk not in message
    text = message.get_content()
    assert "The source wire (The Wire) has had 3 failed fetches in a row, the first at" in text
    assert "2026-11-27 07:00 CET" in text  # 06:00 UTC in [site] timezone
    assert "answered HTTP 503" in text
    assert "https://wire.example/feed" in text
    assert "every 30 minutes, doubling up to every 8 hours" in text


def test_the_recovery_says_how_long_it_was_down() -> None:
    back = Alert(AlertKind.RECOVERED, SOURCE, 5, NOW - timedelta(hours=5), "timed out", NOW)
    message = parsed(alert_message(SITE, back, "ana@example.net", NOW))
    assert message["Subject"] == "[Transmission] source wire works again"
    text = message.get_content()
    assert "works again: fetched at 2026-11-27 08:00 CET, after 5 failed fetches" in text
    assert "since 2026-11-27 03:00 CET" in text


async def test_each_editor_gets_a_copy_and_a_refusal_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with running_smtpd() as server:
        server.faults.reject_recipients["ana@example.net"] = "550 5.1.1 user unknown"
        mailer = SmtpMailer(
            SmtpConfig(host=server.host, port=server.port, tls="none", timeout_seconds=5),
            local_hostname="client.test",
        )
        try:
            accepted = await send_alert(mailer, SITE, FAILING, NOW)
        finally:
            await mailer.aclose()
    assert accepted == 1
    [received] = server.messages
    assert received.recipients == ("desk@transmission.example.org",)
    assert received.sender == "digest@transmission.example.org"
    assert "the alert to ana@example.net was not sent (failed): 550 5.1.1" in caplog.text


async def test_a_failing_source_alerts_the_editors_through_the_configured_relay(
    tmp_path: Path,
) -> None:
    feed = tmp_path / "wire.xml"
    shutil.copy(FEEDS / "malformed.xml", feed)
    async with running_smtpd() as server:
        path = tmp_path / "digest.toml"
        path.write_text(
            f"""
[site]
name = "Transmission"
base_url = "https://digest.example.org"
postal_address = "Vinohradska 12, Prague"
sender_email = "digest@transmission.example.org"
timezone = "Europe/Prague"
editors = ["desk@transmission.example.org"]

[storage]
data_dir = "var"

[delivery]
transport = "smtp"

[delivery.smtp]
host = "{server.host}"
port = {server.port}
tls = "none"
timeout_seconds = 5

[sources.wire]
kind = "feed"
path = "wire.xml"
alert_after_failures = 2

[newsletters.daily]
title = "Transmission Daily"
sources = ["wire"]

[newsletters.daily.schedule]
daily = "07:00"
""",
            encoding="utf-8",
        )
        clock = Clock(NOW)
        app = build_app(load_config(path), environ=SECRET_ENV, clock=clock)
        try:
            for hour in range(4):  # two failures alert; the next two say nothing new
                clock.now = NOW + timedelta(hours=hour)
                [report] = await app.fetch()
                assert report.error
            assert [parsed(m.data)["Subject"] for m in server.messages] == [
                "[Transmission] source wire is failing"
            ]
            clock.now = NOW + timedelta(hours=4)  # a scheduled poll: backing off, skipped
            assert await app.fetch(due_only=True) == []
            shutil.copy(FEEDS / "rss20.xml", feed)
            for hour in (4, 5):  # asked for explicitly (`digest fetch`): read at once
                clock.now = NOW + timedelta(hours=hour)
                [report] = await app.fetch()
                assert not report.error
        finally:
            await app.aclose()
    subjects = [parsed(m.data)["Subject"] for m in server.messages]
    assert subjects == [
        "[Transmission] source wire is failing",
        "[Transmission] source wire works again",
    ]
    assert all(m.recipients == ("desk@transmission.example.org",) for m in server.messages)
