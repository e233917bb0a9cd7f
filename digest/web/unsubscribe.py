"""``/u/{token}``: the unsubscribe link of every digest (GET asks, POST acts; RFC 8058),
and the result page's "unsubscribe from all newsletters" and "resubscribe" buttons."""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from digest import links, preferences
from digest.errors import NotFound
from digest.models import Subscriber, Subscription
from digest.subscriptions import unsubscribe
from digest.tokens import preferences_token, read_unsubscribe_token
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
            Route(links.UNSUBSCRIBE_ALL, self.unsubscribe_all, methods=["POST"]),
            Route(links.RESUBSCRIBE, self.resubscribe, methods=["POST"]),
        ]

    async def _reader(self, request: Request) -> tuple[Subscriber, str]:
        pages = self.pages
        subscriber_id, newsletter_id = read_unsubscribe_token(
            pages.keys, request.path_params["token"]
        )
        try:
            return await in_thread(preferences.reader, pages.store, subscriber_id), newsletter_id
        except NotFound:
            raise NotFound(_GONE.format(what="reader")) from None

    def _page(
        self, template: str, subscriber: Subscriber, newsletter_id: str, **more: Any
    ) -> Response:
        pages = self.pages
        return pages.page(
            template,
            masked_email=mask_email(subscriber.email),
            newsletter_title=pages.newsletter_title(newsletter_id),
            preferences_url=links.preferences_url(
                pages.site, preferences_token(pages.keys, subscriber.id)
            ),
            **more,
        )

    async def ask(self, request: Request) -> Response:
        """GET: ask; never change anything (mail scanners fetch every link). A reader who
        has already left is told so, with the way back, instead of being asked again."""
        subscriber, newsletter_id = await self._reader(request)
        subscriptions = await in_thread(
            preferences.subscriptions_of, self.pages.store, subscriber.id
        )
        if any(
            s.newsletter_id == newsletter_id and s.status is preferences.LEFT for s in subscriptions
        ):
            return await self._result(
                request, subscriber, newsletter_id, "already", subscriptions=subscriptions
            )
        return self._page("unsubscribe.html", subscriber, newsletter_id)

    async def unsubscribe(self, request: Request) -> Response:
        """POST: unsubscribe, idempotently; 200 and never a redirect.

        No CSRF check, on purpose: the signed token is the authorization, and mailbox
        providers POST the RFC 8058 one-click body (urlencoded, multipart, or empty)
        without cookies or a page visit.
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
            if one_click:  # RFC 8058: the mailbox provider wants 200; the reader is gone
                return PlainTextResponse(
                    f"Not on the list of {pages.newsletter_title(newsletter_id)} (any more):"
                    " no more emails will come.\n"
                )
            raise NotFound(_GONE.format(what="subscription")) from None
        if changed:
            how = "one-click" if one_click else "web page"
            log.info("unsubscribed %s from %s (%s)", subscriber_id, newsletter_id, how)
        if one_click:
            return PlainTextResponse(
                f"Unsubscribed from {pages.newsletter_title(newsletter_id)}.\n"
            )
        subscriber = await in_thread(preferences.reader, pages.store, subscriber_id)
        return await self._result(request, subscriber, newsletter_id, "left")

    async def _result(
        self,
        request: Request,
        subscriber: Subscriber,
        newsletter_id: str,
        state: str,
        *,
        subscriptions: list[Subscription] | None = None,
    ) -> Response:
        """The result page; ``subscriptions`` are the reader's, when the caller read them."""
        pages = self.pages
        token = request.path_params["token"]
        if subscriptions is None:
            subscriptions = await in_thread(
                preferences.subscriptions_of, pages.store, subscriber.id
            )
        others = [
            s
            for s in subscriptions
            if s.newsletter_id != newsletter_id and s.status in preferences.KEPT
        ]
        all_path = links.path(links.UNSUBSCRIBE_ALL, token=token)
        back_path = links.path(links.RESUBSCRIBE, token=token)
        return self._page(
            "unsubscribed.html",
            subscriber,
            newsletter_id,
            state=state,
            others=[pages.newsletter_title(s.newsletter_id) for s in others],
            all_url=links.absolute(pages.site, all_path),
            all_csrf=pages.csrf(all_path),
            back_url=links.absolute(pages.site, back_path),
            back_csrf=pages.csrf(back_path),
            contact=pages.site.reply_to or pages.site.sender_email,
        )

    async def unsubscribe_all(self, request: Request) -> Response:
        """POST (the result page's button): leave every newsletter."""
        pages = self.pages
        subscriber, newsletter_id = await self._reader(request)
        await pages.checked_form(request)
        await in_thread(preferences.unsubscribe_all, pages.store, subscriber.id, pages.clock())
        return await self._result(request, subscriber, newsletter_id, "left_all")

    async def resubscribe(self, request: Request) -> Response:
        """POST (the result page's button): back on the newsletter the link is for."""
        pages = self.pages
        subscriber, newsletter_id = await self._reader(request)
        await pages.checked_form(request)
        newsletter = pages.newsletters.get(newsletter_id)
        if newsletter is None:
            raise NotFound("this newsletter is no longer published, so it cannot be joined again")
        await in_thread(
            preferences.join,
            pages.store,
            pages.site,
            subscriber.id,
            [newsletter],
            source="resubscribe button of the unsubscribe page",
            client=request.client.host if request.client else "",
            now=pages.clock(),
        )
        return await self._result(request, subscriber, newsletter_id, "back")
