"""End to end: sample source -> fetch -> schedule fires -> edition -> SMTP -> one-click."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import httpx

from digest.models import DeliveryStatus, EditionStatus, SubscriptionStatus
from digest.ports import Due
from digest.scheduler import DigestScheduler
from digest.subscriptions import add_subscriber

from support.deployment import running_deployment
from support.smtpd import running_smtpd

# 07:00 in Prague on 27 November 2026: the daily schedule's slot.
FIRING = datetime(2026, 11, 27, 6, 0, 5, tzinfo=UTC)
SEED_TITLE = "Strains Visible In CIS Military Alliance"
SEED_AUTHOR = "Bruce Pannier"


def parse(data: bytes) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(message, EmailMessage)
    return message


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None
    assert html is not None
    return str(text.get_content()), str(html.get_content())


def scheduler_for(deployment: object) -> DigestScheduler:
    app = deployment.app  # type: ignore[attr-defined]

    async def on_newsletter(
        newsletter_id: str, cadence_id: str, period_key: str, now: datetime, due: Due | None
    ) -> None:
        await app.run_newsletter(newsletter_id, period_key, now, cadence_id=cadence_id, due=due)

    async def on_fetch(source_id: str, now: datetime) -> None:
        await app.fetch([source_id], now)

    return DigestScheduler(
        config=app.config, clock=app.clock, on_newsletter=on_newsletter, on_fetch=on_fetch
    )


async def test_schedule_to_inbox_to_one_click_unsubscribe(tmp_path: Path) -> None:
    async with (
        running_smtpd() as smtpd,
        running_deployment(tmp_path, smtp_port=smtpd.port, now=FIRING) as deployment,
    ):
        app, store = deployment.app, deployment.app.store
        for address in ("ana@example.net", "ben@example.org"):
            add_subscriber(store, address, "daily", app.config.newsletters, FIRING)
        scheduler = scheduler_for(deployment)

        await scheduler.fire_newsletter("daily")

        assert sorted(m.recipients[0] for m in smtpd.messages) == [
            "ana@example.net",
            "ben@example.org",
        ]
        [summary] = store.list_editions("daily")
        assert summary.edition.period_key == "daily@2026-11-27T07:00"
        assert summary.edition.status is EditionStatus.SENT
        assert summary.counts[DeliveryStatus.SENT] == 2

        received = smtpd.messages[0]
        message = parse(received.data)
        text, html = parts(message)
        for body in (text, html):
            assert SEED_TITLE in body
            assert SEED_AUTHOR in body
        # CSS is inlined: the post title link carries its own style attribute.
        assert re.search(r"<a [^>]*style=\"[^\"]+\"[^>]*>\s*" + SEED_TITLE, html)
        assert "<link" not in html
        assert message["Subject"].startswith("Transmission Daily: ")
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

        # The raw header is one plain <http...> URL: never folded into encoded-words.
        raw = re.search(rb"^List-Unsubscribe: (.*)$", received.data, re.MULTILINE)
        assert raw is not None
        assert b"=?" not in raw.group(1)
        url = re.fullmatch(rb"<(http://127\.0\.0\.1:\d+/u/[^>]+)>\r?", raw.group(1))
        assert url is not None
        assert url.group(1).decode() in text  # the visible link is the same one

        async with httpx.AsyncClient() as client:
            answer = await client.post(
                url.group(1).decode(), data={"List-Unsubscribe": "One-Click"}
            )
        assert answer.status_code == 200
        assert "location" not in answer.headers
        recipient = received.recipients[0]
        statuses = {s.subscriber.email: s.status for s in store.list_subscriptions("daily")}
        assert statuses[recipient] is SubscriptionStatus.UNSUBSCRIBED
        assert list(statuses.values()).count(SubscriptionStatus.CONFIRMED) == 1


async def test_no_new_posts_sends_nothing_and_no_period_twice(tmp_path: Path) -> None:
    async with (
        running_smtpd() as smtpd,
        running_deployment(tmp_path, smtp_port=smtpd.port, now=FIRING) as deployment,
    ):
        app, store = deployment.app, deployment.app.store
        add_subscriber(store, "ana@example.net", "daily", app.config.newsletters, FIRING)
        scheduler = scheduler_for(deployment)
        await scheduler.fire_newsletter("daily")
        assert len(smtpd.messages) == 1

        # The same slot fires again (a second scheduler, a restart, a DST fold).
        deployment.clock.now = FIRING + timedelta(minutes=3)
        await scheduler.fire_newsletter("daily")
        assert len(smtpd.messages) == 1
        assert len(store.list_editions("daily")) == 1

        # Next day: nothing new was published, so no email, and a skipped edition.
        deployment.clock.now = FIRING + timedelta(days=1)
        await scheduler.fire_newsletter("daily")
        assert len(smtpd.messages) == 1
        latest = store.list_editions("daily")[0]
        assert latest.edition.period_key == "daily@2026-11-28T07:00"
        assert latest.edition.status is EditionStatus.SKIPPED
        assert latest.recipients == 0
