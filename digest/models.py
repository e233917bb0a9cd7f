"""Plain data passed between the layers: frozen dataclasses and status enums.

Every datetime here is timezone-aware UTC. Nothing in this module does I/O.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field
from datetime import datetime


def post_key(source_id: str, guid: str) -> str:
    """Stable identity of a post across fetches: hash of (source, GUID)."""
    return hashlib.sha256(f"{source_id}\x00{guid}".encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Post:
    """One sanitized post from a source.

    ``guid`` is the feed's GUID/Atom id, else the link, else a content hash.
    HTML fields are already sanitized (allowlist) with absolute URLs.
    """

    source_id: str
    guid: str
    title: str
    link: str
    published: datetime
    author: str = ""
    summary_html: str = ""
    content_html: str = ""
    image_url: str = ""
    image_caption: str = ""
    categories: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return post_key(self.source_id, self.guid)


@dataclass(frozen=True, slots=True)
class StoredPost:
    """A post as the store knows it: with the moment digest first saw it."""

    post: Post
    first_seen: datetime


@dataclass(frozen=True, slots=True)
class SourceState:
    """What the last fetch of a source left behind (for conditional GET and status)."""

    source_id: str
    etag: str = ""
    last_modified: str = ""
    last_fetched: datetime | None = None
    last_error: str = ""


class SubscriptionStatus(enum.StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    UNSUBSCRIBED = "unsubscribed"


@dataclass(frozen=True, slots=True)
class Subscriber:
    """A reader. ``id`` is an opaque random string used in links, never a row number.

    ``email`` is the normalized form from email-validator; ``ascii_email`` the form
    used on the wire (IDN domain as A-label), equal to ``email`` when already ASCII.
    """

    id: str
    email: str
    ascii_email: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Subscription:
    subscriber: Subscriber
    newsletter_id: str
    status: SubscriptionStatus
    changed_at: datetime


class EditionStatus(enum.StrEnum):
    SKIPPED = "skipped"  # no new posts: nothing sent
    SENDING = "sending"  # deliveries exist; some not yet final
    PAUSED = "paused"  # a transport fault stopped it; resumable
    SENT = "sent"  # every delivery reached a final status


@dataclass(frozen=True, slots=True)
class Edition:
    """One issue of a newsletter for one period; (newsletter_id, period_key) is unique."""

    id: str
    newsletter_id: str
    period_key: str
    created_at: datetime
    status: EditionStatus
    post_keys: tuple[str, ...] = ()
    subject: str = ""
    error: str = ""


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"  # materialized, not yet attempted
    SENDING = "sending"  # claimed by a sender; reclaimable once its lease is stale
    SENT = "sent"  # the server accepted it (or the outbox stored it)
    DEFERRED = "deferred"  # 4xx: try again later
    FAILED = "failed"  # 5xx for this recipient: hard bounce
    UNCERTAIN = "uncertain"  # connection lost after the final dot: the server may have it
    SUPPRESSED = "suppressed"  # not sent: the reader left (or bounced) before their turn
    EXPIRED = "expired"  # gave up after repeated temporary failures

    @property
    def is_final(self) -> bool:
        return self not in (DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.DEFERRED)


class Claim(enum.StrEnum):
    """What a sender got when it asked for one delivery."""

    CLAIMED = "claimed"  # it is this sender's to send now
    TAKEN = "taken"  # another sender holds it, or it is already final
    LEFT = "left"  # the reader is no longer subscribed: recorded as suppressed


@dataclass(frozen=True, slots=True)
class Delivery:
    """The ledger row for (edition, subscriber): the single truth of who got what."""

    edition_id: str
    subscriber_id: str
    email: str
    message_id: str
    status: DeliveryStatus
    attempts: int = 0
    reply: str = ""
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SendResult:
    """What a mailer learned from one attempt to hand over one message."""

    status: DeliveryStatus
    reply: str = ""


@dataclass(frozen=True, slots=True)
class EditionSummary:
    """An edition with its delivery counts per status, for `digest editions`."""

    edition: Edition
    counts: dict[DeliveryStatus, int] = field(default_factory=dict)

    @property
    def recipients(self) -> int:
        return sum(self.counts.values())
