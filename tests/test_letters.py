"""digest.letters: the per-edition template path equals the EmailMessage path, reader by reader."""

from __future__ import annotations

import re
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from digest.config import SiteConfig
from digest.editions import letter_template
from digest.errors import ConfigError
from digest.letters import qp_encode, qp_slot
from digest.message import build_message
from digest.models import Rendered
from digest.render import PREFERENCES_URL, UNSUBSCRIBE_URL, Renderer, personalize

from support.edition import sample_newsletter, sample_posts, sample_site
from support.golden import assert_golden

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "email"
URLS = [
    "https://digest.example.org/u/c2hvcnQ.mac",
    "https://digest.example.org/u/" + "A" * 60 + "." + "b_-" * 12,
    "https://digest.example.org/u/a=b&c=d" + "=x" * 40,  # "=" and "&": encoded, escaped
    "https://digest.example.org/u/." + "y" * 200,
]
PREFS = "https://digest.example.org/p/eyJwcmVmcyI6MX0.c2lnbmF0dXJl"


@pytest.fixture
def site() -> SiteConfig:
    return sample_site(unsubscribe_mailto="leave@example.org", reply_to="desk@example.org")


@pytest.fixture
def rendered(site: SiteConfig, now: datetime) -> Rendered:
    return Renderer(TEMPLATES).render_edition(
        site=site, newsletter=sample_newsletter(), posts=sample_posts(), edition_id="e1", now=now
    )


def reference(
    rendered: Rendered, site: SiteConfig, recipient: str, url: str, now: datetime
) -> bytes:
    html, text = personalize(rendered, unsubscribe_url=url, preferences_url=PREFS)
    return build_message(
        subject=rendered.subject,
        html=html,
        text=text,
        site=site,
        newsletter=sample_newsletter(),
        recipient=recipient,
        message_id="<m1@example.org>",
        unsubscribe_url=url,
        now=now,
    )


def parsed(data: bytes) -> tuple[list[tuple[str, str]], list[str]]:
    message = message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    headers = [(name, str(value)) for name, value in message.items()]
    headers = [(n, re.sub(r'boundary="[^"]+"', "boundary=B", v)) for n, v in headers]
    parts = [part.get_content() for part in message.iter_parts()]  # type: ignore[attr-defined]
    return headers, parts


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("recipient", ["ana@example.net", "o'neil+news@xn--bcher-kva.example"])
def test_a_letter_parses_equal_to_the_emailmessage_path(
    rendered: Rendered, site: SiteConfig, now: datetime, url: str, recipient: str
) -> None:
    letter = letter_template(rendered, site, sample_newsletter()).letter(
        recipient=recipient,
        message_id="<m1@example.org>",
        links={UNSUBSCRIBE_URL: url, PREFERENCES_URL: PREFS},
        now=now,
    )
    assert parsed(letter.message) == parsed(reference(rendered, site, recipient, url, now))
    assert (letter.sender, letter.recipient, letter.wire_ready) == (
        site.sender_email,
        recipient,
        True,
    )


def test_letters_are_ready_for_smtp_data_as_they_are(
    rendered: Rendered, site: SiteConfig, now: datetime
) -> None:
    for url in URLS:
        data = (
            letter_template(rendered, site, sample_newsletter())
            .letter(
                recipient="a@b.example",
                message_id="<m@x.org>",
                links={UNSUBSCRIBE_URL: url, PREFERENCES_URL: PREFS},
                now=now,
            )
            .message
        )
        lines = data.split(b"\r\n")
        assert lines[-1] == b""  # ends in CRLF
        assert b"\n" not in data.replace(b"\r\n", b"")  # no bare line feed or return
        assert not any(line.startswith(b".") for line in lines)  # nothing to dot-stuff
        head, _, body = data.partition(b"\r\n\r\n")
        assert max(len(line) for line in body.split(b"\r\n")) <= 76
        assert data.isascii()
        assert head.count(b"\r\nList-Unsubscribe: <" + url.encode() + b">, <mailto:") == 1


def test_the_wire_bytes_match_the_golden_letter(
    rendered: Rendered, site: SiteConfig, now: datetime
) -> None:
    letter = letter_template(rendered, site, sample_newsletter()).letter(
        recipient="ana@example.net",
        message_id="<m1@example.org>",
        links={UNSUBSCRIBE_URL: URLS[1], PREFERENCES_URL: PREFS},
        now=now,
    )
    assert_golden("letter.eml", letter.message.decode("ascii"))


def test_quoted_printable_round_trips_tricky_text() -> None:
    text = (
        ".leading dot\nspace at end \ntab at end\t\n=equals= and ünïcödé · “quotes”\n"
        + "x" * 200
        + "\n"
        + "é" * 40
        + "\n\n.\n"
    )
    encoded = qp_encode(text)
    lines = encoded.split(b"\r\n")
    assert max(len(line) for line in lines) <= 76
    assert not any(line.startswith(b".") for line in lines)
    message = message_from_bytes(
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + encoded,
        policy=policy.default,
    )
    assert isinstance(message, EmailMessage)
    assert message.get_content().replace("\r\n", "\n") == text


@pytest.mark.parametrize("value", [*URLS, "https://x.example/" + "=" * 100, ".", "a b "])
def test_a_slot_sits_between_soft_breaks(value: str) -> None:
    encoded = qp_slot(value)
    assert encoded.endswith(b"=\r\n")
    lines = encoded.split(b"\r\n")
    assert all(len(line) <= 76 and not line.startswith(b".") for line in lines)
    decoded = re.sub(rb"=\r\n", b"", encoded)
    assert re.sub(rb"=([0-9A-F]{2})", lambda m: bytes([int(m[1], 16)]), decoded) == value.encode()


def test_an_unusable_link_is_refused_per_letter(
    rendered: Rendered, site: SiteConfig, now: datetime
) -> None:
    built = letter_template(rendered, site, sample_newsletter())
    with pytest.raises(ConfigError, match="absolute ASCII http"):
        built.letter(
            recipient="a@b.example",
            message_id="<m@x.org>",
            links={UNSUBSCRIBE_URL: "javascript:alert(1)", PREFERENCES_URL: PREFS},
            now=now,
        )
    with pytest.raises(ValueError, match="Message-ID"):
        built.letter(
            recipient="a@b.example",
            message_id="no-brackets",
            links={UNSUBSCRIBE_URL: URLS[0], PREFERENCES_URL: PREFS},
            now=now,
        )
