"""Render an edition once: subject, HTML part with inlined CSS, and plain-text part.

The result holds placeholders (the named per-reader link slots of :data:`LINK_SLOTS`:
:data:`UNSUBSCRIBE_URL`, :data:`PREFERENCES_URL`) instead of per-reader links, so the
expensive work (Jinja2, premailer) happens once per edition and each reader's letter only
fills them in.
"""

from __future__ import annotations

import html
import logging
import os
import secrets
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import html2text
import jinja2

from digest import links
from digest.config import NewsletterConfig, SiteConfig
from digest.errors import ConfigError
from digest.message import clean_header_text
from digest.models import Post, Rendered

# premailer sizes its one memo cache (stylesheet parses, selectors, declaration lists)
# from this variable when it is first imported. The default of 128 entries is smaller than
# one render of the digest stylesheet needs, so everything was re-parsed on each call.
# render.py is the only module that imports premailer; an operator's own value wins.
PREMAILER_CACHE_MAXSIZE = 1024
os.environ.setdefault("PREMAILER_CACHE_MAXSIZE", str(PREMAILER_CACHE_MAXSIZE))
import premailer  # noqa: E402

UNSUBSCRIBE_URL = "%%UNSUBSCRIBE_URL%%"
PREFERENCES_URL = "%%PREFERENCES_URL%%"
# The templates' per-reader link variables and the placeholder each becomes.
LINK_SLOTS = {"unsubscribe_url": UNSUBSCRIBE_URL, "preferences_url": PREFERENCES_URL}
_ARCHIVE_LINK = "#"  # what a reader's link is in the public archive
TEXT_WIDTH = 78
SUBJECT_MAX_LENGTH = 150
_PREHEADER_MAX_LENGTH = 140
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def edition_url(site: SiteConfig, edition_id: str) -> str:
    """The public "view in browser" address of an edition."""
    return links.edition_url(site, edition_id)


def long_date(moment: datetime, zone: ZoneInfo) -> str:
    """``moment`` as a day in ``zone``, e.g. "27 November 2026" (English, locale-free)."""
    local = moment.astimezone(zone)
    return f"{local.day} {_MONTHS[local.month - 1]} {local.year}"


def html_to_text(fragment: str) -> str:
    """A sanitized HTML fragment as plain text wrapped at 78, links inline."""
    converter = html2text.HTML2Text(bodywidth=TEXT_WIDTH)
    converter.unicode_snob = True
    converter.ignore_images = True
    converter.ignore_emphasis = True
    return str(converter.handle(fragment)).strip()


def _settle_placeholders(rendered: str, markers: dict[str, str]) -> str:
    # A placeholder in feed content is defanged first ("%%UNSUBSCRIBE URL%%": visible on
    # purpose, header cleaning would remove an invisible separator again), so that no feed
    # can plant a reader's link; then the template's own markers become placeholders.
    for slot in LINK_SLOTS.values():
        rendered = rendered.replace(slot, slot.replace("_", " "))
    for variable, marker in markers.items():
        rendered = rendered.replace(marker, LINK_SLOTS[variable])
    return rendered


def _zone(site: SiteConfig) -> ZoneInfo:
    try:
        return ZoneInfo(site.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"[site] timezone {site.timezone!r} is not an IANA time zone (e.g. 'Europe/Prague')"
        ) from exc


class Renderer:
    """Renders editions from ``templates_dir`` (digest.html, digest.txt, email.css).

    Templates and the stylesheet are loaded once, here; a missing or broken template is a
    ``ConfigError`` at construction, not at the first send.
    """

    def __init__(self, templates_dir: Path) -> None:
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(templates_dir),
            autoescape=jinja2.select_autoescape(["html"]),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        # Subjects are headers, not HTML: escaping would show "&amp;" in the inbox.
        self._subject_env = jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined)
        try:
            self._html = self._env.get_template("digest.html")
            self._text = self._env.get_template("digest.txt")
            self._css = (templates_dir / "email.css").read_text(encoding="utf-8")
        except (jinja2.TemplateError, OSError) as exc:
            raise ConfigError(
                f"email templates in {templates_dir} cannot be loaded: {exc}"
            ) from exc

    def render_edition(
        self,
        *,
        site: SiteConfig,
        newsletter: NewsletterConfig,
        posts: Sequence[Post],
        edition_id: str,
        now: datetime,
    ) -> Rendered:
        """Render ``posts`` (at least one) as edition ``edition_id`` of ``newsletter``.

        Dates show in ``site.timezone``. premailer runs once, here; raises ``ConfigError``
        when the newsletter's subject template or the site time zone is unusable.
        """
        if not posts:
            raise ValueError(f"edition {edition_id!r} has no posts to render")
        zone = _zone(site)
        safe_posts = list(posts)
        # The template gets markers no feed can guess; only after lxml and html2text have
        # decoded every entity are they turned into the placeholders, and any placeholder
        # a feed spelled out (even as entities) is defanged first.
        markers = {variable: f"%%LINK_{secrets.token_hex(8)}%%" for variable in LINK_SLOTS}
        subject = self._subject(newsletter, safe_posts)

        def format_date(moment: datetime) -> str:
            return long_date(moment, zone)

        def byline(post: Post) -> str:
            """ "By author · date", either part left out when the post has none (an
            undated feed item shows no made-up date)."""
            parts = [f"By {post.author}"] if post.author else []
            if post.dated:
                parts.append(format_date(post.published))
            return " · ".join(parts)

        context: dict[str, Any] = {
            "site": site,
            "newsletter": newsletter,
            "posts": safe_posts,
            "subject": subject,
            "edition_date": format_date(now),
            "format_date": format_date,
            "byline": byline,
            **markers,
            "archive_url": edition_url(site, edition_id),
        }
        titles = " · ".join(post.title for post in safe_posts)
        preheader = clean_header_text(titles, _PREHEADER_MAX_LENGTH)
        document = self._html.render(context, preheader=preheader)
        entries = [(post, html_to_text(post.summary_html)) for post in safe_posts]
        text = self._text.render(context, entries=entries)
        return Rendered(
            subject=subject,
            html=_settle_placeholders(self._inline_css(document), markers),
            text=_settle_placeholders(_tidy(text), markers),
        )

    def _subject(self, newsletter: NewsletterConfig, posts: Sequence[Post]) -> str:
        try:
            raw = self._subject_env.from_string(newsletter.subject).render(
                newsletter=newsletter, posts=posts
            )
        except Exception as exc:  # the editor's template: any failure is theirs to fix
            raise ConfigError(
                f"[newsletters.{newsletter.id}] subject is not a usable template: {exc}"
            ) from exc
        return clean_header_text(raw, SUBJECT_MAX_LENGTH)

    def _inline_css(self, document: str) -> str:
        transform: Callable[..., str] = premailer.transform
        return transform(
            document,
            pretty_print=True,
            base_url=None,
            allow_network=False,
            css_text=self._css,
            # Plain rules become style="" attributes; only @media rules (mobile, dark mode)
            # stay in a <style> block, with !important so they beat the inline styles.
            keep_style_tags=False,
            strip_important=False,
            # Keep the template's width attributes (Outlook sizes images by them).
            disable_basic_attributes=["width", "height"],
            disable_validation=True,
            cssutils_logging_level=logging.CRITICAL,
        )


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return "\n".join(lines) + "\n"


def personalize(
    rendered: Rendered, *, unsubscribe_url: str, preferences_url: str = _ARCHIVE_LINK
) -> tuple[str, str]:
    """``(html, text)`` of ``rendered`` for one reader: the URLs escaped in HTML, raw in text."""
    urls = {UNSUBSCRIBE_URL: unsubscribe_url, PREFERENCES_URL: preferences_url}
    page, text = rendered.html, rendered.text
    for slot, url in urls.items():
        page = page.replace(slot, html.escape(url, quote=True))
        text = text.replace(slot, url)
    return page, text


def archive_html(rendered: Rendered) -> str:
    """The public "view in browser" page: no reader's link in it (each points to "#")."""
    page = rendered.html
    for slot in LINK_SLOTS.values():
        page = page.replace(slot, _ARCHIVE_LINK)
    return page
