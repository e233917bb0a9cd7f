"""The size budget of a digest's HTML part, and how a digest is made to fit it.

Gmail shows the first 102 KB of a message's HTML and hides the rest behind "View entire
message", and with it the footer: the unsubscribe link and the postal address. A digest
of many posts must therefore be made smaller, and never by cutting markup.

How, with premailer run once per edition variant: the renderer parses the Jinja2 document
once, premailer inlines the CSS into that tree, and :func:`fit` trims the *inlined* tree
by whole pieces, measuring the serialized bytes after each step, so every number is the
real size, with no estimate:

1. excerpts shortened, for every post alike (:data:`STEPS`: 300, then 160 characters,
   each cut on a word from the post's own :class:`~digest.excerpts.Excerpt`);
2. lead images (with their captions) dropped, then the "Read more" lines (the title is
   the same link);
3. finally posts dropped from the end, and the ``_more.html`` row ("N more posts in this
   edition", linking to the edition's web page, which lists every post) says how many.

Pieces are found by the shipped templates' classes (``post``, ``excerpt``,
``lead-image``, ``caption``, ``read-more``, ``more-posts``). A shortened excerpt or the
final "more" row is rendered anew and takes the inline styles premailer gave the piece it
replaces (the same elements, so the same styles). An editor's template without those
classes is left as it is where a piece cannot be found, and ``digest lint`` reports a
digest still over the budget. A digest within the budget is the premailer output
unchanged, less the "more" row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lxml import etree, html

from digest.excerpts import Excerpt

# Gmail clips at 102 KB; the budget leaves room for what a relay or a reader's headers add.
HTML_BUDGET = 95_000
# What each per-reader link may add to the HTML over its placeholder (a signed token URL).
LINK_ALLOWANCE = 400
MORE_POSTS = "more-posts"  # the class of _more.html's row: its page lists every post


@dataclass(frozen=True, slots=True)
class Step:
    """One step down: excerpts of ``excerpt_chars``; lead images, "Read more" lines kept?"""

    excerpt_chars: int
    images: bool = True
    read_more: bool = True


STEPS = (
    Step(300),
    Step(160),
    Step(160, images=False),
    Step(160, images=False, read_more=False),
)


@dataclass(frozen=True, slots=True)
class Fit:
    """What :func:`fit` did: how many posts are shown, and the last step taken (or None)."""

    shown: int
    left_out: int
    step: Step | None
    size: int  # bytes of the serialized document

    def describe(self) -> str:
        if self.step is None:
            return f"{self.shown} posts in full, {self.size:,} bytes"
        cut = [f"excerpts of {self.step.excerpt_chars} characters"]
        if not self.step.images:
            cut.append("no images")
        if not self.step.read_more:
            cut.append('no "Read more" lines')
        shown = f"{self.shown} posts shown"
        if self.left_out:
            shown += f", {self.left_out} linked to the edition's page"
        return f"{', '.join(cut)}; {shown}; {self.size:,} bytes"


def serialize(tree: etree._ElementTree) -> bytes:
    """The document as premailer itself would serialize it (UTF-8)."""
    return bytes(etree.tostring(tree, method="html", pretty_print=True, encoding="utf-8"))


def fit(
    tree: etree._ElementTree,
    excerpts: Sequence[Excerpt],
    *,
    budget: int,
    more_row: Callable[[int], str],
) -> Fit:
    """Trim the inlined ``tree`` (in place) until it serializes within ``budget`` bytes.

    ``excerpts`` are the posts' excerpts, in order; ``more_row(count)`` renders the row
    that links the ``count`` posts left out.
    """
    root = tree.getroot()
    placeholder = _first(root, MORE_POSTS)
    if placeholder is not None:
        _remove(placeholder)
    size = len(serialize(tree))
    posts = [cell.getparent() for cell in _all(root, "post")]
    if size <= budget or not posts:
        return Fit(len(posts), 0, None, size)
    pieces = [_Post(row) for row in posts if row is not None]
    if len(pieces) != len(excerpts):  # an editor's layout: excerpts cannot be matched
        excerpts = ()
    step: Step | None = None
    for step in STEPS:
        for n, piece in enumerate(pieces):
            piece.apply(step, excerpts[n] if excerpts else None)
        size = len(serialize(tree))
        if size <= budget:
            return Fit(len(pieces), 0, step, size)
    if placeholder is None:  # nowhere to say that posts were left out: leave them in
        return Fit(len(pieces), 0, step, size)
    return _leave_out(tree, pieces, placeholder, budget, more_row, step)


def _leave_out(
    tree: etree._ElementTree,
    pieces: list[_Post],
    placeholder: etree._Element,
    budget: int,
    more_row: Callable[[int], str],
    step: Step | None,
) -> Fit:
    """Drop posts from the end for the "more" row, keeping at least one post."""
    size = len(serialize(tree))
    sizes = [len(etree.tostring(piece.row, method="html", encoding="utf-8")) for piece in pieces]
    shown = len(pieces)
    # The row's size as inlined, give or take the digits of its count.
    row_size = len(etree.tostring(placeholder, method="html", encoding="utf-8"))
    while shown > 1 and size - sum(sizes[shown:]) + row_size > budget:
        shown -= 1
    anchor = pieces[shown - 1].row
    for piece in pieces[shown:]:
        _remove(piece.row)
    row = _styled_like(placeholder, more_row(len(pieces) - shown))
    row.tail = anchor.tail
    anchor.addnext(row)
    size = len(serialize(tree))
    while size > budget and shown > 1:  # the estimate was short: one more post goes
        shown -= 1
        _remove(pieces[shown].row)
        fresh = _styled_like(placeholder, more_row(len(pieces) - shown))
        fresh.tail = row.tail
        row.addprevious(fresh)
        _remove(row)
        row = fresh
        size = len(serialize(tree))
    return Fit(shown, len(pieces) - shown, step, size)


class _Post:
    """One post's row in the inlined tree, with the styles its excerpt's elements got."""

    def __init__(self, row: etree._Element) -> None:
        self.row = row
        self.excerpt = _first(row, "excerpt")
        self.styles: dict[str, str] = {}
        if self.excerpt is not None:
            for element in self.excerpt.iterdescendants():
                style = element.get("style")
                if isinstance(element.tag, str) and style is not None:
                    self.styles.setdefault(element.tag, style)

    def apply(self, step: Step, excerpt: Excerpt | None) -> None:
        if excerpt is not None and self.excerpt is not None:
            for child in list(self.excerpt):
                self.excerpt.remove(child)
            self.excerpt.text = None
            for element in _fragments(excerpt.within(step.excerpt_chars).html()):
                for descendant in element.iter():
                    style = self.styles.get(str(descendant.tag))
                    if style is not None and "style" not in descendant.attrib:
                        descendant.set("style", style)
                self.excerpt.append(element)
        if not step.images:
            for name in ("lead-image", "caption"):
                for element in _all(self.row, name):
                    _remove(element)
        if not step.read_more:
            for element in _all(self.row, "read-more"):
                _remove(element)


def _styled_like(model: etree._Element, markup: str) -> etree._Element:
    """``markup`` (one element) with the attributes premailer gave ``model``'s elements,
    element by element in document order (``model`` is the same template, rendered
    earlier and inlined)."""
    [element] = _fragments(markup)
    for new, old in zip(element.iter(), model.iter(), strict=False):
        if new.tag != old.tag:
            break
        for name, value in old.attrib.items():
            if name not in new.attrib:
                new.set(name, value)
    return element


def _fragments(markup: str) -> list[etree._Element]:
    """Elements of an HTML fragment; text between them is of the excerpt's own making."""
    if not markup.strip():
        return []
    # A <tr> parses only inside a table.
    wrapper = "table" if markup.lstrip().startswith("<tr") else "div"
    holder = html.fragment_fromstring(f"<{wrapper}>{markup}</{wrapper}>")
    if wrapper == "table" and len(holder) and holder[0].tag == "tbody":
        holder = holder[0]
    return [element for element in holder if isinstance(element.tag, str)]


def _classes(element: etree._Element) -> list[str]:
    return str(element.get("class") or "").split()


def _all(root: etree._Element, name: str) -> list[etree._Element]:
    return [e for e in root.iter() if isinstance(e.tag, str) and name in _classes(e)]


def _first(root: etree._Element, name: str) -> etree._Element | None:
    found = _all(root, name)
    return found[0] if found else None


def _remove(element: etree._Element) -> None:
    """Remove ``element``; the text after it stays (lxml would take it along)."""
    parent = element.getparent()
    if parent is None:
        return
    tail = element.tail
    previous = element.getprevious()
    parent.remove(element)
    if tail and tail.strip():
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
