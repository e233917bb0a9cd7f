"""Turn the bytes of an RSS (0.9x, 1.0, 2.0) or Atom 1.0 document into sanitized posts.

feedparser does the format work on bytes we fetched ourselves; everything it
returns is treated as untrusted and goes through ``digest.sanitize``. Problems with
one item (no date, a date in the future) are reported and the item is kept.
"""

from __future__ import annotations

import hashlib
import html
import io
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import feedparser

from digest.errors import SourceError
from digest.models import Post
from digest.sanitize import absolute_url, clean_html, first_image, first_paragraph, plain_text

FUTURE_TOLERANCE = timedelta(days=1)
UNTITLED = "(untitled)"

_ROOT_ELEMENT = re.compile(r"<[A-Za-z_:]")
_ENTITY_DECLARATION = re.compile(r"<!ENTITY", re.IGNORECASE)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_MRSS_PREFIX = re.compile(
    rb"""xmlns:([A-Za-z_][\w.-]*)\s*=\s*["']http://search\.yahoo\.com/mrss/?["']"""
)
_IMAGE_TYPES = ("image/",)


def parse_feed(
    data: bytes,
    *,
    source_id: str,
    location: str,
    base_url: str,
    content_type: str,
    now: datetime,
) -> tuple[list[Post], list[str]]:
    """Parse a feed document into posts (in document order) and problems.

    ``location`` is the URL or path named in messages; ``base_url`` (the final fetch
    URL, or "" for a local file) resolves relative links when the feed and entry
    links cannot; ``content_type`` is the HTTP header, if any (declares the charset).
    Raises ``SourceError`` for documents that declare entities and for anything
    that is not a readable feed.
    """
    refuse_entities(data, source_id=source_id, location=location)
    # No Content-Location on purpose: relative links are resolved below against the
    # entry's own link, then the feed's link, and only then the fetch URL.
    headers = {"content-type": content_type} if content_type else {}
    # A BytesIO, not bytes: feedparser treats a bytes or str argument as a file name to try.
    try:
        parsed = feedparser.parse(
            io.BytesIO(_protect_media_captions(data)), response_headers=headers
        )
    except Exception as exc:  # feedparser reports bad input as "bozo"; anything else is its bug
        raise SourceError(_not_a_feed(source_id, location, f"parser failure: {exc!r}")) from exc
    entries: list[Any] = list(parsed.get("entries", []))
    error = parsed.get("bozo_exception") if parsed.get("bozo") else None
    cause = _describe(error)
    if not parsed.get("version"):
        reason = cause if error is not None else "no RSS or Atom root element"
        raise SourceError(_not_a_feed(source_id, location, reason))
    problems: list[str] = []
    if error is not None and _is_encoding_issue(error):
        problems.append(f"feed: {cause}; read it anyway")
    elif error is not None and not entries:
        raise SourceError(_not_a_feed(source_id, location, cause))
    elif error is not None:
        problems.append(f"feed: not well-formed ({cause}); used the items that could be read")

    feed: Mapping[str, Any] = parsed.get("feed", {})
    feed_base = absolute_url(str(feed.get("link", "")), base_url) or base_url
    posts: list[Post] = []
    for number, entry in enumerate(entries, start=1):
        if not any(entry.get(key) for key in ("title", "link", "id", "summary", "content")):
            problems.append(f"item {number}: no title, link, id or content; skipped")
            continue
        post, entry_problems = _entry_to_post(
            entry, source_id=source_id, base_url=feed_base, now=now
        )
        posts.append(post)
        problems.extend(entry_problems)
    return posts, problems


def refuse_entities(data: bytes, *, source_id: str, location: str) -> None:
    """Raise ``SourceError`` when the document's prolog declares entities.

    Entity declarations have no place in a feed and are how billion-laughs and
    external-entity attacks start, so such documents are refused outright.
    """
    prolog = _COMMENT.sub("", _prolog_text(data))
    root = _ROOT_ELEMENT.search(prolog)
    if _ENTITY_DECLARATION.search(prolog[: root.start()] if root else prolog):
        raise SourceError(
            f"source '{source_id}': {location} declares XML entities (<!ENTITY in its "
            "DOCTYPE), which digest refuses for safety; ask the publisher to remove them "
            "or remove the source"
        )


def _prolog_text(data: bytes) -> str:
    """The document as text, decoded just well enough to look at its markup."""
    head = data[:4]
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return data.decode("utf-32", errors="replace")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    if head.startswith(b"<\x00"):
        return data.decode("utf-16-le", errors="replace")
    if head.startswith(b"\x00<"):
        return data.decode("utf-16-be", errors="replace")
    return data.decode("latin-1")  # every ASCII-compatible encoding reads the same here


def _protect_media_captions(data: bytes) -> bytes:
    # feedparser parses media:description as the entry's description, so a photo
    # caption replaces the summary or the content (kurtmckee/feedparser#53). Renamed,
    # it lands in its own key (media_digestcaption) instead.
    for prefix in set(_MRSS_PREFIX.findall(data)):
        data = re.sub(
            rb"<(/?)" + re.escape(prefix) + rb":description\b",
            rb"<\1" + prefix + rb":digestcaption",
            data,
        )
    return data


def _describe(exc: object) -> str:
    if exc is None:
        return ""
    line = getattr(exc, "getLineNumber", None)
    message = getattr(exc, "getMessage", None)
    if callable(line) and callable(message):
        return f"line {line()}: {message()}"
    return str(exc) or type(exc).__name__


def _is_encoding_issue(exc: object) -> bool:
    return type(exc).__name__ in ("CharacterEncodingOverride", "NonXMLContentType")


def _not_a_feed(source_id: str, location: str, cause: str) -> str:
    if location.startswith(("http://", "https://")):
        advice = f"check the url in [sources.{source_id}] or remove the source"
    else:
        advice = "fix the file or remove the source"
    return f"source '{source_id}': {location} is not a valid RSS or Atom feed ({cause}); {advice}"


def _entry_to_post(
    entry: Mapping[str, Any], *, source_id: str, base_url: str, now: datetime
) -> tuple[Post, list[str]]:
    raw_title = str(entry.get("title", ""))
    title = plain_text(raw_title) or UNTITLED
    link = absolute_url(str(entry.get("link", "")), base_url)
    content_base = link or base_url
    content_raw = _html_of(entry.get("content", [{}])[0]) if entry.get("content") else ""
    summary_raw = _html_of(entry.get("summary_detail")) if entry.get("summary") else ""
    content_html = clean_html(content_raw or summary_raw, content_base)
    # feedparser copies an Atom entry's only content into its summary: not a summary.
    summary = clean_html(summary_raw, content_base) if summary_raw != content_raw else ""
    summary_html = summary or first_paragraph(content_html)

    guid = str(entry.get("id", "")).strip() or link
    if not guid:
        digest = hashlib.sha256(f"{raw_title}\x00{content_raw or summary_raw}".encode())
        guid = f"sha256:{digest.hexdigest()}"

    name = title if title != UNTITLED else (link or guid)
    problems: list[str] = []
    published = _date_of(entry)
    if published is None:
        problems.append(f"item '{name}': no date, used fetch time")
        published = now
    elif published > now + FUTURE_TOLERANCE:
        problems.append(
            f"item '{name}': dated {published.isoformat()}, in the future; used fetch time"
        )
        published = now

    image_url, image_caption = _image_of(entry, content_base)
    if not image_url:
        image_url, image_caption = first_image(content_html)
    post = Post(
        source_id=source_id,
        guid=guid,
        title=title,
        link=link,
        published=published,
        author=_author_of(entry),
        summary_html=summary_html,
        content_html=content_html,
        image_url=image_url,
        image_caption=image_caption,
        categories=_categories_of(entry),
    )
    return post, problems


def _html_of(detail: Any) -> str:
    """The value of a feedparser text construct as HTML (plain text is escaped)."""
    if not isinstance(detail, Mapping):
        return ""
    value = str(detail.get("value", "") or "")
    if "html" in str(detail.get("type", "text/html")):
        return value
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", value) if p.strip()]
    return "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)


def _date_of(entry: Mapping[str, Any]) -> datetime | None:
    for key in ("published_parsed", "updated_parsed"):
        parsed = entry.get(key)
        if isinstance(parsed, time.struct_time):
            try:
                return datetime(*parsed[:6], tzinfo=UTC)
            except ValueError:
                continue
    return None


def _author_of(entry: Mapping[str, Any]) -> str:
    detail = entry.get("author_detail")
    if isinstance(detail, Mapping) and detail.get("name"):
        return plain_text(str(detail["name"]))
    return plain_text(str(entry.get("author", "")))


def _categories_of(entry: Mapping[str, Any]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for tag in entry.get("tags", []) or []:
        term = plain_text(str(tag.get("term") or tag.get("label") or ""))
        if term:
            seen.setdefault(term, None)
    return tuple(seen)


def _image_of(entry: Mapping[str, Any], base_url: str) -> tuple[str, str]:
    """Lead image from media:content, media:thumbnail or an image enclosure."""
    caption = plain_text(str(entry.get("media_digestcaption", "")))
    for media in entry.get("media_content", []) or []:
        medium = str(media.get("medium", "")) or str(media.get("type", "")).split("/")[0]
        if medium in ("image", ""):
            url = absolute_url(str(media.get("url", "")), base_url)
            if url:
                return url, caption
    for thumbnail in entry.get("media_thumbnail", []) or []:
        url = absolute_url(str(thumbnail.get("url", "")), base_url)
        if url:
            return url, caption
    for link in entry.get("links", []) or []:
        is_image = str(link.get("type", "")).startswith(_IMAGE_TYPES)
        if link.get("rel") == "enclosure" and is_image:
            url = absolute_url(str(link.get("href", "")), base_url)
            if url:
                return url, caption
    return "", ""
