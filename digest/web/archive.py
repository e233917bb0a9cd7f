"""The public archive: ``/e/{edition_id}``, an edition as sent, with no reader's link.

An edition that its size budget cut short ends with "N more posts in this edition",
linking here; its page then lists every post of the edition (from the store) below the
email, so that nothing a reader was sent the link to is lost.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from digest import links
from digest.budget import MORE_POSTS
from digest.errors import NotFound
from digest.models import Post
from digest.planning import split_variant_id
from digest.render import archive_html, long_date, newsletter_zone
from digest.web.headers import ARCHIVE_CACHE_CONTROL, ARCHIVE_CSP
from digest.web.pages import Pages, in_thread

POST_LIST = "edition_posts.html"


class ArchivePages:
    def __init__(self, pages: Pages) -> None:
        self.pages = pages

    def routes(self) -> list[Route]:
        return [Route(links.EDITION, self.edition, methods=["GET"])]

    async def edition(self, request: Request) -> Response:
        """GET: the edition as sent (its variant), under the strict archive CSP."""
        found = split_variant_id(str(request.path_params["edition_id"]))
        rendering = None
        if found is not None:
            renderings = await in_thread(self.pages.store.get_renderings, found[0])
            rendering = renderings.get(found[1])
        if found is None or rendering is None:
            raise NotFound("there is no archived edition at this address")
        page = archive_html(rendering)
        if f'class="{MORE_POSTS}"' in page:
            page = await in_thread(self._with_every_post, page, found[0])
        response = HTMLResponse(page)
        response.headers["Content-Security-Policy"] = ARCHIVE_CSP
        response.headers["Cache-Control"] = ARCHIVE_CACHE_CONTROL
        return response

    def _with_every_post(self, page: str, edition_id: str) -> str:
        """``page`` with the list of the edition's posts before its ``</body>``."""
        store = self.pages.store
        edition = store.get_edition(edition_id)
        posts = store.get_posts(edition.post_keys)
        newsletter = self.pages.newsletters.get(edition.newsletter_id)
        site = self.pages.site
        zone = newsletter_zone(site, newsletter) if newsletter else ZoneInfo(site.timezone)

        def format_date(post: Post) -> str:
            return long_date(post.published, zone)

        listing = self.pages.templates[POST_LIST].render(posts=posts, format_date=format_date)
        head, body_end, tail = page.rpartition("</body>")
        return head + listing + body_end + tail if body_end else page + listing
