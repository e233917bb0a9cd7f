"""Make untrusted HTML and URLs from sources safe to put in an email: allowlists only.

Feed and folder content is hostile until it has been through here. ``clean_html``
keeps a small set of article tags and attributes (nh3/ammonia), allows only the
http, https and mailto URL schemes and makes every URL absolute; ``plain_text``
turns a title, author or caption into one line of text; ``clean_identifier`` makes a
GUID storable (no NUL: PostgreSQL refuses it in text).
"""

from __future__ import annotations

import html
import re
import unicodedata
from urllib.parse import urljoin, urlsplit

import nh3

# Cutting text short (a capped feed field, an excerpt): the mark of a cut, what is dropped
# before it, and the longest run without a space that is still a word to keep whole.
ELLIPSIS = "…"
TRAILING = " \t\n,;:.-–—"
LONGEST_WORD = 24

ALLOWED_SCHEMES = frozenset({"http", "https", "mailto"})

_TAGS = frozenset(
    {
        "p", "br", "hr", "div", "a", "img", "figure", "figcaption",
        "em", "strong", "b", "i", "u", "s", "del", "ins", "mark", "small", "sub", "sup",
        "code", "pre", "kbd", "samp", "blockquote", "q", "cite", "abbr",
        "ul", "ol", "li", "dl", "dt", "dd", "h2", "h3", "h4",
        "table", "thead", "tbody", "tfoot", "tr", "th", "td", "caption",
    }
)  # fmt: skip
_ATTRIBUTES: dict[str, set[str]] = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "abbr": {"title"},
    "ol": {"start"},
    "th": {"colspan", "rowspan"},
    "td": {"colspan", "rowspan"},
}
_URL_ATTRIBUTES = frozenset({("a", "href"), ("img", "src")})
# Removed together with their content: what is inside them is never article text.
_DROP_WITH_CONTENT = frozenset(
    {"script", "style", "iframe", "noscript", "object", "template", "svg", "math", "title"}
)
# Heading levels outside h2-h4 are mapped in (the digest's own title is the h1).
_HEADING_SHIFT = re.compile(r"<(/?)\s*h([156])\b", re.IGNORECASE)
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f-\x9f]+")
# Block boundaries become spaces in plain text, so "<p>a</p><p>b</p>" reads "a b".
_BLOCK_BOUNDARY = re.compile(
    r"<\s*/?\s*(?:p|div|br|li|dt|dd|h[1-6]|tr|td|th|blockquote|figcaption|pre)\b[^>]*>",
    re.IGNORECASE,
)
# Format characters (Cf) that belong to the writing itself and stay in plain text:
# zero-width non-joiner and joiner (Persian and Indic scripts, emoji sequences),
# the bidi marks and the emoji tag characters of subdivision flags. The others
# (bidi embeddings and overrides, zero-width space, BOM, soft hyphen) are removed.
_WRITING_FORMAT = frozenset(
    {"\u200c", "\u200d", "\u200e", "\u200f", "\u061c"}
    | {chr(code) for code in range(0xE0020, 0xE0080)}
)
_IMAGE_WITHOUT_SOURCE = re.compile(r"<img(?![^>]*\ssrc=)[^>]*>")


def absolute_url(url: str, base_url: str) -> str:
    """Return ``url`` made absolute against ``base_url``, or "" if it may not be used.

    Only http, https and mailto survive. The scheme is checked on the URL with
    entities decoded and whitespace, control and format characters removed, so
    ``jav&#x61;script:`` or ``java\\tscript:`` are refused. A relative URL without an
    absolute http(s) base, an http(s) URL without a host, or an empty one give "".
    """
    probe = _without_controls(_SPACE_OR_CONTROL.sub("", html.unescape(url or "")))
    if not probe:
        return ""
    # Browsers drop control characters and trim spaces; an inner space is data.
    cleaned = _without_controls(url).strip().replace(" ", "%20")
    try:
        scheme = urlsplit(probe).scheme.lower()
        joined = urljoin(base_url, cleaned) if base_url else cleaned
        parts = urlsplit(joined)
    except ValueError:  # e.g. a malformed IPv6 host
        return ""
    if scheme and scheme not in ALLOWED_SCHEMES:
        return ""
    result_scheme = parts.scheme.lower()
    if result_scheme not in ALLOWED_SCHEMES:
        return ""
    if result_scheme in ("http", "https") and not parts.hostname:
        return ""
    if result_scheme == "mailto" and len(joined) <= len("mailto:"):
        return ""
    return joined


def _without_controls(text: str) -> str:
    return "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf"))


def clean_identifier(text: str) -> str:
    """``text`` without control, format or lone surrogate characters, trimmed: a storable id.

    For GUIDs: a NUL (``&#0;`` or a raw byte) would make PostgreSQL refuse the whole
    batch, and invisible characters would make two spellings of one id differ.
    """
    return "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf", "Cs")).strip()


def clean_html(html: str, base_url: str) -> str:
    """Sanitize an HTML fragment to the article allowlist; URLs absolute against ``base_url``.

    No style, class, id, event-handler attributes, scripts, frames or forms survive.
    Links carry ``rel="noopener noreferrer"``; a link or image whose URL is not
    allowed or cannot be made absolute loses that attribute.
    """
    if not html or not html.strip():
        return ""

    def keep_url(tag: str, attribute: str, value: str) -> str | None:
        if (tag, attribute) in _URL_ATTRIBUTES:
            return absolute_url(value, base_url) or None
        return value

    shifted = _HEADING_SHIFT.sub(lambda m: f"<{m[1]}h{'2' if m[2] == '1' else '4'}", html)
    cleaned = nh3.clean(
        shifted,
        tags=set(_TAGS),
        clean_content_tags=set(_DROP_WITH_CONTENT),
        attributes=_ATTRIBUTES,
        attribute_filter=keep_url,
        url_schemes=set(ALLOWED_SCHEMES),
        link_rel="noopener noreferrer",
        strip_comments=True,
    )
    # An image whose URL was refused would render as a broken-image box: drop it.
    return _IMAGE_WITHOUT_SOURCE.sub("", cleaned).strip()


def plain_text(html_or_text: str) -> str:
    """One line of plain text: tags stripped, entities decoded, whitespace collapsed.

    For titles, authors, captions and categories. Control characters become spaces;
    format characters are removed, except those that are part of the writing (joiners,
    bidi marks, emoji tags), so a bidi override cannot reorder the text around it.
    The result is text, not HTML: whoever puts it into HTML must escape it (Jinja2
    autoescape does).
    """
    if not html_or_text:
        return ""
    spaced = _BLOCK_BOUNDARY.sub(" ", html_or_text)
    stripped = nh3.clean(spaced, tags=set(), clean_content_tags=set(_DROP_WITH_CONTENT))
    text = html.unescape(stripped)
    if not text.isascii():
        text = "".join(
            ch for ch in text if ch in _WRITING_FORMAT or unicodedata.category(ch) != "Cf"
        )
    return " ".join(_SPACE_OR_CONTROL.sub(" ", text).split())
