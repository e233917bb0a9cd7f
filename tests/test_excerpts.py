"""digest.excerpts: leading text of any markup, to a budget, ending on a word."""

from __future__ import annotations

import pytest

from digest.excerpts import Block, Span, excerpt
from digest.sanitize import ELLIPSIS


def test_bare_text_becomes_paragraphs_at_blank_lines() -> None:
    result = excerpt("First line\nstill first.\n\n  Second.  ")
    assert result.html() == "<p>First line still first.</p><p>Second.</p>"
    assert not result.shortened


def test_inline_styles_and_links_survive_as_their_own_tags() -> None:
    html = (
        '<p>A <a href="https://e.org/x?a=1&amp;b=2"><b>bold</b> link</a>, <i>em</i>, '
        "<code>x&lt;y</code></p>"
    )
    result = excerpt(html)
    assert result.blocks == (
        Block(
            "p",
            (
                Span("A "),
                Span("bold", href="https://e.org/x?a=1&b=2", strong=True),
                Span(" link", href="https://e.org/x?a=1&b=2"),
                Span(", "),
                Span("em", em=True),
                Span(", "),
                Span("x<y", code=True),
            ),
        ),
    )
    assert result.html() == (
        '<p>A <a href="https://e.org/x?a=1&amp;b=2"><strong>bold</strong></a>'
        '<a href="https://e.org/x?a=1&amp;b=2"> link</a>, <em>em</em>, <code>x&lt;y</code></p>'
    )
    assert result.links == ["https://e.org/x?a=1&b=2"]


def test_lists_quotes_headings_and_pre_keep_their_shape() -> None:
    html = (
        "<h2>Heading</h2><blockquote><p>Quoted.</p></blockquote>"
        "<ol><li>one</li><li>two</li></ol><ul><li>dot</li></ul>"
        "<pre>  indented\n    code</pre>"
    )
    assert excerpt(html).html() == (
        "<p><strong>Heading</strong></p><blockquote>Quoted.</blockquote>"
        "<ol><li>one</li><li>two</li></ol><ul><li>dot</li></ul><pre>  indented\n    code</pre>"
    )


def test_images_figures_and_tables_are_left_out() -> None:
    html = (
        '<p>Before <img src="https://e.org/a.png" alt="alt"> after.</p>'
        "<figure><img src='https://e.org/b.png'><figcaption>Caption</figcaption></figure>"
        "<table><tr><td>cell</td></tr></table><p>End.</p>"
    )
    assert excerpt(html).html() == "<p>Before after.</p><p>End.</p>"


@pytest.mark.parametrize("budget", [40, 55, 80, 120])
def test_the_budget_is_kept_and_the_cut_ends_on_a_word(budget: int) -> None:
    html = "<p>" + " ".join(f"word{n}" for n in range(60)) + "</p><p>Later.</p>"
    result = excerpt(html, budget)
    text = result.blocks[-1].text
    assert result.shortened
    assert text.endswith(ELLIPSIS)
    assert len(text) <= budget + 1
    last = text[: -len(ELLIPSIS)].split()[-1]
    assert last.startswith("word")  # a whole word before the "…"
    assert last[4:].isdigit()
    assert int(last[4:]) == len(text[:-1].split()) - 1


def test_a_cut_closes_its_tags_and_leaves_the_link_whole() -> None:
    html = '<p>Start <a href="https://e.org/">a linked phrase that goes on and on</a> tail.</p>'
    result = excerpt(html, 25)
    assert result.html() == '<p>Start <a href="https://e.org/">a linked phrase</a>…</p>'


def test_a_cut_at_a_block_boundary_ends_the_previous_block() -> None:
    html = "<p>One two three.</p><p>Unbreakablelongwordthatdoesnotfitanywhere at all</p>"
    result = excerpt(html, 20)
    assert result.html() == "<p>One two three…</p>"


def test_pre_is_cut_by_whole_lines() -> None:
    html = "<pre>line one\nline two\nline three</pre>"
    assert excerpt(html, 18).html() == f"<pre>line one\nline two\n{ELLIPSIS}</pre>"


def test_wordpress_more_marker_and_footer_are_dropped() -> None:
    html = (
        "<p>Short teaser [&hellip;]</p>"
        "<p>The post <a href='https://e.org'>X</a> appeared first on Y.</p>"
    )
    result = excerpt(html)
    assert result.html() == f"<p>Short teaser{ELLIPSIS}</p>"
    assert result.shortened


def test_code_keeps_what_looks_like_noise() -> None:
    html = "<p>Write <code>body{margin:0}</code> and <code>&lt;p&gt;</code>.</p>"
    assert excerpt(html).blocks[0].text == "Write body{margin:0} and <p>."


def test_an_empty_or_imageless_body_gives_no_excerpt() -> None:
    assert not excerpt("")
    assert not excerpt("<p> </p><img src='https://e.org/a.png'>")
    assert excerpt("").html() == ""


def test_a_line_is_the_leading_text_of_every_block_as_one_plain_paragraph() -> None:
    source = (
        "<h2>Heading</h2><p>First <a href='https://example.org/a'>linked</a> words.</p>"
        "<ul><li>one item</li></ul><pre>code\n  indented</pre>" + "<p>more words here</p>" * 20
    )
    line = excerpt(source).line()
    [block] = line.blocks
    assert block.kind == "p"
    assert all(not span.href for span in block.spans)
    assert block.text.startswith("Heading First linked words. one item code indented more")
    assert len(block.text) <= 160
    assert block.text.endswith("…")
    assert excerpt("<p>Short.</p>").line().blocks[0].text == "Short."
    assert not excerpt("").line()
