"""The interfaces the core owns; adapters implement them, ``digest.app`` wires them.

The store port is split by its consumers: ``PostStore`` (fetching and selection),
``Readers`` (subscriptions), ``EditionStore`` (an edition's life and its ledger, used by
the CLI and the web pages) and ``Ledger`` (the sender's hot path: async, batched).
``Store`` is all of the synchronous ones, as ``SqlStore`` and the in-memory test store
implement them; ``digest.store.OffloadedLedger`` turns one into a ``Ledger`` with a
single worker thread, the one place where database calls leave the event loop.

Every datetime crossing these interfaces is timezone-aware UTC. Every method is its own
transaction and either completes or changes nothing. Ids are opaque strings. Lookups of
a missing id raise ``NotFound`` naming it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from digest.models import (
    Added,
    Allowance,
    CadenceReaders,
    Claimed,
    Consent,
    Delivery,
    DeliveryStatus,
    Draft,
    Edition,
    EditionStatus,
    EditionSummary,
    Letter,
    NewReader,
    Outcome,
    Post,
    Quota,
    Reader,
    Removal,
    Rendered,
    SendResult,
    SourceHealth,
    SourceState,
    StoredPost,
    Subscriber,
    Subscription,
    SubscriptionStatus,
)

Clock = Callable[[], datetime]
"""Returns the current time, timezone-aware UTC. Tests pass a fixed or stepping clock."""

Due = Callable[[str, datetime | None], bool]
"""Whether a reader (their time zone, when they were last sent) is due in this edition."""


class PostStore(Protocol):
    """Sources and their posts."""

    def get_source_state(self, source_id: str) -> SourceState | None:
        """The state the last fetch of ``source_id`` saved, or None if never fetched."""
        ...

    def save_source_state(self, state: SourceState) -> None:
        """Insert or replace the state of ``state.source_id``."""
        ...

    def upsert_posts(self, posts: Sequence[Post], now: datetime) -> int:
        """Insert new posts (``first_seen = now``) and refresh the content of known ones.

        Identity is ``Post.key`` (source, GUID). A known post keeps its ``first_seen``.
        Returns how many posts were new.
        """
        ...

    def recent_posts(
        self, source_ids: Sequence[str], *, released_after: datetime, newest: int = 0
    ) -> list[StoredPost]:
        """Posts of ``source_ids`` released after ``released_after``, plus the ``newest``
        by date (a new reader's catch-up). Any order; selection sorts and filters."""
        ...

    def released_count(self, source_ids: Sequence[str], until: datetime) -> int:
        """How many posts of ``source_ids`` were released at or before ``until``."""
        ...

    def sources_started(self, source_ids: Sequence[str]) -> dict[str, datetime]:
        """For each source with posts, when its first posts were seen (min ``first_seen``)."""
        ...

    def get_posts(self, keys: Sequence[str]) -> list[Post]:
        """The posts with these keys, in the order of ``keys`` (unknown keys are skipped)."""
        ...

    def known_posts(
        self, source_id: str, guids: Sequence[str], links: Sequence[str]
    ) -> set[tuple[str, str]]:
        """``(guid, link)`` of the stored posts of ``source_id`` whose GUID is one of
        ``guids`` or whose link is one of ``links`` (empty strings match nothing)."""
        ...

    def get_source_health(self, source_id: str) -> SourceHealth | None:
        """The health the last fetch of ``source_id`` recorded, or None if never fetched."""
        ...

    def save_source_health(self, health: SourceHealth) -> None:
        """Insert or replace the health of ``health.source_id``."""
        ...

    def list_source_health(self) -> list[SourceHealth]:
        """The health of every source ever fetched, ordered by source id."""
        ...


class Readers(Protocol):
    """Subscribers and their subscriptions."""

    def add_subscription(
        self,
        *,
        email: str,
        ascii_email: str,
        newsletter_id: str,
        status: SubscriptionStatus,
        now: datetime,
        resubscribe: bool = False,
    ) -> tuple[Subscription, bool]:
        """Subscribe ``email`` (already normalized) to ``newsletter_id``.

        Creates the subscriber if the address is new (matched on ``email``, case
        as normalized). Returns ``(subscription, changed)``. An existing subscription
        keeps its status, except that ``resubscribe=True`` sets ``status`` on it
        (an explicit editor action); an import never revives an unsubscribed reader.
        """
        ...

    def add_subscriptions(
        self,
        entries: Sequence[tuple[str, str, str]],
        status: SubscriptionStatus,
        now: datetime,
    ) -> int:
        """Subscribe many ``(email, ascii_email, newsletter_id)`` at once: ``add_readers``
        for bare addresses. Returns how many subscriptions were new."""
        ...

    def add_readers(
        self, entries: Sequence[NewReader], status: SubscriptionStatus, now: datetime
    ) -> Added:
        """Subscribe many readers at once (a batch of an import), in one transaction.

        Like ``add_subscription`` without ``resubscribe``: missing subscribers are created
        with the name of their first entry, missing subscriptions with ``status`` and the
        entry's cadence and topics; existing ones are left as they are (an import never
        revives an unsubscribed or bounced reader, nor changes a name or a choice).
        Entries repeating an (address, newsletter) count once. Returns how many people
        and how many subscriptions were new. Suppressed addresses are the caller's to
        leave out (``suppressions``).
        """
        ...

    def iter_subscriptions(
        self, newsletter_id: str | None = None, status: SubscriptionStatus | None = None
    ) -> Iterator[Subscription]:
        """Subscriptions (of one newsletter, in one status, or all) by email then
        newsletter, read a page at a time: memory stays flat at any size."""
        ...

    def suppressions(self, keys: Sequence[str]) -> dict[str, datetime]:
        """Of these address keys, the suppressed ones, with when they were removed."""
        ...

    def remove_subscriber(self, email: str, suppression_key: str, now: datetime) -> Removal:
        """Erase the reader of ``email`` (normalized) and suppress ``suppression_key``.

        Deletes the subscriber and every subscription. Their ledger rows stay for the
        editions' counts and the rate limits, anonymized under a random id: the address
        (also where a reply quotes it) and the Message-ID go, and rows not yet sent
        become ``suppressed``. The key is suppressed from ``now`` on (the first removal's
        time is kept), also for an address that was not on the list (``found`` False).
        """
        ...

    def set_preferences(
        self,
        subscriber_id: str,
        newsletter_id: str,
        *,
        cadence: str | None,
        topics: Sequence[str] | None,
        now: datetime,
    ) -> None:
        """Store a reader's cadence and topics (None: the default cadence, all topics).

        The reader's mark does not move: what they are owed stays owed, under the new
        choices from the next edition on. ``NotFound`` without such a subscription.
        """
        ...

    def reader_groups(
        self, newsletter_id: str, readers: CadenceReaders
    ) -> list[tuple[Reader, int]]:
        """The distinct selection states of the confirmed readers of a cadence, with
        how many readers are in each."""
        ...

    def readers_by_zone(
        self, newsletter_id: str, readers: CadenceReaders
    ) -> list[tuple[str, datetime | None]]:
        """Each time zone ("": none) of the cadence's confirmed readers, with the oldest
        last send among them (None when one of them was never sent a digest): enough to
        tell whether anyone is due, since a reader waiting longer is due sooner."""
        ...

    def reader_state(self, subscriber_id: str, newsletter_id: str) -> Reader:
        """One subscription's selection state; ``NotFound`` without such a subscription."""
        ...

    def schedule_start(self, newsletter_id: str, cadence: str, now: datetime) -> datetime:
        """Since when the cadence has been scheduled: recorded as ``now`` the first time."""
        ...

    def set_timezone(self, subscriber_id: str, zone: str) -> None:
        """Store the reader's IANA time zone ("": none, the schedule's zone serves them),
        used by cadences sent at a time of day in each reader's zone. ``NotFound`` for an
        unknown reader; the caller checks the zone is one."""
        ...

    def get_subscriber(self, subscriber_id: str) -> Subscriber:
        """The subscriber with this opaque id; ``NotFound`` otherwise."""
        ...

    def find_subscription(self, email: str, newsletter_id: str) -> Subscription | None:
        """The subscription of ``email`` (normalized) to the newsletter, if there is one."""
        ...

    def list_subscriptions(self, newsletter_id: str | None = None) -> list[Subscription]:
        """Every subscription (of one newsletter, or all), ordered by email then newsletter."""
        ...

    def set_subscription_status(
        self, subscriber_id: str, newsletter_id: str, status: SubscriptionStatus, now: datetime
    ) -> bool:
        """Set the status; False when it already had it (idempotent). ``NotFound`` if absent."""
        ...


class Signups(Protocol):
    """Sign-up through the web: consent records, confirmation, rate limits, expiry."""

    def take_allowance(self, allowances: Sequence[Allowance], now: datetime) -> bool:
        """Use each of ``allowances`` once, if none is used up; False (using none) if one is.

        A key's window starts at its first use and restarts at the first use after it
        ended. Shared by every process on the database: two racing calls cannot both
        take a key's last use.
        """
        ...

    def record_signup(
        self,
        *,
        email: str,
        ascii_email: str,
        consents: Sequence[Consent],
        confirmed: bool,
        now: datetime,
    ) -> tuple[str, list[str]]:
        """Record a reader's sign-up to each consent's newsletter, in one transaction.

        Creates the subscriber if the address is new. A missing, pending or unsubscribed
        subscription becomes ``pending`` (``confirmed`` with ``confirmed=True``: the reader
        proved the address already) and its consent is recorded; a confirmed or bounced
        one is left alone and records nothing. Returns the subscriber id and the
        newsletter ids whose subscription this call made pending (or confirmed).
        """
        ...

    def confirm_signup(self, subscriber_id: str, now: datetime) -> list[str]:
        """Confirm every pending subscription of the reader and date their consents;
        returns those newsletter ids (none: nothing was pending, or no such reader)."""
        ...

    def subscriptions_of(self, subscriber_id: str) -> list[Subscription]:
        """The reader's subscriptions, by newsletter id (empty for an unknown reader)."""
        ...

    def consents_of(self, subscriber_id: str) -> list[Consent]:
        """The reader's consent records, oldest first (then by newsletter id)."""
        ...

    def change_email(self, subscriber_id: str, email: str, ascii_email: str) -> None:
        """Give the reader a new address. ``AlreadyExists`` if another reader has it,
        ``NotFound`` without such a reader."""
        ...

    def purge_pending(self, before: datetime, *, limits_before: datetime) -> int:
        """Delete the pending subscriptions last asked for before ``before``, their
        unconfirmed consents, and readers left with nothing; returns how many
        subscriptions went. Rate-limit windows begun before ``limits_before`` go too."""
        ...


class EditionStore(Protocol):
    """Editions, their archived renderings, and the ledger as operators see it."""

    def open_edition(
        self,
        draft: Draft,
        *,
        message_id: Callable[[str], str],
        due: Due | None = None,
        no_readers: str = "",
    ) -> tuple[Edition, int] | None:
        """Open the drafted edition in one transaction; ``(edition, recipients)``.

        Writes the edition, its variants (renderings and posts) and, for every confirmed
        reader of ``draft.readers`` whose selection state has a verdict (and who is
        ``due(timezone, last_sent_at)``, if given), a ``pending`` ledger row for their
        variant with ``message_id(subscriber_id)`` and their new mark, or nothing.
        Readers with no verdict (they joined or changed since the draft) are left for
        the next edition. With no row written the edition is ``skipped`` and holds no
        post (``no_readers`` is its error if it had variants). Returns the existing
        edition with recipients ``-1`` if the period already has one (a second scheduler,
        a restart: the database referees), and ``None`` if posts were released since the
        draft was made (``draft.released`` is stale): the caller selects again. A
        reader's row and mark are written together, so no post reaches a reader twice.
        """
        ...

    def get_edition(self, edition_id: str) -> Edition:
        """The edition with this id; ``NotFound`` otherwise."""
        ...

    def edition_ids(self, prefix: str = "") -> list[str]:
        """The ids of the editions whose id starts with ``prefix`` (every one for ""),
        sorted; ``%`` and ``_`` in a prefix are literal."""
        ...

    def find_edition(self, newsletter_id: str, period_key: str) -> Edition | None:
        """The edition of this newsletter for this period, if any."""
        ...

    def list_editions(
        self, newsletter_id: str | None = None, limit: int = 50
    ) -> list[EditionSummary]:
        """Newest first, each with its delivery counts per status."""
        ...

    def edition_summary(self, edition_id: str) -> EditionSummary:
        """The edition with its counts per status, duplicates and unfinished rows."""
        ...

    def editions_with_status(self, status: EditionStatus) -> list[Edition]:
        """Editions in ``status`` (e.g. ``sending`` ones to resume), oldest first."""
        ...

    def set_edition_status(
        self,
        edition_id: str,
        status: EditionStatus,
        error: str = "",
        *,
        only_from: Sequence[EditionStatus] | None = None,
    ) -> bool:
        """Move the edition to ``status`` with ``error`` (or none); with ``only_from``, only
        if it is in one of those. True unless ``only_from`` refused the move."""
        ...

    def archived_editions(self, newsletter_id: str, *, offset: int, limit: int) -> list[Edition]:
        """The newsletter's editions that went out (sending, paused, held or sent: not
        skipped or cancelled), newest first, ``limit`` of them after the first ``offset``."""
        ...

    def get_renderings(self, edition_id: str) -> dict[int, Rendered]:
        """Every variant's rendering archived for the edition, by variant number."""
        ...

    def cancel_unsent(self, edition_id: str, now: datetime) -> int:
        """Mark every pending or deferred row ``cancelled``; returns how many.

        Rows a sender holds are left to it; ``uncertain`` rows stay as they are (the
        reader may have the message) and are not retried while the edition is cancelled.
        """
        ...

    def reopen_deliveries(self, edition_id: str, statuses: Sequence[DeliveryStatus]) -> int:
        """Make the rows in ``statuses`` pending again (attempts reset); returns how many.

        Resending ``failed`` rows confirms their readers' bounced subscriptions again;
        resent ``uncertain`` rows are marked as possible duplicates.
        """
        ...

    def iter_deliveries(
        self,
        edition_id: str,
        *,
        status: DeliveryStatus | None = None,
        email: str | None = None,
    ) -> Iterator[Delivery]:
        """The edition's rows by email, read a page at a time (memory stays flat);
        filtered by ``status`` and by a substring of the address."""
        ...

    def list_deliveries(self, edition_id: str) -> list[Delivery]:
        """Every ledger row of the edition, ordered by email (small editions, tests)."""
        ...


class SyncLedger(Protocol):
    """The sender's operations, synchronous; see ``Ledger`` for the contract."""

    def claim_batch(
        self,
        edition_id: str,
        owner: str,
        now: datetime,
        lease_until: datetime,
        limit: int,
        quotas: Sequence[Quota] = (),
    ) -> Claimed: ...

    def record_batch(
        self, edition_id: str, owner: str, outcomes: Sequence[Outcome], now: datetime
    ) -> int: ...

    def renew_leases(self, edition_id: str, owner: str, lease_until: datetime) -> int: ...

    def sent_since(self, since: datetime) -> int:
        """Messages recorded ``sent`` after ``since`` by every sender: what quotas count."""
        ...


class Store(PostStore, Readers, Signups, EditionStore, SyncLedger, Protocol):
    """Everything durable, synchronously: what ``SqlStore`` and the test memory store are."""

    def close(self) -> None:
        """Release database connections (the store reconnects if used again)."""
        ...


class Ledger(Protocol):
    """The deliveries ledger as the sender uses it: batched, leased, fenced, async.

    Rows are taken in batches for a named ``owner`` until ``lease_until``; an owner that
    stays alive renews its leases, and rows whose lease ran out are taken over by the
    next claim (marked as possible duplicates). Outcomes are written only where the
    owner still holds the row (fencing), so a sender that lost its lease cannot
    overwrite the new owner's result.
    """

    async def claim_batch(
        self,
        edition_id: str,
        owner: str,
        now: datetime,
        lease_until: datetime,
        limit: int,
        quotas: Sequence[Quota] = (),
    ) -> Claimed:
        """Take up to ``limit`` rows of a ``sending`` edition.

        Pending rows first, then deferred and uncertain ones due for retry, then rows
        whose lease ran out. Rows of readers who are no longer confirmed (unsubscribed,
        bounced) are recorded ``suppressed`` and counted instead. An edition that is not
        ``sending`` (paused, held, cancelled) gives nothing. Each of ``quotas`` caps the
        batch at what its window has left, counting messages sent in the window and
        rows any sender holds, in every process; ``blocked_by`` names a window that
        left nothing.
        """
        ...

    async def record_batch(
        self, edition_id: str, owner: str, outcomes: Sequence[Outcome], now: datetime
    ) -> int:
        """Write the outcomes of rows ``owner`` holds; returns how many it still held.

        A ``failed`` outcome marks the reader ``bounced`` in every newsletter.
        """
        ...

    async def renew_leases(self, edition_id: str, owner: str, lease_until: datetime) -> int:
        """Extend the owner's leases on the edition; returns how many rows it holds."""
        ...

    async def edition_summary(self, edition_id: str) -> EditionSummary: ...

    async def set_edition_status(
        self,
        edition_id: str,
        status: EditionStatus,
        error: str = "",
        *,
        only_from: Sequence[EditionStatus] | None = None,
    ) -> bool: ...


class Mailer(Protocol):
    """Hands one finished letter to the mail system.

    ``send`` returns the per-recipient outcome (sent, deferred on 4xx, failed on 5xx,
    uncertain if the connection broke after the final dot). It raises
    ``TransportError`` when the transport itself is at fault (connection refused,
    TLS or AUTH failure, 5xx on greeting or MAIL FROM, unwritable outbox), and its
    subclass ``SiteRefused`` when a reply refuses the sending site rather than the
    reader (blocklisted, policy, throttling): neither says anything about the
    recipient. ``send`` may be called concurrently.
    """

    async def send(self, letter: Letter) -> SendResult: ...

    async def aclose(self) -> None:
        """Release connections; the mailer may not be used afterwards."""
        ...


@runtime_checkable
class BatchMailer(Mailer, Protocol):
    """A mailer that can send several letters in turn on one connection, faster.

    ``send_batch`` returns one result per letter, in order: a ``SendResult``; the
    ``TransportError`` that ended the batch at that letter; or ``NotSent`` for every
    letter after it (nothing of those was transmitted: send them again).
    """

    async def send_batch(
        self,
        letters: Sequence[Letter],
        on_result: Callable[[int, SendResult | Exception], Awaitable[bool]] | None = None,
    ) -> list[SendResult | Exception]:
        """See the class; ``on_result(index, result)`` is awaited as each result is known,
        and ends the batch there when it returns False."""
        ...
