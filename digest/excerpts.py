"""A post's excerpt: its leading text, whatever its markup, to a length budget.

Feeds hold anything: paragraphs, bare text with blank lines, ``<div>`` soup, lists, code,
and noise that only looks like text (escaped markup, CSS from a leaked ``<style>``,
WordPress shortcodes, "The post ... appeared first on ..."). ``excerpt`` reads
already-sanitized HTML into blocks of styled text runs, leaves out images, figures and
tables (the lead image is shown once, above) and the noise, and stops at ``budget``
characters of text, on a word, with "…". The blocks are rendered as HTML here
(:meth:`Excerpt.html`) and as plain text by :mod:`digest.plaintext`, so both parts of a
digest say the same.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, replace
from html.parser import HTMLParser
from typing import Literal

from digest.noise import clean_noise
from digest.sanitize import ELLIPSIS, LONGEST_WORD, TRAILING

EXCERPT_CHARS = 600  # characters of text in a post's excerpt
LINE_CHARS = 160  # characters of a compact digest's one-line excerpt
BlockKind = Literal["p", "h", "quote", "pre", "ul", "ol"]  # ul, ol: one item of a list

_BLOCKS = frozenset(
    {"p", "div", "blockquote", "pre", "h2", "h3", "h4", "li", "dt", "dd", "ul", "ol", "dl"}
)
# Left out with everything inside: the lead image stands for the pictures, and a table
# or a figure's caption is not the post's leading text.
_SKIPPED = frozenset({"img", "figure", "table", "hr"})
_SKIPPED_WITH_CONTENT = frozenset({"figure", "table"})
_STRONG = frozenset({"strong", "b"})
_EM = frozenset({"em", "i", "cite", "q"})
_CODE = frozenset({"code", "kbd", "samp"})
_SPACE = re.compile(r"\s+")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")

_READ_MORE_TAIL = re.compile(r"\s*(?:\[(?:…|\.\.\.|&hellip;)\]|\[\s*(?:…|\.\.\.)\s*\])\s*\Z")
_APPEARED_FIRST = re.compile(r"\AThe post .{1,400} appeared first on .{1,200}\.?\Z", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Span:
    """A run of text in one style; ``href`` when it is (part of) a link."""

    text: str
    href: str = ""
    strong: bool = False
    em: bool = False
    code: bool = False

    def same_style(self, other: Span) -> bool:
        return (self.href, self.strong, self.em, self.code) == (
            other.href,
            other.strong,
            other.em,
            other.code,
        )


@dataclass(frozen=True, slots=True)
class Block:
    """A paragraph, heading, quotation, preformatted text or one list item."""

    kind: BlockKind
    spans: tuple[Span, ...]
    list_id: int = 0  # the items of one list share it
    number: int = 0  # an ordered list item's number

    @property
    def text(self) -> str:
        return "".join(span.text for span in self.spans)


@dataclass(frozen=True, slots=True)
class Excerpt:
    """The blocks of an excerpt; ``shortened`` when the post goes on after them."""

    blocks: tuple[Block, ...] = ()
    shortened: bool = False

    def __bool__(self) -> bool:
        return bool(self.blocks)

    @property
    def links(self) -> list[str]:
        """The excerpt's link targets, each once, in order of appearance."""
        found: dict[str, None] = {}
        for block in self.blocks:
            for span in block.spans:
                if span.href:
                    found.setdefault(span.href, None)
        return list(found)

    def html(self) -> str:
        """The excerpt as HTML: escaped text, ``<p>``, ``<ul>``/``<ol>``, ``<pre>``, ..."""
        out: list[str] = []
        open_list: tuple[str, int] | None = None
        for block in self.blocks:
            if open_list and (block.kind, block.list_id) != open_list:
                out.append(f"</{open_list[0]}>")
                open_list = None
            if block.kind in ("ul", "ol"):
                if open_list is None:
                    start = (
                        f' start="{block.number}"'
                        if block.kind == "ol" and block.number != 1
                        else ""
                    )
                    out.append(f"<{block.kind}{start}>")
                    open_list = (block.kind, block.list_id)
                out.append(f"<li>{_spans_html(block.spans)}</li>")
            elif block.kind == "pre":
                out.append(f"<pre>{html.escape(block.text, quote=False)}</pre>")
            elif block.kind == "quote":
                out.append(f"<blockquote>{_spans_html(block.spans)}</blockquote>")
            elif block.kind == "h":
                out.append(f"<p><strong>{_spans_html(block.spans)}</strong></p>")
            else:
                out.append(f"<p>{_spans_html(block.spans)}</p>")
        if open_list:
            out.append(f"</{open_list[0]}>")
        return "".join(out)

    def within(self, budget: int) -> Excerpt:
        """This excerpt cut to ``budget`` characters of text (on a word, with "…")."""
        return _cut(list(self.blocks), budget, shortened=self.shortened)

    def line(self, budget: int = LINE_CHARS) -> Excerpt:
        """This excerpt as one paragraph of plain text (no links, lists or code) within
        ``budget`` characters, on a word: the excerpt of a compact digest."""
        texts = (_SPACE.sub(" ", block.text).strip() for block in self.blocks)
        text = " ".join(piece for piece in texts if piece)
        if not text:
            return Excerpt()
        return _cut([Block("p", (Span(text),))], budget, shortened=self.shortened)


def _spans_html(spans: tuple[Span, ...]) -> str:
    out = []
    for span in spans:
        piece = html.escape(span.text, quote=False).replace("\n", "<br>")
        if span.code:
            piece = f"<code>{piece}</code>"
        if span.em:
            piece = f"<em>{piece}</em>"
        if span.strong:
            piece = f"<strong>{piece}</strong>"
        if span.href:
            piece = f'<a href="{html.escape(span.href, quote=True)}">{piece}</a>'
        out.append(piece)
    return "".join(out)


def excerpt(clean_html: str, budget: int = EXCERPT_CHARS) -> Excerpt:
    """The leading text of sanitized HTML ``clean_html`` within ``budget`` characters."""
    reader = _Reader()
    try:
        reader.feed(clean_html or "")
        reader.close()
    except _Enough:
        pass
    return _cut(reader.finish(), budget, shortened=reader.stopped)


def _cut(blocks: list[Block], budget: int, *, shortened: bool) -> Excerpt:
    kept: list[Block] = []
    room = budget
    for block in blocks:
        length = len(block.text)
        if length <= room:
            kept.append(block)
            room -= length
            continue
        partial = _cut_block(block, room, first=not kept)
        if partial is not None:
            kept.append(partial)
        elif kept:
            kept[-1] = _with_ellipsis(kept[-1])
        return Excerpt(tuple(kept), shortened=True)
    return Excerpt(tuple(kept), shortened=shortened)


def _cut_block(block: Block, room: int, *, first: bool) -> Block | None:
    """``block`` cut to ``room`` characters on a word with "…"; None if nothing fits."""
    if block.kind == "pre":  # whole lines
        lines, size = [], 0
        for line in block.text.split("\n"):
            if size + len(line) > room:
                break
            lines.append(line)
            size += len(line) + 1
        if not lines:
            return None
        return replace(block, spans=(Span("\n".join(lines).rstrip() + "\n" + ELLIPSIS),))
    spans: list[Span] = []
    for span in block.spans:
        if len(span.text) <= room:
            spans.append(span)
            room -= len(span.text)
            continue
        piece = span.text[:room]
        space = max(piece.rfind(" "), piece.rfind("\n"))
        if space > 0:
            piece = piece[:space]
        elif spans or len(span.text) <= LONGEST_WORD or not first:
            piece = ""  # the word does not fit: end before it
        if piece.rstrip(TRAILING):
            spans.append(replace(span, text=piece.rstrip(TRAILING)))
        break
    while spans and not spans[-1].text.rstrip(TRAILING):
        spans.pop()
    if not spans:
        return None
    return _with_ellipsis(replace(block, spans=tuple(spans)))


def _with_ellipsis(block: Block) -> Block:
    spans = list(block.spans)
    last = spans[-1]
    if block.kind == "pre":
        spans[-1] = replace(last, text=last.text.rstrip() + "\n" + ELLIPSIS)
    elif last.href or last.code:  # the ellipsis is not part of the link
        spans.append(Span(ELLIPSIS))
    else:
        spans[-1] = replace(last, text=last.text.rstrip(TRAILING) + ELLIPSIS)
    return replace(block, spans=tuple(spans))


class _Enough(Exception):
    """Raised inside the parser once far more text than any budget has been read."""


_READ_AT_MOST = 20 * EXCERPT_CHARS


class _Reader(HTMLParser):
    """Sanitized HTML to blocks: block tags start and end blocks, inline tags style runs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[Block] = []
        self.stopped = False
        self._spans: list[Span] = []
        self._kind: BlockKind = "p"
        self._skip = 0
        self._pre = 0
        self._quote = 0
        self._heading = 0
        self._links: list[str] = []
        self._strong = self._em = self._code = 0
        self._lists: list[tuple[BlockKind, int, int]] = []  # kind, id, next number
        self._list_ids = 0
        self._item: tuple[BlockKind, int, int] | None = None
        self._read = 0

    # -- structure -------------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skip:
            if tag in _SKIPPED_WITH_CONTENT:
                self._skip += 1
            return
        if tag in _SKIPPED_WITH_CONTENT:
            self._flush()
            self._skip = 1
        elif tag in _SKIPPED:
            return
        elif tag == "br":
            self._add("\n")
        elif tag in _BLOCKS:
            self._flush()
            self._open_block(tag, attrs)
        elif tag == "a":
            self._links.append(dict(attrs).get("href") or "")
        elif tag in _STRONG:
            self._strong += 1
        elif tag in _EM:
            self._em += 1
        elif tag in _CODE:
            self._code += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br" and not self._skip:
            self._add("\n")

    def _open_block(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("ul", "ol"):
            self._list_ids += 1
            start = _number(dict(attrs).get("start")) if tag == "ol" else 1
            self._lists.append(("ol" if tag == "ol" else "ul", self._list_ids, start))
        elif tag == "li" and self._lists:
            kind, ident, number = self._lists[-1]
            self._item = (kind, ident, number)
            self._lists[-1] = (kind, ident, number + 1)
        elif tag == "pre":
            self._pre += 1
        elif tag == "blockquote":
            self._quote += 1
        elif tag in ("h2", "h3", "h4"):
            self._heading += 1

    def handle_endtag(self, tag: str) -> None:
        if self._skip:
            if tag in _SKIPPED_WITH_CONTENT:
                self._skip -= 1
            return
        if tag in _BLOCKS:
            self._flush()
            if tag in ("ul", "ol") and self._lists:
                self._lists.pop()
                self._item = None
            elif tag == "li":
                self._item = None
            elif tag == "pre":
                self._pre = max(0, self._pre - 1)
            elif tag == "blockquote":
                self._quote = max(0, self._quote - 1)
            elif tag in ("h2", "h3", "h4"):
                self._heading = max(0, self._heading - 1)
        elif tag == "a" and self._links:
            self._links.pop()
        elif tag in _STRONG:
            self._strong = max(0, self._strong - 1)
        elif tag in _EM:
            self._em = max(0, self._em - 1)
        elif tag in _CODE:
            self._code = max(0, self._code - 1)

    # -- text ------------------------------------------------------------------------

    def handle_data(self, data: str) -> None:
        if self._skip or not data:
            return
        if self._pre:
            self._add(data)
            return
        data = data[:_READ_AT_MOST]  # never more than an excerpt can use
        if not self._code:
            data = clean_noise(data)
        if not self._item and not self._quote and not self._heading:
            # Bare text: a blank line in it is a paragraph break (plain-text content).
            parts = _PARAGRAPH_BREAK.split(data)
            for number, part in enumerate(parts):
                if number:
                    self._flush()
                self._add(_SPACE.sub(" ", part))
            return
        self._add(_SPACE.sub(" ", data))

    def _add(self, text: str) -> None:
        if (
            not self._pre
            and text.startswith(" ")
            and (not self._spans or self._spans[-1].text.endswith((" ", "\n")))
        ):
            text = text.lstrip(" ")  # one space between runs, as a browser shows it
        if not text:
            return
        span = Span(
            text,
            href=next((h for h in reversed(self._links) if h), ""),
            strong=bool(self._strong),
            em=bool(self._em),
            code=bool(self._code),
        )
        if self._spans and self._spans[-1].same_style(span):
            self._spans[-1] = replace(self._spans[-1], text=self._spans[-1].text + text)
        else:
            self._spans.append(span)
        self._read += len(text)
        if self._read > _READ_AT_MOST:
            self._flush()
            self.stopped = True
            raise _Enough

    def _flush(self) -> None:
        spans = _trimmed(self._spans, keep_space=bool(self._pre))
        self._spans = []
        if not spans:
            return
        block = Block(self._block_kind(), tuple(spans))
        if self._item:
            kind, ident, number = self._item
            block = Block(kind, block.spans, list_id=ident, number=number)
        if _is_noise_paragraph(block):
            return
        self.blocks.append(block)

    def _block_kind(self) -> BlockKind:
        if self._pre:
            return "pre"
        if self._heading:
            return "h"
        if self._quote:
            return "quote"
        return "p"

    def finish(self) -> list[Block]:
        self._flush()
        if self.blocks:
            last = self.blocks[-1]
            text = _READ_MORE_TAIL.sub("", last.spans[-1].text)
            if text != last.spans[-1].text:  # WordPress's "[…]": the excerpt says so itself
                spans = (*last.spans[:-1], replace(last.spans[-1], text=text))
                self.blocks[-1] = replace(last, spans=tuple(s for s in spans if s.text))
                self.stopped = True
                if not self.blocks[-1].spans:
                    self.blocks.pop()
                if self.blocks:
                    self.blocks[-1] = _with_ellipsis(self.blocks[-1])
        return self.blocks


def _trimmed(spans: list[Span], *, keep_space: bool) -> list[Span]:
    """Runs without space at the block's start and end (and, for pre, blank end lines)."""
    if keep_space:
        text = "".join(s.text for s in spans).strip("\n").rstrip()
        return [Span(text)] if text.strip() else []
    result = [s for s in spans if s.text]
    while result and not result[0].text.strip():
        result.pop(0)
    while result and not result[-1].text.strip():
        result.pop()
    if not result:
        return []
    result[0] = replace(result[0], text=result[0].text.lstrip())
    result[-1] = replace(result[-1], text=result[-1].text.rstrip())
    # Line breaks at the edges and runs of spaces between runs are collapsed.
    return [replace(s, text=re.sub(r" *\n *", "\n", s.text)) for s in result]


def _is_noise_paragraph(block: Block) -> bool:
    return block.kind == "p" and bool(_APPEARED_FIRST.match(block.text.strip()))


def _number(value: str | None) -> int:
    try:
        return max(0, int(value or "1"))
    except ValueError:
        return 1
