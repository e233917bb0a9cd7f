"""Use cases of a reader managing their own subscriptions through their personal links:
leave everything, come back, choose newsletters, topics and cadence, move to a new address.

A personal link (unsubscribe, preferences) proves the address already, so what a reader
chooses there takes effect at once, with a consent record for every newsletter they
(re)join; only a new address is confirmed first, at that address.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from digest.config import NewsletterConfig, SiteConfig
from digest.models import Consent, Subscription, SubscriptionStatus
from digest.ports import Store
from digest.signup import consent_text, public_newsletters

log = logging.getLogger("digest.preferences")

LEFT = SubscriptionStatus.UNSUBSCRIBED
KEPT = (SubscriptionStatus.CONFIRMED, SubscriptionStatus.PENDING)


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
