"""The HTML size budget: a digest of many long posts stays under Gmail's clipping limit
with its footer whole, by shorter excerpts, no images and finally a link to the rest."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import jinja2
import pytest

from digest.budget import HTML_BUDGET
from digest.models import Post, Rendered
from digest.render import Renderer, personalize

from support.edition import long_posts, sample_newsletter, sample_site

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "email"
NOW = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
EDITION_URL = "https://digest.example.org/e/big-edition"
# A reader's links as long as real ones get: a signed token of a long subscriber id.
UNSUBSCRIBE = "https://digest.example.org/u/" + "t" * 180
PREFERENCES = "https://digest.example.org/p/" + "p" * 180
VOID = {"meta", "img", "br", "hr", "link", "input", "col", "area", "base", "wbr", "source"}
MORE = re.compile(r"(\d+) more posts? in this edition:")


class _Balance(HTMLParser):
    """Fails on any end tag that does not close the innermost open element."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.open[-1] if self.open else ''}>")
            return
        self.open.pop()


def assert_well_formed(document: str) -> None:
    parser = _Balance()
    parser.feed(document)
    parser.close()
    assert parser.errors == []
    assert parser.open == []


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(TEMPLATES)


def render(renderer: Renderer, posts: list[Post]) -> Rendered:
    return renderer.render_edition(
        site=sample_site(),
        newsletter=sample_newsletter(),
        posts=posts,
        edition_id="big-edition",
        now=NOW,
    )


def shown_titles(document: str) -> list[str]:
    return re.findall(r'class="post-title-link"[^>]*>([^<]*)</a>', document)


def reader_copy(rendered: Rendered) -> str:
    page, _ = personalize(rendered, unsubscribe_url=UNSUBSCRIBE, preferences_url=PREFERENCES)
    return page


def test_a_digest_of_101_long_posts_fits_with_its_footer_and_links_the_rest(
    renderer: Renderer,
) -> None:
    posts = long_posts(101)
    rendered = render(renderer, posts)
    page = reader_copy(rendered)
    assert len(page.encode("utf-8")) <= HTML_BUDGET
    assert_well_formed(page)
    # The footer, whole, at the end.
    footer = page[page.index('class="footer"') :]
    assert f'href="{UNSUBSCRIBE}"' in footer
    assert f'href="{PREFERENCES}"' in footer
    for line in sample_site().postal_address.splitlines():
        assert line in footer
    # The first posts, in order, then the count of the rest and the edition's page.
    titles = shown_titles(page)
    assert 1 < len(titles) < 101
    assert titles == [post.title for post in posts[: len(titles)]]
    more = MORE.search(page)
    assert more is not None
    assert int(more.group(1)) == 101 - len(titles)
    assert f'href="{EDITION_URL}#all-posts"' in page
    assert page.index(more.group(0)) < page.index('class="footer"')
    # Posts were made small before any was left out.
    assert 'class="lead-image"' not in page
    assert "Read more" not in page
    # The text part keeps every post.
    assert all(post.title[:40] in rendered.text for post in posts)


@pytest.mark.parametrize("count", [30, 60, 101, 300])
def test_every_size_of_digest_is_within_the_budget_and_cut_in_order(
    renderer: Renderer, count: int
) -> None:
    posts = long_posts(count)
    page = reader_copy(render(renderer, posts))
    assert len(page.encode("utf-8")) <= HTML_BUDGET
    assert_well_formed(page)
    titles = shown_titles(page)
    assert titles == [post.title for post in posts[: len(titles)]]
    excerpts = re.findall(r'<div class="excerpt">(.*?)</div>', page, re.DOTALL)
    longest = max(len(re.sub(r"<[^>]+>|\s+", "", text)) for text in excerpts)
    if 'class="lead-image"' not in page:  # images go only after excerpts were shortened
        assert longest <= 160
    if MORE.search(page):  # posts go only after images and "Read more" lines
        assert 'class="lead-image"' not in page
        assert "Read more" not in page
    else:
        assert len(titles) == count


def test_a_digest_within_the_budget_is_left_whole(renderer: Renderer) -> None:
    posts = long_posts(10)
    page = render(renderer, posts).html
    assert shown_titles(page) == [post.title for post in posts]
    assert page.count('class="lead-image"') == 10
    assert page.count("Read more") == 10
    assert "more-posts" not in page
    assert MORE.search(page) is None


def test_the_budget_costs_no_second_premailer_run(
    renderer: Renderer, premailer_calls: list[int]
) -> None:
    page = render(renderer, long_posts(300)).html
    assert MORE.search(page) is not None
    assert len(premailer_calls) == 1


def test_the_more_line_counts_one_post_in_the_singular() -> None:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, extensions=["jinja2.ext.i18n"]
    )
    env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
    template = env.get_template("_more.html")
    one = template.render(more_posts=1, archive_url=EDITION_URL)
    assert "1 more post in this edition:" in one
    assert f'href="{EDITION_URL}#all-posts"' in one
    assert "2 more posts in this edition:" in template.render(more_posts=2, archive_url="x")
