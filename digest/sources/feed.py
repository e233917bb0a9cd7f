"""Turn the bytes of an RSS (0.9x, 1.0, 2.0) or Atom 1.0 document into sanitized posts.

feedparser does the format work on bytes we fetched ourselves; everything it
returns is treated as untrusted and goes through ``digest.sanitize``. Problems with
one item (no date, a date more than a day ahead) are reported and the item is kept;
an item without a GUID of its own that repeats another item's link is dropped.
Fields longer than digest's limits are cut, and at most ``MAX_ITEMS`` items read
(``digest.sources.limits``); what was cut is reported.
"""

from __future__ import annotations

import hashlib
import html
import io
import re
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import feedparser
from feedparser.encodings import convert_to_utf8

from digest.errors import SourceError
from digest.images import ImageCandidate, choose_lead, dimension, html_images
from digest.models import Post
from digest.sanitize import (
    absolute_url,
    clean_html,
    clean_identifier,
    plain_text,
)
from digest.sources.limits import MAX_ITEMS, Cuts, cap_post
from digest.sources.links import DroppedLinks, is_relative, relative_urls

FUTURE_TOLERANCE = timedelta(days=1)
UNTITLED = "(untitled)"

_ENTITY_DECLARATION = re.compile(r"<!ENTITY", re.IGNORECASE)
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
    data = _protect_media_captions(data)
    refuse_entities(data, source_id=source_id, location=location, content_type=content_type)
    # No Content-Location on purpose: relative links are resolved below against the
    # entry's own link, then the feed's link, and only then the fetch URL.
    headers = _headers(content_type)
    # A BytesIO, not bytes: feedparser treats a bytes or str argument as a file name to try.
    try:
        parsed = feedparser.parse(io.BytesIO(data), response_headers=headers)
    except Exception as exc:  # feedparser reports bad input as "bozo"; anything else is its bug
        raise SourceError(_not_a_feed(source_id, location, f"parser failure: {exc!r}")) from exc
    entries: list[Any] = list(parsed.get("entries", []))
    error = parsed.get("bozo_exception") if parsed.get("bozo") else None
    cause = _describe(error)
    if not parsed.get("version"):
        reason = cause if error is not None else "no RSS or Atom root element"
        raise SourceError(_not_a_feed(source_id, location, reason))
    problems: list[str] = []
    broken = error is not None and not _is_encoding_issue(error)
    if error is not None and _is_encoding_issue(error):
        problems.append(f"feed: {cause}; read it anyway")
    elif error is not None and not entries:
        raise SourceError(_not_a_feed(source_id, location, cause))
    elif error is not None:
        problems.append(f"feed: not well-formed ({cause}); used the items that could be read")

    feed: Mapping[str, Any] = parsed.get("feed", {})
    feed_base = absolute_url(str(feed.get("link", "")), base_url) or base_url
    feed_author = _author_of(feed)  # the blog's one author, for items that name none
    cuts, dropped = Cuts(items_found=len(entries)), DroppedLinks()
    items: list[tuple[Post, bool]] = []  # each post, and whether the feed gave it a GUID
    for number, entry in enumerate(entries[:MAX_ITEMS], start=1):
        if not any(entry.get(key) for key in ("title", "link", "id", "summary", "content")):
            problems.append(f"item {number}: no title, link, id or content; skipped")
            continue
        post, has_guid, entry_problems = _entry_to_post(
            entry,
            source_id=source_id,
            base_url=feed_base,
            feed_author=feed_author,
            now=now,
            cuts=cuts,
            dropped=dropped,
        )
        if broken and not has_guid and not post.link:
            # Where the document breaks off, an item is often cut off too: stored now under
            # its content's hash, it would be stored again once the feed is fixed.
            problems.append(
                f"item {number} ('{post.title}'): no link or id in a document that is not"
                " well-formed (cut off?); skipped until the feed is fixed"
            )
            continue
        items.append((post, has_guid))
        problems.extend(entry_problems)
    posts = _without_link_twins(items, problems)
    problems.extend(cuts.problems())
    problems.extend(
        dropped.problem(
            f'set base_url = "https://..." in [sources.{source_id}] to the web address '
            "the feed belongs to"
        )
    )
    return posts, problems


def _without_link_twins(items: list[tuple[Post, bool]], problems: list[str]) -> list[Post]:
    """Drop (and report) the items without a GUID that repeat the link of one with a GUID.

    Only those: a status page or podcast feed links every item to one page, and its
    items, each with its own GUID, must all be kept. (Items without a GUID that share
    a link share their GUID too, which ``digest.sources.dedupe`` reports.)
    """
    linked = {post.link for post, has_guid in items if has_guid and post.link}
    kept: list[Post] = []
    for post, has_guid in items:
        if not has_guid and post.link in linked:
            problems.append(f"item '{post.title}': duplicate link {post.link}; kept the other")
        else:
            kept.append(post)
    return kept


def refuse_entities(data: bytes, *, source_id: str, location: str, content_type: str = "") -> None:
    """Raise ``SourceError`` when the document contains an entity declaration.

    Entity declarations have no place in a feed and are how billion-laughs and
    external-entity attacks start, so such documents are refused outright.
    ``<!ENTITY`` anywhere counts, inside comments too: feedparser lifts declarations
    out of comments in the prolog, and where a comment or the prolog ends is exactly
    what a crafted document disguises (in a processing instruction, a quoted string).
    The text is read as its bytes suggest (ASCII-compatible, UTF-16, UTF-32) and as
    feedparser will decode it (``content_type`` may name the charset), so a declared
    UTF-7 or EBCDIC document cannot hide one either.
    """
    for text in _readings(data, content_type):
        if _ENTITY_DECLARATION.search(text):
            raise SourceError(
                f"source '{source_id}': {location} declares XML entities (<!ENTITY), "
                "which digest refuses for safety; ask the publisher to remove them "
                "or remove the source"
            )


def _headers(content_type: str) -> dict[str, str]:
    return {"content-type": content_type} if content_type else {}


def _readings(data: bytes, content_type: str) -> Iterator[str]:
    """The document as text: as its first bytes suggest, then as feedparser decodes it."""
    yield _sniffed_text(data)
    try:
        converted = convert_to_utf8(_headers(content_type), data, {})
    except Exception:  # feedparser.parse then fails alike, and that is reported
        return
    if isinstance(converted, bytes):
        yield converted.decode("utf-8", errors="replace")


def _sniffed_text(data: bytes) -> str:
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
    # it lands in its own key (media_digestcaption) instead. Its attributes go: for a
    # renamed element with attributes (type="html"), feedparser keeps the attributes
    # as a dict and drops the text, which then showed as "{'type': 'html'}".
    for prefix in set(_MRSS_PREFIX.findall(data)):
        name = re.escape(prefix) + rb":description"
        data = re.sub(rb"<" + name + rb"\b[^>]*?/>", b"", data)  # an empty caption
        data = re.sub(rb"<" + name + rb"\b[^>]*>", rb"<" + prefix + rb":digestcaption>", data)
        data = re.sub(rb"</" + name + rb"\s*>", rb"</" + prefix + rb":digestcaption>", data)
    return data


# Feed services that rewrite item links into tracking redirects keep the publisher's
# own link beside it (FeedBurner's feedburner:origLink, Pheedo's pheedo:origLink).
_ORIGINAL_LINKS = ("feedburner_origlink", "pheedo_origlink")


def _original_link(entry: Mapping[str, Any], base_url: str) -> str:
    for key in _ORIGINAL_LINKS:
        found = entry.get(key)
        if isinstance(found, str) and found.strip():
            link = absolute_url(found, base_url)
            if link:
                return link
    return ""


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
    entry: Mapping[str, Any],
    *,
    source_id: str,
    base_url: str,
    feed_author: str,
    now: datetime,
    cuts: Cuts,
    dropped: DroppedLinks,
) -> tuple[Post, bool, list[str]]:
    """The post (its fields within the limits, cuts counted in ``cuts``, the relative
    links it lost in ``dropped``), whether the entry had a GUID of its own, and the
    entry's problems. An entry naming no author has the feed's (``feed_author``)."""
    raw_title = str(entry.get("title", ""))
    title = plain_text(raw_title) or UNTITLED
    link = _original_link(entry, base_url) or absolute_url(str(entry.get("link", "")), base_url)
    content_base = link or base_url
    content_raw = _html_of(entry.get("content", [{}])[0]) if entry.get("content") else ""
    summary_raw = _html_of(entry.get("summary_detail")) if entry.get("summary") else ""
    content_html = clean_html(content_raw or summary_raw, content_base)
    # feedparser copies an Atom entry's only content into its summary: not a summary.
    # Without a summary of its own, the digest's excerpt is made from the content.
    summary_html = clean_html(summary_raw, content_base) if summary_raw != content_raw else ""

    own_guid = clean_identifier(str(entry.get("id", "")))
    guid = own_guid or link
    if not guid:
        text = f"{raw_title}\x00{content_raw or summary_raw}"
        guid = f"sha256:{hashlib.sha256(text.encode(errors='surrogatepass')).hexdigest()}"

    published = _date_of(entry)
    lead = _image_of(entry, content_raw or summary_raw, content_base)
    post, cut = cap_post(
        Post(
            source_id=source_id,
            guid=guid,
            title=title,
            link=link,
            published=published or now,
            author=_author_of(entry) or feed_author,
            summary_html=summary_html,
            content_html=content_html,
            image_url=lead.url if lead else "",
            image_width=lead.width if lead else 0,
            image_caption=lead.caption if lead else "",
            categories=_categories_of(entry),
            dated=published is not None,
        )
    )
    cuts.add(post, cut)
    if not content_base:  # nothing to resolve a relative URL against: count what was lost
        lost = relative_urls(content_raw or summary_raw) + _relative_media(entry)
        if content_raw and summary_raw != content_raw:
            lost += relative_urls(summary_raw)
        lost += is_relative(str(entry.get("link", "")))
        dropped.add(post.title, lost)
    name = post.title if post.title != UNTITLED else (post.link or post.guid)
    problems: list[str] = []
    if published is None:
        problems.append(f"item '{name}': no date, used the time it was first seen")
    elif published > now + FUTURE_TOLERANCE:
        # The date is kept: selection holds the post back until then (an embargo, or
        # a wrong clock worth telling the publisher about).
        problems.append(
            f"item '{name}': dated {published.isoformat()}, in the future: it waits until then"
        )
    return post, bool(own_guid), problems


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
        # "in" first: feedparser answers a missing updated_parsed with published_parsed
        # and a DeprecationWarning.
        parsed = entry.get(key) if key in entry else None
        if isinstance(parsed, time.struct_time):
            try:
                return datetime(*parsed[:6], tzinfo=UTC)
            except (ValueError, OverflowError):
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


def _relative_media(entry: Mapping[str, Any]) -> int:
    urls = [str(media.get("url", "")) for media in entry.get("media_content", []) or []]
    urls += [str(thumb.get("url", "")) for thumb in entry.get("media_thumbnail", []) or []]
    links = entry.get("links", []) or []
    urls += [str(link.get("href", "")) for link in links if link.get("rel") == "enclosure"]
    return sum(is_relative(url) for url in urls if url)


def _image_of(entry: Mapping[str, Any], content_raw: str, base_url: str) -> ImageCandidate | None:
    """The lead image: media:content, an image enclosure, an image of the content, then
    media:thumbnail, in that order of preference (``digest.images.choose_lead``)."""
    found = entry.get("media_digestcaption", "")
    caption = plain_text(found if isinstance(found, str) else "")  # never a Python dict
    candidates: list[ImageCandidate] = []

    def offer(url: object, width: object = 0, height: object = 0) -> None:
        absolute = absolute_url(str(url or ""), base_url)
        if absolute:
            candidates.append(
                ImageCandidate(absolute, dimension(width), dimension(height), caption)
            )

    for media in entry.get("media_content", []) or []:
        medium = str(media.get("medium", "")) or str(media.get("type", "")).split("/")[0]
        if medium in ("image", ""):
            offer(media.get("url"), media.get("width"), media.get("height"))
    for link in entry.get("links", []) or []:
        if link.get("rel") == "enclosure" and str(link.get("type", "")).startswith(_IMAGE_TYPES):
            offer(link.get("href"))
    candidates.extend(html_images(content_raw, base_url))
    for thumbnail in entry.get("media_thumbnail", []) or []:
        offer(thumbnail.get("url"), thumbnail.get("width"), thumbnail.get("height"))
    return choose_lead(candidates)
