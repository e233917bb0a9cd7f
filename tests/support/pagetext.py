"""The text a page shows, as a browser without its stylesheet would lay it out: block
elements on lines of their own, inline ones run together. Used to catch words that a
template glued together (a block tag at the end of a line eats its line break)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

# HTML's block-level elements (and <br>, <option>): each starts a new line.
# fmt: off
BLOCKS = frozenset({
    "address", "article", "aside", "blockquote", "br", "button", "dd", "div", "dl", "dt",
    "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6",
    "header", "hr", "label", "legend", "li", "main", "nav", "ol", "option", "p", "pre",
    "section", "select", "table", "td", "th", "tr", "ul",
})
# fmt: on
HIDDEN = frozenset({"head", "script", "style", "title"})
# A lower-case letter against a capital or a digit ("receivesTransmission", "Title26"), or
# a full stop against the next sentence: what a lost space looks like in English.
GLUED = re.compile(r"[a-z][A-Z0-9]|[.!?][A-Z]")


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pieces: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.hidden += tag in HIDDEN
        if tag in BLOCKS:
            self.pieces.append("\n")

    def handle_endtag(self, tag: str) -> None:
        self.hidden -= tag in HIDDEN
        if tag in BLOCKS:
            self.pieces.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.pieces.append(" ".join(data.split("\n")))  # a line break in source is a space


def visible_text(page: str) -> str:
    """``page``'s text, one line per block, white space collapsed."""
    parser = _Text()
    parser.feed(page)
    lines = (" ".join(line.split()) for line in "".join(parser.pieces).split("\n"))
    return "\n".join(line for line in lines if line)


def glued_words(page: str) -> list[str]:
    """The words of ``page`` that look run together, each with its neighbours."""
    return [
        text[max(match.start() - 20, 0) : match.end() + 20]
        for text in visible_text(page).split("\n")
        for match in GLUED.finditer(text)
    ]
