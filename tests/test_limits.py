"""Field limits: text cut on a word with an ellipsis, HTML cut into well-formed HTML, every
field of a post within its limit, and what was cut counted for the report."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from digest.models import Post
from digest.sanitize import clean_html
from digest.sources.limits import (
    MAX_CATEGORIES,
    MAX_CATEGORY,
    MAX_CONTENT,
    MAX_GUID,
    MAX_ITEMS,
    MAX_SUMMARY,
    MAX_TITLE,
    MAX_URL,
    Cuts,
    cap_post,
    shorten_html,
    shorten_text,
)

POST = Post(
    source_id="feed",
    guid="g",
    title="A title",
    link="https://transmission.example.org/a",
    published=datetime(2026, 11, 26, tzinfo=UTC),
)


def test_text_is_cut_on_a_word_with_an_ellipsis() -> None:
    assert shorten_text("short", 10) == "short"
    assert shorten_text("The dictator's new calendar, explained", 20) == "The dictator's new…"
    assert shorten_text("x" * 50, 20) == "x" * 19 + "…"  # no word boundary: cut in the word
    assert len(shorten_text("word " * 1000, MAX_TITLE)) <= MAX_TITLE


def well_formed(fragment: str) -> bool:
    """Sanitizing again changes nothing: no tag is open, cut or unbalanced."""
    return clean_html(fragment, "") == fragment


@pytest.mark.parametrize("limit", [40, 41, 57, 60, 75, 90, 200])
def test_html_is_cut_between_tags_and_stays_well_formed(limit: int) -> None:
    html = clean_html(
        '<div><p>First <a href="https://e.org/x?a=1&amp;b=2" title="a &gt; b">linked words'
        "</a> and <em>emphasis &amp; more</em> text.</p><ul><li>one item</li><li>two "
        "items</li></ul><table><tr><td>cell text here</td></tr></table></div>",
        "",
    )
    cut = shorten_html(html, limit)
    assert len(cut) <= limit
    assert well_formed(cut)
    assert cut.count("…") == 1
    assert "&amp" not in cut or "&amp;" in cut  # no entity cut in half


def test_html_of_one_long_word_or_deep_nesting_still_fits() -> None:
    word = clean_html("<p>" + "a" * 10_000 + "</p>", "")
    assert shorten_html(word, 100) == "<p>" + "a" * 92 + "…</p>"
    nested = clean_html("<b>" * 5_000 + "deep text" + "</b>" * 5_000, "")
    cut = shorten_html(nested, 1_000)
    assert len(cut) <= 1_000
    assert well_formed(cut)
    assert "deep text" in cut


def test_every_field_of_a_post_is_capped_and_named() -> None:
    huge = Post(
        source_id="feed",
        guid="g" * (MAX_GUID + 1),
        title="word " * 1_000_000,  # 5 MB
        link="https://transmission.example.org/" + "a" * MAX_URL,
        published=POST.published,
        author="An Author " * 1_000,
        summary_html="<p>" + "summary text " * 10_000 + "</p>",
        content_html="<p>" + "content text " * 100_000 + "</p>",
        image_url="https://transmission.example.org/" + "i" * MAX_URL,
        image_caption="caption " * 1_000,
        categories=tuple(f"category {n} " + "x" * 100 for n in range(100)),
    )
    capped, cut = cap_post(huge)
    assert set(cut) == {
        "guid", "title", "link", "author", "summary_html", "content_html", "image_url",
        "image_caption", "categories",
    }  # fmt: skip
    assert len(capped.title) <= MAX_TITLE
    assert capped.title.endswith("word…")
    assert len(capped.summary_html) <= MAX_SUMMARY
    assert len(capped.content_html) <= MAX_CONTENT
    assert capped.content_html.endswith("text…</p>")
    assert (capped.link, capped.image_url, capped.image_caption) == ("", "", "")
    assert capped.guid.startswith("sha256:")
    assert cap_post(huge)[0].guid == capped.guid  # the same at every fetch
    assert len(capped.categories) == MAX_CATEGORIES
    assert all(len(term) <= MAX_CATEGORY for term in capped.categories)


def test_a_post_within_the_limits_is_left_alone() -> None:
    assert cap_post(POST) == (POST, [])


def test_cuts_are_reported_in_one_line_per_kind() -> None:
    cuts = Cuts(items_found=MAX_ITEMS + 700)
    assert (
        cuts.problems()[0]
        == f"1,200 items, more than digest takes from one fetch: kept the first {MAX_ITEMS}"
    )
    long_title, cut = cap_post(Post("feed", "g", "word " * 100, "", POST.published))
    cuts.add(long_title, cut)
    cuts.add(*cap_post(Post("feed", "h", "word " * 200, "", POST.published)))
    cuts.add(POST, [])
    [_, line] = cuts.problems()
    assert line.startswith(
        "fields cut to digest's limits: the title (to 300 characters) of 2 items"
    )
    assert line.endswith(f"(first: item '{long_title.title}')")
    assert Cuts().problems() == []
