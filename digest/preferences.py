"""Use cases of a reader managing their own subscriptions through their personal links:
leave everything, come back, choose newsletters, topics and cadence, move to a new address.

A personal link (unsubscribe, preferences) proves the address already, so what a reader
chooses there takes effect at once, with a consent record for every newsletter they
(re)join; only a new address is confirmed first, at that address.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from zoneinfo import available_timezones

from digest import links
from digest.config import NewsletterConfig, SiteConfig
from digest.confirmations import ConfirmationMail, address_wording
from digest.models import Consent, Subscriber, Subscription, SubscriptionStatus
from digest.ports import Mailer, Store
from digest.signup import (
    SignupRules,
    allowances,
    consent_text,
    public_newsletters,
    send_confirmation,
)
from digest.subscriptions import normalize_address
from digest.tokens import Keys, address_token

log = logging.getLogger("digest.preferences")

LEFT = SubscriptionStatus.UNSUBSCRIBED
KEPT = (SubscriptionStatus.CONFIRMED, SubscriptionStatus.PENDING)


def reader(store: Store, subscriber_id: str) -> Subscriber:
    """The reader a personal link names; ``NotFound`` when they were removed."""
    return store.get_subscriber(subscriber_id)


def subscriptions_of(store: Store, subscriber_id: str) -> list[Subscription]:
    """Every subscription of the reader, by newsletter id."""
    return store.subscriptions_of(subscriber_id)


def unsubscribe_all(store: Store, subscriber_id: str, now: datetime) -> list[str]:
    """Leave every newsletter at once; the ids of those that changed (idempotent)."""
    left = [
        s.newsletter_id
        for s in store.subscriptions_of(subscriber_id)
        if s.status in KEPT
        and store.set_subscription_status(subscriber_id, s.newsletter_id, LEFT, now)
    ]
    if left:
        log.info("unsubscribed %s from every newsletter (%s)", subscriber_id, ", ".join(left))
    return left


def join(
    store: Store,
    site: SiteConfig,
    subscriber_id: str,
    newsletters: Sequence[NewsletterConfig],
    *,
    source: str,
    client: str,
    now: datetime,
) -> list[str]:
    """The reader (re)joins ``newsletters`` through a personal link: confirmed at once, each
    with its consent recorded. Returns the ids that changed (a bounced address stays so)."""
    if not newsletters:
        return []
    subscriber = store.get_subscriber(subscriber_id)
    _, joined = store.record_signup(
        email=subscriber.email,
        ascii_email=subscriber.ascii_email,
        consents=[Consent(n.id, now, source, client, consent_text(site, n)) for n in newsletters],
        confirmed=True,
        now=now,
    )
    if joined:
        log.info("%s joined %s (%s)", subscriber_id, ", ".join(joined), source)
    return joined


@cache
def reader_zones() -> tuple[str, ...]:
    """The IANA zones a reader may choose, sorted (the tz database's, via zoneinfo)."""
    return tuple(sorted(zone for zone in available_timezones() if "/" in zone))


def asks_for_zone(choices: Sequence[Choice]) -> bool:
    """Whether any newsletter on the page sends at a time in each reader's own zone."""
    return any(
        cadence.schedule.reader_timezone for c in choices for cadence in c.newsletter.cadences
    )


@dataclass(frozen=True, slots=True)
class Choice:
    """One newsletter on a reader's preference page, and what they chose of it."""

    newsletter: NewsletterConfig
    subscribed: bool
    status: SubscriptionStatus | None  # None: never subscribed
    cadence: str  # the chosen cadence's id (the default when none was chosen)
    topics: frozenset[str]  # the topics chosen (all when none was chosen)


def choices(
    store: Store, newsletters: Mapping[str, NewsletterConfig], subscriber_id: str
) -> list[Choice]:
    """What the preference page offers the reader: every newsletter they are or were on
    (still configured), then the other public ones; with their current choices."""
    mine = {s.newsletter_id: s for s in store.subscriptions_of(subscriber_id)}
    offered = [n for n in newsletters.values() if n.id in mine]
    offered += [n for n in public_newsletters(newsletters) if n.id not in mine]
    return [_choice(newsletter, mine.get(newsletter.id)) for newsletter in offered]


def _choice(newsletter: NewsletterConfig, subscription: Subscription | None) -> Choice:
    every = frozenset(topic.id for topic in newsletter.topics)
    if subscription is None:
        return Choice(newsletter, False, None, newsletter.default_cadence.id, every)
    chosen = every if subscription.topics is None else frozenset(subscription.topics) & every
    return Choice(
        newsletter,
        subscription.status in KEPT,
        subscription.status,
        newsletter.cadence(subscription.cadence).id,
        chosen,
    )


@dataclass(frozen=True, slots=True)
class Wanted:
    """What the reader asked for on the preference page, for one newsletter."""

    receive: bool
    cadence: str | None = None  # a cadence id offered by the newsletter; None: the default
    topics: tuple[str, ...] | None = None  # topic ids; None: every topic


def save(
    store: Store,
    site: SiteConfig,
    newsletters: Mapping[str, NewsletterConfig],
    subscriber_id: str,
    wanted: Mapping[str, Wanted],
    *,
    client: str,
    now: datetime,
    timezone: str | None = None,
) -> None:
    """Apply the preference page: join, leave, and store each newsletter's cadence and
    topics (ids it does not offer are dropped), and the reader's time zone when given
    ("" for none; an unknown zone is ignored). Newsletters not in ``wanted`` are left as
    they are."""
    if timezone is not None and (timezone == "" or timezone in reader_zones()):
        store.set_timezone(subscriber_id, timezone)
    current = {c.newsletter.id: c for c in choices(store, newsletters, subscriber_id)}
    joining = [current[i].newsletter for i, w in wanted.items() if i in current and w.receive]
    join(
        store,
        site,
        subscriber_id,
        [n for n in joining if not current[n.id].subscribed],
        source="preference page",
        client=client,
        now=now,
    )
    after = {s.newsletter_id: s.status for s in store.subscriptions_of(subscriber_id)}
    for newsletter_id, want in wanted.items():
        choice = current.get(newsletter_id)
        if choice is None:
            continue
        if not want.receive:
            if choice.subscribed:
                store.set_subscription_status(subscriber_id, newsletter_id, LEFT, now)
            continue
        newsletter = choice.newsletter
        cadences = {c.id for c in newsletter.cadences}
        cadence = want.cadence if want.cadence in cadences and len(cadences) > 1 else None
        offered = [t.id for t in newsletter.topics]
        topics = None
        if want.topics is not None and offered:
            picked = [t for t in offered if t in want.topics]
            topics = None if len(picked) == len(offered) else picked
        if after.get(newsletter_id) in KEPT:
            store.set_preferences(
                subscriber_id, newsletter_id, cadence=cadence, topics=topics, now=now
            )


async def ask_address_change(
    store: Store,
    mailer: Mailer,
    mail: ConfirmationMail,
    site: SiteConfig,
    keys: Keys,
    rules: SignupRules,
    subscriber_id: str,
    new_email: tuple[str, str],
    *,
    client: str,
    now: datetime,
) -> bool:
    """Mail the link that moves the reader to ``new_email`` (normalized, ASCII form) to that
    address, within the same limits as every confirmation. True if it went out; the old
    address keeps receiving until the link is used."""
    email, ascii_email = new_email
    if not await asyncio.to_thread(
        store.take_allowance, allowances(keys, rules, email, client), now
    ):
        log.info("change of address over a limit: nothing sent")
        return False
    letter = mail.letter(
        site,
        address_wording(site),
        url=links.address_url(site, address_token(keys, subscriber_id, email, now)),
        recipient=ascii_email,
        lasts=rules.pending_for,
        now=now,
    )
    return await send_confirmation(mailer, letter)


def move_address(store: Store, subscriber_id: str, new_email: str) -> None:
    """The link at the new address was used: the reader receives there from now on.
    ``AlreadyExists`` when another reader has that address."""
    email, ascii_email = normalize_address(new_email)
    store.change_email(subscriber_id, email, ascii_email)
    log.info("%s moved to a new address", subscriber_id)
