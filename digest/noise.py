"""Text in feeds that is not text: what ``clean_noise`` removes from an excerpt's text.

Markup escaped twice ("&amp;lt;p&amp;gt;" shows as "<p>"), Outlook conditional comments,
CSS rules from a ``<style>`` block that a publisher's tool turned into text, and
WordPress shortcodes. Only rules with "property: value" inside count as CSS, so braces
in prose stay; only known tag names count as markup, so "x < y" stays. Code (``<code>``,
``<pre>``) is never cleaned: there this is content.
"""

from __future__ import annotations

import re

# Noise in text nodes (outside code): markup that was escaped twice, conditional
# comments, CSS rules and WordPress shortcodes.
_TAG_NAMES = (
    "p|div|span|br|img|a|strong|em|b|i|u|font|center|table|tbody|tr|td|th|ul|ol|li|h[1-6]"
    "|figure|figcaption|blockquote|style|script|iframe|meta|link|html|head|body"
)
_ESCAPED_TAG = re.compile(rf"</?(?:{_TAG_NAMES})(?:\s[^<>]*)?/?>", re.IGNORECASE)
_COMMENT = re.compile(r"<!--.*?-->|<!\[(?:end)?if[^\]]*\]>", re.DOTALL | re.IGNORECASE)
_ELEMENTS = (
    "html|body|div|span|p|a|img|table|tr|td|th|tbody|ul|ol|li|h[1-6]|pre|code|blockquote"
    "|strong|em|b|i|u|font|center|section|article|header|footer|nav|main|figure|figcaption"
    "|input|button|form|label|hr|br"
)
_SELECTOR_TOKEN = (
    rf"(?:[.#][\w-]{{1,40}}|\*|(?<![\w-])(?:{_ELEMENTS})(?![\w-]))"
    r"(?:[.#:][\w-]{1,40}|\[[^\]]{0,40}\]){0,4}"
)
# Bounded repeats, one way to read the space between tokens: a near-miss fails fast, so
# a long text costs linear time.
_SELECTOR = (
    rf"{_SELECTOR_TOKEN}(?:(?:[ \t]{{0,3}}[,>+~][ \t]{{0,3}}|\s{{1,3}}){_SELECTOR_TOKEN}){{0,8}}"
)
_DECLARATIONS = r"\{\s{0,3}[\w-]{1,40}\s{0,3}:[^{}]{0,2000}\}"
# A rule is a selector (classes, ids, element names) and declarations; an at-rule such as
# @media holds rules. Braces in prose, without "property: value" inside, are no rule.
_CSS_RULE = re.compile(
    rf"@[\w-]{{1,40}}[^{{}};]{{0,200}}\{{(?:[^{{}}]{{0,200}}{_DECLARATIONS}){{0,50}}[^{{}}]{{0,200}}\}}"
    rf"|{_SELECTOR}\s{{0,3}}{_DECLARATIONS}",
    re.IGNORECASE,
)
_SHORTCODE = re.compile(
    r"\[caption\b[^\]]*\].*?\[/caption\]"  # an image's caption: with the image, it goes
    r"|\[/?(?:caption|gallery|embed|audio|video|playlist|wp_[a-z_]+)\b[^\]]*\]",
    re.IGNORECASE | re.DOTALL,
)


def clean_noise(text: str) -> str:
    """``text`` without escaped markup, conditional comments, CSS rules and shortcodes."""
    text = _COMMENT.sub(" ", text)
    text = _ESCAPED_TAG.sub(" ", text)
    text = _SHORTCODE.sub(" ", text)
    if "{" in text and ":" in text:
        text = _CSS_RULE.sub(" ", text)
    return text
