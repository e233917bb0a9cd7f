"""Build one subscriber's digest message: headers and MIME parts, as wire bytes.

Pure: everything arrives as arguments. Feed-derived text is cleaned before it reaches a
header, so no title can inject a header or hide text behind bidi controls. Headers are
serialized with a 998-octet line limit so that ``List-Unsubscribe`` stays one plain
``<https://...>`` line: at the default 78 Python folds a long URL into RFC 2047
encoded-words that mailbox providers ignore (CPython issue #85725).
"""

from __future__ import annotations

import hashlib
import hmac
import html
from datetime import datetime
from email import policy
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from digest.config import NewsletterConfig, SiteConfig
from digest.errors import ConfigError, InvalidAddress

# Bodies are encoded when set, under this policy: quoted-printable lines of at most 76
# characters (RFC 2045). Headers are folded at 78 so that encoded-words stay within
# RFC 2047's 75 characters -- except List-Unsubscribe, which is written in by hand after
# serializing: folded by Python, a long URL becomes an encoded-word that mailbox
# providers ignore (CPython #85725).
BODY_POLICY = policy.SMTP.clone(max_line_length=76)  # quoted-printable body lines
_WIRE_POLICY = policy.SMTP
_WIRE_POLICY_UTF8 = policy.SMTPUTF8
_BEFORE_LIST_UNSUBSCRIBE = b"\r\nList-Unsubscribe-Post: "

_LINE_BREAKS = "\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029"
_CONTROLS = "".join(map(chr, [*range(0x00, 0x20), *range(0x7F, 0xA0)]))
_INVISIBLE = (
    "\u061c"  # Arabic letter mark
    "\u200b\u200c\u200d\u200e\u200f"  # zero-width space/joiners, LRM, RLM
    "\u202a\u202b\u202c\u202d\u202e"  # bidi embeddings and overrides
    "\u2060\u2061\u2062\u2063\u2064"  # word joiner and invisible operators
    "\u2066\u2067\u2068\u2069"  # bidi isolates
    "\ufeff"  # zero-width no-break space (BOM)
)
# Breaks and controls become spaces (so words around them stay apart); invisibles vanish.
_HEADER_TABLE = str.maketrans(
    dict.fromkeys(map(ord, _LINE_BREAKS + _CONTROLS), " ") | dict.fromkeys(map(ord, _INVISIBLE))
)
_LIST_ID_SPECIALS = str.maketrans(dict.fromkeys(map(ord, '()<>[]:;@\\,."'), " "))


def _decode_encoded_words(text: str) -> str:
    if "=?" not in text:
        return text
    try:
        return str(make_header(decode_header(text)))
    except (HeaderParseError, LookupError, UnicodeError, ValueError):
        return text  # not a well-formed encoded-word: keep the text as written


def clean_header_text(text: str, max_length: int = 200) -> str:
    """Make feed-derived ``text`` safe and tidy for a header value.

    HTML entities and RFC 2047 encoded-words are decoded first (so an encoded line break
    cannot slip through); then every line break, control character, bidi override or
    isolate and zero-width character is removed, whitespace is collapsed, and the result
    is cut to ``max_length`` characters on a word boundary, ending in "…".
    """
    decoded = _decode_encoded_words(html.unescape(text))
    cleaned = " ".join(decoded.translate(_HEADER_TABLE).split())
    if len(cleaned) <= max_length:
        return cleaned
    cut = cleaned[: max_length - 1]
    if cleaned[max_length - 1] != " ":
        head = cut.rpartition(" ")[0]
        if len(head) >= max_length // 2:  # one very long word: cut inside it instead
            cut = head
    return cut.rstrip() + "…"


def message_id_for(secret: bytes, edition_id: str, subscriber_id: str, domain: str) -> str:
    """The Message-ID of one delivery: the same on every retry, unguessable without ``secret``."""
    payload = "\x00".join(("message-id", edition_id, subscriber_id)).encode()
    digest = hmac.digest(secret, payload, hashlib.sha256).hex()[:32]  # one C call per reader
    return f"<{digest}@{_ascii_domain(domain, what='Message-ID domain')}>"


def _ascii_domain(domain: str, *, what: str) -> str:
    if domain.isascii():
        return domain
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise InvalidAddress(f"{what} {domain!r} is not a valid domain name") from exc


def _address(addr: str, *, what: str, display_name: str = "") -> Address:
    """``addr`` as a header Address with an A-label domain; InvalidAddress when malformed."""
    local, at, domain = addr.rpartition("@")
    if not at or not local or not domain:
        raise InvalidAddress(f"{what} {addr!r} is not an email address (expected local@domain)")
    domain = _ascii_domain(domain, what=what)
    # The parser refuses a UTF-8 local part (valid with SMTPUTF8), so check the syntax of
    # an ASCII stand-in and build the address from its parts.
    probe = "".join(c if c.isascii() else "u" for c in local)
    try:
        Address(addr_spec=f"{probe}@{domain}")
        return Address(display_name=display_name, username=local, domain=domain)
    except (HeaderParseError, ValueError, IndexError) as exc:
        raise InvalidAddress(f"{what} {addr!r} is not a valid email address: {exc}") from exc


def from_address(site: SiteConfig) -> Address:
    """The From of every message digest sends: ``[site] sender_name <sender_email>``."""
    return _address(
        site.sender_email,
        what="[site] sender_email",
        display_name=clean_header_text(site.sender_name, 100),
    )


def address_header(addr: str) -> str:
    """``addr`` as the To header writes it (quoted where its local part needs it)."""
    return str(_address(addr, what="recipient"))


def _list_id(newsletter: NewsletterConfig, site: SiteConfig) -> str:
    # RFC 2919: an optional phrase, then <id.domain>. Specials would need a quoted-string,
    # which cannot hold encoded-words, so they become spaces in this cosmetic label.
    label = " ".join(clean_header_text(newsletter.title, 100).translate(_LIST_ID_SPECIALS).split())
    list_name = "".join(
        c if c.isascii() and (c.isalnum() or c == "-") else "-" for c in newsletter.id
    )
    domain = _ascii_domain(site.sender_domain, what="[site] sender_email domain")
    return f"{label} <{list_name.lower()}.{domain}>".lstrip()


def list_unsubscribe(unsubscribe_url: str, mailto: str) -> str:
    """The List-Unsubscribe value: ``<https://…>`` (and ``<mailto:…>``); ConfigError if unusable."""
    return unsubscribe_link(unsubscribe_url) + unsubscribe_mailto(mailto)


def unsubscribe_link(unsubscribe_url: str) -> str:
    """``<url>`` for List-Unsubscribe; ``ConfigError`` unless an absolute ASCII http(s) URL."""
    if (
        not unsubscribe_url.startswith(("https://", "http://"))
        or not unsubscribe_url.isascii()
        or any(c in unsubscribe_url for c in '<> "')
        or not unsubscribe_url.isprintable()
    ):
        raise ConfigError(
            f"unsubscribe URL {unsubscribe_url!r} must be an absolute ASCII http(s) URL "
            "without spaces or angle brackets; check [site] base_url"
        )
    return f"<{unsubscribe_url}>"


def unsubscribe_mailto(mailto: str) -> str:
    """``, <mailto:…?subject=unsubscribe>`` for List-Unsubscribe, or "" without a mailbox."""
    if not mailto:
        return ""
    address = _address(mailto, what="[site] unsubscribe_mailto")
    if not address.username.isascii():
        raise ConfigError(f"[site] unsubscribe_mailto {mailto!r} must be an ASCII address")
    return f", <mailto:{address.addr_spec}?subject=unsubscribe>"


def check_message_id(message_id: str) -> str:
    """``message_id`` if it looks like ``<id@domain>``; ValueError otherwise."""
    local, at, domain = message_id.strip("<>").partition("@")
    if (
        not (message_id.startswith("<") and message_id.endswith(">"))
        or not (at and local and domain)
        or not message_id.isascii()
        or not message_id.isprintable()
        or " " in message_id
    ):
        raise ValueError(
            f"Message-ID {message_id!r} must look like <id@domain> (use message_id_for)"
        )
    return message_id


def build_message(
    *,
    subject: str,
    html: str,
    text: str,
    site: SiteConfig,
    newsletter: NewsletterConfig,
    recipient: str,
    message_id: str,
    unsubscribe_url: str,
    now: datetime,
    boundary: str | None = None,
) -> bytes:
    """One subscriber's message as the bytes that go on the wire (CRLF line endings).

    multipart/alternative with the text part first and the HTML part second, both UTF-8
    quoted-printable (body lines of at most 76 octets whatever the input). Every header appears
    exactly once; ``subject`` is cleaned with :func:`clean_header_text`. The message uses
    SMTPUTF8 serialization only when an address has a non-ASCII local part (the relay must
    then advertise SMTPUTF8). ``boundary`` fixes the MIME boundary (random by default).
    Raises ``InvalidAddress`` for a malformed address,
    ``ConfigError`` for an unusable unsubscribe URL, ``ValueError`` for a naive ``now``.
    """
    if now.utcoffset() is None:
        raise ValueError("build_message needs an aware `now` for the Date header")
    sender = from_address(site)
    to = _address(recipient, what="recipient")
    needs_utf8 = not (sender.username.isascii() and to.username.isascii())

    message = EmailMessage(policy=BODY_POLICY)
    message["From"] = sender
    message["To"] = to
    if site.reply_to:
        message["Reply-To"] = _address(site.reply_to, what="[site] reply_to")
    message["Subject"] = clean_header_text(subject)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = check_message_id(message_id)
    message["List-Id"] = _list_id(newsletter, site)
    unsubscribe_value = list_unsubscribe(unsubscribe_url, site.unsubscribe_mailto)
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    # Not a standard, but vacation responders commonly skip mail marked bulk.
    message["Precedence"] = "bulk"
    message.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    for part in message.iter_parts():
        del part["MIME-Version"]  # set_content adds it to each part; it belongs on top only
    if boundary is not None:
        message.set_boundary(boundary)
    wire = message.as_bytes(policy=_WIRE_POLICY_UTF8 if needs_utf8 else _WIRE_POLICY)
    head, blank, body = wire.partition(b"\r\n\r\n")
    line = b"\r\nList-Unsubscribe: " + unsubscribe_value.encode("ascii")
    head = head.replace(_BEFORE_LIST_UNSUBSCRIBE, line + _BEFORE_LIST_UNSUBSCRIBE, 1)
    return head + blank + body
