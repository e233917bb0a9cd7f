"""How large one post's fields may be, and cutting a field down to that at a sensible place.

A feed is written by someone else, and nothing in RSS or Atom bounds a field: a 4 MB
title was stored and mailed as an 8 MB message. So every post, from a feed or a folder,
goes through ``cap_post``; a source's fetch keeps at most ``MAX_ITEMS`` items; and
``Cuts`` counts what was cut, for the one line ``digest fetch`` reports per source.

Text (title, author, caption, category) is cut on a word, with an ellipsis. HTML is cut
between tags and entities (on a word where it can), then sanitized again, which closes
the elements left open, so a cut never leaves broken markup. A URL cannot be cut: one
too long is dropped. A GUID too long is replaced by its hash (the same at every fetch).
"""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass, field, replace

from digest.models import Post
from digest.sanitize import ELLIPSIS, LONGEST_WORD, TRAILING, clean_html, plain_text

MAX_ITEMS = 500  # items kept from one fetch of one source
MAX_TITLE = 300  # characters
MAX_AUTHOR = 200
MAX_CAPTION = 500
MAX_CATEGORIES = 20  # per post
MAX_CATEGORY = 60  # characters of each
MAX_SUMMARY = 20_000  # characters of sanitized HTML
MAX_CONTENT = 200_000
MAX_URL = 2_048
MAX_GUID = 1_000

# A tag (quoted attribute values may hold ">"), an entity, a run of text, a lone "&".
_TOKEN = re.compile(
    r"""<(?:[^>"']|"[^"]*"|'[^']*')*>?|&(?:#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);|[^<&]+|&"""
)
_OPEN_TAGS_AT_END = re.compile(r"""(?:<[A-Za-z](?:[^>"']|"[^"]*"|'[^']*')*>\s*)+\Z""")
_SPACE = re.compile(r"\s")


def shorten_text(text: str, limit: int) -> str:
    """``text`` if it has at most ``limit`` characters, else cut on a word with "…"."""
    if len(text) <= limit:
        return text
    cut = text[: limit - len(ELLIPSIS)]
    space = cut.rfind(" ")
    if space >= limit // 2:  # a word boundary not too far back; else cut inside the word
        cut = cut[:space]
    return cut.rstrip(TRAILING) + ELLIPSIS


def shorten_html(clean: str, limit: int) -> str:
    """Sanitized HTML ``clean`` cut to at most ``limit`` characters, still well-formed."""
    if len(clean) <= limit:
        return clean
    budget = limit
    for _ in range(8):  # the closing tags added take room too: then cut that much earlier
        shortened = clean_html(_cut_between_tags(clean, budget - len(ELLIPSIS)), "")
        if len(shortened) > limit:
            budget -= len(shortened) - limit
        elif plain_text(shortened) != ELLIPSIS:
            return shortened
        else:
            break
    # Pathological nesting (all of the room taken by tags): the text alone, as a paragraph.
    text = shorten_text(plain_text(clean), max(1, limit // 2))
    return f"<p>{html.escape(text, quote=False)}</p>"


def _cut_between_tags(clean: str, budget: int) -> str:
    """The longest prefix within ``budget`` that ends between tokens (or on a word in a
    text run), with "…" after its last text, not in an element left empty."""
    end = 0
    for token in _TOKEN.finditer(clean):
        if token.end() <= budget:
            end = token.end()
            continue
        if not token[0].startswith(("<", "&")):  # text: keep the words that fit
            piece = clean[token.start() : budget]
            spaces = [m.start() for m in _SPACE.finditer(piece)]
            # No space: cut inside the word, unless only a word's end would be lost.
            keep = spaces[-1] if spaces else (len(piece) if len(piece) > LONGEST_WORD else 0)
            if keep:
                return (clean[: token.start()] + piece[:keep]).rstrip(TRAILING) + ELLIPSIS
        break
    return _OPEN_TAGS_AT_END.sub("", clean[:end]).rstrip(TRAILING) + ELLIPSIS


@dataclass
class Cuts:
    """What ``cap_post`` cut from the posts of one source: how many posts per field."""

    counts: dict[str, int] = field(default_factory=dict)
    example: str = ""  # the (capped) title of the first post with a cut
    items_found: int = 0  # items of the source, when more than MAX_ITEMS
    kept: str = "the first"  # which MAX_ITEMS of them were kept

    def add(self, post: Post, fields: list[str]) -> None:
        for name in fields:
            self.counts[name] = self.counts.get(name, 0) + 1
        if fields and not self.example:
            self.example = post.title

    def problems(self) -> list[str]:
        """The lines to report: none when nothing was cut."""
        lines = []
        if self.items_found > MAX_ITEMS:
            lines.append(
                f"{self.items_found:,} items, more than digest takes from one fetch: "
                f"kept {self.kept} {MAX_ITEMS:,}"
            )
        if self.counts:
            parts = [
                f"{_FIELDS[name]} of {count:,} item{'s' if count != 1 else ''}"
                for name, count in self.counts.items()
            ]
            lines.append(
                f"fields cut to digest's limits: {', '.join(parts)} (first: item '{self.example}')"
            )
        return lines


_FIELDS = {
    "title": f"the title (to {MAX_TITLE} characters)",
    "author": f"the author (to {MAX_AUTHOR} characters)",
    "image_caption": f"the image caption (to {MAX_CAPTION} characters)",
    "categories": f"the categories (to {MAX_CATEGORIES} of {MAX_CATEGORY} characters)",
    "summary_html": f"the summary (to {MAX_SUMMARY:,} characters)",
    "content_html": f"the content (to {MAX_CONTENT:,} characters)",
    "link": f"the link (dropped: over {MAX_URL:,} characters)",
    "image_url": f"the image (dropped: its URL is over {MAX_URL:,} characters)",
    "guid": f"the GUID (over {MAX_GUID:,} characters: its hash instead)",
}


def cap_post(post: Post) -> tuple[Post, list[str]]:
    """``post`` with every field within its limit, and the names of the fields cut."""
    changes: dict[str, object] = {}
    for name, limit in (
        ("title", MAX_TITLE),
        ("author", MAX_AUTHOR),
        ("image_caption", MAX_CAPTION),
    ):
        value: str = getattr(post, name)
        if len(value) > limit:
            changes[name] = shorten_text(value, limit)
    for name, limit in (("summary_html", MAX_SUMMARY), ("content_html", MAX_CONTENT)):
        value = getattr(post, name)
        if len(value) > limit:
            changes[name] = shorten_html(value, limit)
    for name in ("link", "image_url"):
        if len(getattr(post, name)) > MAX_URL:
            changes[name] = ""
    if len(post.guid) > MAX_GUID:
        digest = hashlib.sha256(post.guid.encode(errors="surrogatepass")).hexdigest()
        changes["guid"] = f"sha256:{digest}"
    categories = tuple(dict.fromkeys(shorten_text(term, MAX_CATEGORY) for term in post.categories))[
        :MAX_CATEGORIES
    ]
    if categories != post.categories:
        changes["categories"] = categories
    cut = list(changes)
    if "image_url" in changes:
        changes["image_caption"] = ""  # the caption of no image
    return (replace(post, **changes) if changes else post), cut  # type: ignore[arg-type]
