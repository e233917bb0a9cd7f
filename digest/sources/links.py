"""Relative links a source gives nothing to resolve against: counted, so they are reported.

A URL in a post must be absolute to work in an email. A relative one (``/2026/11/post``,
``images/a.jpg``) is resolved against the item's link, the feed's link and the address
the feed came from; a local feed file whose links are all relative has none of those,
and ``digest.sanitize`` drops every such link and image. That used to happen silently;
now ``digest fetch`` says how many were dropped and what to set (``base_url`` for a
local feed file, a ``link`` for a folder post).
"""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser

from digest.sanitize import absolute_url

# Any absolute http(s) base: a URL that resolves against it but not alone is relative.
_PROBE_BASE = "https://base.invalid/"
_URL_ATTRIBUTES = {"a": "href", "img": "src"}


def is_relative(url: str) -> bool:
    """Whether ``url`` would be usable if only there were a base URL to resolve it against."""
    return not absolute_url(url, "") and bool(absolute_url(url, _PROBE_BASE))


def relative_urls(raw_html: str) -> int:
    """How many link targets and image sources in ``raw_html`` are relative."""
    if "=" not in raw_html:  # no attribute at all: nothing to parse
        return 0
    finder = _RelativeUrls()
    finder.feed(raw_html)
    finder.close()
    return finder.count


class _RelativeUrls(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.count = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = _URL_ATTRIBUTES.get(tag)
        if wanted is None:
            return
        for name, value in attrs:
            if name == wanted and value and is_relative(value):
                self.count += 1
                return

    handle_startendtag = handle_starttag


@dataclass
class DroppedLinks:
    """The relative links of one source that could not be resolved, and in how many items."""

    links: int = 0
    items: int = 0
    example: str = ""  # the title of the first item that lost one

    def add(self, title: str, links: int) -> None:
        if links:
            self.links += links
            self.items += 1
            self.example = self.example or title

    def problem(self, advice: str) -> list[str]:
        """The line to report (none when nothing was dropped); ``advice`` says what to set."""
        if not self.links:
            return []
        links = f"{self.links:,} relative link{'s' if self.links != 1 else ''}"
        items = f"{self.items:,} item{'s' if self.items != 1 else ''}"
        return [
            f"{links} in {items} dropped (first: item '{self.example}'): there is no absolute"
            f" address to resolve them against; {advice}"
        ]
