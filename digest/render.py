"""Render an edition once: subject, HTML part with inlined CSS, and plain-text part.

The result holds placeholders (the named per-reader link slots of :data:`LINK_SLOTS`:
:data:`UNSUBSCRIBE_URL`, :data:`PREFERENCES_URL`) instead of per-reader links, so the
expensive work (Jinja2, premailer) happens once per edition and each reader's letter only
fills them in.

The HTML part is kept within :data:`digest.budget.HTML_BUDGET`: the Jinja2 document is
parsed once, premailer inlines its CSS into that tree, and :func:`digest.budget.fit`
trims the inlined tree by whole pieces (see there) before it is serialized once.
"""

from __future__ import annotations

import gettext
import html
import logging
import os
import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
from lxml import etree

from digest import links
from digest.branding import brand_css
from digest.budget import HTML_BUDGET, LINK_ALLOWANCE, fit, serialize
from digest.config import NewsletterConfig, SiteConfig
from digest.errors import ConfigError
from digest.excerpts import Excerpt, excerpt
from digest.i18n import SOURCE_LANGUAGE, babel_locale, long_date, text_direction, translations
from digest.images import display_width
from digest.message import clean_header_text
from digest.models import Post, Rendered
from digest.plaintext import TEXT_WIDTH, excerpt_text, wrap

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
log = logging.getLogger(__name__)
_ARCHIVE_LINK = "#"  # what a reader's link is in the public archive
SUBJECT_MAX_LENGTH = 150
_PREHEADER_MAX_LENGTH = 140


def _settle_placeholders(rendered: str, markers: dict[str, str]) -> str:
    # A placeholder in feed content is defanged first ("%%UNSUBSCRIBE URL%%": visible on
    # purpose, header cleaning would remove an invisible separator again), so that no feed
    # can plant a reader's link; then the template's own markers become placeholders.
    for slot in LINK_SLOTS.values():
        rendered = rendered.replace(slot, slot.replace("_", " "))
    for variable, marker in markers.items():
        rendered = rendered.replace(marker, LINK_SLOTS[variable])
    return rendered


def newsletter_zone(site: SiteConfig, newsletter: NewsletterConfig) -> ZoneInfo:
    """The newsletter's zone (its default schedule's), else the site's: dates show there."""
    name, table = newsletter.schedule.timezone, f"newsletters.{newsletter.id}.schedule"
    if not name:
        name, table = site.timezone, "site"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"[{table}] timezone {name!r} is not an IANA time zone (e.g. 'Europe/Prague')"
        ) from exc


@dataclass(frozen=True, slots=True)
class _Templates:
    html: jinja2.Template
    text: jinja2.Template
    css: str
    more: jinja2.Template  # the row that links the posts a digest over its budget left out


def _load_templates(
    folders: Sequence[Path], what: str, translations: gettext.NullTranslations
) -> _Templates:
    """The templates of the first folder that has each (an editor's folder, then ours),
    their marked strings (``{% trans %}``, ``_()``) in ``translations``' language."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folders),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
    try:
        stylesheet = next(
            (folder / "email.css" for folder in folders if (folder / "email.css").is_file()),
            folders[-1] / "email.css",
        )
        # Every template of the folders, the included ones too: Jinja compiles an include
        # only when it is first rendered, which would be the first send.
        for name in env.list_templates(filter_func=lambda name: name.endswith(_TEMPLATE_ENDS)):
            env.get_template(name)
        return _Templates(
            env.get_template("digest.html"),
            env.get_template("digest.txt"),
            stylesheet.read_text(encoding="utf-8"),
            env.get_template("_more.html"),
        )
    except jinja2.TemplateSyntaxError as exc:
        where = f"{exc.filename or exc.name}, line {exc.lineno}"
        raise ConfigError(f"{what} cannot be loaded: {where}: {exc.message}") from exc
    except (jinja2.TemplateError, OSError) as exc:
        raise ConfigError(f"{what} cannot be loaded: {exc}") from exc


_TEMPLATE_ENDS = (".html", ".txt")


class Renderer:
    """Renders editions from ``templates_dir`` (digest.html, _post.html, _post_compact.html,
    _more.html, digest.txt, email.css), or for a newsletter in ``overrides`` from its
    editor's folder first, in the newsletter's language (catalogues in
    ``templates_dir/../locale``).

    Templates, stylesheets and the catalogues of ``languages`` are loaded here; a missing
    or broken one is a ``ConfigError`` at construction, not at the first send.
    """

    def __init__(
        self,
        templates_dir: Path,
        overrides: Mapping[str, Path] | None = None,
        languages: Iterable[str] = (),
    ) -> None:
        self._dir = templates_dir
        self._locale_dir = templates_dir.parent / "locale"
        self._overrides = dict(overrides or {})
        self._translations: dict[str, gettext.NullTranslations] = {}
        self._sets: dict[tuple[str, str], _Templates] = {}
        for newsletter_id in ("", *self._overrides):
            self._templates(newsletter_id, SOURCE_LANGUAGE)
        for language in languages:
            self._translation(language)
        # Subjects are headers, not HTML: escaping would show "&amp;" in the inbox.
        self._subject_env = jinja2.Environment(
            autoescape=False, undefined=jinja2.StrictUndefined, extensions=["jinja2.ext.i18n"]
        )

    @classmethod
    def for_newsletters(
        cls, templates_dir: Path, newsletters: Iterable[NewsletterConfig]
    ) -> Renderer:
        """A renderer with each newsletter's own templates folder and language."""
        chosen = list(newsletters)
        return cls(
            templates_dir,
            {n.id: n.templates for n in chosen if n.templates is not None},
            {n.language for n in chosen},
        )

    def _translation(self, language: str) -> gettext.NullTranslations:
        if language not in self._translations:
            self._translations[language] = translations(self._locale_dir, language)
        return self._translations[language]

    def _templates(self, newsletter_id: str, language: str) -> _Templates:
        """The newsletter's template set (its own folder's, else the shipped) in ``language``."""
        folder = self._overrides.get(newsletter_id)
        key = (newsletter_id if folder else "", language)
        if key not in self._sets:
            what = (
                f"[newsletters.{newsletter_id}] templates in {folder}"
                if folder
                else f"email templates in {self._dir}"
            )
            folders = [folder, self._dir] if folder else [self._dir]
            self._sets[key] = _load_templates(folders, what, self._translation(language))
        return self._sets[key]

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

        Dates show in the newsletter's time zone (its default schedule's, else the site's).
        premailer runs once, here; raises ``ConfigError`` when the newsletter's subject
        template or time zone is unusable.
        """
        if not posts:
            raise ValueError(f"edition {edition_id!r} has no posts to render")
        zone = newsletter_zone(site, newsletter)
        safe_posts = list(posts)
        # The template gets markers no feed can guess; only after the excerpts and lxml
        # have decoded every entity are they turned into the placeholders, and any
        # placeholder a feed spelled out (even as entities) is defanged first.
        markers = {variable: f"%%LINK_{secrets.token_hex(8)}%%" for variable in LINK_SLOTS}
        language = self._translation(newsletter.language)
        subject = self._subject(newsletter, safe_posts, language)

        def format_date(moment: datetime) -> str:
            return long_date(moment, zone, newsletter.language)

        def byline(post: Post) -> str:
            """ "Source · By author · date": the source when the newsletter has several,
            the author and date when the post has them (an undated feed item shows no
            made-up date)."""
            parts = [label] if (label := newsletter.source_label(post.source_id)) else []
            if post.author:
                parts.append(language.gettext("By %(author)s") % {"author": post.author})
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
            "image_width": lambda post: display_width(post.image_width),
            **markers,
            "archive_url": links.edition_url(site, edition_id),
            "home_url": links.home_url(site),  # for the archive page's visitors
            "newsletter_archive_url": links.archive_url(site, newsletter.id),
            "branding": newsletter.branding,
            "language": newsletter.language,
            "text_direction": babel_locale(newsletter.language).text_direction,
            "direction": post_direction,
            "more_posts": len(safe_posts),  # in _more.html: the count once it is known
        }
        titles = " · ".join(post.title for post in safe_posts)
        preheader = clean_header_text(titles, _PREHEADER_MAX_LENGTH)
        excerpts = [excerpt(post.summary_html or post.content_html) for post in safe_posts]
        if newsletter.layout == "compact":
            excerpts = [ex.line() for ex in excerpts]
        entries = list(zip(safe_posts, excerpts, strict=True))
        templates = self._templates(newsletter.id, newsletter.language)
        try:
            document = templates.html.render(context, preheader=preheader, entries=entries)
        except jinja2.TemplateError as exc:  # an editor's template: theirs to fix
            raise ConfigError(
                f"[newsletters.{newsletter.id}] the email templates fail to render: {exc}"
            ) from exc
        text_entries = [(post, excerpt_text(ex)) for post, ex in entries]
        try:
            text = templates.text.render(
                context, entries=text_entries, wrap=wrap, rule="-" * TEXT_WIDTH
            )
        except jinja2.TemplateError as exc:
            raise ConfigError(
                f"[newsletters.{newsletter.id}] the text template fails to render: {exc}"
            ) from exc
        stylesheet = templates.css + brand_css(newsletter.branding)
        tree = self._inline_css(document, stylesheet)
        reader_links = sum(document.count(marker) for marker in markers.values())
        fitted = fit(
            tree,
            [ex for _, ex in entries],
            budget=HTML_BUDGET - LINK_ALLOWANCE * reader_links,
            more_row=lambda count: templates.more.render(context, more_posts=count),
        )
        if fitted.step is not None:
            log.info("edition %s is cut to the HTML size budget: %s", edition_id, fitted.describe())
        return Rendered(
            subject=subject,
            html=_settle_placeholders(serialize(tree).decode("utf-8"), markers),
            text=_settle_placeholders(_tidy(text), markers),
        )

    def _subject(
        self,
        newsletter: NewsletterConfig,
        posts: Sequence[Post],
        language: gettext.NullTranslations,
    ) -> str:
        try:
            raw = self._subject_env.from_string(newsletter.subject).render(
                newsletter=newsletter,
                posts=posts,
                _=language.gettext,
                gettext=language.gettext,
                ngettext=language.ngettext,
            )
        except Exception as exc:  # the editor's template: any failure is theirs to fix
            raise ConfigError(
                f"[newsletters.{newsletter.id}] subject is not a usable template: {exc}"
            ) from exc
        return clean_header_text(raw, SUBJECT_MAX_LENGTH)

    def _inline_css(self, document: str, stylesheet: str) -> Any:
        """The document's tree with ``stylesheet`` inlined (premailer's one run)."""
        # Parsed as premailer parses a string; given a tree, it inlines in place and
        # leaves the serializing (digest.budget.serialize) to us.
        tree = etree.fromstring(document.strip(), etree.HTMLParser()).getroottree()
        transform: Callable[..., Any] = premailer.transform
        return transform(
            tree.getroot(),
            base_url=None,
            allow_network=False,
            css_text=stylesheet,
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


# The template's marks around what only a reader sees, and the inline styles of tags.
_READER_PART = re.compile(r"<!--reader-->(.*?)<!--/reader-->(?:\s*<!--visitor (.*?)-->)?\n?", re.S)
_STYLED = re.compile(r"""<[a-z0-9]+ class="([^"]+)"[^>]*? (style=(?:"[^"]*"|'[^']*'))""")
_CLASSED = re.compile(r'(<[a-z0-9]+ class="([^"]+)")')


def archive_html(rendered: Rendered) -> str:
    """The public "view in browser" page: no reader's link in it.

    What the template marked ``<!--reader-->…<!--/reader-->`` (the footer's links and
    "You receive this because…") is dropped, or replaced by the ``<!--visitor …-->``
    comment right after it, each of whose classed tags takes the inline style premailer
    gave the reader's tag of that class. Any reader's link left (an older edition, an
    editor's template without marks) points to "#".
    """
    page = _READER_PART.sub(_visitor_part, rendered.html)
    for slot in LINK_SLOTS.values():
        page = page.replace(slot, _ARCHIVE_LINK)
    return page


def _visitor_part(found: re.Match[str]) -> str:
    reader, visitor = found.group(1), found.group(2) or ""
    styles: dict[str, str] = {}
    for classes, style in _STYLED.findall(reader):
        styles.setdefault(classes, style)
    return _CLASSED.sub(
        lambda tag: (
            f"{tag.group(1)} {styles[tag.group(2)]}" if tag.group(2) in styles else tag.group(1)
        ),
        visitor.strip(),
    )


def post_direction(post: Post, excerpt: Excerpt) -> str:
    """ "rtl" for a post written right to left (its title, else its excerpt, tells)."""
    return text_direction(" ".join([post.title, *(block.text for block in excerpt.blocks)]))
