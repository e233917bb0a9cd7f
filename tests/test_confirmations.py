"""The transactional emails of sign-up: a text part written for text (wrapped, the link
whole on its own line, "open this link"), and an HTML part with its button."""

from __future__ import annotations

from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest

from digest.confirmations import ConfirmationMail, Wording, address_wording, signup_wording
from digest.plaintext import TEXT_WIDTH

from support.edition import sample_site

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "email"
URL = "https://digest.example.org/confirm/" + "QkdMdmRUUlpKNXQxZnBJWTR5SXFlQR8xNzk1NzYy" * 2
TITLES = ["Transmission Daily", "Transmission Weekly", "The Prague Bureau's Notebook"]
WORDINGS = {
    "signup": signup_wording(sample_site(), TITLES),
    "address": address_wording(sample_site()),
}


def parts(wording: Wording, now: datetime) -> tuple[str, str]:
    letter = ConfirmationMail(TEMPLATES).letter(
        sample_site(),
        wording,
        url=URL,
        recipient="ana@example.net",
        lasts=timedelta(days=7),
        now=now,
    )
    message = BytesParser(policy=policy.default).parsebytes(letter.message)
    assert isinstance(message, EmailMessage)
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None
    assert html is not None
    return str(text.get_content()), str(html.get_content())


@pytest.mark.parametrize("kind", WORDINGS)
def test_the_text_part_is_wrapped_with_the_link_whole_on_its_own_line(
    kind: str, now: datetime
) -> None:
    text, _ = parts(WORDINGS[kind], now)
    lines = text.splitlines()
    assert URL in lines  # alone on its line, never split
    assert len(URL) > TEXT_WIDTH
    assert [line for line in lines if len(line) > TEXT_WIDTH] == [URL]
    assert "-- " in lines  # the signature separator keeps its space


@pytest.mark.parametrize("kind", WORDINGS)
def test_the_text_part_says_open_this_link_and_the_html_part_press_the_button(
    kind: str, now: datetime
) -> None:
    text, html = parts(WORDINGS[kind], now)
    flat = " ".join(text.split())
    assert "until you confirm: open this link, then confirm on the page that opens." in flat
    assert "button" not in text
    assert "until you confirm: press the button, then confirm" in html
    assert "{act}" not in text + html
    assert f'href="{URL}"' in html
