"""The public archive: ``/archive/{newsletter_id}`` (past editions, newest first, a page
at a time), its Atom feed, and ``/e/{edition_id}``, an edition as sent with no reader's
link in it, under the strict archive CSP.

An edition that its size budget cut short ends with "N more posts in this edition",
linking to its page; that page then lists every post of the edition (from the store)
below the email, so that nothing a reader was sent the link to is lost.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from digest import archive, links
from digest.budget import MORE_POSTS
from digest.config import NewsletterConfig
from digest.errors import NotFound
from digest.i18n import long_date
from digest.models import Post
from digest.planning import split_variant_id
from digest.render import newsletter_zone
from digest.web.headers import ARCHIVE_CACHE_CONTROL, ARCHIVE_CSP
from digest.web.pages import Pages, in_thread

MAX_PAGE = 10_000
POST_LIST = "edition_posts.html"


class ArchivePages:
    def __init__(self, pages: Pages) -> None:
        self.pages = pages

    def routes(self) -> list[Route]:
        return [
            Route(links.ARCHIVE, self.listing, methods=["GET"]),
            Route(links.FEED, self.feed, methods=["GET"]),
            Route(links.EDITION, self.edition, methods=["GET"]),
        ]

    def _public(self, request: Request) -> NewsletterConfig:
        newsletter = self.pages.newsletters.get(str(request.path_params["newsletter_id"]))
        if newsletter is None or not newsletter.public:
            raise NotFound("there is no public newsletter at this address")
        return newsletter

    async def listing(self, request: Request) -> Response:
        """GET: one page of past editions, newest first (``?page=N``)."""
        pages = self.pages
        newsletter = self._public(request)
        raw = request.query_params.get("page", "1")
        page = int(raw) if raw.isascii() and raw.isdigit() else 0
        if not 1 <= page <= MAX_PAGE:
            raise NotFound("there is no such page of this archive")
        found = await in_thread(
            archive.archive_page, pages.store, newsletter.id, page, pages.web.archive_page_size
        )
        if page > 1 and not found.editions:
            raise NotFound("there is no such page of this archive")
        zone = newsletter_zone(pages.site, newsletter)  # as in its emails
        site = pages.site
        response = pages.page(
            "archive.html",
            indexable=True,
            newsletter=newsletter,
            editions=[
                (
                    links.edition_url(site, e.id),
                    e.subject or newsletter.title,
                    e.created_at,
                    long_date(e.created_at, zone, newsletter.language),
                )
                for e in found.editions
            ],
            newer_url=links.archive_url(site, newsletter.id, page - 1) if page > 1 else "",
            older_url=links.archive_url(site, newsletter.id, page + 1) if found.has_next else "",
            feed_url=links.feed_url(site, newsletter.id),
            page_number=page,
        )
        response.headers["Cache-Control"] = ARCHIVE_CACHE_CONTROL
        return response

    async def feed(self, request: Request) -> Response:
        """GET: the Atom feed of the newest editions."""
        pages = self.pages
        newsletter = self._public(request)
        found = await in_thread(
            archive.archive_page, pages.store, newsletter.id, 1, archive.FEED_ENTRIES
        )
        titles = await in_thread(archive.post_titles, pages.store, found.editions)
        body = archive.atom_feed(pages.site, newsletter, found.editions, pages.clock(), titles)
        response = Response(body, media_type="application/atom+xml")
        response.headers["Cache-Control"] = ARCHIVE_CACHE_CONTROL
        response.headers["X-Robots-Tag"] = "all"
        return response

    async def edition(self, request: Request) -> Response:
        """GET: the edition as sent (its variant), under the strict archive CSP."""
        variant_id = str(request.path_params["edition_id"])
        page = await in_thread(archive.edition_page, self.pages.store, variant_id)
        found = split_variant_id(variant_id)
        if page is None or found is None:
            raise NotFound("there is no archived edition at this address")
        if f'class="{MORE_POSTS}"' in page:
            page = await in_thread(self._with_every_post, page, found[0])
        response = HTMLResponse(page)
        response.headers["Content-Security-Policy"] = ARCHIVE_CSP
        response.headers["Cache-Control"] = ARCHIVE_CACHE_CONTROL
        return response

    def _with_every_post(self, page: str, edition_id: str) -> str:
        """``page`` with the list of the edition's posts before its ``</body>``."""
        newsletter_id, posts = archive.edition_posts(self.pages.store, edition_id)
        newsletter = self.pages.newsletters.get(newsletter_id)
        site = self.pages.site
        zone = newsletter_zone(site, newsletter) if newsletter else ZoneInfo(site.timezone)
        language = newsletter.language if newsletter else "en"

        def format_date(post: Post) -> str:
            return long_date(post.published, zone, language)

        listing = self.pages.templates[POST_LIST].render(posts=posts, format_date=format_date)
        head, body_end, tail = page.rpartition("</body>")
        return head + listing + body_end + tail if body_end else page + listing
