"""What every area of the web app shares: its configuration, the templates, page rendering,
and the anti-forgery check of forms.

Autoescape is on in every template. Store calls are synchronous, so handlers run them
in Starlette's thread pool (``in_thread``): the web app shares its event loop with the
scheduler and the senders and must never block it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlsplit

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse

from digest import links
from digest.config import NewsletterConfig, SiteConfig, WebConfig
from digest.confirmations import ConfirmationMail
from digest.errors import ConfigError, DigestError, InvalidToken
from digest.ports import Clock, Mailer, Store
from digest.signup import SignupRules
from digest.tokens import Keys, check_csrf, csrf_token
from digest.web.headers import page_csp

TEMPLATES = (
    "base.html",
    "_forms.html",
    "error.html",
    "home.html",
    "subscribe_done.html",
    "confirm.html",
    "confirmed.html",
    "unsubscribe.html",
    "unsubscribed.html",
    "preferences.html",
    "address.html",
    "archive.html",
    "edition_posts.html",
)
STYLESHEET = "site.css"
CSRF_FIELD = "csrf"
FORM_LIFETIME = timedelta(hours=12)  # a page left open longer asks to be loaded again
MAX_FIELDS = 50

P = ParamSpec("P")
R = TypeVar("R")


class FormRefused(DigestError, ValueError):
    """A form post without this site's anti-forgery value, or with one too old."""


def mask_email(email: str) -> str:
    """``bob@example.org`` -> ``b***@example.org``: enough to recognize, little to harvest."""
    local, at, domain = email.rpartition("@")
    if not at or not local:
        return "***"
    return f"{local[0]}***@{domain}"


def sentence(message: str) -> str:
    """``message`` as a sentence: a capital first, a full stop last (errors have neither)."""
    message = message.strip()
    if not message:
        return message
    ending = "" if message[-1] in ".!?" else "."
    return message[:1].upper() + message[1:] + ending


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def load_templates(templates_dir: Path) -> tuple[dict[str, jinja2.Template], str]:
    """The page templates and the stylesheet; ``ConfigError`` if one is missing or broken.

    ``trim_blocks`` eats the line break after a block tag: a tag that ends a line of text
    is written ``{% endif +%}`` in the templates, so that the next line's first word is
    not glued to that text.
    """
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    try:
        templates = {name: env.get_template(name) for name in TEMPLATES}
        return templates, (templates_dir / STYLESHEET).read_text(encoding="utf-8")
    except (jinja2.TemplateError, OSError) as exc:
        raise ConfigError(f"web templates in {templates_dir} cannot be loaded: {exc}") from exc


class Pages:
    """The web app's state, given to every area; ``digest reload`` replaces site and
    newsletters (see ``reconfigure_web``)."""

    def __init__(
        self,
        *,
        store: Store,
        keys: Keys,
        site: SiteConfig,
        newsletters: Mapping[str, NewsletterConfig],
        templates_dir: Path,
        clock: Clock,
        web: WebConfig,
        mailer: Callable[[], Mailer] | None,
        email_templates_dir: Path,
    ) -> None:
        self.store = store
        self.keys = keys
        self.site = site
        self.newsletters = newsletters
        self.templates, self.stylesheet = load_templates(templates_dir)
        self.clock = clock
        self.web = web
        self.rules = SignupRules.of(web)
        self.mailer = mailer
        self.mail = ConfirmationMail(email_templates_dir)

    def page(
        self, template: str, *, status: int = 200, indexable: bool = False, **context: Any
    ) -> HTMLResponse:
        body = self.templates[template].render(
            site=self.site,
            home_url=links.home_url(self.site),
            stylesheet_url=links.absolute(self.site, links.STYLESHEET),
            indexable=indexable,
            **context,
        )
        response = HTMLResponse(body, status_code=status)
        response.headers["Content-Security-Policy"] = page_csp(origin_of(self.site.base_url))
        if indexable:
            response.headers["X-Robots-Tag"] = "all"
        return response

    def error_page(self, status: int, title: str, message: str, hint: str = "") -> HTMLResponse:
        return self.page(
            "error.html", status=status, title=title, message=sentence(message), hint=hint
        )

    def newsletter_title(self, newsletter_id: str) -> str:
        # A newsletter removed from the config can still be left by old links.
        newsletter = self.newsletters.get(newsletter_id)
        return newsletter.title if newsletter is not None else newsletter_id

    # --- forms -------------------------------------------------------------------------
    def csrf(self, form_path: str) -> str:
        """The anti-forgery value of the form that posts to ``form_path``."""
        return csrf_token(self.keys, form_path, self.clock())

    async def checked_form(self, request: Request) -> FormData:
        """The posted form, if it came from this site's page for this address.

        The value is signed, bound to the address the form posts to and short-lived;
        the request's ``Origin``, when a browser names one, must be ``[site] base_url``'s.
        (With ``Referrer-Policy: no-referrer`` browsers send ``Origin: null``.)
        """
        origin = request.headers.get("origin")
        if origin not in (None, "null", origin_of(self.site.base_url)):
            raise FormRefused("this form was sent from another website, so nothing was changed")
        async with request.form(max_files=0, max_fields=MAX_FIELDS) as form:
            value = form.get(CSRF_FIELD)
            try:
                check_csrf(
                    self.keys,
                    value if isinstance(value, str) else "",
                    request.url.path,
                    now=self.clock(),
                    max_age=FORM_LIFETIME,
                )
            except InvalidToken:
                raise FormRefused(
                    "this page was open too long, or the form did not come from it, so "
                    "nothing was changed: load the page again and repeat"
                ) from None
            return form


async def in_thread(function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run a blocking call (the store, a use case) off the event loop."""
    return await run_in_threadpool(function, *args, **kwargs)
