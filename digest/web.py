"""The web app of `digest run`: unsubscribe pages (RFC 8058 one-click), archive, health check.

The only module that serves HTTP (Starlette on uvicorn). Store calls are synchronous, so
they run in Starlette's thread pool: the web app shares its event loop with the
scheduler and the senders and must never block it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
from collections.abc import Generator, Mapping
from http import HTTPStatus
from pathlib import Path
from typing import Any, NamedTuple

import jinja2
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digest.config import NewsletterConfig, SiteConfig
from digest.errors import ConfigError, DigestError, InvalidToken, NotFound, StoreError
from digest.planning import split_variant_id
from digest.ports import Clock, Store
from digest.render import archive_html
from digest.subscriptions import unsubscribe
from digest.tokens import read_unsubscribe_token

log = logging.getLogger("digest.web")

MAX_BODY_BYTES = 64 * 1024  # a one-click POST is a few dozen bytes
TEMPLATES = ("base.html", "unsubscribe.html", "unsubscribed.html", "error.html")

# Every response gets these unless it sets its own. Tokens travel in URLs, hence
# no-referrer and no-store; pages carry their own CSP (a nonce for the inline style).
DEFAULT_CSP = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
PAGE_CSP = (
    "default-src 'none'; style-src 'nonce-{nonce}'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
# The archived email: inline styles (premailer) and remote images, never scripts; the
# sandbox gives the feed-derived content an opaque origin.
ARCHIVE_CSP = (
    "default-src 'none'; img-src https: http: data:; style-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'; "
    "sandbox allow-popups allow-popups-to-escape-sandbox"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Robots-Tag": "noindex, nofollow",
    "Content-Security-Policy": DEFAULT_CSP,
    "Cache-Control": "no-store",
}
ARCHIVE_CACHE_CONTROL = "public, max-age=300"

_UNAVAILABLE = "The service is having trouble right now. Please try again in a few minutes."
_LINK_HINT = (
    "If you came here from an email, copy the whole link from it, or use the link in a "
    "more recent email."
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
    NotFound: ErrorAnswer(404, "Not found", None),
    StoreError: ErrorAnswer(503, "Temporarily unavailable", _UNAVAILABLE),
    DigestError: ErrorAnswer(400, "Something is wrong with this request", None),
}
_HTTP_MESSAGES = {
    404: "There is no page at this address. Check that you copied the whole link.",
    405: "This address does not accept that kind of request.",
}


def mask_email(email: str) -> str:
    """``bob@example.org`` -> ``b***@example.org``: enough to recognize, little to harvest."""
    local, at, domain = email.rpartition("@")
    if not at or not local:
        return "***"
    return f"{local[0]}***@{domain}"


def _sentence(message: str) -> str:
    message = message.strip()
    return message[:1].upper() + message[1:] if message else message


def _add_security_headers(headers: MutableHeaders) -> None:
    for name, value in SECURITY_HEADERS.items():
        headers.setdefault(name, value)


class _SecurityHeaders:
    """Pure ASGI middleware: the default security headers on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                _add_security_headers(MutableHeaders(scope=message))
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _load_templates(templates_dir: Path) -> dict[str, jinja2.Template]:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    try:
        return {name: env.get_template(name) for name in TEMPLATES}
    except (jinja2.TemplateError, OSError) as exc:
        raise ConfigError(f"web templates in {templates_dir} cannot be loaded: {exc}") from exc


class _Pages:
    """The endpoints and error handlers, holding what the factory was given."""

    def __init__(
        self,
        *,
        store: Store,
        secret: bytes,
        site: SiteConfig,
        newsletters: Mapping[str, NewsletterConfig],
        templates: dict[str, jinja2.Template],
        clock: Clock,
    ) -> None:
        self.store = store
        self.secret = secret
        self.site = site
        self.newsletters = newsletters
        self.templates = templates
        self.clock = clock

    # --- rendering ---------------------------------------------------------------
    def page(self, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
        nonce = secrets.token_urlsafe(16)
        body = self.templates[template].render(site=self.site, csp_nonce=nonce, **context)
        response = HTMLResponse(body, status_code=status)
        response.headers["Content-Security-Policy"] = PAGE_CSP.format(nonce=nonce)
        return response

    def error_page(self, status: int, title: str, message: str, hint: str = "") -> HTMLResponse:
        return self.page(
            "error.html", status=status, title=title, message=_sentence(message), hint=hint
        )

    def newsletter_title(self, newsletter_id: str) -> str:
        # A newsletter removed from the config can still be left by old links.
        newsletter = self.newsletters.get(newsletter_id)
        return newsletter.title if newsletter is not None else newsletter_id

    # --- routes ------------------------------------------------------------------
    async def confirm_unsubscribe(self, request: Request) -> Response:
        """GET /u/{token}: ask; never change anything (mail scanners fetch every link)."""
        subscriber_id, newsletter_id = read_unsubscribe_token(
            self.secret, request.path_params["token"]
        )
        try:
            subscriber = await run_in_threadpool(self.store.get_subscriber, subscriber_id)
        except NotFound:
            raise NotFound(
                "we have no reader for this unsubscribe link: the address was probably "
                "removed from our list already, and will get no more emails"
            ) from None
        return self.page(
            "unsubscribe.html",
            masked_email=mask_email(subscriber.email),
            newsletter_title=self.newsletter_title(newsletter_id),
        )

    async def unsubscribe(self, request: Request) -> Response:
        """POST /u/{token}: unsubscribe, idempotently; 200 and never a redirect.

        No CSRF check, on purpose: the signed token is the authorization, and mailbox
        providers POST the RFC 8058 one-click body without cookies or a page visit.
        """
        subscriber_id, newsletter_id = read_unsubscribe_token(
            self.secret, request.path_params["token"]
        )
        async with request.form(max_files=0, max_fields=20) as form:
            value = form.get("List-Unsubscribe")
        one_click = isinstance(value, str) and value.strip().lower() == "one-click"
        try:
            changed = await run_in_threadpool(
                unsubscribe, self.store, subscriber_id, newsletter_id, self.clock()
            )
        except NotFound:
            raise NotFound(
                "we have no subscription for this unsubscribe link: the address was probably "
                "removed from our list already, and will get no more emails"
            ) from None
        if changed:
            log.info(
                "unsubscribed %s from %s (%s)",
                subscriber_id,
                newsletter_id,
                "one-click" if one_click else "web page",
            )
        title = self.newsletter_title(newsletter_id)
        if one_click:
            return PlainTextResponse(f"Unsubscribed from {title}.\n")
        subscriber = await run_in_threadpool(self.store.get_subscriber, subscriber_id)
        return self.page(
            "unsubscribed.html",
            masked_email=mask_email(subscriber.email),
            newsletter_title=title,
            contact=self.site.reply_to or self.site.sender_email,
        )

    async def archive(self, request: Request) -> Response:
        """GET /e/{edition_id}: the edition as sent, with no reader's link in it."""
        found = split_variant_id(str(request.path_params["edition_id"]))
        rendering = None
        if found is not None:
            renderings = await run_in_threadpool(self.store.get_renderings, found[0])
            rendering = renderings.get(found[1])
        if rendering is None:
            raise NotFound("there is no archived edition at this address")
        response = HTMLResponse(archive_html(rendering))
        response.headers["Content-Security-Policy"] = ARCHIVE_CSP
        response.headers["Cache-Control"] = ARCHIVE_CACHE_CONTROL
        return response

    async def healthz(self, request: Request) -> Response:
        """GET /healthz: "ok" when the store answers; 503 otherwise (for monitoring)."""
        try:
            await run_in_threadpool(self.store.list_editions, None, 1)
        except StoreError as exc:
            log.error("health check failed: %s", exc)
            return PlainTextResponse("store unavailable", status_code=503)
        return PlainTextResponse("ok")

    # --- error handlers ----------------------------------------------------------
    def digest_error(self, request: Request, exc: Exception) -> Response:
        answer = next(ERRORS[cls] for cls in type(exc).__mro__ if cls in ERRORS)
        if answer.status >= 500:
            log.error("%s %s: %s", request.method, request.url.path, exc)
        response = self.error_page(
            answer.status, answer.title, answer.public or str(exc), answer.hint
        )
        if answer.status == 503:
            response.headers["Retry-After"] = "60"
        return response

    def http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        phrase = HTTPStatus(exc.status_code).phrase
        message = exc.detail if exc.detail != phrase else _HTTP_MESSAGES.get(exc.status_code)
        response = self.error_page(exc.status_code, phrase, message or phrase)
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    def server_error(self, request: Request, exc: Exception) -> Response:
        # Runs in ServerErrorMiddleware, outside _SecurityHeaders: add them here.
        response = self.error_page(500, "Something went wrong", _UNAVAILABLE)
        _add_security_headers(response.headers)
        return response


def create_web_app(
    *,
    store: Store,
    secret: bytes,
    site: SiteConfig,
    newsletters: Mapping[str, NewsletterConfig],
    templates_dir: Path,
    clock: Clock,
) -> Starlette:
    """The Starlette app serving ``/u/{token}``, ``/e/{edition_id}`` and ``/healthz``.

    ``templates_dir`` holds base.html, unsubscribe.html, unsubscribed.html and error.html;
    they are loaded here, so a missing one is a ``ConfigError`` at start-up.
    """
    pages = _Pages(
        store=store,
        secret=secret,
        site=site,
        newsletters=newsletters,
        templates=_load_templates(templates_dir),
        clock=clock,
    )
    routes = [
        Route("/u/{token}", pages.confirm_unsubscribe, methods=["GET"]),
        Route("/u/{token}", pages.unsubscribe, methods=["POST"]),
        Route("/e/{edition_id}", pages.archive, methods=["GET"]),
        Route("/healthz", pages.healthz, methods=["GET"]),
    ]
    handlers: dict[Any, Any] = {cls: pages.digest_error for cls in ERRORS}
    handlers[HTTPException] = pages.http_error
    handlers[Exception] = pages.server_error
    web = Starlette(
        routes=routes,
        middleware=[Middleware(_SecurityHeaders)],
        exception_handlers=handlers,
        max_body_size=MAX_BODY_BYTES,
    )
    web.state.pages = pages
    return web


def reconfigure_web(
    web: Starlette, *, site: SiteConfig, newsletters: Mapping[str, NewsletterConfig]
) -> None:
    """Serve ``site`` and ``newsletters`` from the next request on (``digest reload``)."""
    pages: _Pages = web.state.pages
    pages.site, pages.newsletters = site, newsletters


# --- serving -----------------------------------------------------------------------
class _EmbeddedServer(uvicorn.Server):
    """uvicorn that leaves SIGINT/SIGTERM alone: `digest run` owns them and sets ``stop``."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (0 picks a free port).

    Raises ``ConfigError`` naming ``[web]`` when the address is taken or unusable, instead
    of uvicorn's ``sys.exit``.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ConfigError(f"[web] host {host!r} cannot be used: {exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"[web] cannot listen on {host}:{port} ({exc.strerror or exc}): choose another "
            "host or port in [web], or stop the program that uses it"
        ) from None
    return sock


async def serve_on(app: ASGIApp, sock: socket.socket, stop: asyncio.Event) -> None:
    """Serve ``app`` on the listening ``sock`` until ``stop`` is set, then shut down.

    In-flight requests get up to 10 seconds to finish; the socket is closed on return.
    """
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_config=None,  # the service configures logging
        access_log=False,  # request paths carry unsubscribe tokens
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    server = _EmbeddedServer(config)
    with sock:
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            server.should_exit = True
            stopping.cancel()
            await asyncio.wait({stopping})
            await serving
