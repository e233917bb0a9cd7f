"""The plain-text part of a digest, written as a person would write a text email.

No Markdown: titles are lines of their own, paragraphs and list items wrap at
``TEXT_WIDTH`` columns on spaces only (never inside a word, never at a hyphen, so a URL
is never split), and an excerpt's links become numbered references listed under it, each
URL whole on its own line. A link whose text is its URL is left in place as it is.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from digest.excerpts import Block, Excerpt

TEXT_WIDTH = 72


def wrap(text: str, *, first: str = "", rest: str = "") -> str:
    """``text`` wrapped at ``TEXT_WIDTH``; words longer than a line stay whole.

    Line breaks in ``text`` are kept; ``first`` starts the first line, ``rest`` the others.
    """
    lines: list[str] = []
    for number, line in enumerate(text.split("\n")):
        lead = first if number == 0 else rest
        wrapped = textwrap.wrap(
            " ".join(line.split()),
            width=TEXT_WIDTH,
            initial_indent=lead,
            subsequent_indent=rest,
            break_long_words=False,
            break_on_hyphens=False,
        )
        lines.extend(wrapped or [lead.rstrip()])
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class TextExcerpt:
    """An excerpt as wrapped text, and the URLs its ``[n]`` markers refer to."""

    body: str
    references: tuple[str, ...]

    @property
    def reference_lines(self) -> list[str]:
        return [f"[{number}] {url}" for number, url in enumerate(self.references, start=1)]


def excerpt_text(excerpt: Excerpt) -> TextExcerpt:
    """``excerpt`` as plain text: blocks separated by a blank line, links numbered."""
    references: list[str] = []
    paragraphs: list[str] = []
    previous: Block | None = None
    for block in excerpt.blocks:
        text = _inline(block, references)
        if block.kind == "pre":
            piece = "\n".join("    " + line for line in block.text.split("\n"))
        elif block.kind == "quote":
            piece = wrap(text, first="> ", rest="> ")
        elif block.kind in ("ul", "ol"):
            marker = f"{block.number}. " if block.kind == "ol" else "- "
            piece = wrap(text, first="  " + marker, rest=" " * (2 + len(marker)))
        else:
            piece = wrap(text)
        same_list = (
            previous is not None
            and block.kind in ("ul", "ol")
            and (previous.kind, previous.list_id) == (block.kind, block.list_id)
        )
        if same_list:
            paragraphs[-1] += "\n" + piece  # list items sit on consecutive lines
        else:
            paragraphs.append(piece)
        previous = block
    return TextExcerpt("\n\n".join(paragraphs), tuple(references))


def _inline(block: Block, references: list[str]) -> str:
    """The block's text with a ``[n]`` after each link (one number per URL)."""
    out: list[str] = []
    spans = block.spans
    for index, span in enumerate(spans):
        out.append(span.text)
        next_href = spans[index + 1].href if index + 1 < len(spans) else ""
        if not span.href or next_href == span.href:
            continue  # the link goes on in the next run
        if span.text.strip() in (span.href, span.href.removeprefix("mailto:")):
            continue  # the text already says where it goes
        if span.href not in references:
            references.append(span.href)
        out.append(f" [{references.index(span.href) + 1}]")
    return "".join(out)
