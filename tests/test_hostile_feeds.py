"""Hostile feeds, end to end: what a reader's mail program gets from each attack fixture.

Each ``tests/fixtures/feeds/attack-*.xml`` is read as a fetch reads it, rendered as an
edition and assembled into the wire message a reader receives; the assertions look at
that message as a mail program does: its header block, its HTML part as a browser
parses it, its text part.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from digest.editions import personal_letter
from digest.errors import SourceError
from digest.message import message_id_for
from digest.models import Letter, Post
from digest.render import Renderer
from digest.sources.feed import parse_feed

from support.edition import sample_newsletter, sample_site

FEEDS = Path(__file__).resolve().parent / "fixtures" / "feeds"
TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "email"
NOW = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
SECRET = b"hostile-feeds-" + b"k" * 32
READER = "ana@example.net"
ATTACKS = sorted(path.name for path in FEEDS.glob("attack-*.xml"))

# Elements that run code, load content, submit data or redirect: none may reach a reader.
FORBIDDEN = {
    "script", "iframe", "frame", "frameset", "object", "embed", "applet", "form", "input",
    "button", "select", "textarea", "svg", "math", "base", "link", "noscript", "animate",
    "foreignobject", "use", "details",
}  # fmt: skip
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "background", "poster"}
SAFE_SCHEMES = {"http", "https", "mailto"}
INVISIBLE = re.compile(r"[\x00-\x20\x7f]+")


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]


class Elements(HTMLParser):
    """Every start tag with its attributes, as a browser's tokenizer reads the markup."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[Element] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append(Element(tag, {name: value or "" for name, value in attrs}))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)


def scheme(url: str) -> str:
    # What a browser does before it reads the scheme: drop control characters and spaces.
    return urlsplit(INVISIBLE.sub("", html.unescape(url))).scheme.lower()


@dataclass
class Received:
    letter: Letter
    message: EmailMessage
    html: str
    text: str


def read(path: Path) -> list[Post]:
    posts, _ = parse_feed(
        path.read_bytes(),
        source_id="attack",
        location=str(path),
        base_url="",
        content_type="",
        now=NOW,
    )
    return posts


def received(name: str) -> Received:
    path = FEEDS / name
    posts = read(path)
    assert posts, f"{name} gave no post: the attack was not tried"
    site, newsletter = sample_site(), sample_newsletter()
    edition_id = f"edition-{path.stem}"
    rendered = Renderer(TEMPLATES).render_edition(
        site=site, newsletter=newsletter, posts=posts, edition_id=edition_id, now=NOW
    )
    letter = personal_letter(
        rendered,
        site,
        newsletter,
        SECRET,
        subscriber_id="reader-1",
        email=READER,
        message_id=message_id_for(SECRET, edition_id, "reader-1", site.sender_domain),
        now=NOW,
    )
    message = message_from_bytes(letter.data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    html_part = message.get_body(("html",))
    text_part = message.get_body(("plain",))
    assert html_part is not None
    assert text_part is not None
    return Received(letter, message, html_part.get_content(), text_part.get_content())


def test_the_corpus_holds_every_attack_class() -> None:
    assert ATTACKS == [
        "attack-event-attributes.xml",
        "attack-forms.xml",
        "attack-header-injection.xml",
        "attack-javascript-schemes.xml",
        "attack-svg.xml",
    ]


@pytest.mark.parametrize("name", ATTACKS)
def test_no_element_of_an_attack_can_run_load_or_submit_anything(name: str) -> None:
    got = received(name)
    parser = Elements()
    parser.feed(got.html)
    tags = {element.tag for element in parser.found}
    assert not tags & FORBIDDEN, f"{name}: {sorted(tags & FORBIDDEN)}"
    for element in parser.found:
        handlers = [attr for attr in element.attrs if attr.startswith("on")]
        assert not handlers, f"{name}: <{element.tag} {handlers}>"
        for attr in URL_ATTRIBUTES & element.attrs.keys():
            url = element.attrs[attr]
            assert scheme(url) in SAFE_SCHEMES, f"{name}: <{element.tag} {attr}={url!r}>"
            assert "attacker.example.net/steal" not in url
        style = element.attrs.get("style", "").lower()
        assert "expression(" not in style, f"{name}: <{element.tag} style={style!r}>"
        assert "javascript" not in style, f"{name}: <{element.tag} style={style!r}>"
    for sheet in parser.styles:  # the template's own <style> only: no feed CSS gets in
        assert "@import" not in sheet
        assert "attacker" not in sheet


@pytest.mark.parametrize("name", ATTACKS)
def test_the_text_part_links_only_to_web_pages(name: str) -> None:
    got = received(name)
    lowered = got.text.lower()
    for bad in ("javascript:", "vbscript:", "data:text", "data:image"):
        assert bad not in lowered, f"{name}: {bad}"
    for url in re.findall(r"https?://\S+", got.text):
        assert "attacker.example.net/steal" not in url
    assert "<script" not in got.text.lower()


def test_script_urls_in_every_spelling_are_dropped_and_safe_links_kept() -> None:
    got = received("attack-javascript-schemes.xml")
    assert "https://transmission.example.org/safe" in got.html
    assert "link that stays" in got.html
    # The item's own link is a script URL: the post has no "Read more" link at all.
    assert "alert(document.domain)" not in got.html
    assert "alert(document.domain)" not in got.text


def test_a_phishing_form_keeps_its_text_and_loses_its_controls() -> None:
    got = received("attack-forms.xml")
    assert "Please sign in again" in got.html
    assert "The rest of the post is ordinary text." in got.html
    assert "attacker.example.net/frame" not in got.html
    assert 'http-equiv="refresh"' not in got.html.lower()


def test_titles_and_authors_cannot_add_headers() -> None:
    got = received("attack-header-injection.xml")
    message = got.message
    assert message.get_all("Bcc") is None
    assert message.get_all("X-Injected") is None
    assert message.get_all("Reply-To") is None
    assert len(message.get_all("Subject") or []) == 1
    subject = str(message["Subject"])
    assert "\n" not in subject
    assert "\r" not in subject
    assert subject.startswith("Transmission Daily: Breaking")
    assert got.letter.recipient == READER  # the envelope names the reader only
    head = got.letter.data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    for line in head.split("\r\n"):  # each line a header or a folded continuation of one
        assert line[:1] in {" ", "\t"} or re.match(r"^[A-Za-z-]+: ", line), line
    names = {line.split(":", 1)[0].lower() for line in head.split("\r\n") if line[:1].isalpha()}
    assert names.isdisjoint({"bcc", "x-injected", "reply-to"})
    # The would-be headers stay visible text of the post, not a second body.
    assert "injected body" not in got.text.split("\n", 3)[0]
    assert "\u2028" not in got.html
    assert "\x85" not in subject


def test_a_feed_declaring_entities_is_refused_with_a_message() -> None:
    with pytest.raises(SourceError, match="entit"):
        read(FEEDS / "entities.xml")
