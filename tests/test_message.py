"""Tests for digest.message: headers on the wire, header cleaning, Message-IDs, MIME parts."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import pytest

from digest.errors import ConfigError, InvalidAddress
from digest.message import build_message, clean_header_text, message_id_for

from support.edition import sample_newsletter, sample_site

UNSUBSCRIBE = "https://digest.example.org/u/" + "t" * 40
LONG_UNSUBSCRIBE = "https://digest.example.org/unsubscribe/" + "a1B2-c3_D4" * 26 + "?n=daily"
ONCE = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Precedence",
)


def build(now: datetime, **changes: Any) -> bytes:
    arguments: dict[str, Any] = {
        "subject": "Transmission Daily: Strains Visible In CIS Military Alliance (+2 more)",
        "html": "<!DOCTYPE html><html><body><p>Hello &amp; welcome</p></body></html>\n",
        "text": "Hello & welcome\n\nUnsubscribe: " + UNSUBSCRIBE + "\n",
        "site": sample_site(),
        "newsletter": sample_newsletter(),
        "recipient": "reader@example.com",
        "message_id": message_id_for(b"secret", "ed-1", "sub-1", "example.org"),
        "unsubscribe_url": UNSUBSCRIBE,
        "now": now,
    }
    return build_message(**(arguments | changes))


def parse(raw: bytes) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    return message


def raw_header_lines(raw: bytes) -> list[bytes]:
    """The top-level header block as physical lines (continuations stay separate lines)."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    return head.split(b"\r\n")


def test_every_header_appears_exactly_once(now: datetime) -> None:
    message = parse(build(now))
    for name in ONCE:
        assert len(message.get_all(name) or []) == 1, name
    assert message["List-Id"] == "Transmission Daily <daily.example.org>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Reply-To"] is None
    assert message["Precedence"] == "bulk"
    assert message["Message-ID"] == message_id_for(b"secret", "ed-1", "sub-1", "example.org")


@pytest.mark.parametrize("url", [UNSUBSCRIBE, LONG_UNSUBSCRIBE])
def test_list_unsubscribe_stays_one_plain_line(now: datetime, url: str) -> None:
    assert len(LONG_UNSUBSCRIBE) > 300
    raw = build(now, unsubscribe_url=url, subject="Přehled dne: Čtení na víkend " * 4)
    lines = raw_header_lines(raw)
    index = lines.index(f"List-Unsubscribe: <{url}>".encode())
    assert not lines[index + 1].startswith((b" ", b"\t"))  # not folded onto a second line
    assert b"=?" not in lines[index]
    assert parse(raw)["List-Unsubscribe"] == f"<{url}>"


def test_mailto_form_follows_the_https_form(now: datetime) -> None:
    site = sample_site(unsubscribe_mailto="unsubscribe@example.org")
    raw = build(now, site=site, unsubscribe_url=LONG_UNSUBSCRIBE)
    expected = (
        f"List-Unsubscribe: <{LONG_UNSUBSCRIBE}>, "
        "<mailto:unsubscribe@example.org?subject=unsubscribe>"
    )
    assert expected.encode() in raw_header_lines(raw)


def test_no_line_exceeds_998_octets_and_all_end_in_crlf(now: datetime) -> None:
    html = "<html><body><p>" + "é and a long line " * 300 + "</p></body></html>"
    assert len(html) > 5000
    raw = build(now, html=html, unsubscribe_url=LONG_UNSUBSCRIBE)
    assert raw.count(b"\n") == raw.count(b"\r\n")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    body = parse(raw).get_body(("html",))
    assert body is not None
    assert body.get_content() == html + "\r\n"  # line ends are CRLF on the wire


def test_parts_are_text_then_html_and_decode_to_the_inputs(now: datetime) -> None:
    text = 'Přenos · Transmission\n\n## Russia & "Allies" <analysis>\n' + "x" * 200 + "\n"
    html = '<html lang="en"><body><p>Russia &amp; “Allies” → ok</p></body></html>\n'
    message = parse(build(now, text=text, html=html))
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [part.get_content_type() for part in parts] == ["text/plain", "text/html"]
    for part, content in zip(parts, (text, html), strict=True):
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
        assert part["MIME-Version"] is None
        assert part.get_content().replace("\r\n", "\n") == content


@pytest.mark.parametrize(
    "subject",
    [
        "Hi\r\nBcc: victim@example.net",
        "Hi\nBcc: victim@example.net",
        "Hi\u2028Bcc: victim@example.net",
        "Hi\x85Bcc: victim@example.net",
        "=?utf-8?q?Hi=0D=0ABcc:_victim@example.net?=",
        "Hi&#13;&#10;Bcc: victim@example.net",
    ],
)
def test_subject_cannot_inject_headers(now: datetime, subject: str) -> None:
    raw = build(now, subject=subject)
    message = parse(raw)
    assert message["Bcc"] is None
    assert not any(line.startswith(b"Bcc") for line in raw_header_lines(raw))
    assert message["Subject"] == "Hi Bcc: victim@example.net"


def test_subject_loses_bidi_and_zero_width_characters(now: datetime) -> None:
    sneaky = "Invoice\u202e\u2066fdp.exe\u2069\u200b\u200d\ufeff paid\tnow\x00\x07"
    assert parse(build(now, subject=sneaky))["Subject"] == "Invoicefdp.exe paid now"


def test_clean_header_text_decodes_then_caps_on_a_word_boundary() -> None:
    assert clean_header_text("Russia &amp; &quot;Allies&quot;") == 'Russia & "Allies"'
    assert clean_header_text("=?utf-8?b?UMWZZWhsZWQ=?= dne") == "Přehled dne"
    assert clean_header_text("=?bogus-charset?q?x?=") == "=?bogus-charset?q?x?="
    capped = clean_header_text("word " * 100, max_length=42)
    assert len(capped) <= 42
    assert capped == " ".join(["word"] * 8) + "…"
    assert clean_header_text("x" * 50, max_length=10) == "x" * 9 + "…"
    assert clean_header_text("exactly ten", max_length=11) == "exactly ten"


def test_message_id_is_stable_and_secret_bound() -> None:
    first = message_id_for(b"secret", "ed-1", "sub-1", "example.org")
    assert re.fullmatch(r"<[0-9a-f]{32}@example\.org>", first)
    assert message_id_for(b"secret", "ed-1", "sub-1", "example.org") == first
    assert message_id_for(b"secret", "ed-1", "sub-2", "example.org") != first
    assert message_id_for(b"secret", "ed-2", "sub-1", "example.org") != first
    assert message_id_for(b"other", "ed-1", "sub-1", "example.org") != first
    assert message_id_for(b"secret", "ed-1", "sub-1", "bücher.example").endswith(
        "@xn--bcher-kva.example>"
    )


def test_date_header_parses_back_to_now(now: datetime) -> None:
    assert parse(build(now))["Date"].datetime == now
    prague = now.astimezone(timezone(timedelta(hours=1)))
    assert parse(build(prague))["Date"].datetime == now
    with pytest.raises(ValueError, match="aware"):
        build(now.replace(tzinfo=None))


def test_non_ascii_sender_name_is_encoded(now: datetime) -> None:
    raw = build(now, site=sample_site(sender_name="Přenos — Žurnál"))
    from_line = next(line for line in raw_header_lines(raw) if line.startswith(b"From:"))
    assert from_line.isascii()
    assert b"=?utf-8?" in from_line
    (sender,) = parse(raw)["From"].addresses
    assert sender.display_name == "Přenos — Žurnál"
    assert sender.addr_spec == "digest@example.org"


def test_reply_to_when_configured(now: datetime) -> None:
    message = parse(build(now, site=sample_site(reply_to="editors@example.org")))
    assert message.get_all("Reply-To") == ["editors@example.org"]


def test_internationalized_recipients(now: datetime) -> None:
    idn = parse(build(now, recipient="reader@bücher.example"))
    assert idn["To"] == "reader@xn--bcher-kva.example"
    raw = build(now, recipient="čtenář@example.com")  # needs a relay with SMTPUTF8
    assert "To: čtenář@example.com".encode() in raw_header_lines(raw)


@pytest.mark.parametrize(
    "recipient", ["not-an-address", "a@b.example\r\nBcc: c@d.example", "a b@c.example", "@x"]
)
def test_malformed_recipient_is_refused(now: datetime, recipient: str) -> None:
    with pytest.raises(InvalidAddress, match="recipient"):
        build(now, recipient=recipient)


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "https://x.example/a b", "https://x.example/<a>", "https://é.x"]
)
def test_unusable_unsubscribe_url_is_refused(now: datetime, url: str) -> None:
    with pytest.raises(ConfigError, match="base_url"):
        build(now, unsubscribe_url=url)


def test_list_id_label_is_tidy(now: datetime) -> None:
    newsletter = sample_newsletter(id="Daily News!", title='Russia & "Allies" <weekly>')
    message = parse(build(now, newsletter=newsletter))
    assert message["List-Id"] == "Russia & Allies weekly <daily-news-.example.org>"


def test_long_non_ascii_subject_folds_into_short_encoded_words(now: datetime) -> None:
    subject = "Přehled: " + "Žluťoučký kůň úpěl ďábelské ódy " * 4
    raw = build(now, subject=subject)
    head = raw.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n"):
        if not line.startswith(b"List-Unsubscribe:"):
            assert len(line) <= 78, line
    words = re.findall(rb"=\?[^?]+\?[bBqQ]\?[^?]*\?=", head)
    assert len(words) > 2  # folded into several short encoded-words, not one long one
    assert parse(raw)["Subject"] == clean_header_text(subject)
