"""The preference center ``/p/{token}`` (a personal link in every digest): which
newsletters, each one's topics and cadence, and a change of address that is confirmed
at the new address (``/address/{token}``) before anything changes."""

from __future__ import annotations

import logging
from typing import Any

from starlette.background import BackgroundTask
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from digest import links, preferences
from digest.errors import AlreadyExists, InvalidAddress, NotFound
from digest.models import Subscriber
from digest.subscriptions import normalize_address
from digest.tokens import read_address_token, read_preferences_token
from digest.web.pages import Pages, in_thread, mask_email

log = logging.getLogger("digest.web")

_GONE = "we have no reader for this link: the address was probably removed from our list"


def wanted_of(form: FormData) -> dict[str, preferences.Wanted]:
    """The preference form as choices, for the newsletters the page offered."""
    receive = set(form.getlist("receive"))
    wanted: dict[str, preferences.Wanted] = {}
    for newsletter_id in form.getlist("offered"):
        if not isinstance(newsletter_id, str):
            continue
        cadence = form.get(f"cadence-{newsletter_id}")
        topics = form.getlist(f"topic-{newsletter_id}")
        wanted[newsletter_id] = preferences.Wanted(
            receive=newsletter_id in receive,
            cadence=cadence if isinstance(cadence, str) else None,
            topics=tuple(t for t in topics if isinstance(t, str))
            if form.get(f"topics-{newsletter_id}") is not None
            else None,
        )
    return wanted


class PreferencePages:
    def __init__(self, pages: Pages) -> None:
        self.pages = pages

    def routes(self) -> list[Route]:
        return [
            Route(links.PREFERENCES, self.show, methods=["GET"]),
            Route(links.PREFERENCES, self.save, methods=["POST"]),
            Route(links.PREFERENCES_ADDRESS, self.ask_address, methods=["POST"]),
            Route(links.ADDRESS, self.confirm_address_page, methods=["GET"]),
            Route(links.ADDRESS, self.move_address, methods=["POST"]),
        ]

    async def _reader(self, request: Request) -> Subscriber:
        subscriber_id = read_preferences_token(self.pages.keys, request.path_params["token"])
        try:
            return await in_thread(preferences.reader, self.pages.store, subscriber_id)
        except NotFound:
            raise NotFound(_GONE) from None

    async def _page(
        self, request: Request, subscriber: Subscriber, *, status: int = 200, **more: Any
    ) -> Response:
        pages = self.pages
        token = request.path_params["token"]
        form_path = links.path(links.PREFERENCES, token=token)
        address_path = links.path(links.PREFERENCES_ADDRESS, token=token)
        found = await in_thread(preferences.choices, pages.store, pages.newsletters, subscriber.id)
        context: dict[str, Any] = {
            "saved": False,
            "address_sent": False,
            "address_error": "",
            "new_email": "",
        }
        return pages.page(
            "preferences.html",
            status=status,
            masked_email=mask_email(subscriber.email),
            choices=found,
            zones=preferences.reader_zones() if preferences.asks_for_zone(found) else (),
            timezone=subscriber.timezone,
            form_url=links.absolute(pages.site, form_path),
            csrf=pages.csrf(form_path),
            address_url=links.absolute(pages.site, address_path),
            address_csrf=pages.csrf(address_path),
            **(context | more),
        )

    async def show(self, request: Request) -> Response:
        """GET: the reader's choices; never changes anything."""
        return await self._page(request, await self._reader(request))

    async def save(self, request: Request) -> Response:
        """POST: apply the form; the page again, saying so (no redirect)."""
        pages = self.pages
        subscriber = await self._reader(request)
        form = await pages.checked_form(request)
        await in_thread(
            preferences.save,
            pages.store,
            pages.site,
            pages.newsletters,
            subscriber.id,
            wanted_of(form),
            client=request.client.host if request.client else "",
            now=pages.clock(),
            timezone=zone if isinstance(zone := form.get("timezone"), str) else None,
        )
        return await self._page(request, subscriber, saved=True)

    async def ask_address(self, request: Request) -> Response:
        """POST: mail a confirmation link to the new address (after the answer is sent)."""
        pages = self.pages
        subscriber = await self._reader(request)
        form = await pages.checked_form(request)
        raw = form.get("email")
        typed = raw[:320] if isinstance(raw, str) else ""
        try:
            new_email = normalize_address(typed)
        except InvalidAddress:
            return await self._page(
                request,
                subscriber,
                status=400,
                address_error="That does not look like an email address. Check it and try again.",
                new_email=typed,
            )
        response = await self._page(request, subscriber, address_sent=True)
        if pages.mailer is not None and new_email[0] != subscriber.email:
            response.background = BackgroundTask(
                self._send, subscriber.id, new_email, request.client.host if request.client else ""
            )
        return response

    async def _send(self, subscriber_id: str, new_email: tuple[str, str], client: str) -> None:
        pages = self.pages
        assert pages.mailer is not None
        try:
            await preferences.ask_address_change(
                pages.store,
                pages.mailer(),
                pages.mail,
                pages.site,
                pages.keys,
                pages.rules,
                subscriber_id,
                new_email,
                client=client,
                now=pages.clock(),
            )
        except Exception:  # the answer is long gone: the log is the only place left
            log.exception("a change of address was not mailed")

    # --- the link at the new address ------------------------------------------------------
    def _move(self, request: Request) -> tuple[str, str]:
        pages = self.pages
        return read_address_token(
            pages.keys,
            request.path_params["token"],
            now=pages.clock(),
            max_age=pages.rules.pending_for,
        )

    async def confirm_address_page(self, request: Request) -> Response:
        """GET: ask; never change anything."""
        _, email = self._move(request)
        pages = self.pages
        return pages.page(
            "address.html",
            state="ask",
            masked_email=mask_email(email),
            csrf=pages.csrf(request.url.path),
        )

    async def move_address(self, request: Request) -> Response:
        """POST: the reader receives at the new address from now on."""
        pages = self.pages
        subscriber_id, email = self._move(request)
        await pages.checked_form(request)
        try:
            await in_thread(preferences.move_address, pages.store, subscriber_id, email)
        except AlreadyExists:
            return pages.page(
                "address.html", status=409, state="taken", masked_email=mask_email(email)
            )
        except NotFound:
            raise NotFound(_GONE) from None
        return pages.page("address.html", state="moved", masked_email=mask_email(email))
