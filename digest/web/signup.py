"""The home page, subscribing (``/subscribe``, also for other websites' forms) and the
confirmation link (``/confirm/{token}``: GET shows a button, only its POST confirms).

``/subscribe`` answers at once with the same page and status whatever the address's
state, before anything is looked up; the sign-up itself runs after the answer is sent
(:func:`digest.signup.sign_up`). It has no anti-forgery check: it exists to be posted to
from other sites, and double opt-in with rate limits is what protects it.
"""

from __future__ import annotations

import logging

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from digest import links, signup
from digest.config import NewsletterConfig
from digest.confirmations import lasting
from digest.editorial_newsletters import describe
from digest.errors import InvalidAddress, InvalidToken
from digest.tokens import preferences_token, read_confirm_token
from digest.web.headers import STYLESHEET_CACHE_CONTROL
from digest.web.pages import MAX_FIELDS, Pages, in_thread, origin_of

log = logging.getLogger("digest.web")

EMAIL_FIELD = "email"
NEWSLETTER_FIELD = "newsletter"
HONEYPOT_FIELD = "website"  # hidden from people; robots fill it in
MAX_EMAIL = 320


def schedule_words(newsletter: NewsletterConfig) -> str:
    """How often it comes, for the home page: "Daily at 07:00 (Europe/Prague)", or for a
    newsletter with a choice of cadences "How often: Daily, Every Monday or Once a month"."""
    if len(newsletter.cadences) > 1:
        titles = [c.title for c in newsletter.cadences]
        # Titles with commas of their own ("The week, on Mondays") are listed with ";".
        sep = "; " if any("," in title for title in titles) else ", "
        before_or = ";" if sep == "; " and len(titles) > 2 else ""
        return f"How often: {sep.join(titles[:-1])}{before_or} or {titles[-1]}"
    words = describe(newsletter.schedule)
    return words[:1].upper() + words[1:]


class SignupPages:
    def __init__(self, pages: Pages) -> None:
        self.pages = pages

    def routes(self) -> list[Route]:
        return [
            Route(links.HOME, self.home, methods=["GET"]),
            Route(links.STYLESHEET, self.stylesheet, methods=["GET"]),
            Route(links.SUBSCRIBE, self.subscribe, methods=["POST"]),
            Route(links.CONFIRM, self.ask, methods=["GET"]),
            Route(links.CONFIRM, self.confirm, methods=["POST"]),
        ]

    def newsletter_cards(self) -> list[dict[str, object]]:
        site = self.pages.site
        return [
            {
                "newsletter": newsletter,
                "schedule": schedule_words(newsletter),
                "archive_url": links.archive_url(site, newsletter.id),
                "consent": signup.consent_text(site, newsletter),
            }
            for newsletter in signup.public_newsletters(self.pages.newsletters)
        ]

    def home_page(
        self, *, status: int = 200, error: str = "", chosen: str = "", email: str = ""
    ) -> Response:
        pages = self.pages
        return pages.page(
            "home.html",
            status=status,
            indexable=status == 200,
            cards=self.newsletter_cards(),
            subscribe_url=links.subscribe_url(pages.site),
            honeypot=pages.web.honeypot,
            error=error,
            chosen=chosen,
            email=email,
        )

    async def home(self, request: Request) -> Response:
        """GET /: the public newsletters, each with its subscribe form."""
        return self.home_page()

    async def stylesheet(self, request: Request) -> Response:
        response = Response(self.pages.stylesheet, media_type="text/css")
        response.headers["Cache-Control"] = STYLESHEET_CACHE_CONTROL
        return response

    async def subscribe(self, request: Request) -> Response:
        """POST /subscribe: always "check your inbox" (or the form again, for a bad
        address); the sign-up runs after the answer is sent."""
        pages = self.pages
        async with request.form(max_files=0, max_fields=MAX_FIELDS) as form:
            raw = form.get(EMAIL_FIELD)
            email = raw[:MAX_EMAIL] if isinstance(raw, str) else ""
            wanted = [value for value in form.getlist(NEWSLETTER_FIELD) if isinstance(value, str)]
            trap = form.get(HONEYPOT_FIELD)
        chosen = wanted[0] if len(wanted) == 1 else ""
        try:
            asked = signup.signup_request(
                email,
                wanted,
                pages.newsletters,
                source=self._source(request),
                client=request.client.host if request.client else "",
            )
        except InvalidAddress:
            return self.home_page(
                status=400,
                error="That does not look like an email address. Check it and try again.",
                chosen=chosen,
                email=email,
            )
        response = pages.page("subscribe_done.html")
        if pages.web.honeypot and isinstance(trap, str) and trap:
            log.info("sign-up with the hidden field filled in: ignored")
        elif pages.mailer is None:
            log.error("sign-up not recorded: this web app was built without a mailer")
        else:
            response.background = BackgroundTask(self._sign_up, asked)
        return response

    def _source(self, request: Request) -> str:
        origin = request.headers.get("origin") or ""
        if origin in ("", "null") or origin == origin_of(self.pages.site.base_url):
            return "subscribe form on this site"
        return f"subscribe form on {origin}"

    async def _sign_up(self, asked: signup.SignupRequest) -> None:
        pages = self.pages
        assert pages.mailer is not None
        try:
            await signup.sign_up(
                pages.store,
                pages.mailer(),
                pages.mail,
                pages.site,
                pages.newsletters,
                pages.keys,
                pages.rules,
                asked,
                pages.clock(),
            )
        except Exception:  # the answer is long gone: the log is the only place left
            log.exception("a sign-up failed")

    # --- the confirmation link ---------------------------------------------------------------
    def _reader(self, request: Request) -> str:
        pages = self.pages
        return read_confirm_token(
            pages.keys,
            request.path_params["token"],
            now=pages.clock(),
            max_age=pages.rules.pending_for,
        )

    def expired(self) -> Response:
        return self.pages.page(
            "confirm.html",
            status=400,
            state="expired",
            cards=self.newsletter_cards(),
            subscribe_url=links.subscribe_url(self.pages.site),
            honeypot=self.pages.web.honeypot,
            lasts=lasting(self.pages.rules.pending_for),
        )

    async def ask(self, request: Request) -> Response:
        """GET: what the button would confirm; never changes anything."""
        pages = self.pages
        try:
            subscriber_id = self._reader(request)
        except InvalidToken:
            return self.expired()
        pending = await in_thread(signup.pending_of, pages.store, subscriber_id)
        if not pending:
            return await self._done(subscriber_id, [])
        return pages.page(
            "confirm.html",
            state="ask",
            titles=[pages.newsletter_title(s.newsletter_id) for s in pending],
            csrf=pages.csrf(request.url.path),
        )

    async def confirm(self, request: Request) -> Response:
        """POST: confirm every pending sign-up of the reader; 200 with the result page."""
        pages = self.pages
        try:
            subscriber_id = self._reader(request)
        except InvalidToken:
            return self.expired()
        await pages.checked_form(request)
        confirmed = await in_thread(signup.confirm, pages.store, subscriber_id, pages.clock())
        return await self._done(subscriber_id, confirmed)

    async def _done(self, subscriber_id: str, confirmed: list[str]) -> Response:
        pages = self.pages
        current = await in_thread(signup.confirmed_of, pages.store, subscriber_id)
        if not current and not confirmed:
            return self.expired()  # purged, or left meanwhile: start again
        ids = confirmed or [s.newsletter_id for s in current]
        return pages.page(
            "confirmed.html",
            titles=[pages.newsletter_title(i) for i in ids],
            already=not confirmed,
            preferences_url=links.preferences_url(
                pages.site, preferences_token(pages.keys, subscriber_id)
            ),
        )
