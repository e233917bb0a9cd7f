"""Choose a post's lead image deliberately, and size it without upscaling.

A feed offers images in several places (media:content, an image enclosure, images in the
content, media:thumbnail), and many of them are not the post's picture: a 1x1 tracking
pixel, a 60x60 author avatar, a feed service's "subscribe" button, an advertisement, a
154 px thumbnail. ``choose_lead`` skips those and prefers an image declared at least as
wide as the digest's column; ``display_width`` is the width attribute the email gives it:
the smaller of the declared width and the column, so that nothing is stretched.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urlsplit

from digest.sanitize import absolute_url, plain_text

COLUMN_WIDTH = 536  # px: the digest's 600 px column less its padding
MIN_LEAD_WIDTH = 200  # px: narrower is an avatar, an icon or a thumbnail, not a lead image
MIN_LEAD_HEIGHT = 80  # px: lower is a banner, a button or a divider
TRACKING_PIXEL = 2  # px: an image declared this small in either direction is a pixel

# Hosts that serve feed-service buttons, share buttons, statistics pixels, avatars and
# advertisements, never a post's picture (a host matches with its subdomains).
_NOT_LEAD_HOSTS = (
    "feeds.feedburner.com",
    "feedproxy.google.com",
    "feeds.wordpress.com",
    "feeds.feedblitz.com",
    "pixel.wp.com",
    "stats.wordpress.com",
    "gravatar.com",
    "doubleclick.net",
    "googlesyndication.com",
    "googleadservices.com",
    "pheedo.com",
    "feedads.googleadservices.com",
    "adserver.adtechus.com",
    "ads.pheedo.com",
    "api.tweetmeme.com",
    "s.w.org",  # WordPress's emoji images
)
# Paths that give the same away on any host: FeedBurner's flare (/~ff/), its redirects
# (/~r/), counters, spacers and the classic pixel names.
_NOT_LEAD_PATH = re.compile(
    r"/~(?:ff|r|a)/|/(?:pixel|spacer|blank|transparent|1x1|tracking|beacon|counter)"
    r"[^/]*\.(?:gif|png)$|/(?:avatars?|emoji|smilies|ads?|adserver|banners?)/",
    re.IGNORECASE,
)
_LENGTH = re.compile(r"\s*(\d{1,6})(?:\.\d*)?\s*(?:px)?\s*\Z", re.IGNORECASE)
# What the sanitizer drops with its content: an image in there is not part of the post.
_HIDDEN = frozenset({"script", "style", "noscript", "template", "svg", "math", "iframe", "object"})


@dataclass(frozen=True, slots=True)
class ImageCandidate:
    """An image a source offers: absolute URL, declared size (0: not declared), caption."""

    url: str
    width: int = 0
    height: int = 0
    caption: str = ""


def dimension(value: object) -> int:
    """A declared width or height in pixels ("600", "600px", " 600 "); 0 if there is none.

    A percentage or any other unit says nothing about the image's pixels: 0.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return max(0, value)
    match = _LENGTH.match(str(value or ""))
    return int(match[1]) if match else 0


def is_not_lead(candidate: ImageCandidate) -> bool:
    """Whether ``candidate`` is a pixel, an avatar, a button, an ad or a thumbnail."""
    width, height = candidate.width, candidate.height
    if (width and width <= TRACKING_PIXEL) or (height and height <= TRACKING_PIXEL):
        return True
    if (width and width < MIN_LEAD_WIDTH) or (height and height < MIN_LEAD_HEIGHT):
        return True
    parts = urlsplit(candidate.url)
    host = (parts.hostname or "").lower()
    if any(host == bad or host.endswith("." + bad) for bad in _NOT_LEAD_HOSTS):
        return True
    return bool(_NOT_LEAD_PATH.search(parts.path))


def choose_lead(candidates: Iterable[ImageCandidate]) -> ImageCandidate | None:
    """The lead image among ``candidates`` (in the source's order of preference), or None.

    Images that are not a lead (:func:`is_not_lead`) are skipped. Of the rest, the first
    that fills the column, or whose width is not declared, wins; failing that, the widest
    (it is shown at its own width, never stretched).
    """
    usable = [c for c in candidates if c.url and not is_not_lead(c)]
    for candidate in usable:
        if not candidate.width or candidate.width >= COLUMN_WIDTH:
            return candidate
    return max(usable, key=lambda c: c.width, default=None)


def display_width(declared: int, column: int = COLUMN_WIDTH) -> int:
    """The width attribute of a lead image: its declared width, at most the column."""
    return min(declared, column) if declared > 0 else column


def html_images(raw_html: str, base_url: str) -> list[ImageCandidate]:
    """The images of an HTML fragment, before sanitizing (which drops width and height).

    URLs are made absolute and checked as the sanitizer does; images inside elements the
    sanitizer removes with their content (``<noscript>``, ``<svg>``, ...) are left out.
    The caption is the image's ``<figcaption>``, else its ``alt``, else its ``title``.
    """
    finder = _Images(base_url)
    finder.feed(raw_html or "")
    finder.close()
    return finder.found()


class _Images(HTMLParser):
    def __init__(self, base_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self._base = base_url
        self._hidden = 0
        self._images: list[dict[str, str]] = []
        # Per open figure: its images' indexes and its caption's text.
        self._figures: list[tuple[list[int], list[str]]] = []
        self._captions: dict[int, str] = {}
        self._in_caption = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self._hidden += 1
        elif self._hidden:
            return
        elif tag == "figure":
            self._figures.append(([], []))
        elif tag == "figcaption":
            self._in_caption += 1
        elif tag == "img":
            values = {name: value or "" for name, value in attrs}
            self._images.append(values)
            if self._figures:
                self._figures[-1][0].append(len(self._images) - 1)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif self._hidden:
            return
        elif tag == "figcaption":
            self._in_caption = max(0, self._in_caption - 1)
        elif tag == "figure" and self._figures:
            indexes, caption = self._figures.pop()
            for index in indexes:
                self._captions[index] = " ".join(" ".join(caption).split())

    def close(self) -> None:
        super().close()
        while self._figures:  # figures left open by the end of the fragment
            self.handle_endtag("figure")

    def handle_data(self, data: str) -> None:
        if self._in_caption and self._figures and not self._hidden:
            self._figures[-1][1].append(data)

    def found(self) -> list[ImageCandidate]:
        result = []
        for index, values in enumerate(self._images):
            url = absolute_url(values.get("src", ""), self._base)
            if not url or url.startswith("mailto:"):
                continue
            caption = self._captions.get(index) or values.get("alt", "") or values.get("title", "")
            result.append(
                ImageCandidate(
                    url=url,
                    width=dimension(values.get("width")),
                    height=dimension(values.get("height")),
                    # Decoded text: escaped again so that plain_text reads it as text.
                    caption=plain_text(html.escape(caption, quote=False)),
                )
            )
        return result
