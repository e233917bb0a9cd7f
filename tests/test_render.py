"""Tests for digest.render: golden output, inlined CSS, escaping, placeholders, subjects."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from digest.config import ScheduleConfig, one_cadence
from digest.errors import ConfigError
from digest.models import Post
from digest.render import (
    LINK_SLOTS,
    SUBJECT_MAX_LENGTH,
    UNSUBSCRIBE_URL,
    Rendered,
    Renderer,
    archive_html,
    personalize,
)

from support.edition import (
    SEED_CAPTION,
    SEED_TITLE,
    SPECIAL_TITLE,
    sample_newsletter,
    sample_posts,
    sample_site,
)
from support.golden import assert_golden

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "email"


class _Elements(HTMLParser):
    """Every start tag as (tag, attributes), plus the text of <style> blocks."""

    def __init__(self, document: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.styles: list[str] = []
        self._in_style = False
        self.feed(document)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)

    def with_class(self, name: str) -> list[dict[str, str | None]]:
        return [a for _, a in self.elements if name in (a.get("class") or "").split()]


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(TEMPLATES)


@pytest.fixture
def render(renderer: Renderer, now: datetime) -> Callable[..., Rendered]:
    def render(posts: list[Post] | None = None, **options: Any) -> Rendered:
        return renderer.render_edition(
            site=options.pop("site", sample_site()),
            newsletter=options.pop("newsletter", sample_newsletter()),
            posts=sample_posts() if posts is None else posts,
            edition_id=options.pop("edition_id", "2026-11-27-daily"),
            now=options.pop("now", now),
        )

    return render


def test_rendered_edition_matches_golden_files(render: Callable[..., Rendered]) -> None:
    rendered = render()
    assert_golden("digest.html", rendered.html)
    assert_golden("digest.txt", rendered.text)


def test_every_text_element_carries_inline_styles(render: Callable[..., Rendered]) -> None:
    page = _Elements(render().html)
    title_links = page.with_class("post-title-link")
    assert len(title_links) == 2  # the bare post has no link: its title is plain text
    assert all("color:" in (a["style"] or "") for a in title_links)
    paragraphs = [a for tag, a in page.elements if tag == "p"]
    assert len(paragraphs) >= 10
    assert all(a.get("style") for a in paragraphs)  # excerpt <p>s from feeds included
    assert "max-width:600px" in (page.with_class("container")[0]["style"] or "")


def test_layout_needs_no_style_block_or_stylesheet_link(render: Callable[..., Rendered]) -> None:
    page = _Elements(render().html)
    assert not [a for tag, a in page.elements if tag == "link"]
    # Only @media rules (mobile, dark mode) stay behind: the layout itself is inline.
    (style,) = page.styles
    assert "@media only screen and (max-width: 620px)" in style
    assert "prefers-color-scheme: dark" in style
    leftover = re.sub(r"@media[^{]*\{(?:[^{}]*\{[^{}]*\})*\s*\}", "", style)
    assert leftover.strip() == ""


def test_placeholders_appear_only_where_the_links_go(render: Callable[..., Rendered]) -> None:
    rendered = render()
    assert rendered.html.count(UNSUBSCRIBE_URL) == 1
    assert f'href="{UNSUBSCRIBE_URL}"' in rendered.html
    assert rendered.text.count(UNSUBSCRIBE_URL) == 1
    assert f"\nUnsubscribe: {UNSUBSCRIBE_URL}\n" in rendered.text
    archive = "https://digest.example.org/e/2026-11-27-daily"
    assert f'href="{archive}"' in rendered.html
    assert f"\nView in browser: {archive}\n" in rendered.text


def test_a_feed_cannot_plant_the_unsubscribe_placeholder(render: Callable[..., Rendered]) -> None:
    planted = dataclasses.replace(
        sample_posts()[1],
        title=f"Win a prize {UNSUBSCRIBE_URL}",
        summary_html=f'<p><a href="{UNSUBSCRIBE_URL}">Claim it</a></p>',
    )
    rendered = render([planted])
    assert rendered.html.count(UNSUBSCRIBE_URL) == 1
    assert rendered.text.count(UNSUBSCRIBE_URL) == 1


def test_an_entity_encoded_placeholder_is_defanged_too(render: Callable[..., Rendered]) -> None:
    encoded = "&#37;%UNSUBSCRIBE_URL%&#37;"  # only decoding the entities spells it out
    planted = dataclasses.replace(sample_posts()[1], summary_html=f"<p>Click {encoded}</p>")
    rendered = render([planted])
    assert rendered.text.count(UNSUBSCRIBE_URL) == 1  # the footer's own link only
    assert rendered.html.count(UNSUBSCRIBE_URL) == 1


def test_dates_show_in_the_newsletters_time_zone(render: Callable[..., Rendered]) -> None:
    late_utc = datetime(2026, 11, 27, 23, 30, tzinfo=UTC)  # already 28 November in Prague
    prague = render(now=late_utc)
    assert "By Bruce Pannier · 27 November 2026" in prague.html
    assert ">28 November 2026</p>" in prague.html
    assert prague.text.startswith("Transmission Daily\nTransmission · 28 November 2026\n")
    in_utc = dataclasses.replace(
        sample_newsletter(),
        cadences=one_cadence(ScheduleConfig(kind="daily", timezone="UTC")),
    )
    utc = render(now=late_utc, newsletter=in_utc)  # the site stays in Prague
    assert "By Bruce Pannier · 26 November 2026" in utc.html
    assert "By Bruce Pannier · 26 November 2026" in utc.text
    assert ">27 November 2026</p>" in utc.html


def test_unknown_time_zone_is_a_config_error(render: Callable[..., Rendered]) -> None:
    on_mars = dataclasses.replace(
        sample_newsletter(),
        cadences=one_cadence(ScheduleConfig(kind="daily", timezone="Mars/Olympus")),
    )
    with pytest.raises(
        ConfigError, match=r"newsletters\.daily\.schedule\] timezone 'Mars/Olympus'"
    ):
        render(newsletter=on_mars)


def test_default_subject(render: Callable[..., Rendered]) -> None:
    assert render().subject == f"Transmission Daily: {SEED_TITLE} (+2 more)"
    assert render(sample_posts()[:1]).subject == f"Transmission Daily: {SEED_TITLE}"


def test_custom_subject_is_not_escaped_and_is_one_capped_line(
    render: Callable[..., Rendered],
) -> None:
    posts = sample_posts()[::-1]
    custom = sample_newsletter(subject="{{ posts[0].title }}\n  and {{ posts|length - 1 }} more")
    assert render(posts, newsletter=custom).subject == f"{SPECIAL_TITLE} and 2 more"
    long = sample_newsletter(subject="{% for p in posts %}{{ p.title }} {% endfor %}" * 3)
    subject = render(posts, newsletter=long).subject
    assert len(subject) <= SUBJECT_MAX_LENGTH
    assert subject.endswith("…")


def test_broken_subject_template_names_the_newsletter(render: Callable[..., Rendered]) -> None:
    with pytest.raises(ConfigError, match=r"newsletters\.daily\] subject"):
        render(newsletter=sample_newsletter(subject="{{ posts[0].nope }}"))


def test_premailer_runs_once_per_edition_not_per_reader(
    render: Callable[..., Rendered], premailer_calls: list[int]
) -> None:
    rendered = render()
    for n in range(3):
        personalize(rendered, unsubscribe_url=f"https://digest.example.org/u/{n}")
    assert len(premailer_calls) == 1


def test_premailer_cache_is_sized_from_the_environment() -> None:
    # Imported here, not at the top: render.py must be the first to import premailer, so
    # that the size it puts into the environment is the one premailer reads.
    import premailer.cache

    assert premailer.cache.cache.maxsize == int(os.environ["PREMAILER_CACHE_MAXSIZE"])


def test_personalize_escapes_the_url_in_html_only(render: Callable[..., Rendered]) -> None:
    url = 'https://digest.example.org/u/abc?n=daily&t=x"y'
    html, text = personalize(render(), unsubscribe_url=url)
    assert 'href="https://digest.example.org/u/abc?n=daily&amp;t=x&quot;y"' in html
    assert UNSUBSCRIBE_URL not in html
    assert f"Unsubscribe: {url}\n" in text


def test_archive_page_carries_no_reader_link(render: Callable[..., Rendered]) -> None:
    page = archive_html(render())
    assert not any(slot in page for slot in LINK_SLOTS.values())
    assert 'href="#"' not in page
    assert "You receive this because" not in page
    assert ">View in browser</a>" not in page  # the page itself
    footer = page.split('class="footer"', 1)[1].split("</td>", 1)[0]
    assert "<!--" not in footer  # the marks are gone
    links = _Elements(page).with_class("footer-link")
    assert [a["href"] for a in links] == [
        "https://digest.example.org/",
        "https://digest.example.org/archive/daily",
    ]
    assert {a["style"] for a in links} == {"color:#57606a"}  # as the email's links
    assert ">Subscribe</a> · <a" in page
    assert ">Past editions</a></p>" in page


def test_the_email_keeps_its_footer_and_carries_the_visitors_one_unseen(
    render: Callable[..., Rendered],
) -> None:
    html = render().html
    footer = html.split('class="footer"', 1)[1]
    assert "You receive this because you subscribed to Transmission Daily" in footer
    assert '<a class="footer-link" href="%%UNSUBSCRIBE_URL%%"' in footer
    shown = re.sub(r"<!--.*?-->", "", footer, flags=re.S)
    assert "Subscribe<" not in shown  # only in a comment, which no mail client shows
    assert "Past editions" not in shown


def test_an_archived_edition_without_marks_points_reader_links_nowhere() -> None:
    # An edition rendered before the marks, or by an editor's template without them.
    html = (
        '<p><a href="%%UNSUBSCRIBE_URL%%">Unsubscribe</a> <a href="%%PREFERENCES_URL%%">P</a></p>'
    )
    assert archive_html(Rendered("S", html, "t\n")) == (
        '<p><a href="#">Unsubscribe</a> <a href="#">P</a></p>'
    )


def test_a_czech_archive_page_invites_visitors_in_czech(now: datetime) -> None:
    rendered = Renderer(TEMPLATES, languages=["cs"]).render_edition(
        site=sample_site(),
        newsletter=replace(sample_newsletter(), language="cs"),
        posts=sample_posts(),
        edition_id="e1",
        now=now,
    )
    page = archive_html(rendered)
    assert ">Přihlásit se k odběru</a> · " in page
    assert ">Starší vydání</a>" in page


def test_feed_text_is_escaped_everywhere(render: Callable[..., Rendered]) -> None:
    evil = dataclasses.replace(
        sample_posts()[0],
        title="<script>alert(1)</script>",
        author="<b>Mallory</b>",
        link='https://evil.example/"><script>x()</script>',
        image_caption='" onerror="alert(2)',
    )
    rendered = render([evil, *sample_posts()])
    assert "<script" not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
    assert "&lt;b&gt;Mallory&lt;/b&gt;" in rendered.html
    page = _Elements(rendered.html)
    assert '>" onerror="alert(2)</p>' in rendered.html  # the caption: text, not an attribute
    assert not [a for _, a in page.elements if "onerror" in a]
    assert 'Russia &amp; "Allies" &lt;analysis&gt;</a>' in rendered.html
    assert f"\n{SPECIAL_TITLE}\n" in rendered.text  # plain text is not HTML-escaped


def test_image_alt_is_the_title_so_a_blocked_image_does_not_repeat_its_caption(
    render: Callable[..., Rendered],
) -> None:
    seed = sample_posts()[0]
    page = _Elements(render([seed]).html)
    assert page.with_class("lead-image")[0]["alt"] == SEED_TITLE
    assert render([seed]).html.count(SEED_CAPTION) == 1  # the caption line only
    no_caption = dataclasses.replace(seed, image_caption="")
    page = _Elements(render([no_caption]).html)
    assert page.with_class("lead-image")[0]["alt"] == SEED_TITLE
    assert not page.with_class("caption")


def test_text_part_stays_within_72_columns_except_urls(render: Callable[..., Rendered]) -> None:
    long_posts = [
        dataclasses.replace(
            post,
            title="A title that goes on " * 12,
            author="Someone with a name long enough to need a second line of its own",
            summary_html="<p>" + "word " * 60 + "</p><ul><li>" + "item " * 30 + "</li></ul>",
        )
        for post in sample_posts()
    ]
    text = render(long_posts).text
    long_lines = [line for line in text.splitlines() if len(line) > 72]
    assert all("https://" in line or "%%" in line for line in long_lines)
    assert "  - item item" in text
    assert "\n    item item" in text  # a list item's next lines are indented under it


def test_an_edition_needs_posts(render: Callable[..., Rendered]) -> None:
    with pytest.raises(ValueError, match="no posts"):
        render([])


def test_missing_templates_are_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=str(tmp_path)):
        Renderer(tmp_path)


def test_an_undated_post_shows_no_made_up_date(render: Callable[..., Rendered]) -> None:
    seed, bare, _ = sample_posts()
    undated = replace(seed, dated=False, title="Undated With Author")
    lonely = replace(bare, dated=False, title="Undated Alone")
    rendered = render([undated, lonely])
    assert "By Bruce Pannier\n" in rendered.text  # no " · <date>" after the author
    assert "27 November 2026\n" not in rendered.text.split("Undated With Author")[1]
    assert '<p class="byline" style=' in rendered.html
    assert ">By Bruce Pannier</p>" in rendered.html
    after_lonely = rendered.html.split("Undated Alone")[1].split("</td>")[0]
    assert "byline" not in after_lonely  # neither author nor date: no empty byline


def test_the_preheader_is_hidden_without_low_contrast_tricks(
    render: Callable[..., Rendered],
) -> None:
    html = render().html
    style = html.split('class="preheader"', 1)[1].split('style="', 1)[1].split('"', 1)[0]
    assert "display:none" in style.replace(" ", "")
    assert "color" not in style  # text coloured like the background: HTML_FONT_LOW_CONTRAST
    assert "font-size" not in style
    assert "opacity" not in style


def test_a_digest_of_several_sources_says_where_each_post_comes_from(
    render: Callable[..., Rendered],
) -> None:
    seed, bare, special = sample_posts()
    other = dataclasses.replace(special, source_id="bureau")
    several = dataclasses.replace(
        sample_newsletter(),
        source_ids=("transmission", "bureau"),
        source_titles=("Transmission Blog", ""),
    )
    rendered = render([seed, bare, other], newsletter=several)
    assert ">Transmission Blog · By Bruce Pannier · 27 November 2026</p>" in rendered.html
    assert ">Transmission Blog · 26 November 2026</p>" in rendered.html
    assert "\nbureau · By Ed Editor & Co · 25 November 2026\n" in rendered.text  # no title: id
    single = render([seed])
    assert "Transmission Blog" not in single.html
    assert ">By Bruce Pannier · 27 November 2026</p>" in single.html


def test_every_reader_link_slot_is_one_placeholder_a_feed_cannot_plant(
    render: Callable[..., Rendered],
) -> None:
    slots = list(LINK_SLOTS.values())
    planted = dataclasses.replace(
        sample_posts()[1],
        title=" ".join(slots),
        summary_html="".join(f'<p><a href="{slot}">Claim it</a></p>' for slot in slots),
    )
    rendered = render([planted])
    for slot in slots:
        assert rendered.html.count(f'href="{slot}"') == 1
        assert rendered.html.count(slot) == 1
        assert rendered.text.count(slot) == 1
    assert "\nPreferences: %%PREFERENCES_URL%%\n" in rendered.text
    page = archive_html(rendered)
    assert not any(slot in page for slot in slots)


def test_a_compact_digest_shows_a_title_byline_and_one_line_per_post(
    render: Callable[..., Rendered],
) -> None:
    compact = replace(sample_newsletter(), layout="compact")
    rendered = render(newsletter=compact)
    elements = _Elements(rendered.html)
    assert elements.with_class("lead-image") == []
    assert elements.with_class("read-more") == []
    assert len(elements.with_class("compact-title")) == 3
    assert len(elements.with_class("compact-byline")) == 3
    lines = re.findall(r'class="excerpt compact-excerpt"><p [^>]*>([^<]*)</p></div>', rendered.html)
    assert len(lines) == 3
    seed = lines[0]
    assert len(seed) <= 160
    assert seed.endswith("…")
    assert seed.startswith("Belarus is proving again")
    assert "Central Asia" not in rendered.html  # the excerpt's link is not in one line
    assert f">{SEED_TITLE}</a>" in rendered.html
    assert "By Bruce Pannier · 27 November 2026" in rendered.html
    # The text part says the same line.
    assert "Organization (CSTO) is not exactly a cohesive military alliance. The\nCSTO" in (
        rendered.text
    )
    assert "[1]" not in rendered.text
