"""Plain data passed between the layers: frozen dataclasses and status enums.

Every datetime here is timezone-aware UTC. Nothing in this module does I/O.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

_LINE_ENDINGS = re.compile(rb"\r\n|\n|\r")


def normalize_line_endings(message: bytes) -> bytes:
    """``message`` with CRLF line endings and a final CRLF, as it travels in DATA."""
    data = _LINE_ENDINGS.sub(b"\r\n", message)
    return data if data.endswith(b"\r\n") else data + b"\r\n"


def post_key(source_id: str, guid: str) -> str:
    """Stable identity of a post across fetches: hash of (source, GUID)."""
    return hashlib.sha256(f"{source_id}\x00{guid}".encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Post:
    """One sanitized post from a source.

    ``guid`` is the feed's GUID/Atom id, else the link, else a content hash.
    HTML fields are already sanitized (allowlist) with absolute URLs. An undated item
    (``dated`` False) keeps the time it was first seen as ``published``, fetch after fetch.
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
    image_width: int = 0  # px, as the source declared it; 0: not declared
    categories: tuple[str, ...] = ()
    dated: bool = True  # False: the feed gave no date; ``published`` is when digest first saw it

    @property
    def key(self) -> str:
        return post_key(self.source_id, self.guid)


@dataclass(frozen=True, slots=True)
class StoredPost:
    """A post as the store knows it: with the moment digest first saw it.

    ``released`` is when it became due to readers: the later of its date and
    ``first_seen``, fixed when it was first seen (a feed that re-dates a post later
    cannot make it due again, nor hide it).
    """

    post: Post
    first_seen: datetime
    released: datetime | None = None

    @property
    def released_at(self) -> datetime:
        if self.released is not None:
            return self.released
        return max(self.first_seen, self.post.published)


ALL_AT = "~"  # a mark key above every post key: everything released at ``at`` is settled


@dataclass(frozen=True, slots=True, order=True)
class Mark:
    """A subscription's watermark: every post whose ``(released_at, key)`` is at or below
    ``(at, key)`` has been settled for the reader (sent, or passed over)."""

    at: datetime
    key: str = ALL_AT

    def covers(self, item: StoredPost, order: str | None = None) -> bool:
        """Whether the mark settled ``item`` (``order``: its :func:`release_order`, if known)."""
        order = release_order(item) if order is None else order
        if self.key != ALL_AT and "|" not in self.key:  # set before dates ordered a fetch
            order = order.rpartition("|")[2]  # then compared by post key alone
        return (item.released_at, order) <= (self.at, self.key)


def release_order(item: StoredPost) -> str:
    """How posts released at the same instant (one fetch's) are ordered: by their date,
    then key, so that ``max_items`` sends the oldest and carries the newest over. A
    mark's key is this of the last post it settled (:data:`ALL_AT` sorts after every one)."""
    return f"{item.post.published.astimezone(UTC):%Y-%m-%dT%H:%M:%S.%f}|{item.post.key}"


@dataclass(frozen=True, slots=True)
class Reader:
    """What selection needs of a subscription; equal readers get equal digests."""

    mark: Mark
    topics: frozenset[str] | None = None  # topic ids chosen; None: all
    first: bool = False  # has never been sent this newsletter: a catch-up is due


@dataclass(frozen=True, slots=True)
class Variant:
    """One rendering of an edition and the readers' choices it answers."""

    post_keys: tuple[str, ...]
    rendered: Rendered


@dataclass(frozen=True, slots=True)
class Verdict:
    """What an edition does for every reader in one state: a variant (or none) and the
    mark they move to (unchanged for a reader held for ``min_items``)."""

    variant: int | None
    mark: Mark


@dataclass(frozen=True, slots=True)
class CadenceReaders:
    """Which subscriptions an edition of one cadence is for: those that chose it, and for
    the default cadence those that chose none or one no longer offered."""

    cadence_id: str
    offered: tuple[str, ...]
    default: bool


@dataclass(frozen=True, slots=True)
class Draft:
    """An edition as selected and rendered, ready to be opened in one transaction.

    ``released`` is how many posts of ``source_ids`` were released at ``now`` when the
    selection was made: if that changed, the selection is stale and is made again.
    """

    edition_id: str
    newsletter_id: str
    readers: CadenceReaders
    period_key: str
    now: datetime
    source_ids: tuple[str, ...]
    released: int
    variants: tuple[Variant, ...]
    verdicts: Mapping[Reader, Verdict]


@dataclass(frozen=True, slots=True)
class SourceState:
    """What the last fetch of a source left behind (for conditional GET and status)."""

    source_id: str
    etag: str = ""
    last_modified: str = ""
    last_fetched: datetime | None = None
    last_error: str = ""


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """How a source has been doing, fetch after fetch (``digest sources`` shows it).

    ``failures`` counts the attempts in a row that failed (0 after a success), since
    ``failing_since``. ``undated`` and ``churn`` are about the last successful fetch:
    items without a date, and new GUIDs whose link the source already had under a GUID
    that left the feed (the same post re-identified). ``newest_post`` is the newest
    publication date seen that was not in the future at its fetch.
    """

    source_id: str
    last_fetch: datetime | None = None
    last_success: datetime | None = None
    last_error: str = ""
    failures: int = 0
    failing_since: datetime | None = None
    undated: int = 0
    churn: int = 0
    churn_total: int = 0
    newest_post: datetime | None = None


class SubscriptionStatus(enum.StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"  # a 5xx for the address: never mailed again, never revived by import


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
    name: str = ""  # as an import gave it; "" when unknown
    timezone: str = ""  # the reader's IANA zone, for cadences sent at their local time


@dataclass(frozen=True, slots=True)
class Subscription:
    subscriber: Subscriber
    newsletter_id: str
    status: SubscriptionStatus
    changed_at: datetime
    cadence: str | None = None  # None: the newsletter's default cadence
    topics: tuple[str, ...] | None = None  # None: every topic
    created_at: datetime | None = None  # when the reader joined this newsletter


@dataclass(frozen=True, slots=True)
class NewReader:
    """One subscription an import asks for: a normalized address, a name and the choices."""

    email: str
    ascii_email: str
    newsletter_id: str
    name: str = ""
    cadence: str | None = None  # None: the newsletter's default cadence
    topics: tuple[str, ...] | None = None  # None: every topic


@dataclass(frozen=True, slots=True)
class Added:
    """What a bulk add created: people new to the list and subscriptions new to them."""

    people: int
    subscriptions: int


REMOVED_ADDRESS = "(removed)"  # what a removed reader's ledger rows show instead of the address
REMOVED_REPLY = "not sent: the reader was removed"


def redacted(reply: str, *addresses: str) -> str:
    """``reply`` with every spelling of ``addresses`` replaced: a server's reply to RCPT
    often quotes the address it refused."""
    for address in addresses:
        if address:
            reply = re.sub(re.escape(address), REMOVED_ADDRESS, reply, flags=re.IGNORECASE)
    return reply


@dataclass(frozen=True, slots=True)
class Removal:
    """What erasing one reader did; ``found`` is False when the address was not on the list."""

    found: bool
    suppressed_at: datetime  # since when the address is suppressed (its first removal)
    subscriptions: int = 0
    deliveries: int = 0  # ledger rows kept for the editions' counts, anonymized


class EditionStatus(enum.StrEnum):
    SKIPPED = "skipped"  # no new posts: nothing sent
    SENDING = "sending"  # deliveries exist; some not yet final
    PAUSED = "paused"  # a fault of the site stopped it; resumed automatically later
    HELD = "held"  # the operator paused it; only `digest editions resume` continues it
    CANCELLED = "cancelled"  # the operator cancelled it; unsent rows were cancelled
    SENT = "sent"  # every delivery reached a final status

    @property
    def is_open(self) -> bool:
        """Readers may still be owed this edition."""
        return self in (EditionStatus.SENDING, EditionStatus.PAUSED, EditionStatus.HELD)


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
    cadence: str = ""  # the newsletter's cadence this edition was for
    variants: int = 1  # renderings: readers with the same pending posts share one


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"  # materialized, not yet attempted
    SENDING = "sending"  # claimed by a sender; reclaimable once its lease is stale
    SENT = "sent"  # the server accepted it (or the outbox stored it)
    DEFERRED = "deferred"  # 4xx: try again later
    FAILED = "failed"  # 5xx for this recipient: hard bounce
    UNCERTAIN = "uncertain"  # connection lost after the final dot: the server may have it
    SUPPRESSED = "suppressed"  # not sent: the reader left (or bounced) before their turn
    EXPIRED = "expired"  # gave up after repeated temporary failures
    CANCELLED = "cancelled"  # not sent: the operator cancelled the edition

    @property
    def is_final(self) -> bool:
        """No sender will touch the row again (an ``uncertain`` row not yet retried will)."""
        return self not in (DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.DEFERRED)


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
    duplicate: bool = False  # may have reached the reader twice (taken over, or retried)


@dataclass(frozen=True, slots=True)
class ClaimedRow:
    """A ledger row a sender holds under its lease: everything needed to send it."""

    subscriber_id: str
    email: str
    message_id: str
    attempts: int
    duplicate: bool  # taken over from a dead sender or an uncertain retry: may be a second copy
    variant: int = 0  # which of the edition's renderings this reader gets


@dataclass(frozen=True, slots=True)
class Quota:
    """At most ``limit`` messages handed to the relay after ``since`` (a rolling window)."""

    window: str  # "second", "hour" or "day": for messages
    since: datetime
    limit: int


@dataclass(frozen=True, slots=True)
class Claimed:
    """What one claim took: rows to send, rows suppressed, and a quota that stopped it."""

    rows: list[ClaimedRow]
    suppressed: int
    blocked_by: str = ""  # the window of the exhausted quota, if one left nothing


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one attempt, as a sender hands it to the ledger."""

    subscriber_id: str
    status: DeliveryStatus
    reply: str = ""
    retry_at: datetime | None = None  # for ``deferred`` and a first ``uncertain``
    count_attempt: bool = True  # False: throttling or a site fault; not the reader's


@dataclass(frozen=True, slots=True)
class Letter:
    """One message ready for the mail system, with its envelope.

    ``message`` is the RFC 5322 message with CRLF line endings. ``wire_ready`` promises
    that no line of it starts with a dot and that it ends with CRLF (``digest.letters``
    builds it so), so it goes into SMTP DATA as it is, with no per-message rewriting.
    """

    sender: str
    recipient: str
    message: bytes
    wire_ready: bool = False

    @property
    def data(self) -> bytes:
        """The message as a relay receives it (SMTP DATA before dot-stuffing): CRLF line
        endings and a final CRLF. What the SMTP mailer sends and the outbox stores."""
        return self.message if self.wire_ready else normalize_line_endings(self.message)


@dataclass(frozen=True, slots=True)
class SendResult:
    """What a mailer learned from one attempt to hand over one message."""

    status: DeliveryStatus
    reply: str = ""


@dataclass(frozen=True, slots=True)
class Rendered:
    """One rendered edition: full HTML document (CSS inlined) and text, placeholders unfilled."""

    subject: str
    html: str
    text: str


@dataclass(frozen=True, slots=True)
class EditionSummary:
    """An edition with its delivery counts per status, for `digest editions`."""

    edition: Edition
    counts: dict[DeliveryStatus, int] = field(default_factory=dict)
    duplicates: int = 0  # rows marked as possible duplicates
    unfinished: int = 0  # rows a sender will still work on (incl. uncertain ones to retry)

    @property
    def recipients(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True)
class Consent:
    """What a reader agreed to, when and how: the record of one sign-up (double opt-in).

    ``source`` names the page or endpoint the request came through (and the other site's
    origin, for a form on another website); ``text`` is exactly what the reader was shown;
    ``confirmed_at`` is when the link in the confirmation email was used (None: not yet).
    """

    newsletter_id: str
    given_at: datetime
    source: str
    ip: str
    text: str
    confirmed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Allowance:
    """A rate limit the store keeps for every process: at most ``limit`` uses of ``key``
    in a ``window`` that starts at the first use."""

    key: str
    limit: int
    window: timedelta
