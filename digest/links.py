"""Every public address of digest's web app: its route pattern and its absolute URL.

Pure. The web app routes with these patterns and everything that writes a link (emails,
pages, the Atom feed) builds it here, so an address is changed in one place. Absolute
URLs come from ``[site] base_url`` only, never from a request's Host header (which a
client chooses), so no page or email can be made to point elsewhere.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from digest.config import SiteConfig

# Route patterns, as Starlette reads them ({name} is one path segment).
HOME = "/"
STYLESHEET = "/site.css"
SUBSCRIBE = "/subscribe"
CONFIRM = "/confirm/{token}"
UNSUBSCRIBE = "/u/{token}"
UNSUBSCRIBE_ALL = "/u/{token}/all"
RESUBSCRIBE = "/u/{token}/resubscribe"
PREFERENCES = "/p/{token}"
PREFERENCES_ADDRESS = "/p/{token}/address"
ADDRESS = "/address/{token}"
ARCHIVE = "/archive/{newsletter_id}"
FEED = "/archive/{newsletter_id}/feed.atom"
EDITION = "/e/{edition_id}"
HEALTH = "/healthz"


def path(pattern: str, **params: str) -> str:
    """``pattern`` with each ``{name}`` replaced by its value, percent-encoded whole."""
    return pattern.format(**{name: quote(value, safe="") for name, value in params.items()})


def absolute(site: SiteConfig, local: str, query: dict[str, str] | None = None) -> str:
    """The public URL of the local path ``local`` (and ``query``) under ``[site] base_url``."""
    url = site.base_url.rstrip("/") + local
    return f"{url}?{urlencode(query)}" if query else url


def home_url(site: SiteConfig) -> str:
    return absolute(site, HOME)


def subscribe_url(site: SiteConfig) -> str:
    """Where a subscribe form posts: the home page's, and any other website's."""
    return absolute(site, SUBSCRIBE)


def confirm_url(site: SiteConfig, token: str) -> str:
    return absolute(site, path(CONFIRM, token=token))


def unsubscribe_url(site: SiteConfig, token: str) -> str:
    return absolute(site, path(UNSUBSCRIBE, token=token))


def preferences_url(site: SiteConfig, token: str) -> str:
    return absolute(site, path(PREFERENCES, token=token))


def address_url(site: SiteConfig, token: str) -> str:
    """The link, sent to a new address, that confirms a change of address."""
    return absolute(site, path(ADDRESS, token=token))


def archive_url(site: SiteConfig, newsletter_id: str, page: int = 1) -> str:
    query = {"page": str(page)} if page > 1 else None
    return absolute(site, path(ARCHIVE, newsletter_id=newsletter_id), query)


def feed_url(site: SiteConfig, newsletter_id: str) -> str:
    return absolute(site, path(FEED, newsletter_id=newsletter_id))


def edition_url(site: SiteConfig, edition_id: str) -> str:
    """The public "view in browser" page of an edition (its first variant)."""
    return absolute(site, path(EDITION, edition_id=edition_id))
