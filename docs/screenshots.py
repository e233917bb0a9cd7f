"""Screenshots of the sample digest for the README: `make screenshots`.

Renders the sample edition of the tests (tests/support/edition.py: three posts, one with a
lead image) as a reader's archive page and photographs it in Debian's chromium through
Playwright, full length, at 375 px (a phone) and 600 px (the column), in light and dark
mode, plus the compact layout, into docs/digest-*.png. Pictures are local stand-ins
(tests/support/pictures.py): nothing is fetched from the network.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from playwright.async_api import Browser, async_playwright

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from digest.config import Layout  # noqa: E402
from digest.render import Renderer, archive_html  # noqa: E402

from support.browser import CHROMIUM, FLAGS  # noqa: E402
from support.edition import sample_newsletter, sample_posts, sample_site  # noqa: E402
from support.pictures import serve_pictures  # noqa: E402

NOW = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
DOCS = REPO / "docs"
# (file name, layout, viewport width, colour scheme)
SHOTS: tuple[tuple[str, Layout, int, Literal["light", "dark"]], ...] = (
    ("digest-375-light.png", "full", 375, "light"),
    ("digest-375-dark.png", "full", 375, "dark"),
    ("digest-600-light.png", "full", 600, "light"),
    ("digest-600-dark.png", "full", 600, "dark"),
    ("digest-compact-600-light.png", "compact", 600, "light"),
)


def page_of(layout: Layout) -> str:
    """The sample edition in ``layout``, as its archive page (no reader's links)."""
    rendered = Renderer(REPO / "templates" / "email").render_edition(
        site=sample_site(),
        newsletter=replace(sample_newsletter(), layout=layout),
        posts=sample_posts(),
        edition_id="2026-11-27-daily",
        now=NOW,
    )
    return archive_html(rendered)


async def shoot(
    browser: Browser, name: str, layout: Layout, width: int, scheme: Literal["light", "dark"]
) -> Path:
    page = await browser.new_page(viewport={"width": width, "height": 600})
    try:
        await serve_pictures(page)
        await page.emulate_media(color_scheme=scheme)
        await page.set_content(page_of(layout), wait_until="load")
        path = DOCS / name
        await page.screenshot(path=str(path), full_page=True)
        return path
    finally:
        await page.close()


async def shoot_all() -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            for shot in SHOTS:
                print(await shoot(browser, *shot))
        finally:
            await browser.close()


def main() -> int:
    if not Path(CHROMIUM).exists():
        print(f"chromium not found at {CHROMIUM}: apt-get install chromium", file=sys.stderr)
        return 1
    asyncio.run(shoot_all())
    return 0


if __name__ == "__main__":
    sys.exit(main())
