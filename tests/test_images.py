"""digest.images: which image leads a post, and how wide the email shows it."""

from __future__ import annotations

import pytest

from digest.images import (
    COLUMN_WIDTH,
    ImageCandidate,
    choose_lead,
    dimension,
    display_width,
    html_images,
    is_not_lead,
)

BASE = "https://e.org/2026/post"


@pytest.mark.parametrize(
    ("value", "pixels"),
    [("600", 600), (" 600px ", 600), ("600.5", 600), (640, 640), ("100%", 0), ("", 0),
     (None, 0), ("12em", 0), (True, 0)],
)  # fmt: skip
def test_dimension_reads_pixels_only(value: object, pixels: int) -> None:
    assert dimension(value) == pixels


@pytest.mark.parametrize(
    "candidate",
    [
        ImageCandidate("https://e.org/pixel.gif", 1, 1),
        ImageCandidate("https://e.org/p.png", 0, 1),  # only the height says it is a pixel
        ImageCandidate("https://e.org/me.jpg", 60, 60),  # an avatar
        ImageCandidate("https://e.org/thumb.jpg", 154, 96),  # a thumbnail
        ImageCandidate("https://e.org/rule.png", 600, 20),  # a divider
        ImageCandidate("https://secure.gravatar.com/avatar/abc?s=96"),
        ImageCandidate("http://feeds.feedburner.com/~ff/blog?i=x"),
        ImageCandidate("https://e.org/~ff/blog?d=y"),
        ImageCandidate("https://pubads.g.doubleclick.net/gampad/ad?iu=1"),
        ImageCandidate("https://pixel.wp.com/g.gif?blog=1"),
        ImageCandidate("https://e.org/images/spacer.gif"),
        ImageCandidate("https://s.w.org/images/core/emoji/14.0.0/72x72/1f600.png"),
    ],
)
def test_pixels_avatars_buttons_ads_and_thumbnails_never_lead(candidate: ImageCandidate) -> None:
    assert is_not_lead(candidate)
    assert choose_lead([candidate]) is None


def test_a_photo_of_any_declared_or_unknown_size_may_lead() -> None:
    for photo in (
        ImageCandidate("https://e.org/a.jpg"),
        ImageCandidate("https://e.org/uploads/adsum.jpg", 1200, 800),
        ImageCandidate("https://e.org/b.jpg", 320, 240),
    ):
        assert not is_not_lead(photo)


def test_the_first_image_that_fills_the_column_wins_else_the_widest() -> None:
    narrow = ImageCandidate("https://e.org/narrow.jpg", 300, 200)
    wider = ImageCandidate("https://e.org/wider.jpg", 480, 320)
    full = ImageCandidate("https://e.org/full.jpg", 1200, 800)
    unknown = ImageCandidate("https://e.org/unknown.jpg")
    assert choose_lead([narrow, full, unknown]) == full
    assert choose_lead([narrow, unknown, full]) == unknown
    assert choose_lead([narrow, wider]) == wider
    assert choose_lead([]) is None


def test_the_width_attribute_never_stretches_an_image() -> None:
    assert display_width(154) == 154
    assert display_width(400) == 400
    assert display_width(1200) == COLUMN_WIDTH
    assert display_width(0) == COLUMN_WIDTH  # not declared: the column, CSS keeps its own


def test_html_images_read_size_caption_and_absolute_url_before_sanitizing() -> None:
    html = (
        '<figure><figcaption>Before</figcaption><img src="1.png" alt="alt" width="800">'
        "<figcaption>Leaders &amp; friends</figcaption></figure>"
        '<p><img src="/a.png" alt="A &amp; &lt;B&gt;" height="90px"></p>'
        '<img src="https://e.org/t.png" title="T">'
        '<noscript><img src="https://e.org/hidden.png"></noscript>'
        '<img src="javascript:alert(1)"><img alt="no source">'
    )
    assert html_images(html, BASE) == [
        ImageCandidate("https://e.org/2026/1.png", 800, 0, "Before Leaders & friends"),
        ImageCandidate("https://e.org/a.png", 0, 90, "A & <B>"),
        ImageCandidate("https://e.org/t.png", 0, 0, "T"),
    ]
    assert html_images("<p>No image</p>", BASE) == []


def test_html_images_without_a_base_keep_only_absolute_urls() -> None:
    html = '<img src="/relative.png"><img src="https://e.org/abs.png">'
    assert [i.url for i in html_images(html, "")] == ["https://e.org/abs.png"]
