"""A newsletter's branding: accent colours that stay readable, and a logo in the masthead.

Pure. The accent colours are checked against the backgrounds they are shown on, in both
colour schemes, so that no editor's choice makes links invisible in light or dark mode;
:func:`brand_css` gives the rules added after the shipped stylesheet (premailer inlines
them like the rest, later rules winning).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LIGHT_BACKGROUND = "#ffffff"  # .container in email.css
DARK_BACKGROUND = "#161b22"  # .container in the dark scheme
MIN_CONTRAST = 4.5  # WCAG 2 AA for body text
MAX_LOGO_WIDTH = 536  # the column inside the masthead's padding
DEFAULT_ACCENT, DEFAULT_ACCENT_DARK = "#0b5cad", "#58a6ff"  # as in email.css
_HEX = re.compile(r"#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})\Z")


@dataclass(frozen=True, slots=True)
class Branding:
    """``[newsletters.<id>.branding]``: what the editor may change of the look."""

    accent: str = DEFAULT_ACCENT  # links and titles, the masthead rule (light scheme)
    accent_dark: str = DEFAULT_ACCENT_DARK  # the same in the dark scheme
    logo_url: str = ""  # an https image shown above the newsletter's title
    logo_width: int = 160  # pixels, at most MAX_LOGO_WIDTH
    logo_alt: str = ""  # default: the site's name


def parse_colour(text: str) -> tuple[int, int, int]:
    """``#rgb`` or ``#rrggbb`` as its three channels; ValueError for anything else."""
    match = _HEX.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a colour like #0b5cad")
    digits = match.group(1)
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    red, green, blue = (int(digits[i : i + 2], 16) for i in (0, 2, 4))
    return red, green, blue


def _luminance(colour: tuple[int, int, int]) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    red, green, blue = (channel(v) for v in colour)
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast_ratio(foreground: str, background: str) -> float:
    """The WCAG 2 contrast ratio of two colours, from 1 (none) to 21 (black on white)."""
    lighter, darker = sorted(
        (_luminance(parse_colour(foreground)), _luminance(parse_colour(background))),
        reverse=True,
    )
    return (lighter + 0.05) / (darker + 0.05)


def for_dark_mode(colour: str) -> str:
    """``colour`` lightened (mixed with white, in tenths) until it reads on the dark
    background: the dark-mode accent of a newsletter that chose only a light one."""
    red, green, blue = parse_colour(colour)
    for tenth in range(11):
        mixed = tuple(round(c + (255 - c) * tenth / 10) for c in (red, green, blue))
        candidate = "#{:02x}{:02x}{:02x}".format(*mixed)
        if contrast_ratio(candidate, DARK_BACKGROUND) >= MIN_CONTRAST:
            return candidate
    return "#ffffff"


def contrast_problems(branding: Branding) -> list[str]:
    """Why an accent colour would be hard to read, one sentence per colour ([] if none)."""
    problems: list[str] = []
    for key, colour, background, scheme, advice in (
        ("accent", branding.accent, LIGHT_BACKGROUND, "light", "darker"),
        ("accent_dark", branding.accent_dark, DARK_BACKGROUND, "dark", "lighter"),
    ):
        ratio = contrast_ratio(colour, background)
        if ratio < MIN_CONTRAST:
            problems.append(
                f"{key} {colour} has a contrast of {ratio:.1f}:1 on the {scheme} background "
                f"{background}, below {MIN_CONTRAST}:1: links would be hard to read; choose "
                f"a {advice} colour"
            )
    return problems


def brand_css(branding: Branding) -> str:
    """The stylesheet rules of ``branding``, to follow the shipped ones ("" for defaults)."""
    if (branding.accent, branding.accent_dark) == (DEFAULT_ACCENT, DEFAULT_ACCENT_DARK):
        return ""
    return (
        f".post-title-link, .excerpt a, .read-more-link {{ color: {branding.accent}; }}\n"
        f".masthead {{ border-bottom-color: {branding.accent}; }}\n"
        "@media (prefers-color-scheme: dark) {\n"
        f"  .post-title-link, .read-more-link, .excerpt a {{ color: {branding.accent_dark}"
        " !important; }\n"
        f"  .masthead {{ border-bottom-color: {branding.accent_dark} !important; }}\n"
        "}\n"
    )
