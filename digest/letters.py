"""One reader's wire bytes from a per-edition template, built once per rendering.

``LetterTemplate.build`` runs the expensive part once per edition (or variant): it asks
:func:`digest.message.build_message` for the headers and MIME skeleton (so every header
is encoded exactly as the reference path encodes it) and quoted-printable-encodes both
bodies itself, cut at the per-reader link placeholders. ``LetterTemplate.letter`` then
only joins constant byte strings with the reader's To, Message-ID, Date, List-Unsubscribe
and the encoded forms of their links.

The encoder keeps every line at most 76 octets, uses CRLF, and never lets a line start
with a dot (a leading dot is written ``=2E``), so the result needs no dot-stuffing or
line-ending pass per message: it is what SMTP DATA carries (``Letter.wire_ready``).
Parsed, a letter equals the message ``build_message`` makes for the same reader
(``tests/test_letters.py`` checks it).
"""

from __future__ import annotations

import functools
import hashlib
import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime

from digest.config import NewsletterConfig, SiteConfig
from digest.message import (
    address_header,
    build_message,
    check_message_id,
    list_unsubscribe,
    unsubscribe_link,
    unsubscribe_mailto,
)
from digest.models import Letter, Rendered

_SLOT_TO = "slot-to@slot.invalid"
_SLOT_MESSAGE_ID = "<slot-message-id@slot.invalid>"
_SLOT_UNSUBSCRIBE = "https://slot.invalid/unsubscribe"
_SLOT_TEXT = "SLOT-TEXT-BODY"
_SLOT_HTML = "SLOT-HTML-BODY"
_SKELETON_NOW = datetime.fromisoformat("2000-01-01T00:00:00+00:00")

_LINE = 75  # encoded characters per line before the soft break "=" (76 with it)
_SOFT_BREAK = b"=\r\n"
_ENCODED = [f"={byte:02X}" for byte in range(256)]
for _byte in range(33, 127):
    if _byte != ord("="):
        _ENCODED[_byte] = chr(_byte)
_ENCODED[ord(" ")] = " "
_ENCODED[ord("\t")] = "\t"
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_SIMPLE_ADDRESS = re.compile(rf"{_ATOM}(\.{_ATOM})*@[A-Za-z0-9.-]+")


def qp_line(line: bytes) -> list[str]:
    """One line of text (no line break) as quoted-printable lines, soft breaks included."""
    tokens = [_ENCODED[byte] for byte in line]
    if tokens and line[-1] in (0x20, 0x09):  # whitespace at the end of a line is encoded
        tokens[-1] = f"={line[-1]:02X}"
    lines: list[str] = []
    current: list[str] = []
    length = 0
    for token in tokens:
        if length + len(token) > _LINE:
            lines.append("".join(current) + "=")
            current, length = [], 0
        if length == 0 and token == ".":
            token = "=2E"
        current.append(token)
        length += len(token)
    lines.append("".join(current))
    return lines


def qp_encode(text: str) -> bytes:
    """``text`` as a quoted-printable body: UTF-8, CRLF, ending in a line break."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    encoded = [piece for line in lines for piece in qp_line(line.encode("utf-8"))]
    return ("\r\n".join(encoded) + "\r\n").encode("ascii")


def qp_slot(value: str) -> bytes:
    """A per-reader value (a URL: no line break) encoded to sit between two soft breaks."""
    if not (value.isascii() and value.isprintable()) or value.endswith((" ", "\t")):
        return "\r\n".join(qp_line(value.encode("utf-8"))).encode("ascii") + _SOFT_BREAK
    encoded = value.replace("=", "=3D")
    if len(encoded) <= _LINE and not encoded.startswith("."):
        return encoded.encode("ascii") + _SOFT_BREAK
    lines: list[str] = []
    start, end = 0, len(encoded)
    while start < end:
        dot = encoded[start] == "."
        stop = min(start + _LINE - (2 if dot else 0), end)
        if stop < end:  # never cut through an "=3D"
            stop -= 1 if encoded[stop - 1] == "=" else 2 if encoded[stop - 2] == "=" else 0
        line = encoded[start:stop]
        lines.append("=2E" + line[1:] if dot else line)
        start = stop
    return "=\r\n".join(lines).encode("ascii") + _SOFT_BREAK


def _boundary(rendered: Rendered) -> str:
    """A MIME boundary fixed by the content, so equal editions give equal bytes.

    Safe in any quoted-printable body: there, "=" is always followed by two hex digits
    or a line break, so a run of "=" never occurs.
    """
    digest = hashlib.sha256(f"{rendered.subject}\0{rendered.html}\0{rendered.text}".encode())
    return f"==============={digest.hexdigest()[:20]}=="


@functools.lru_cache(maxsize=8)
def _date_header(second: int) -> str:
    return format_datetime(datetime.fromtimestamp(second, UTC))


def _body_pieces(body: str, slots: Sequence[str]) -> list[bytes | int]:
    """The encoded body cut at each placeholder: constant bytes, and slot indexes between."""
    pattern = re.compile("|".join(re.escape(slot) for slot in slots))
    pieces: list[bytes | int] = []
    position = 0
    for match in pattern.finditer(body):
        before = body[position : match.start()]
        pieces.append(_open_ended(before))
        pieces.append(slots.index(match.group()))
        position = match.end()
    pieces.append(qp_encode(body[position:]) if position < len(body) else b"\r\n")
    return pieces


def _open_ended(text: str) -> bytes:
    """``text`` encoded so that what follows starts a new physical line of the same line."""
    if not text:
        return b""
    if text.endswith("\n"):
        return qp_encode(text)
    return qp_encode(text)[:-2] + _SOFT_BREAK  # end on a soft break, not a hard one


@dataclass(frozen=True, slots=True)
class LetterTemplate:
    """The constant parts of one edition's messages; see the module docstring."""

    sender: str
    slots: tuple[str, ...]  # placeholders in the rendering, e.g. "%%UNSUBSCRIBE_URL%%"
    unsubscribe_slot: str  # the slot whose URL goes into List-Unsubscribe
    mailto: str  # the List-Unsubscribe mailto part, ", <mailto:…>" or ""
    head: tuple[bytes, ...]  # the header block cut at To, Message-ID, Date, List-Unsubscribe
    head_order: tuple[str, ...]  # which per-reader header each cut is for
    text: tuple[bytes | int, ...]  # the text part: bytes, and slot indexes
    between: bytes  # from the end of the text part to the start of the HTML part
    html: tuple[bytes | int, ...]
    tail: bytes  # after the HTML part: the closing boundary

    @classmethod
    def build(
        cls,
        rendered: Rendered,
        site: SiteConfig,
        newsletter: NewsletterConfig,
        *,
        slots: Sequence[str],
        unsubscribe_slot: str,
    ) -> LetterTemplate:
        """The template of ``rendered``, whose ``slots`` are filled in per reader."""
        skeleton = build_message(
            subject=rendered.subject,
            html=_SLOT_HTML,
            text=_SLOT_TEXT,
            site=site,
            newsletter=newsletter,
            recipient=_SLOT_TO,
            message_id=_SLOT_MESSAGE_ID,
            unsubscribe_url=_SLOT_UNSUBSCRIBE,
            now=_SKELETON_NOW,
            boundary=_boundary(rendered),
        )
        headers, blank, body = skeleton.partition(b"\r\n\r\n")
        markers = {
            "to": f"\r\nTo: {_SLOT_TO}\r\n".encode(),
            "message_id": f"\r\nMessage-ID: {_SLOT_MESSAGE_ID}\r\n".encode(),
            "date": f"\r\nDate: {format_datetime(_SKELETON_NOW)}\r\n".encode(),
            "list_unsubscribe": (
                "\r\nList-Unsubscribe: "
                f"{list_unsubscribe(_SLOT_UNSUBSCRIBE, site.unsubscribe_mailto)}\r\n"
            ).encode(),
        }
        head_block = b"\r\n" + headers + b"\r\n"
        found = sorted((head_block.index(marker), name) for name, marker in markers.items())
        head: list[bytes] = []
        position = 0
        for start, name in found:
            head.append(head_block[position : start + 2])
            position = start + len(markers[name])
        head.append(head_block[position:] + blank[2:])
        text_at = body.index(_SLOT_TEXT.encode() + b"\r\n")
        html_at = body.index(_SLOT_HTML.encode() + b"\r\n")
        slots = tuple(slots)
        return cls(
            sender=site.sender_email,
            slots=slots,
            unsubscribe_slot=unsubscribe_slot,
            mailto=unsubscribe_mailto(site.unsubscribe_mailto),
            head=(head[0][2:], *head[1:]),
            head_order=tuple(name for _, name in found),
            text=(body[:text_at], *_body_pieces(rendered.text, slots)),
            between=body[text_at + len(_SLOT_TEXT) + 2 : html_at],
            html=tuple(_body_pieces(rendered.html, slots)),
            tail=body[html_at + len(_SLOT_HTML) + 2 :],
        )

    def letter(
        self, *, recipient: str, message_id: str, links: Mapping[str, str], now: datetime
    ) -> Letter:
        """One reader's letter: ``links`` maps each slot to the reader's URL."""
        if now.utcoffset() is None:
            raise ValueError("a letter needs an aware `now` for the Date header")
        urls = [links[slot] for slot in self.slots]
        values = {
            "to": recipient if _SIMPLE_ADDRESS.fullmatch(recipient) else address_header(recipient),
            "message_id": check_message_id(message_id),
            "date": _date_header(int(now.timestamp())),
            "list_unsubscribe": unsubscribe_link(links[self.unsubscribe_slot]) + self.mailto,
        }
        parts: list[bytes] = [self.head[0]]
        names = {"to": "To", "message_id": "Message-ID", "date": "Date"}
        names["list_unsubscribe"] = "List-Unsubscribe"
        for name, constant in zip(self.head_order, self.head[1:], strict=True):
            parts.append(f"{names[name]}: {values[name]}\r\n".encode())
            parts.append(constant)
        text_slots = [qp_slot(url) for url in urls]
        html_slots = [qp_slot(html.escape(url, quote=True)) for url in urls]
        parts.extend(p if isinstance(p, bytes) else text_slots[p] for p in self.text)
        parts.append(self.between)
        parts.extend(p if isinstance(p, bytes) else html_slots[p] for p in self.html)
        parts.append(self.tail)
        return Letter(self.sender, recipient, b"".join(parts), wire_ready=True)
