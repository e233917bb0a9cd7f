"""The public archive: ``/archive/{newsletter_id}`` (past editions, newest first, a page
at a time), its Atom feed, and ``/e/{edition_id}``, an edition as sent with no reader's
link in it, under the strict archive CSP."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from digest import archive, links
from digest.config import NewsletterConfig
from digest.errors import NotFound
from digest.i18n import long_date
from digest.web.headers import ARCHIVE_CACHE_CONTROL, ARCHIVE_CSP
from digest.web.pages import Pages, in_thread

MAX_PAGE = 10_000


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
        zone = ZoneInfo(pages.site.timezone)
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
        body = archive.atom_feed(pages.site, newsletter, found.editions, pages.clock())
        response = Response(body, media_type="application/atom+xml")
        response.headers["Cache-Control"] = ARCHIVE_CACHE_CONTROL
        response.headers["X-Robots-Tag"] = "all"
        return response

    async def edition(self, request: Request) -> Response:
        """GET: the edition as sent (its variant), under the strict archive CSP."""
        page = await in_thread(
            archive.edition_page, self.pages.store, str(request.path_params["edition_id"])
        )
        if page is None:
            raise NotFound("there is no archived edition at this address")
        response = HTMLResponse(page)
        response.headers["Content-Security-Policy"] = ARCHIVE_CSP
        response.headers["Cache-Control"] = ARCHIVE_CACHE_CONTROL
        return response
