"""The app factory of digest's web pages, and the one table from error to answer.

Each area (unsubscribe, archive, ...) is a module with its routes; this module wires
them to the shared :class:`~digest.web.pages.Pages`, the security headers and the error
handlers. It is the only code that serves HTTP, with :mod:`digest.web.server`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from http import HTTPStatus
from pathlib import Path
from typing import Any, NamedTuple

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from digest import links
from digest.config import NewsletterConfig, SiteConfig, WebConfig
from digest.errors import DigestError, InvalidAddress, InvalidToken, NotFound, StoreError
from digest.ports import Clock, Mailer, Store
from digest.tokens import Keys
from digest.web.archive import ArchivePages
from digest.web.headers import SecurityHeaders, add_security_headers
from digest.web.pages import FormRefused, Pages, in_thread
from digest.web.preferences import PreferencePages
from digest.web.signup import SignupPages
from digest.web.unsubscribe import UnsubscribePages

log = logging.getLogger("digest.web")

MAX_BODY_BYTES = 64 * 1024  # a one-click POST is a few dozen bytes, a form a few hundred

_UNAVAILABLE = "The service is having trouble right now. Please try again in a few minutes."
_LINK_HINT = (
    "If you came here from an email, copy the whole link from it, or use the link in a "
    "more recent email."
)
_COPY_ADVICE = "copy the whole link"  # what the token's own message may already say
_LINK_HINT_AFTER_COPY = (
    "If the whole link does not work either, use the one in a more recent email."
)


class ErrorAnswer(NamedTuple):
    status: int
    title: str
    public: str | None  # shown instead of the exception's message (None: show that)
    hint: str = ""


# The one table from exception to answer. StoreError's own message names the database,
# which is for the operator's log, not for readers.
ERRORS: dict[type[DigestError], ErrorAnswer] = {
    InvalidToken: ErrorAnswer(400, "This link does not work", None, _LINK_HINT),
    FormRefused: ErrorAnswer(400, "Nothing was changed", None),
    InvalidAddress: ErrorAnswer(400, "That address cannot be used", None),
    NotFound: ErrorAnswer(404, "Not found", None),
    StoreError: ErrorAnswer(503, "Temporarily unavailable", _UNAVAILABLE),
    DigestError: ErrorAnswer(400, "Something is wrong with this request", None),
}
_HTTP_MESSAGES = {
    404: "There is no page at this address. Check that you copied the whole link.",
    405: "This address does not accept that kind of request.",
}


class _Handlers:
    """Health check and error handlers."""

    def __init__(self, pages: Pages) -> None:
        self.pages = pages

    async def healthz(self, request: Request) -> Response:
        """GET /healthz: "ok" when the store answers; 503 otherwise (for monitoring)."""
        try:
            await in_thread(self.pages.store.list_editions, None, 1)
        except StoreError as exc:
            log.error("health check failed: %s", exc)
            return PlainTextResponse("store unavailable", status_code=503)
        return PlainTextResponse("ok")

    def digest_error(self, request: Request, exc: Exception) -> Response:
        answer = next(ERRORS[cls] for cls in type(exc).__mro__ if cls in ERRORS)
        if answer.status >= 500:
            log.error("%s %s: %s", request.method, request.url.path, exc)
        message = answer.public or str(exc)
        hint = answer.hint
        if hint == _LINK_HINT and _COPY_ADVICE in message:  # say it once
            hint = _LINK_HINT_AFTER_COPY
        response = self.pages.error_page(answer.status, answer.title, message, hint)
        if answer.status == 503:
            response.headers["Retry-After"] = "60"
        return response

    def http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        phrase = HTTPStatus(exc.status_code).phrase
        message = exc.detail if exc.detail != phrase else _HTTP_MESSAGES.get(exc.status_code)
        response = self.pages.error_page(exc.status_code, phrase, message or phrase)
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    def server_error(self, request: Request, exc: Exception) -> Response:
        # Runs in ServerErrorMiddleware, outside SecurityHeaders: add them here.
        response = self.pages.error_page(500, "Something went wrong", _UNAVAILABLE)
        add_security_headers(response.headers)
        return response


def create_web_app(
    *,
    store: Store,
    secret: Keys | bytes,
    site: SiteConfig,
    newsletters: Mapping[str, NewsletterConfig],
    templates_dir: Path,
    clock: Clock,
    web: WebConfig | None = None,
    mailer: Callable[[], Mailer] | None = None,
    email_templates_dir: Path | None = None,
) -> Starlette:
    """The Starlette app of digest's public pages (see :mod:`digest.links` for the URLs).

    ``secret`` is the signing key, or the keys (current and previous) that links are
    read with. ``templates_dir`` holds the page templates and the stylesheet,
    ``email_templates_dir`` (default: ``templates_dir``'s sibling ``email``) the
    confirmation emails; they are loaded here, so a missing one is a ``ConfigError`` at
    start-up. ``mailer`` gives the transport confirmations go through (without it,
    sign-ups are answered but not recorded). ``web`` holds the sign-up rules.
    """
    pages = Pages(
        store=store,
        keys=Keys.of(secret),
        site=site,
        newsletters=newsletters,
        templates_dir=templates_dir,
        clock=clock,
        web=web or WebConfig(),
        mailer=mailer,
        email_templates_dir=email_templates_dir or templates_dir.parent / "email",
    )
    handlers = _Handlers(pages)
    routes = [
        *SignupPages(pages).routes(),
        *UnsubscribePages(pages).routes(),
        *PreferencePages(pages).routes(),
        *ArchivePages(pages).routes(),
        Route(links.HEALTH, handlers.healthz, methods=["GET"]),
    ]
    errors: dict[Any, Any] = {cls: handlers.digest_error for cls in ERRORS}
    errors[HTTPException] = handlers.http_error
    errors[Exception] = handlers.server_error
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers=errors,
        max_body_size=MAX_BODY_BYTES,
    )
    app.state.pages = pages
    return app


def reconfigure_web(
    web: Starlette, *, site: SiteConfig, newsletters: Mapping[str, NewsletterConfig]
) -> None:
    """Serve ``site`` and ``newsletters`` from the next request on (``digest reload``)."""
    pages: Pages = web.state.pages
    pages.site, pages.newsletters = site, newsletters
