"""Use cases of the public archive: a newsletter's past editions page by page, one
edition as sent, and the Atom feed of its editions.

Nothing here carries a reader's link: an edition is shown from its stored rendering
with every per-reader slot replaced (:func:`digest.render.archive_html`), and the list
and the feed name editions by their public address only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from xml.etree import ElementTree

from digest import links
from digest.config import NewsletterConfig, SiteConfig
from digest.models import Edition, Post
from digest.planning import split_variant_id
from digest.ports import Store
from digest.render import archive_html

ATOM = "http://www.w3.org/2005/Atom"
FEED_ENTRIES = 20


@dataclass(frozen=True, slots=True)
class ArchivePage:
    editions: list[Edition]
    page: int
    has_next: bool


def archive_page(store: Store, newsletter_id: str, page: int, size: int) -> ArchivePage:
    """Page ``page`` (from 1) of the newsletter's editions that went out, newest first."""
    found = store.archived_editions(newsletter_id, offset=(page - 1) * size, limit=size + 1)
    return ArchivePage(found[:size], page, len(found) > size)


def edition_page(store: Store, variant_id: str) -> str | None:
    """The archived HTML of ``/e/{variant_id}`` with no reader's link, or None."""
    found = split_variant_id(variant_id)
    if found is None:
        return None
    rendering = store.get_renderings(found[0]).get(found[1])
    return None if rendering is None else archive_html(rendering)


def edition_posts(store: Store, edition_id: str) -> tuple[str, list[Post]]:
    """The newsletter id of an edition and every post it held, in the edition's order."""
    edition = store.get_edition(edition_id)
    return edition.newsletter_id, store.get_posts(edition.post_keys)


def post_titles(store: Store, editions: Sequence[Edition]) -> dict[str, list[str]]:
    """The titles of each edition's posts, in the edition's order, by edition id (one
    store call for all of them; a post no longer stored is left out)."""
    posts = store.get_posts([key for edition in editions for key in edition.post_keys])
    title_of = {post.key: post.title for post in posts}
    return {
        edition.id: [title_of[key] for key in edition.post_keys if key in title_of]
        for edition in editions
    }


def _stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def atom_feed(
    site: SiteConfig,
    newsletter: NewsletterConfig,
    editions: Sequence[Edition],
    now: datetime,
    titles: Mapping[str, Sequence[str]],
) -> bytes:
    """The Atom (RFC 4287) document of ``editions``, newest first: one entry per edition,
    linking to its public page, its summary the titles of its posts (``titles``, by
    edition id; the subject when there are none)."""

    def add(parent: ElementTree.Element, tag: str, text: str = "", **attributes: str) -> None:
        element = ElementTree.SubElement(parent, tag, attributes)
        if text:
            element.text = text

    feed = ElementTree.Element("feed", xmlns=ATOM)
    add(feed, "id", links.feed_url(site, newsletter.id))
    add(feed, "title", newsletter.title)
    if newsletter.description:
        add(feed, "subtitle", newsletter.description)
    add(feed, "updated", _stamp(editions[0].created_at if editions else now))
    add(
        feed,
        "link",
        rel="self",
        type="application/atom+xml",
        href=links.feed_url(site, newsletter.id),
    )
    add(
        feed, "link", rel="alternate", type="text/html", href=links.archive_url(site, newsletter.id)
    )
    author = ElementTree.SubElement(feed, "author")
    add(author, "name", site.name)
    for edition in editions:
        entry = ElementTree.SubElement(feed, "entry")
        url = links.edition_url(site, edition.id)
        add(entry, "id", url)
        subject = edition.subject or newsletter.title
        add(entry, "title", subject)
        add(entry, "published", _stamp(edition.created_at))
        add(entry, "updated", _stamp(edition.created_at))
        add(entry, "link", rel="alternate", type="text/html", href=url)
        add(entry, "summary", " · ".join(titles.get(edition.id, ())) or subject, type="text")
    document: bytes = ElementTree.tostring(feed, encoding="utf-8", xml_declaration=True)
    return document
