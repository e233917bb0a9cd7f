"""digest.lint and digest.lint_html: one hand-made message per finding, and a clean digest."""

from __future__ import annotations

from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import pytest

from digest.lint import HTML_BUDGET, ONCE, SHOWN_PER_CODE, Finding, Level, lint_message
from digest.message import build_message

from support.corpus import sample_message
from support.edition import sample_newsletter, sample_site

UNSUBSCRIBE = "https://digest.example.org/u/token"
IMAGE = '<img src="https://cdn.example.org/a.jpg" alt="A map" width="536">'
CLEAN = f"""<!DOCTYPE html>
<html><head><style>@media (max-width: 620px) {{ .post {{ padding: 0 !important }} }}</style></head>
<body><table role="presentation" width="100%"><tr><td style="max-width: 900px">
<!--[if mso]><table width="700"><tr><td><![endif]-->
{IMAGE}
<p><a href="https://example.org/a">Read</a> · <a href="mailto:desk@example.org">Write</a>
· <a href="tel:+420221122111">Call</a> · <a name="top">top</a></p>
<p><a href="{UNSUBSCRIBE}">Unsubscribe</a></p>
</td></tr></table></body></html>
"""


def wire(now: datetime, html: str = CLEAN, **changes: Any) -> bytes:
    arguments: dict[str, Any] = {
        "subject": "Transmission Daily: a test",
        "html": html,
        "text": f"A test\n\nUnsubscribe: {UNSUBSCRIBE}\n",
        "site": sample_site(),
        "newsletter": sample_newsletter(),
        "recipient": "ana@example.net",
        "message_id": "<0123456789abcdef@example.org>",
        "unsubscribe_url": UNSUBSCRIBE,
        "now": now,
    }
    return build_message(**(arguments | changes))


def parsed(data: bytes) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(message, EmailMessage)
    return message


def body(html: str) -> str:
    return f"<!DOCTYPE html><html><body>{html}</body></html>\n"


def codes(findings: tuple[Finding, ...]) -> list[tuple[Level, str]]:
    return [(finding.level, finding.code) for finding in findings]


def only(findings: tuple[Finding, ...]) -> Finding:
    assert len(findings) == 1, findings
    return findings[0]


def test_a_clean_message_has_no_findings_and_its_html_size(now: datetime) -> None:
    lint = lint_message(wire(now))
    assert lint.findings == ()
    assert (lint.errors, lint.warnings) == (0, 0)
    assert lint.html_bytes == len(CLEAN.replace("\n", "\r\n").encode("utf-8"))


def test_the_sample_digest_is_clean(now: datetime) -> None:
    lint = lint_message(sample_message(now))
    assert lint.findings == ()
    assert 0 < lint.html_bytes < HTML_BUDGET


def test_bytes_and_a_parsed_message_give_the_same_findings(now: datetime) -> None:
    data = wire(now, html=body('<img src="/a.jpg">'))
    assert lint_message(data) == lint_message(parsed(data))
    assert lint_message(data).findings


def test_an_unknown_charset_is_read_as_utf8(now: datetime) -> None:
    data = wire(now, html=body('<img src="/a.jpg" alt="é" width="9">'))
    html_charset = b'Content-Type: text/html; charset="utf-8"'
    assert html_charset in data
    odd = data.replace(html_charset, b'Content-Type: text/html; charset="x-unknown"')
    finding = only(lint_message(odd).findings)
    assert finding.code == "image-url"


def test_html_over_the_budget_is_an_error_that_gives_the_size(now: datetime) -> None:
    html = body("<p>" + "é and more words " * 6000 + "</p>")
    lint = lint_message(wire(now, html=html))
    finding = only(lint.findings)
    assert (finding.level, finding.code) == (Level.ERROR, "html-size")
    assert lint.html_bytes > HTML_BUDGET
    assert f"{lint.html_bytes:,} bytes" in finding.message
    assert "95,000" in finding.message
    assert "102 KB" in finding.message
    assert lint.errors == 1
    assert lint_message(wire(now, html=html), budget=len(html.encode()) * 2).findings == ()


@pytest.mark.parametrize(
    ("image", "level", "code", "words"),
    [
        ('<img src="https://x.example/a.jpg" width="100">', Level.WARNING, "image-alt", "alt"),
        ('<img src="https://x.example/a.jpg" alt="">', Level.WARNING, "image-size", "width"),
        ('<img src="/img/a.jpg" alt="" width="100">', Level.ERROR, "image-url", "relative"),
        ('<img src="img/a.jpg" alt="" width="100">', Level.ERROR, "image-url", "relative"),
        ('<img src="//x.example/a.jpg" alt="" width="9">', Level.ERROR, "image-url", "relative"),
        ('<img src="http://x.example/a" alt="" width="9">', Level.WARNING, "image-http", "https"),
        ('<img src="data:image/png;base64,A" alt="" width="9">', Level.ERROR, "image-url", "data:"),
        ('<img alt="" width="9">', Level.ERROR, "image-url", "no src"),
    ],
)  # fmt: skip
def test_each_image_problem(now: datetime, image: str, level: Level, code: str, words: str) -> None:
    finding = only(lint_message(wire(now, html=body(image))).findings)
    assert (finding.level, finding.code) == (level, code)
    assert words in finding.message
    assert finding.message.startswith("<img")


@pytest.mark.parametrize(
    ("href", "level", "code"),
    [
        ("/2026/11/post", Level.ERROR, "link-url"),
        ("post.html", Level.ERROR, "link-url"),
        ("#footnote-1", Level.ERROR, "link-url"),
        ("http://example.org/a", Level.WARNING, "link-http"),
        ("javascript:alert(1)", Level.ERROR, "link-url"),
        ("ftp://example.org/file", Level.ERROR, "link-url"),
    ],
)
def test_each_link_problem_names_the_link(
    now: datetime, href: str, level: Level, code: str
) -> None:
    finding = only(lint_message(wire(now, html=body(f'<a href="{href}">x</a>'))).findings)
    assert (finding.level, finding.code) == (level, code)
    assert f'<a href="{href}">' in finding.message


def test_a_long_url_is_shortened_in_the_finding(now: datetime) -> None:
    url = "http://example.org/" + "a" * 300
    finding = only(lint_message(wire(now, html=body(f'<a href="{url}">x</a>'))).findings)
    assert url not in finding.message
    assert "http://example.org/aaaa" in finding.message
    assert "…" in finding.message


@pytest.mark.parametrize("name", ONCE)
def test_a_missing_header_is_an_error(now: datetime, name: str) -> None:
    message = parsed(wire(now))
    del message[name]
    finding = only(lint_message(message).findings)
    assert (finding.level, finding.code) == (Level.ERROR, "missing-header")
    assert finding.message == f"no {name} header"


def test_a_repeated_header_is_an_error(now: datetime) -> None:
    data = wire(now).replace(b"\r\nDate: ", b"\r\nDate: Fri, 27 Nov 2026 08:00:00 +0000\r\nDate: ")
    finding = only(lint_message(data).findings)
    assert (finding.level, finding.code) == (Level.ERROR, "repeated-header")
    assert "Date appears 2 times" in finding.message


def test_one_click_needs_its_exact_value(now: datetime) -> None:
    message = parsed(wire(now))
    message.replace_header("List-Unsubscribe-Post", "List-Unsubscribe=Yes")
    finding = only(lint_message(message).findings)
    assert (finding.level, finding.code) == (Level.ERROR, "one-click")
    assert "List-Unsubscribe=Yes" in finding.message


@pytest.mark.parametrize(
    ("value", "level"),
    [
        ("<mailto:leave@example.org?subject=unsubscribe>", Level.ERROR),
        ("<http://digest.example.org/u/t>, <mailto:leave@example.org>", Level.WARNING),
    ],
)
def test_list_unsubscribe_needs_an_https_link(now: datetime, value: str, level: Level) -> None:
    message = parsed(wire(now))
    message.replace_header("List-Unsubscribe", value)
    finding = only(lint_message(message).findings)
    assert (finding.level, finding.code) == (level, "unsubscribe-link")
    assert "base_url" in finding.message


def same_headers(message: EmailMessage) -> EmailMessage:
    """A message with the headers of ``message`` but none of its MIME structure."""
    copy = EmailMessage(policy=policy.default)
    for name, value in message.items():
        if not name.lower().startswith(("content-", "mime-")):
            copy[name] = value
    return copy


def test_a_message_without_a_text_part(now: datetime) -> None:
    html_only = same_headers(parsed(wire(now)))
    html_only.set_content(CLEAN, subtype="html")
    finding = only(lint_message(html_only).findings)
    assert (finding.level, finding.code) == (Level.ERROR, "no-text-part")


def test_a_message_without_an_html_part(now: datetime) -> None:
    text_only = same_headers(parsed(wire(now)))
    text_only.set_content("A test\n")
    lint = lint_message(text_only)
    assert codes(lint.findings) == [(Level.ERROR, "no-html-part")]
    assert lint.html_bytes == 0


def test_css_left_outside_media_queries_is_named(now: datetime) -> None:
    style = (
        "<style>/* kept on purpose */ @media (max-width: 620px) { .post { padding: 0 } }"
        " .excerpt a:hover { color: red } @font-face { font-family: X; src: url(x.woff) }"
        " @media (prefers-color-scheme: dark) { .post { color: #fff !important } }</style>"
    )
    finding = only(lint_message(wire(now, html=f"<html><head>{style}</head></html>")).findings)
    assert (finding.level, finding.code) == (Level.WARNING, "css-not-inlined")
    assert "'.excerpt a:hover'" in finding.message


@pytest.mark.parametrize(
    "head",
    [
        '<link rel="stylesheet" href="https://cdn.example.org/email.css">',
        '<style>@import url("https://cdn.example.org/email.css");</style>',
    ],
)
def test_an_external_stylesheet_is_an_error(now: datetime, head: str) -> None:
    finding = only(lint_message(wire(now, html=f"<html><head>{head}</head></html>")).findings)
    assert (finding.level, finding.code) == (Level.ERROR, "external-css")
    assert "email.css" in finding.message


@pytest.mark.parametrize(
    ("element", "width"),
    [
        ('<table width="700" class="wide"><tr><td>x</td></tr></table>', 'width="700"'),
        ('<div style="padding: 0; width: 800px">x</div>', "width: 800px"),
        ('<td style="min-width:640px">x</td>', "min-width: 640px"),
        ('<img src="https://x.example/a.jpg" alt="" width="1200">', 'width="1200"'),
    ],
)
def test_an_element_wider_than_the_column(now: datetime, element: str, width: str) -> None:
    finding = only(lint_message(wire(now, html=body(element))).findings)
    assert (finding.level, finding.code) == (Level.WARNING, "too-wide")
    assert width in finding.message
    assert "600px" in finding.message
    assert finding.message.startswith(element[:3])


def test_many_findings_of_one_kind_are_counted_not_listed(now: datetime) -> None:
    images = "".join(f'<img src="https://x.example/{n}.jpg" width="9">' for n in range(25))
    lint = lint_message(wire(now, html=body('<a href="/rel">x</a>' + images)))
    alt = [finding for finding in lint.findings if finding.code == "image-alt"]
    assert len(alt) == SHOWN_PER_CODE + 1
    assert alt[-1].message == f"… and {25 - SHOWN_PER_CODE} more like this"
    assert "/9.jpg" in alt[-2].message
    assert lint.findings[0].code == "link-url"  # errors first, then warnings in order
    assert lint.warnings == SHOWN_PER_CODE + 1
