"""``/u/{token}``: the unsubscribe link of every digest (GET asks, POST acts; RFC 8058)."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from digest import links
from digest.errors import NotFound
from digest.subscriptions import unsubscribe
from digest.tokens import read_unsubscribe_token
from digest.web.pages import Pages, in_thread, mask_email

log = logging.getLogger("digest.web")

_GONE = (
    "we have no {what} for this unsubscribe link: the address was probably removed from our "
    "list already, and will get no more emails"
)


class UnsubscribePages:
    def __init__(self, pages: Pages) -> None:
        self.pages = pages

    def routes(self) -> list[Route]:
        return [
            Route(links.UNSUBSCRIBE, self.ask, methods=["GET"]),
            Route(links.UNSUBSCRIBE, self.unsubscribe, methods=["POST"]),
        ]

    async def ask(self, request: Request) -> Response:
        """GET: ask; never change anything (mail scanners fetch every link)."""
        pages = self.pages
        subscriber_id, newsletter_id = read_unsubscribe_token(
            pages.keys, request.path_params["token"]
        )
        try:
            subscriber = await in_thread(pages.store.get_subscriber, subscriber_id)
        except NotFound:
            raise NotFound(_GONE.format(what="reader")) from None
        return pages.page(
            "unsubscribe.html",
            masked_email=mask_email(subscriber.email),
            newsletter_title=pages.newsletter_title(newsletter_id),
        )

    async def unsubscribe(self, request: Request) -> Response:
        """POST: unsubscribe, idempotently; 200 and never a redirect.

        No CSRF check, on purpose: the signed token is the authorization, and mailbox
        providers POST the RFC 8058 one-click body without cookies or a page visit.
        """
        pages = self.pages
        subscriber_id, newsletter_id = read_unsubscribe_token(
            pages.keys, request.path_params["token"]
        )
        async with request.form(max_files=0, max_fields=20) as form:
            value = form.get("List-Unsubscribe")
        one_click = isinstance(value, str) and value.strip().lower() == "one-click"
        try:
            changed = await in_thread(
                unsubscribe, pages.store, subscriber_id, newsletter_id, pages.clock()
            )
        except NotFound:
            raise NotFound(_GONE.format(what="subscription")) from None
        if changed:
            how = "one-click" if one_click else "web page"
            log.info("unsubscribed %s from %s (%s)", subscriber_id, newsletter_id, how)
        title = pages.newsletter_title(newsletter_id)
        if one_click:
            return PlainTextResponse(f"Unsubscribed from {title}.\n")
        subscriber = await in_thread(pages.store.get_subscriber, subscriber_id)
        return pages.page(
            "unsubscribed.html",
            masked_email=mask_email(subscriber.email),
            newsletter_title=title,
            contact=pages.site.reply_to or pages.site.sender_email,
        )
