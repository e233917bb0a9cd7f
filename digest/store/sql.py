"""``SqlStore``: the ``Store`` port on SQLAlchemy Core, for SQLite and PostgreSQL alike.

Each method is one transaction. Reads begin a plain transaction; writes begin
``BEGIN IMMEDIATE`` on SQLite (see ``engine.py``) so that read-then-write methods
cannot deadlock. The queries live in ``posts.py``, ``subscribers.py`` and ``ledger.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, StatementError

from digest.errors import AlreadyExists
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
from digest.ports import Store
from digest.store import ledger, subscribers
from digest.store import posts as post_queries
from digest.store import tables as t
from digest.store.engine import READ_ONLY, unreachable


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} {value.isoformat()} is naive: pass an aware UTC datetime")
    return value


class SqlStore:
    """Durable state in a SQL database; see ``digest.ports.Store`` for the contract.

    The engine comes from ``digest.store.engine.create_engine_for`` and the schema
    must be at head (``digest.store.migrate.check_schema``).
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @property
    def engine(self) -> Engine:
        return self._engine

    @contextmanager
    def _transaction(self, *, read_only: bool = False) -> Iterator[Connection]:
        """One transaction: committed on success, rolled back on any exception.

        Connection faults become ``StoreError`` naming the database; a ``ValueError``
        raised while binding a parameter (a naive datetime) escapes unwrapped.
        """
        try:
            connection = self._engine.connect()
        except DBAPIError as exc:
            raise unreachable(self._engine, exc) from None
        try:
            with connection:
                if read_only:
                    connection.execution_options(**{READ_ONLY: True})
                with connection.begin():
                    yield connection
        except OperationalError as exc:
            raise unreachable(self._engine, exc) from None
        except StatementError as exc:
            if not isinstance(exc, DBAPIError) and isinstance(exc.orig, ValueError):
                raise exc.orig from None
            raise

    # --- sources and posts ---------------------------------------------------------------

    def get_source_state(self, source_id: str) -> SourceState | None:
        with self._transaction(read_only=True) as connection:
            return post_queries.get_source_state(connection, source_id)

    def save_source_state(self, state: SourceState) -> None:
        with self._transaction() as connection:
            post_queries.save_source_state(connection, state)

    def upsert_posts(self, posts: Sequence[Post], now: datetime) -> int:
        _aware(now, "now")
        with self._transaction() as connection:
            return post_queries.upsert_posts(connection, posts, now)

    def candidate_posts(self, newsletter_id: str, source_ids: Sequence[str]) -> list[StoredPost]:
        with self._transaction(read_only=True) as connection:
            return post_queries.candidate_posts(connection, newsletter_id, source_ids)

    def sources_started(self, source_ids: Sequence[str]) -> dict[str, datetime]:
        with self._transaction(read_only=True) as connection:
            return post_queries.sources_started(connection, source_ids)

    def get_posts(self, keys: Sequence[str]) -> list[Post]:
        with self._transaction(read_only=True) as connection:
            return post_queries.get_posts(connection, keys)

    # --- subscribers ---------------------------------------------------------------------

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
        _aware(now, "now")
        with self._transaction() as connection:
            return subscribers.add_subscription(
                connection,
                email=email,
                ascii_email=ascii_email,
                newsletter_id=newsletter_id,
                status=status,
                now=now,
                resubscribe=resubscribe,
            )

    def get_subscriber(self, subscriber_id: str) -> Subscriber:
        with self._transaction(read_only=True) as connection:
            return subscribers.get_subscriber(connection, subscriber_id)

    def list_subscriptions(self, newsletter_id: str | None = None) -> list[Subscription]:
        with self._transaction(read_only=True) as connection:
            return subscribers.list_subscriptions(connection, newsletter_id)

    def set_subscription_status(
        self, subscriber_id: str, newsletter_id: str, status: SubscriptionStatus, now: datetime
    ) -> bool:
        _aware(now, "now")
        with self._transaction() as connection:
            return subscribers.set_subscription_status(
                connection, subscriber_id, newsletter_id, status, now
            )

    def confirmed_subscribers(self, newsletter_id: str) -> list[Subscriber]:
        with self._transaction(read_only=True) as connection:
            return subscribers.confirmed_subscribers(connection, newsletter_id)

    # --- editions ------------------------------------------------------------------------

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
        _aware(now, "now")
        try:
            with self._transaction() as connection:
                return ledger.insert_edition(
                    connection,
                    edition_id=edition_id or uuid.uuid4().hex,
                    newsletter_id=newsletter_id,
                    period_key=period_key,
                    now=now,
                    post_keys=post_keys,
                    status=status,
                    subject=subject,
                )
        except IntegrityError:
            # The UNIQUE (newsletter_id, period_key) constraint is the referee between
            # racing schedulers; the only other way to violate a constraint here is
            # to pass an edition_id that is already taken.
            if self.find_edition(newsletter_id, period_key) is None:
                raise AlreadyExists(
                    f"edition id {edition_id!r} is already taken: pass a fresh one or None"
                ) from None
            return None

    def get_edition(self, edition_id: str) -> Edition:
        with self._transaction(read_only=True) as connection:
            return ledger.one_edition(connection, edition_id)

    def find_edition(self, newsletter_id: str, period_key: str) -> Edition | None:
        with self._transaction(read_only=True) as connection:
            found = ledger.editions(
                connection,
                t.editions.c.newsletter_id == newsletter_id,
                t.editions.c.period_key == period_key,
            )
        return found[0] if found else None

    def last_edition(self, newsletter_id: str) -> Edition | None:
        with self._transaction(read_only=True) as connection:
            found = ledger.editions(
                connection, t.editions.c.newsletter_id == newsletter_id, limit=1
            )
        return found[0] if found else None

    def first_edition(self, newsletter_id: str) -> Edition | None:
        with self._transaction(read_only=True) as connection:
            found = ledger.editions(
                connection,
                (t.editions.c.newsletter_id == newsletter_id)
                & (t.editions.c.status != EditionStatus.SKIPPED.value),
                order=ledger.OLDEST_FIRST,
                limit=1,
            )
        return found[0] if found else None

    def list_editions(
        self, newsletter_id: str | None = None, limit: int = 50
    ) -> list[EditionSummary]:
        with self._transaction(read_only=True) as connection:
            return ledger.list_editions(connection, newsletter_id, limit)

    def editions_with_status(self, status: EditionStatus) -> list[Edition]:
        with self._transaction(read_only=True) as connection:
            return ledger.editions(
                connection, t.editions.c.status == status.value, order=ledger.OLDEST_FIRST
            )

    def set_edition_status(self, edition_id: str, status: EditionStatus, error: str = "") -> None:
        with self._transaction() as connection:
            ledger.set_edition_status(connection, edition_id, status, error)

    def save_rendering(self, edition_id: str, *, subject: str, html: str, text: str) -> None:
        with self._transaction() as connection:
            ledger.save_rendering(connection, edition_id, subject=subject, html=html, text=text)

    def get_rendering(self, edition_id: str) -> tuple[str, str, str] | None:
        with self._transaction(read_only=True) as connection:
            return ledger.get_rendering(connection, edition_id)

    # --- deliveries (the ledger) ---------------------------------------------------------

    def add_deliveries(self, deliveries: Sequence[Delivery]) -> int:
        with self._transaction() as connection:
            return ledger.add_deliveries(connection, deliveries)

    def unfinished_deliveries(self, edition_id: str) -> list[Delivery]:
        with self._transaction(read_only=True) as connection:
            return ledger.deliveries(connection, edition_id, unfinished=True)

    def record_delivery(
        self, edition_id: str, subscriber_id: str, result: SendResult, now: datetime
    ) -> None:
        _aware(now, "now")
        with self._transaction() as connection:
            ledger.record_delivery(connection, edition_id, subscriber_id, result, now)

    def claim_delivery(
        self,
        edition_id: str,
        subscriber_id: str,
        newsletter_id: str,
        now: datetime,
        stale_before: datetime,
    ) -> Claim:
        _aware(now, "now")
        _aware(stale_before, "stale_before")
        with self._transaction() as connection:
            return ledger.claim_delivery(
                connection, edition_id, subscriber_id, newsletter_id, now, stale_before
            )

    def release_delivery(self, edition_id: str, subscriber_id: str) -> None:
        with self._transaction() as connection:
            ledger.release_delivery(connection, edition_id, subscriber_id)

    def list_deliveries(self, edition_id: str) -> list[Delivery]:
        with self._transaction(read_only=True) as connection:
            return ledger.deliveries(connection, edition_id, unfinished=False)


def _implements_the_port(store: SqlStore) -> Store:
    """Never called: makes mypy prove that ``SqlStore`` satisfies ``Store``."""
    return store
