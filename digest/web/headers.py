"""The HTTP headers every answer of the web app carries, and the pages' content policies.

Tokens travel in URLs, hence ``no-referrer``, ``noindex`` and ``no-store`` by default;
pages style themselves with the one stylesheet and run no script.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_CSP = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
_PAGE_CSP = (
    "default-src 'none'; style-src 'self' {origin}; form-action 'self' {origin}; "
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
STYLESHEET_CACHE_CONTROL = "public, max-age=3600"


def page_csp(origin: str) -> str:
    """A page's policy: the stylesheet and form posts of this site only, no script at all.

    ``origin`` is ``[site] base_url``'s, where the stylesheet and forms are addressed.
    """
    return _PAGE_CSP.format(origin=origin)


def add_security_headers(headers: MutableHeaders) -> None:
    """The defaults above, where the answer did not set its own."""
    for name, value in SECURITY_HEADERS.items():
        headers.setdefault(name, value)


class SecurityHeaders:
    """Pure ASGI middleware: the default security headers on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                add_security_headers(MutableHeaders(scope=message))
            await send(message)

        await self.app(scope, receive, send_with_headers)
