"""The interfaces the core owns; adapters implement them, ``digest.app`` wires them.

Every datetime crossing these interfaces is timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from digest.models import (
    Claim,
    Delivery,
    Edition,
    EditionStatus,
    EditionSummary,
    Post,
    SendResult,
    SourceState,
    StoredPost,
    Subscriber,
    Subscription,
    SubscriptionStatus,
)

Clock = Callable[[], datetime]
"""Returns the current time, timezone-aware UTC. Tests pass a fixed or stepping clock."""


class Store(Protocol):
    """Durable state: sources, posts, subscribers, subscriptions, editions, deliveries.

    Every method is its own transaction and either completes or changes nothing.
    Ids are opaque strings. Lookups of a missing id raise ``NotFound`` naming it.
    """

    # --- sources and posts -------------------------------------------------------
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

    def candidate_posts(self, newsletter_id: str, source_ids: Sequence[str]) -> list[StoredPost]:
        """Posts of ``source_ids`` that are in no edition of ``newsletter_id`` yet.

        Any order; selection sorts and filters.
        """
        ...

    def sources_started(self, source_ids: Sequence[str]) -> dict[str, datetime]:
        """For each source with posts, when its first posts were seen (min ``first_seen``)."""
        ...

    def get_posts(self, keys: Sequence[str]) -> list[Post]:
        """The posts with these keys, in the order of ``keys`` (unknown keys are skipped)."""
        ...

    # --- subscribers ---------------------------------------------------------------
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

    def get_subscriber(self, subscriber_id: str) -> Subscriber:
        """The subscriber with this opaque id; ``NotFound`` otherwise."""
        ...

    def list_subscriptions(self, newsletter_id: str | None = None) -> list[Subscription]:
        """Every subscription (of one newsletter, or all), ordered by email then newsletter."""
        ...

    def set_subscription_status(
        self, subscriber_id: str, newsletter_id: str, status: SubscriptionStatus, now: datetime
    ) -> bool:
        """Set the status; False when it already had it (idempotent). ``NotFound`` if absent."""
        ...

    def confirmed_subscribers(self, newsletter_id: str) -> list[Subscriber]:
        """Readers whose subscription to ``newsletter_id`` is confirmed, ordered by email."""
        ...

    # --- editions --------------------------------------------------------------------
    def create_edition(
        self,
        *,
        newsletter_id: str,
        period_key: str,
        now: datetime,
        post_keys: Sequence[str],
        status: EditionStatus,
        subject: str = "",
        edition_id: str | None = None,
    ) -> Edition | None:
        """Create the edition for (newsletter, period), or return None if one exists.

        ``edition_id`` lets the caller choose the opaque id (the renderer needs it for
        the "view in browser" link before the row exists); a fresh one is made if None.

        Uniqueness is enforced by the database, so concurrent callers (two schedulers,
        a restart, a DST fold) cannot create twins. The post keys are stored in order.
        """
        ...

    def get_edition(self, edition_id: str) -> Edition:
        """The edition with this id; ``NotFound`` otherwise."""
        ...

    def find_edition(self, newsletter_id: str, period_key: str) -> Edition | None:
        """The edition of this newsletter for this period, if any."""
        ...

    def last_edition(self, newsletter_id: str) -> Edition | None:
        """The most recently created edition of the newsletter (skipped ones included)."""
        ...

    def first_edition(self, newsletter_id: str) -> Edition | None:
        """The earliest edition of the newsletter that had posts (skipped ones do not count)."""
        ...

    def list_editions(
        self, newsletter_id: str | None = None, limit: int = 50
    ) -> list[EditionSummary]:
        """Newest first, each with its delivery counts per status."""
        ...

    def set_edition_status(self, edition_id: str, status: EditionStatus, error: str = "") -> None:
        """Move an edition to ``status`` and record (or clear) its error text."""
        ...

    def save_rendering(self, edition_id: str, *, subject: str, html: str, text: str) -> None:
        """Archive the rendered edition (placeholders unfilled): the "view in browser" page."""
        ...

    def get_rendering(self, edition_id: str) -> tuple[str, str, str] | None:
        """``(subject, html, text)`` archived for the edition, or None."""
        ...

    # --- deliveries (the ledger) ---------------------------------------------------
    def add_deliveries(self, deliveries: Sequence[Delivery]) -> int:
        """Materialize ledger rows; rows that exist for (edition, subscriber) are left alone.

        Returns how many were inserted. The Message-ID is stored here, before any attempt,
        and reused on every retry.
        """
        ...

    def unfinished_deliveries(self, edition_id: str) -> list[Delivery]:
        """Deliveries of the edition not final yet (pending, sending, deferred), by email."""
        ...

    def claim_delivery(
        self,
        edition_id: str,
        subscriber_id: str,
        newsletter_id: str,
        now: datetime,
        stale_before: datetime,
    ) -> Claim:
        """Atomically take one delivery before sending it.

        ``CLAIMED``: the row was pending, deferred, or ``sending`` with a lease older
        than ``stale_before`` (its sender died); it is now ``sending`` as of ``now``.
        ``LEFT``: the reader's subscription is no longer confirmed; the row is recorded
        as ``suppressed`` instead. ``TAKEN``: another sender holds it or it is final.
        Two senders (processes or machines) can never both get ``CLAIMED``.
        """
        ...

    def release_delivery(self, edition_id: str, subscriber_id: str) -> None:
        """Give a claimed row back (``sending`` -> ``pending``) when nothing was sent."""
        ...

    def record_delivery(
        self, edition_id: str, subscriber_id: str, result: SendResult, now: datetime
    ) -> None:
        """Record the outcome of one attempt: status, server reply, attempts + 1.

        A row that is already final is left alone (a late answer cannot undo it).
        """
        ...

    def list_deliveries(self, edition_id: str) -> list[Delivery]:
        """Every ledger row of the edition, ordered by email."""
        ...

    def editions_with_status(self, status: EditionStatus) -> list[Edition]:
        """Editions in ``status`` (e.g. ``sending`` ones to resume), oldest first."""
        ...


class Mailer(Protocol):
    """Hands one finished message to the mail system.

    ``send`` returns the per-recipient outcome (sent, deferred on 4xx, failed on 5xx,
    uncertain if the connection broke after the final dot). It raises
    ``TransportError`` when the transport itself is at fault (connection refused,
    TLS or AUTH failure, 5xx on greeting or MAIL FROM, unwritable outbox): that says
    nothing about the recipient. ``send`` may be called concurrently.
    """

    async def send(self, *, sender: str, recipient: str, message: bytes) -> SendResult: ...

    async def aclose(self) -> None:
        """Release connections; the mailer may not be used afterwards."""
        ...
