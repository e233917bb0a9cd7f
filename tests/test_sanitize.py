"""digest.sanitize: the allowlist, URL schemes, absolute URLs and plain text."""

from __future__ import annotations

import pytest

from digest.sanitize import (
    absolute_url,
    clean_html,
    clean_identifier,
    plain_text,
)

BASE = "https://transmission.example.org/2026/11/post"


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "jav&#x61;script:alert(1)",
        "jav&#97;script:alert(1)",
        "javascript&colon;alert(1)",
        " java\tscript:alert(1)",
        "java\nscript:alert(1)",
        "\x01javascript:alert(1)",
        "java\u200bscript:alert(1)",
        "vbscript:msgbox(1)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "file:///etc/passwd",
        "ftp://example.org/x",
        "http://",
        "http://[::1",
        "mailto:",
        "",
        "   ",
    ],
)
def test_absolute_url_refuses_unsafe_or_unusable_urls(url: str) -> None:
    assert absolute_url(url, BASE) == ""


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/images/a.jpg", "https://transmission.example.org/images/a.jpg"),
        ("b.jpg", "https://transmission.example.org/2026/11/b.jpg"),
        ("../x", "https://transmission.example.org/2026/x"),
        ("//cdn.example.org/c.jpg", "https://cdn.example.org/c.jpg"),
        ("#notes", "https://transmission.example.org/2026/11/post#notes"),
        ("HTTP://Example.org/A", "HTTP://Example.org/A"),
        ("  https://example.org/x\n", "https://example.org/x"),
        ("https://example.org/a b", "https://example.org/a%20b"),
        ("mailto:editor@example.org", "mailto:editor@example.org"),
    ],
)
def test_absolute_url_resolves_against_base(url: str, expected: str) -> None:
    assert absolute_url(url, BASE) == expected


def test_absolute_url_without_usable_base_drops_relative_urls() -> None:
    assert absolute_url("/x", "") == ""
    assert absolute_url("/x", "file:///tmp/feed.xml") == ""
    assert absolute_url("https://example.org/x", "") == "https://example.org/x"


def test_clean_html_removes_scripts_handlers_styles_and_frames() -> None:
    dirty = (
        '<p style="color:red" onclick="steal()" class="lead" id="x">Hello'
        "<script>alert(1)</script></p>"
        '<img src="/a.png" onerror="steal()" srcset="/big.png 2x">'
        '<iframe src="https://evil.example/"></iframe><style>p{}</style>'
        '<form action="/x"><input name="q"><button>Go</button></form>'
        '<svg onload="steal()"><text>svg</text></svg><object data="x.swf"></object>'
    )
    cleaned = clean_html(dirty, BASE)
    for needle in ("script", "alert", "onclick", "onerror", "style", "class=", "id=", "srcset",
                   "iframe", "evil", "form", "input", "svg", "onload", "object"):  # fmt: skip
        assert needle not in cleaned
    assert cleaned.startswith("<p>Hello</p>")
    assert '<img src="https://transmission.example.org/a.png">' in cleaned


@pytest.mark.parametrize(
    "href",
    [
        "javascript:alert(1)",
        "jav&#x61;script:alert(1)",
        "&#106;avascript:alert(1)",
        "java&#x09;script:alert(1)",
        " javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
    ],
)
def test_clean_html_removes_javascript_urls(href: str) -> None:
    cleaned = clean_html(f'<a href="{href}">click</a><img src="{href}">', BASE)
    assert "href" not in cleaned
    assert "<img" not in cleaned
    assert "script" not in cleaned.lower()
    assert "click" in cleaned


def test_clean_html_makes_urls_absolute_and_links_safe() -> None:
    cleaned = clean_html(
        '<p><a href="../other">other</a> <a href="mailto:ed@example.org">mail</a></p>'
        '<figure><img src="pic.jpg" alt="A"><figcaption>Cap</figcaption></figure>',
        BASE,
    )
    assert (
        '<a href="https://transmission.example.org/2026/other" rel="noopener noreferrer">'
        in cleaned
    )
    assert '<a href="mailto:ed@example.org" rel="noopener noreferrer">' in cleaned
    assert 'src="https://transmission.example.org/2026/11/pic.jpg"' in cleaned
    assert "<figcaption>Cap</figcaption>" in cleaned


def test_clean_html_keeps_article_markup_and_maps_headings() -> None:
    source = (
        "<h1>Top</h1><h3>Sub</h3><h6>Small</h6><blockquote><p>Quote</p></blockquote>"
        "<ul><li><em>a</em></li><li><strong>b</strong></li></ul><pre><code>x &lt; y</code></pre>"
    )
    cleaned = clean_html(source, BASE)
    assert cleaned == (
        "<h2>Top</h2><h3>Sub</h3><h4>Small</h4><blockquote><p>Quote</p></blockquote>"
        "<ul><li><em>a</em></li><li><strong>b</strong></li></ul><pre><code>x &lt; y</code></pre>"
    )


def test_clean_html_of_nothing_is_empty() -> None:
    assert clean_html("", BASE) == ""
    assert clean_html("  \n ", BASE) == ""
    assert clean_html("<script>only()</script>", BASE) == ""


def test_plain_text_strips_tags_decodes_entities_and_collapses_whitespace() -> None:
    assert plain_text("  A &amp; B <em>in\n\tbold</em>  ") == "A & B in bold"
    assert plain_text("Caf&eacute; &#8212; <script>alert(1)</script>news") == "Café — news"
    assert plain_text("AT&T < 3") == "AT&T < 3"
    assert plain_text("line\x1bone\ttwo\x00") == "line one two"
    assert plain_text("") == ""
    assert plain_text("<p>First</p><p>second<br>line</p>") == "First second line"


def test_plain_text_drops_format_characters_but_keeps_those_of_the_writing() -> None:
    # A right-to-left override would reverse what follows it; a zero-width space, BOM
    # or soft hyphen is invisible noise.
    assert plain_text("Safe\u202etxt.exe title") == "Safetxt.exe title"
    assert plain_text("zero\u200bwidth\ufeff soft\u00adhyphen") == "zerowidth softhyphen"
    assert plain_text("&#x202E;override &#8203;ref") == "override ref"
    # Joiners (emoji sequences, Persian), bidi marks and emoji tags stay.
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert plain_text(f"Family {family}") == f"Family {family}"
    assert plain_text("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645") == (
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"
    )
    scotland = "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"
    assert plain_text(f"\u200f{scotland}") == f"\u200f{scotland}"


def test_clean_identifier_removes_nul_control_and_format_characters() -> None:
    assert clean_identifier("id-1\x00") == "id-1"
    assert clean_identifier(" tag:x,2026:\u200b1\u202e\x01\t\n ") == "tag:x,2026:1"
    assert clean_identifier("g\ud800") == "g"  # a lone surrogate cannot be stored either
    assert clean_identifier("\x00\u200b") == ""
    assert clean_identifier("https://e.org/caf\u00e9 x") == "https://e.org/caf\u00e9 x"
