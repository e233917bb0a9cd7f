"""What in a digest's HTML part would hurt its display: one pass over its elements.

Pure: takes the HTML as text and returns findings. Checked: images without a width or
an alt text; links and images that are relative, not https, or of a scheme mail
programs do not follow; stylesheets a mail program never loads; CSS rules left in a
``<style>`` block outside ``@media`` (premailer inlines plain rules; what it left, such
as ``:hover``, works only where ``<style>`` survives); elements wider than the column.
Conditional comments (``<!--[if mso]>``) are comments here, as in every other client.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urlsplit

COLUMN_WIDTH = 600  # px: the digest's column; wider content scrolls sideways on a phone
_WIDTH_STYLE = re.compile(r"(?:^|;)\s*(min-width|width)\s*:\s*(\d+(?:\.\d+)?)px", re.IGNORECASE)
_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_LINK_SCHEMES = frozenset({"https", "mailto", "tel"})
_SHOWN = 60  # characters of a URL or selector quoted in a finding


class Level(enum.StrEnum):
    ERROR = "error"  # the digest is broken for some readers: fix it before sending
    WARNING = "warning"  # some mail programs will show it worse than intended


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem: how bad, a stable code to grep or filter on, and what and where."""

    level: Level
    code: str
    message: str


def shorten(text: str, limit: int = _SHOWN) -> str:
    """``text`` on one line, cut to ``limit`` characters with "…"."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def html_findings(document: str) -> list[Finding]:
    """Every display problem of the HTML ``document``, in document order."""
    scanner = _Scanner()
    scanner.feed(document)
    scanner.close()
    findings = scanner.findings
    for css in scanner.styles:
        findings.extend(css_findings(css))
    return findings


def css_findings(css: str) -> list[Finding]:
    """Rules of one ``<style>`` block that premailer left outside ``@media``, and imports."""
    findings: list[Finding] = []
    for prelude in _top_level_preludes(_COMMENT.sub("", css)):
        if prelude.lower().startswith("@import"):
            findings.append(
                Finding(
                    Level.ERROR,
                    "external-css",
                    f"{shorten(prelude)}: mail programs do not load imported stylesheets;"
                    " put the rules in templates/email/email.css",
                )
            )
        elif prelude and not prelude.startswith("@"):
            findings.append(
                Finding(
                    Level.WARNING,
                    "css-not-inlined",
                    f"CSS rule {shorten(prelude)!r} was not inlined and is outside @media:"
                    " clients that drop <style> (Gmail's app for other accounts, many"
                    " webmails) ignore it; use a plain selector, or move it into @media",
                )
            )
    return findings


def _top_level_preludes(css: str) -> list[str]:
    """The text before each top-level block (``sel { … }``) or statement (``@import …;``)."""
    preludes: list[str] = []
    depth = 0
    start = 0
    for index, char in enumerate(css):
        if char == "{":
            if depth == 0:
                preludes.append(css[start:index].strip())
            depth += 1
        elif char == "}":
            depth = max(depth - 1, 0)
            if depth == 0:
                start = index + 1
        elif char == ";" and depth == 0:
            preludes.append(css[start:index].strip())
            start = index + 1
    return preludes


class _Scanner(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.findings: list[Finding] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        self._in_style = tag == "style"
        if tag == "img":
            self._image(attributes)
        elif tag == "a" and "href" in attributes:
            self._url(attributes["href"], _element(tag, attributes), link=True)
        elif tag == "link" and "stylesheet" in attributes.get("rel", "").lower().split():
            self._add(
                Level.ERROR,
                "external-css",
                f"{_element(tag, attributes)}: mail programs do not load linked stylesheets;"
                " put the rules in templates/email/email.css",
            )
        self._width(tag, attributes)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        self._in_style = False

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)

    def _add(self, level: Level, code: str, message: str) -> None:
        self.findings.append(Finding(level, code, message))

    def _image(self, attributes: dict[str, str]) -> None:
        name = _element("img", attributes)
        if "src" not in attributes:
            self._add(Level.ERROR, "image-url", f"{name} has no src")
        else:
            self._url(attributes["src"], name, link=False)
        if "alt" not in attributes:
            self._add(
                Level.WARNING,
                "image-alt",
                f"{name} has no alt text: readers who block images see nothing in its place",
            )
        if not attributes.get("width", "").strip():
            self._add(
                Level.WARNING,
                "image-size",
                f"{name} has no width attribute: Outlook shows it at its full size",
            )

    def _url(self, url: str, name: str, *, link: bool) -> None:
        kind = "link" if link else "image"
        value = url.strip()
        try:
            parts = urlsplit(value)
        except ValueError:
            self._add(Level.ERROR, f"{kind}-url", f"{name}: not a URL")
            return
        scheme = parts.scheme.lower()
        if scheme == "https" and parts.netloc:
            return
        if scheme == "http" and parts.netloc:
            self._add(
                Level.WARNING,
                f"{kind}-http",
                f"{name} is not https: "
                + ("some clients warn before opening it" if link else "some clients block it"),
            )
        elif not scheme:
            self._add(
                Level.ERROR,
                f"{kind}-url",
                f"{name} is relative: a message has no address to resolve it against;"
                " give the source a base_url or the post an absolute link",
            )
        elif not (link and scheme in _LINK_SCHEMES):
            self._add(
                Level.ERROR, f"{kind}-url", f"{name}: mail programs do not follow {scheme}: URLs"
            )

    def _width(self, tag: str, attributes: dict[str, str]) -> None:
        widths: list[str] = []
        attribute = attributes.get("width", "").strip().removesuffix("px")
        if attribute.isdigit() and int(attribute) > COLUMN_WIDTH:
            widths.append(f'width="{attributes["width"]}"')
        for match in _WIDTH_STYLE.finditer(attributes.get("style", "")):
            if float(match.group(2)) > COLUMN_WIDTH:
                widths.append(f"{match.group(1)}: {match.group(2)}px")
        if widths:
            self._add(
                Level.WARNING,
                "too-wide",
                f"{_element(tag, attributes)} is wider than the {COLUMN_WIDTH}px column"
                f" ({', '.join(widths)}): phones scroll sideways",
            )


def _element(tag: str, attributes: dict[str, str]) -> str:
    """The element as a finding names it: its tag with its src, href, id or class."""
    for name in ("src", "href", "id", "class"):
        if attributes.get(name):
            return f'<{tag} {name}="{shorten(attributes[name])}">'
    return f"<{tag}>"
