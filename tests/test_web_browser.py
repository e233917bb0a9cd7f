"""The web pages and the digest itself in a real browser (Debian's chromium).

Skipped when chromium is absent, except under CI=true where it must run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from playwright.async_api import Browser

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
