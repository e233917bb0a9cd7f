"""The web pages and the digest itself in a real browser (Debian's chromium).

Skipped when chromium is absent, except under CI=true where it must run.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from digest.editions import unsubscribe_url
from digest.models import Post, SubscriptionStatus
from digest.render import Renderer
from digest.subscriptions import add_subscriber

from support.deployment import REPO, running_deployment
from support.edition import sample_newsletter, sample_site
from support.smtpd import running_smtpd

pytestmark = pytest.mark.browser

NOW = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
PHONE = {"width": 375, "height": 740}
TEMPLATES = REPO / "templates" / "email"
SEED_TITLE = "Strains Visible In CIS Military Alliance"


async def test_unsubscribe_page_asks_then_the_button_unsubscribes(
    tmp_path: Path, browser: Browser
) -> None:
    async with (
        running_smtpd() as smtpd,
        running_deployment(tmp_path, smtp_port=smtpd.port, now=NOW) as deployment,
    ):
        app = deployment.app
        subscription, _ = add_subscriber(app.store, "ana@example.net", "daily", ["daily"], NOW)
        url = unsubscribe_url(app.config.site, app.secret, subscription.subscriber.id, "daily")
        page = await browser.new_page(viewport=PHONE)

        await page.goto(url)
        assert "Unsubscribe from Transmission Daily?" in await page.inner_text("h1")
        [still] = app.store.list_subscriptions("daily")
        assert still.status is SubscriptionStatus.CONFIRMED  # opening the link changed nothing

        await page.click("button[type=submit]")
        await page.wait_for_selector("text=You're unsubscribed")
        assert page.url == url  # answered in place, no redirect
        [gone] = app.store.list_subscriptions("daily")
        assert gone.status is SubscriptionStatus.UNSUBSCRIBED


async def test_digest_reads_well_on_a_phone_and_in_the_browser_archive(
    tmp_path: Path, browser: Browser
) -> None:
    async with (
        running_smtpd() as smtpd,
        running_deployment(tmp_path, smtp_port=smtpd.port, now=NOW) as deployment,
    ):
        app = deployment.app
        add_subscriber(app.store, "ana@example.net", "daily", ["daily"], NOW)
        report = await app.send_now("daily")
        message = BytesParser(policy=policy.default).parsebytes(smtpd.messages[0].data)
        html_part = message.get_body(("html",))
        assert html_part is not None
        page = await browser.new_page(viewport=PHONE)

        # The email as a mail client shows it: no horizontal scrolling on a 375px phone,
        # images scaled to the column.
        await page.set_content(str(html_part.get_content()))
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"]
        image_widths = await page.eval_on_selector_all(
            "img", "images => images.map(i => i.getBoundingClientRect().width)"
        )
        assert image_widths
        assert max(image_widths) <= PHONE["width"]
        assert await page.get_by_role("link", name=SEED_TITLE).is_visible()

        # "View in browser": the archived edition served by digest's web app.
        await page.goto(f"{deployment.base_url}/e/{report.edition.id}")
        assert await page.get_by_role("link", name=SEED_TITLE).is_visible()
        assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


@pytest.mark.parametrize("width", [375, 600])
async def test_pre_blocks_and_long_tokens_never_widen_the_digest(
    browser: Browser, width: int
) -> None:
    long_url = "https://transmission.example.org/" + "a-very-long-path-segment-" * 12
    post = Post(
        source_id="tracker",
        guid="release-notes",
        title="Release notes with a stack trace",
        link="https://transmission.example.org/releases/1",
        published=NOW,
        summary_html=(
            "<p>See " + long_url + " for details.</p>"
            "<pre>Traceback (most recent call last): " + "x" * 300 + "</pre>"
            "<p>" + "body{margin:0;padding:0;font-family:Helvetica}" * 8 + "</p>"
            "<table><tr><td>" + "wide-cell-" * 40 + "</td></tr></table>"
        ),
    )
    rendered = Renderer(TEMPLATES).render_edition(
        site=sample_site(), newsletter=sample_newsletter(), posts=[post], edition_id="e", now=NOW
    )
    page = await browser.new_page(viewport={"width": width, "height": 740})
    await page.set_content(rendered.html)
    assert await page.evaluate("document.documentElement.scrollWidth") <= width


# --- a reader's whole journey on the web, in the browser ------------------------------------
ARTIFACTS = REPO / "build" / "screenshots"  # a test artifact folder, not committed
DOCS = REPO / "docs"
UPDATE_DOCS = "DIGEST_UPDATE_SCREENSHOTS"  # =1: also refresh the two checked into docs/
TOPICS = """
[newsletters.daily.topics.asia]
title = "Central Asia"
categories = ["Central Asia"]

[newsletters.daily.topics.dictators]
title = "Silly dictators"
categories = ["Silly Dictator Stories"]
"""
LINK = re.compile(r"http://127\.0\.0\.1:\d+/[^\s]+")


async def shoot(page: Page, name: str) -> None:
    """Screenshots of the page at 375 and 1280 px; at 375 px nothing may scroll sideways."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    for width in (375, 1280):
        await page.set_viewport_size({"width": width, "height": 800})
        path = ARTIFACTS / f"{name}-{width}.png"
        await page.screenshot(path=str(path), full_page=True)
        if width == 375 and name in ("home", "preferences") and os.environ.get(UPDATE_DOCS) == "1":
            shutil.copyfile(path, DOCS / f"{name}-375.png")
    await page.set_viewport_size(PHONE)


async def next_message(smtpd: Any, count: int) -> EmailMessage:
    """The ``count``-th message the server received (sent after the page answered)."""
    for _ in range(500):
        if len(smtpd.messages) >= count:
            break
        await asyncio.sleep(0.01)
    assert len(smtpd.messages) >= count, "the message never arrived"
    parsed = BytesParser(policy=policy.default).parsebytes(smtpd.messages[count - 1].data)
    assert isinstance(parsed, EmailMessage)
    return parsed


def links_in(message: EmailMessage) -> list[str]:
    body = message.get_body(("plain",))
    assert body is not None
    return LINK.findall(str(body.get_content()))


async def test_a_reader_signs_up_confirms_chooses_topics_and_leaves(
    tmp_path: Path, browser: Browser
) -> None:
    async with (
        running_smtpd() as smtpd,
        running_deployment(
            tmp_path, smtp_port=smtpd.port, now=NOW, newsletter="public = true", extra=TOPICS
        ) as deployment,
    ):
        app = deployment.app
        page = await browser.new_page(viewport=PHONE)

        # The home page's form.
        await page.goto(deployment.base_url + "/")
        assert await page.inner_text("h1") == "Transmission by email"
        await shoot(page, "home")
        await page.get_by_label("Your email address").fill("Ana@Example.net")
        await page.get_by_role("button", name="Subscribe to Transmission Daily").click()
        await page.wait_for_selector("text=Check your inbox")
        await shoot(page, "subscribed")

        # The confirmation email: a link to a page whose button confirms.
        confirmation = await next_message(smtpd, 1)
        assert confirmation["To"] == "ana@example.net"
        assert "List-Unsubscribe" not in confirmation
        (confirm,) = [url for url in links_in(confirmation) if "/confirm/" in url]
        await page.goto(confirm)
        await shoot(page, "confirm")
        [pending] = app.store.list_subscriptions("daily")
        assert pending.status is SubscriptionStatus.PENDING  # opening the link changed nothing
        await page.get_by_role("button", name="Confirm my subscription").click()
        await page.wait_for_selector("text=You're subscribed")
        await shoot(page, "confirmed")
        [confirmed] = app.store.list_subscriptions("daily")
        assert confirmed.status is SubscriptionStatus.CONFIRMED

        # A digest, with the reader's own preferences and unsubscribe links.
        await app.send_now("daily")
        digest = await next_message(smtpd, 2)
        assert digest["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        found = links_in(digest)
        (preferences,) = [url for url in found if "/p/" in url]
        (unsubscribe,) = [url for url in found if "/u/" in url]

        await page.goto(preferences)
        assert await page.get_by_label("Silly dictators").is_checked()
        await shoot(page, "preferences")
        await page.get_by_label("Silly dictators").uncheck()
        await page.get_by_role("button", name="Save my choices").click()
        await page.wait_for_selector("text=Saved.")
        assert not await page.get_by_label("Silly dictators").is_checked()
        await shoot(page, "preferences-saved")
        [chosen] = app.store.list_subscriptions("daily")
        assert chosen.topics == ("asia",)

        await page.goto(unsubscribe)
        await shoot(page, "unsubscribe")
        await page.get_by_role("button", name="Unsubscribe", exact=True).click()
        await page.wait_for_selector("text=You're unsubscribed")
        await shoot(page, "unsubscribed")
        [gone] = app.store.list_subscriptions("daily")
        assert gone.status is SubscriptionStatus.UNSUBSCRIBED

        # The link opened again says so, and offers the way back.
        await page.goto(unsubscribe)
        await page.wait_for_selector("text=You're already unsubscribed")
        await shoot(page, "unsubscribe-again")
        await page.get_by_role("button", name="Resubscribe to Transmission Daily").click()
        await page.wait_for_selector("text=You're subscribed again")
        await shoot(page, "resubscribed")
        [back] = app.store.list_subscriptions("daily")
        assert back.status is SubscriptionStatus.CONFIRMED

        # The public archive of what went out.
        await page.goto(deployment.base_url + "/archive/daily")
        await shoot(page, "archive")
        await page.locator(".editions a").first.click()
        assert await page.get_by_role("link", name=SEED_TITLE).is_visible()
        assert "/e/" in page.url
        assert await page.get_by_role("link", name="Subscribe", exact=True).is_visible()
        assert not await page.get_by_role("link", name="Unsubscribe").count()
        await shoot(page, "edition")
