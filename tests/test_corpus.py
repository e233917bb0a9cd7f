"""The corpus of awkward feeds, one file per defect class, rendered: HTML and text part."""

from __future__ import annotations

import html
import re
from dataclasses import replace
from html.parser import HTMLParser

import pytest

from digest.models import Rendered
from digest.render import Renderer

from support.corpus import TEMPLATES, corpus_names, corpus_posts, render_corpus
from support.edition import sample_newsletter


class _Images(HTMLParser):
    def __init__(self, document: str) -> None:
        super().__init__()
        self.images: list[dict[str, str]] = []
        self.feed(document)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append({name: value or "" for name, value in attrs})


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(TEMPLATES)


def _post_html(rendered: Rendered, title: str) -> str:
    """The HTML of one post: from its title to the next post's title or the footer."""
    after = rendered.html.split(f">{title}</a>", 1)[1]
    return re.split(r'class="post-title"|class="footer"', after, maxsplit=1)[0]


# --- lead images --------------------------------------------------------------------


def test_lead_images_skip_pixels_avatars_buttons_ads_and_small_thumbnails() -> None:
    posts = {post.title: post for post in corpus_posts("lead-images")}
    harbour = posts["Avatar And Pixel Before The Photo"]
    assert harbour.image_url == "https://images.example.org/photos/harbour.jpg"
    assert (harbour.image_width, harbour.image_caption) == (1200, "The harbour at dawn")
    assert posts["Feed Service Button And Advert"].image_url == ""
    assert posts["Only A Small Thumbnail"].image_url == ""
    chart = posts["A Narrow Chart"]
    assert (chart.image_url, chart.image_width) == (
        "https://images.example.org/charts/prices-400.png",
        400,
    )


def test_no_tracking_pixel_avatar_or_button_reaches_the_reader(renderer: Renderer) -> None:
    rendered = render_corpus("lead-images", renderer=renderer)
    sources = [image["src"] for image in _Images(rendered.html).images]
    assert sources == [
        "https://images.example.org/photos/harbour.jpg",
        "https://images.example.org/charts/prices-400.png",
        "https://images.example.org/photos/market.jpg",
    ]
    for banned in ("gravatar", "track.gif", "feedburner", "doubleclick", "note-154"):
        assert banned not in rendered.html


def test_an_image_is_never_stretched_past_its_declared_width(renderer: Renderer) -> None:
    rendered = render_corpus("lead-images", renderer=renderer)
    images = {i["src"]: i for i in _Images(rendered.html).images if i.get("class") == "lead-image"}
    assert images["https://images.example.org/charts/prices-400.png"]["width"] == "400"
    assert images["https://images.example.org/photos/harbour.jpg"]["width"] == "536"
    for image in images.values():
        style = image["style"].replace(" ", "")
        assert "width:auto" in style  # browsers keep its own size; Outlook reads width=
        assert "max-width:100%" in style
        assert "width:100%" not in style.replace("max-width:100%", "")


def test_the_lead_image_is_shown_once_and_its_caption_once(renderer: Renderer) -> None:
    rendered = render_corpus("lead-images", renderer=renderer)
    market = _post_html(rendered, "The Same Photo Twice")
    assert market.count("photos/market.jpg") == 1
    assert market.count("The market square") == 1  # the caption line; alt is the title
    (image,) = [i for i in _Images(rendered.html).images if "market" in i["src"]]
    assert image["alt"] == "The Same Photo Twice"
    assert "Stallholders returned" in market


# --- bodies -------------------------------------------------------------------------


def test_every_body_gives_an_excerpt_whatever_its_markup(renderer: Renderer) -> None:
    rendered = render_corpus("bodies", renderer=renderer)
    plain = _post_html(rendered, "Plain Text Only")
    assert "The ferry timetable changes on Monday.</p>" in plain
    assert "the evening boat is unchanged.</p>" in plain  # the second paragraph too
    listed = _post_html(rendered, "A List After The First Paragraph")
    assert "<ul" in listed
    assert listed.count("<li") == 4
    assert '<ol start="4"' in listed
    soup = _post_html(rendered, "Div Soup")
    assert "Builders found a Roman well under the car park.</p>" in soup
    assert "Digging stops until spring.<br>Visitors are welcome." in soup
    text = rendered.text
    assert "The ferry timetable changes on Monday." in text
    assert "the library extended its hours," in text
    assert "Builders found a Roman well under the car park." in text


def test_a_long_body_is_cut_on_a_word_to_the_budget(renderer: Renderer) -> None:
    rendered = render_corpus("bodies", renderer=renderer)
    long = _post_html(rendered, "A Very Long Body")
    assert "A fourth paragraph" not in long
    assert "pumps at the lower lock are now…</p>" in long
    assert "A fourth paragraph" not in rendered.text
    assert "the lower lock are now…" in " ".join(rendered.text.split())


def test_a_picture_only_body_shows_its_picture_once_and_no_empty_excerpt(
    renderer: Renderer,
) -> None:
    rendered = render_corpus("bodies", renderer=renderer)
    picture = _post_html(rendered, "Only A Picture")
    assert picture.count("sunset.jpg") == 1
    assert picture.count("Sunset over the estuary") == 1
    assert 'class="excerpt"' not in picture
    assert "Read more" in picture


# --- noise --------------------------------------------------------------------------


def test_markup_css_and_shortcodes_are_not_printed_as_text(renderer: Renderer) -> None:
    rendered = render_corpus("noise", renderer=renderer)
    posts_html = rendered.html.split('class="post"', 1)[1].split('class="footer"')[0]
    for part in (posts_html, rendered.text):
        for noise in ("&lt;p", "<p>The mayor", "&lt;strong", "margin:0;padding:0", "{margin",
                      "@media (max", "[if mso]", "[caption", "[/caption]", "appeared first on",
                      "[…]", "A quiet street"):  # fmt: skip
            assert noise not in part, noise
    assert "The mayor resigned on Friday." in rendered.text
    assert "The newsletter itself starts here, and {braces} in prose stay." in rendered.text
    assert "close the street to cars on Sundays…" in rendered.html


# --- wide content -------------------------------------------------------------------


def test_wide_content_is_made_to_wrap(renderer: Renderer) -> None:
    rendered = render_corpus("wide", renderer=renderer)
    pre = rendered.html.split("<pre", 1)[1].split(">", 1)[0]
    assert "white-space:pre-wrap" in pre.replace(" ", "")
    posts = [part.split(">", 1)[0] for part in rendered.html.split('<td class="post"')[1:]]
    assert len(posts) == 3
    for cell in posts:
        assert "overflow-wrap:anywhere" in cell.replace(" ", "")
        assert "word-break:break-word" in cell.replace(" ", "")
    assert "wide-cell" not in rendered.html  # a table is not the post's leading text
    assert "Results by district:" in rendered.html
    assert 'File "/srv/app/very/deeply/nested/package' in rendered.text


# --- the text part ------------------------------------------------------------------


def test_the_text_part_has_no_markdown_and_never_splits_a_url(renderer: Renderer) -> None:
    text = render_corpus("text-part", renderer=renderer).text
    for artifact in ("## ", "](", "[](", "![", "**"):
        assert artifact not in text, artifact
    assert "\nWhat happened\n" in text
    # The linked image went with the other pictures: its link has no text to number.
    assert "The report [1] came out, with a map, and it is at" in " ".join(text.split())
    assert (
        "\n[1] https://text.example.org/report-on-the-state-of-the-roads-in-the-northern-districts-2026-edition\n"
        in text
    )
    assert "[2]" not in text
    bare = "https://text.example.org/the-full-report-on-the-state-of-the-roads-in-the-northern-districts.pdf"
    assert f"\n{bare}\n" in text  # a URL longer than a line gets a line of its own, whole
    assert "\n> The roads are a disgrace, said the mayor" in text
    assert all(
        len(line) <= 72 for line in text.splitlines() if "https://" not in line and "%%" not in line
    )


def test_a_long_title_is_wrapped_in_the_text_part(renderer: Renderer) -> None:
    text = render_corpus("text-part", renderer=renderer).text
    title_lines = text.split("---\n\n", 1)[1].split("\n26 November 2026")[0].splitlines()
    assert len(title_lines) >= 3
    assert all(len(line) <= 72 for line in title_lines)
    assert " ".join(title_lines).startswith("A headline that the newsroom forgot to shorten")


@pytest.mark.parametrize("name", corpus_names())
def test_every_corpus_feed_gives_a_compact_digest_of_one_line_per_post(
    renderer: Renderer, name: str
) -> None:
    compact = replace(sample_newsletter(), source_ids=(name,), layout="compact")
    rendered = render_corpus(name, renderer=renderer, newsletter=compact)
    assert _Images(rendered.html).images == []
    assert "Read more" not in rendered.html
    titles = rendered.html.count('class="compact-title"')
    assert titles == len(corpus_posts(name))
    lines = re.findall(r'class="excerpt compact-excerpt">(.*?)</div>', rendered.html, re.DOTALL)
    assert 0 < len(lines) <= titles
    for line in lines:
        assert re.fullmatch(r'<p style="[^"]*">[^<]*</p>', line), line
        assert len(html.unescape(line[line.index(">") + 1 : -4])) <= 160
