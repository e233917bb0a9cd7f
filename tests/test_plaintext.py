"""digest.plaintext: wrapping at 72 without splitting words or URLs; links as references."""

from __future__ import annotations

from digest.excerpts import excerpt
from digest.plaintext import TEXT_WIDTH, excerpt_text, wrap

LONG_URL = "https://e.org/" + "-".join(["segment"] * 12)


def test_wrap_keeps_words_and_hyphenated_urls_whole() -> None:
    text = "Read " + LONG_URL + " and a well-known, co-operative long-winded sentence " * 3
    lines = wrap(text).splitlines()
    assert LONG_URL in lines  # alone on its line, not cut at a hyphen
    assert all(len(line) <= TEXT_WIDTH for line in lines if line != LONG_URL)
    assert not any(line.endswith("-") for line in lines)


def test_wrap_indents_and_keeps_line_breaks() -> None:
    assert wrap("one\ntwo", first="> ", rest="> ") == "> one\n> two"
    wrapped = wrap("word " * 30, first="  - ", rest="    ").splitlines()
    assert wrapped[0].startswith("  - word")
    assert all(line.startswith("    word") for line in wrapped[1:])


def test_links_become_numbered_references_one_number_per_url() -> None:
    result = excerpt_text(
        excerpt(
            '<p>See <a href="https://e.org/a">this</a> and <a href="https://e.org/b">that</a>,'
            ' <a href="https://e.org/a">this again</a> and <a href="https://e.org/c">'
            "https://e.org/c</a>.</p>"
        )
    )
    assert result.body == "See this [1] and that [2], this again [1] and https://e.org/c."
    assert result.reference_lines == ["[1] https://e.org/a", "[2] https://e.org/b"]


def test_a_link_split_across_styles_gets_one_marker() -> None:
    result = excerpt_text(excerpt('<p><a href="https://e.org/x"><b>Bold</b> part</a>.</p>'))
    assert result.body == "Bold part [1]."


def test_blocks_read_as_a_text_email() -> None:
    html = (
        "<h2>Heading</h2><p>Para.</p><ul><li>one</li><li>two</li></ul>"
        '<ol start="3"><li>three</li></ol><blockquote>Quoted words.</blockquote>'
        "<pre>x = 1\n  y = 2</pre>"
    )
    assert excerpt_text(excerpt(html)).body == (
        "Heading\n\nPara.\n\n  - one\n  - two\n\n  3. three\n\n> Quoted words.\n\n"
        "    x = 1\n      y = 2"
    )
