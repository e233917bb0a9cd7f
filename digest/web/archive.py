"""The public archive: ``/e/{edition_id}``, an edition as sent, with no reader's link."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from digest import links
from digest.errors import NotFound
from digest.planning import split_variant_id
from digest.render import archive_html
from digest.web.headers import ARCHIVE_CACHE_CONTROL, ARCHIVE_CSP
from digest.web.pages import Pages, in_thread


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
        if rendering is None:
            raise NotFound("there is no archived edition at this address")
        response = HTMLResponse(archive_html(rendering))
        response.headers["Content-Security-Policy"] = ARCHIVE_CSP
        response.headers["Cache-Control"] = ARCHIVE_CACHE_CONTROL
        return response
