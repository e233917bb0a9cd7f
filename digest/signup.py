"""Use cases of sign-up through the web: subscribe (double opt-in), confirm, expire.

A request is answered before any of this runs (the page is the same, in the same time,
whatever the address's state); :func:`sign_up` then decides quietly. Every path that
mails a confirmation takes its allowances first (:func:`allowances`): one confirmation
per address per window, a limit per client and one for the whole site, counted in the
database so that every process shares them. Over a limit nothing is written or sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from digest import links
from digest.config import NewsletterConfig, SiteConfig, WebConfig
from digest.confirmations import ConfirmationMail, signup_wording
from digest.errors import DigestError
from digest.models import (
    Allowance,
    Consent,
    DeliveryStatus,
    Letter,
    Subscription,
    SubscriptionStatus,
)
from digest.ports import Mailer, Store
from digest.subscriptions import normalize_address
from digest.tokens import Keys, confirm_token

log = logging.getLogger("digest.signup")

CLIENT_WINDOW = timedelta(hours=1)
SITE_WINDOW = timedelta(hours=1)
MAX_SOURCE = 300  # characters of a consent's source kept


@dataclass(frozen=True, slots=True)
class SignupRules:
    """``[web]``'s rules of sign-up."""

    window: timedelta = timedelta(hours=24)  # one confirmation per address per window
    per_client: int = 10  # confirmations per client address per hour
    per_site: int = 500  # confirmations per hour, in all
    pending_for: timedelta = timedelta(days=7)  # an unconfirmed sign-up and its link last

    @classmethod
    def of(cls, web: WebConfig) -> SignupRules:
        return cls(
            window=timedelta(hours=web.confirm_window_hours),
            per_client=web.confirmations_per_client_hour,
            per_site=web.confirmations_per_hour,
            pending_for=timedelta(hours=web.pending_expiry_hours),
        )


@dataclass(frozen=True, slots=True)
class SignupRequest:
    """A sign-up as the web page read it: a valid address and the newsletters asked for."""

    email: str
    ascii_email: str
    newsletter_ids: tuple[str, ...]
    source: str  # the page or endpoint, and the other site's origin if any
    client: str  # the client's IP address


def consent_text(site: SiteConfig, newsletter: NewsletterConfig) -> str:
    """The words next to a subscribe button, recorded as what the reader agreed to."""
    return (
        f"Send me {newsletter.title} from {site.name} by email. I can unsubscribe at any "
        "time with the link in every email."
    )


def public_newsletters(newsletters: Mapping[str, NewsletterConfig]) -> list[NewsletterConfig]:
    """The newsletters open to sign-up (``public = true``), in config order."""
    return [newsletter for newsletter in newsletters.values() if newsletter.public]


def signup_request(
    raw_email: str,
    wanted: Iterable[str],
    newsletters: Mapping[str, NewsletterConfig],
    *,
    source: str,
    client: str,
) -> SignupRequest:
    """Validate a sign-up: ``InvalidAddress`` for a bad address; ids of newsletters that
    are unknown or not public are ignored (``DigestError`` if none is left)."""
    email, ascii_email = normalize_address(raw_email)
    public = {newsletter.id for newsletter in public_newsletters(newsletters)}
    ids = tuple(dict.fromkeys(i for i in wanted if i in public))
    if not ids:
        raise DigestError("choose a newsletter to subscribe to")
    return SignupRequest(email, ascii_email, ids, " ".join(source.split())[:MAX_SOURCE], client)


def _key(keys: Keys, kind: str, value: str) -> str:
    # Keyed hashes: the table of limits names no address or client in clear.
    mac = hmac.digest(keys.current, f"limit\x00{kind}\x00{value}".encode(), hashlib.sha256)
    return f"{kind}:{mac.hex()[:32]}"


def allowances(keys: Keys, rules: SignupRules, address: str, client: str) -> list[Allowance]:
    """What sending one confirmation to ``address`` for ``client`` uses up."""
    return [
        Allowance(_key(keys, "to", address), 1, rules.window),
        Allowance(_key(keys, "client", client), rules.per_client, CLIENT_WINDOW),
        Allowance("site", rules.per_site, SITE_WINDOW),
    ]


async def send_confirmation(mailer: Mailer, letter: Letter) -> bool:
    """Mail one confirmation; True if the transport took it (failures are logged)."""
    try:
        result = await mailer.send(letter)
    except DigestError as exc:
        log.error("a confirmation email was not sent: %s", exc)
        return False
    if result.status is not DeliveryStatus.SENT:
        log.warning("a confirmation email was not sent (%s): %s", result.status, result.reply)
    return result.status is DeliveryStatus.SENT


async def sign_up(
    store: Store,
    mailer: Mailer,
    mail: ConfirmationMail,
    site: SiteConfig,
    newsletters: Mapping[str, NewsletterConfig],
    keys: Keys,
    rules: SignupRules,
    request: SignupRequest,
    now: datetime,
) -> bool:
    """Record the sign-up as pending and mail its confirmation, within the limits.

    True if a confirmation went out. Over a limit nothing is recorded or sent; for an
    address already confirmed (or bounced) to every newsletter asked for, nothing is sent.
    """
    consents = [
        Consent(i, now, request.source, request.client, consent_text(site, newsletters[i]))
        for i in request.newsletter_ids
    ]
    limits = allowances(keys, rules, request.email, request.client)
    if not await asyncio.to_thread(store.take_allowance, limits, now):
        log.info("sign-up over a limit: nothing recorded or sent")
        return False
    subscriber_id, pending = await asyncio.to_thread(
        lambda: store.record_signup(
            email=request.email,
            ascii_email=request.ascii_email,
            consents=consents,
            confirmed=False,
            now=now,
        )
    )
    if not pending:
        return False
    letter = mail.letter(
        site,
        signup_wording(site, [newsletters[i].title for i in pending]),
        url=links.confirm_url(site, confirm_token(keys, subscriber_id, now)),
        recipient=request.ascii_email,
        lasts=rules.pending_for,
        now=now,
    )
    return await send_confirmation(mailer, letter)


def pending_of(store: Store, subscriber_id: str) -> list[Subscription]:
    """What a confirmation link would confirm now: the reader's pending subscriptions."""
    return [
        s for s in store.subscriptions_of(subscriber_id) if s.status is SubscriptionStatus.PENDING
    ]


def confirmed_of(store: Store, subscriber_id: str) -> list[Subscription]:
    return [
        s for s in store.subscriptions_of(subscriber_id) if s.status is SubscriptionStatus.CONFIRMED
    ]


def confirm(store: Store, subscriber_id: str, now: datetime) -> list[str]:
    """The reader pressed the confirmation button: every pending sign-up is confirmed."""
    confirmed = store.confirm_signup(subscriber_id, now)
    if confirmed:
        log.info("confirmed %s for %s", subscriber_id, ", ".join(confirmed))
    return confirmed


def purge_expired(store: Store, rules: SignupRules, now: datetime) -> int:
    """Forget sign-ups left unconfirmed longer than ``rules.pending_for`` (with their
    consent records, and readers left with nothing); returns how many went."""
    purged = store.purge_pending(
        now - rules.pending_for, limits_before=now - max(rules.window, CLIENT_WINDOW, SITE_WINDOW)
    )
    if purged:
        log.info("forgot %d unconfirmed sign-up(s)", purged)
    return purged
