"""What every area of the web app shares: its configuration, the templates, page rendering.

Autoescape is on in every template. Store calls are synchronous, so handlers run them
in Starlette's thread pool (``in_thread``): the web app shares its event loop with the
scheduler and the senders and must never block it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse

from digest.config import NewsletterConfig, SiteConfig
from digest.errors import ConfigError
from digest.ports import Clock, Store
from digest.tokens import Keys
from digest.web.headers import PAGE_CSP

TEMPLATES = ("base.html", "unsubscribe.html", "unsubscribed.html", "error.html")

P = ParamSpec("P")
R = TypeVar("R")


def mask_email(email: str) -> str:
    """``bob@example.org`` -> ``b***@example.org``: enough to recognize, little to harvest."""
    local, at, domain = email.rpartition("@")
    if not at or not local:
        return "***"
    return f"{local[0]}***@{domain}"


def sentence(message: str) -> str:
    message = message.strip()
    return message[:1].upper() + message[1:] if message else message


def load_templates(templates_dir: Path) -> dict[str, jinja2.Template]:
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
        templates: dict[str, jinja2.Template],
        clock: Clock,
    ) -> None:
        self.store = store
        self.keys = keys
        self.site = site
        self.newsletters = newsletters
        self.templates = templates
        self.clock = clock

    def page(self, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
        nonce = secrets.token_urlsafe(16)
        body = self.templates[template].render(site=self.site, csp_nonce=nonce, **context)
        response = HTMLResponse(body, status_code=status)
        response.headers["Content-Security-Policy"] = PAGE_CSP.format(nonce=nonce)
        return response

    def error_page(self, status: int, title: str, message: str, hint: str = "") -> HTMLResponse:
        return self.page(
            "error.html", status=status, title=title, message=sentence(message), hint=hint
        )

    def newsletter_title(self, newsletter_id: str) -> str:
        # A newsletter removed from the config can still be left by old links.
        newsletter = self.newsletters.get(newsletter_id)
        return newsletter.title if newsletter is not None else newsletter_id


async def in_thread(function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run a blocking call (the store, a use case) off the event loop."""
    return await run_in_threadpool(function, *args, **kwargs)
