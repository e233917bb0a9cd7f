"""The digest in Debian's chromium: no horizontal overflow and no invisible text, at 375 px
and 600 px, in light and dark mode, for the sample edition, every corpus feed and a digest
cut to its size budget, in the full and the compact layout."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from playwright.async_api import Browser

from digest.config import LAYOUTS
from digest.models import Rendered
from digest.render import Renderer, archive_html

from support.corpus import NOW, corpus_names, render_corpus
from support.edition import long_posts, sample_newsletter, sample_posts, sample_site
from support.pictures import serve_pictures

pytestmark = pytest.mark.browser

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "email"
WIDTHS = (375, 600)
SCHEMES = ("light", "dark")

# Every element with text of its own: its colour against the background it is drawn on
# (the nearest ancestor with one), as a WCAG contrast ratio.
CONTRASTS = """() => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map((v) => {
    v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  }).reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const out = [];
  for (const el of document.body.querySelectorAll("*")) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    const style = getComputedStyle(el);
    if (!own || style.display === "none" || el.closest(".preheader")) continue;
    const [a, b] = [lum(rgb(style.color).slice(0, 3)), lum(background(el))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    out.push([el.textContent.trim().slice(0, 40), ratio]);
  }
  return out;
}"""


def _digests() -> dict[str, Rendered]:
    """Each digest in both layouts, and one of 101 long posts cut to the size budget."""
    renderer = Renderer(TEMPLATES)
    found: dict[str, Rendered] = {}
    for layout in LAYOUTS:
        newsletter = replace(sample_newsletter(), layout=layout)
        for name, posts in (("sample", sample_posts()), ("long", long_posts(101))):
            found[f"{name}-{layout}"] = renderer.render_edition(
                site=sample_site(), newsletter=newsletter, posts=posts, edition_id=name, now=NOW
            )
        for name in corpus_names():
            chosen = replace(newsletter, source_ids=(name,))
            found[f"{name}-{layout}"] = render_corpus(name, renderer=renderer, newsletter=chosen)
    return found


DIGESTS = _digests()


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", sorted(DIGESTS))
async def test_the_digest_fits_the_viewport_and_every_text_is_legible(
    browser: Browser, name: str, width: int, scheme: str
) -> None:
    page = await browser.new_page(viewport={"width": width, "height": 800})
    await serve_pictures(page)
    await page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
    await page.set_content(archive_html(DIGESTS[name]), wait_until="load")
    assert await page.evaluate("document.documentElement.scrollWidth") <= width
    widths = await page.eval_on_selector_all(
        "img", "images => images.map(i => i.getBoundingClientRect().right)"
    )
    assert all(right <= width for right in widths)
    contrasts = await page.evaluate(CONTRASTS)
    assert contrasts  # the digest has text at all
    faint = [(text, round(ratio, 2)) for text, ratio in contrasts if ratio < 4.5]
    assert not faint, f"text too faint in {scheme} mode: {faint}"


async def test_dark_mode_changes_the_colours(browser: Browser) -> None:
    page = await browser.new_page(viewport={"width": 600, "height": 800})
    await page.set_content(archive_html(DIGESTS["sample-full"]))
    background = "getComputedStyle(document.querySelector('.container')).backgroundColor"
    light = await page.evaluate(background)
    await page.emulate_media(color_scheme="dark")
    assert await page.evaluate(background) != light
