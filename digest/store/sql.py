"""``SqlStore``: the ``Store`` port on SQLAlchemy Core, for SQLite and PostgreSQL alike.

Each method is one transaction. Reads begin a plain transaction; writes begin
``BEGIN IMMEDIATE`` on SQLite (see ``engine.py``) so that read-then-write methods
cannot deadlock. The queries live in ``posts.py``, ``health.py``, ``subscribers.py``,
``editions.py`` and ``ledger.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, StatementError

from digest.errors import AlreadyExists
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
    NewReader,
    Outcome,
    Post,
    Quota,
    Reader,
    Removal,
    Rendered,
    SourceHealth,
    SourceState,
    StoredPost,
    Subscriber,
    Subscription,
    SubscriptionStatus,
)
from digest.ports import Due, Store
from digest.store import editions as edition_queries
from digest.store import health as health_queries
from digest.store import ledger, reader_list, signups, subscribers
from digest.store import posts as post_queries
from digest.store import tables as t
from digest.store.engine import READ_ONLY, unreachable

PAGE = 1000  # rows per transaction when listing an edition's deliveries or subscriptions
ARCHIVED = (EditionStatus.SENDING, EditionStatus.PAUSED, EditionStatus.HELD, EditionStatus.SENT)


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

    def close(self) -> None:
        self._engine.dispose()

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

    def recent_posts(
        self, source_ids: Sequence[str], *, released_after: datetime, newest: int = 0
    ) -> list[StoredPost]:
        with self._transaction(read_only=True) as connection:
            return post_queries.recent_posts(connection, source_ids, released_after, newest)

    def released_count(self, source_ids: Sequence[str], until: datetime) -> int:
        with self._transaction(read_only=True) as connection:
            return post_queries.released_count(connection, source_ids, until)

    def sources_started(self, source_ids: Sequence[str]) -> dict[str, datetime]:
        with self._transaction(read_only=True) as connection:
            return post_queries.sources_started(connection, source_ids)

    def get_posts(self, keys: Sequence[str]) -> list[Post]:
        with self._transaction(read_only=True) as connection:
            return post_queries.get_posts(connection, keys)

    def known_posts(
        self, source_id: str, guids: Sequence[str], links: Sequence[str]
    ) -> set[tuple[str, str]]:
        with self._transaction(read_only=True) as connection:
            return health_queries.known_posts(connection, source_id, guids, links)

    # --- source health -------------------------------------------------------------------

    def get_source_health(self, source_id: str) -> SourceHealth | None:
        with self._transaction(read_only=True) as connection:
            return health_queries.get_source_health(connection, source_id)

    def save_source_health(self, health: SourceHealth) -> None:
        with self._transaction() as connection:
            health_queries.save_source_health(connection, health)

    def list_source_health(self) -> list[SourceHealth]:
        with self._transaction(read_only=True) as connection:
            return health_queries.list_source_health(connection)

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

    def add_subscriptions(
        self,
        entries: Sequence[tuple[str, str, str]],
        status: SubscriptionStatus,
        now: datetime,
    ) -> int:
        readers = [
            NewReader(email, ascii_email, newsletter) for email, ascii_email, newsletter in entries
        ]
        return self.add_readers(readers, status, now).subscriptions

    def add_readers(
        self, entries: Sequence[NewReader], status: SubscriptionStatus, now: datetime
    ) -> Added:
        _aware(now, "now")
        with self._transaction() as connection:
            return reader_list.add_readers(connection, entries, status, now)

    def iter_subscriptions(
        self, newsletter_id: str | None = None, status: SubscriptionStatus | None = None
    ) -> Iterator[Subscription]:
        after: str | None = None
        while True:
            with self._transaction(read_only=True) as connection:
                rows, after = reader_list.page(
                    connection, newsletter_id=newsletter_id, status=status, after=after, size=PAGE
                )
            yield from rows
            if after is None:
                return

    def suppressions(self, keys: Sequence[str]) -> dict[str, datetime]:
        with self._transaction(read_only=True) as connection:
            return reader_list.suppressions(connection, keys)

    def remove_subscriber(self, email: str, suppression_key: str, now: datetime) -> Removal:
        _aware(now, "now")
        with self._transaction() as connection:
            return reader_list.remove_subscriber(connection, email, suppression_key, now)

    def readers_by_zone(
        self, newsletter_id: str, readers: CadenceReaders
    ) -> list[tuple[str, datetime | None]]:
        with self._transaction(read_only=True) as connection:
            return subscribers.readers_by_zone(connection, newsletter_id, readers)

    def set_timezone(self, subscriber_id: str, zone: str) -> None:
        with self._transaction() as connection:
            subscribers.set_timezone(connection, subscriber_id, zone)

    def get_subscriber(self, subscriber_id: str) -> Subscriber:
        with self._transaction(read_only=True) as connection:
            return subscribers.get_subscriber(connection, subscriber_id)

    def find_subscription(self, email: str, newsletter_id: str) -> Subscription | None:
        with self._transaction(read_only=True) as connection:
            return subscribers.find_subscription(connection, email, newsletter_id)

    def list_subscriptions(self, newsletter_id: str | None = None) -> list[Subscription]:
        return list(self.iter_subscriptions(newsletter_id))

    def set_subscription_status(
        self, subscriber_id: str, newsletter_id: str, status: SubscriptionStatus, now: datetime
    ) -> bool:
        _aware(now, "now")
        with self._transaction() as connection:
            return subscribers.set_subscription_status(
                connection, subscriber_id, newsletter_id, status, now
            )

    def set_preferences(
        self,
        subscriber_id: str,
        newsletter_id: str,
        *,
        cadence: str | None,
        topics: Sequence[str] | None,
        now: datetime,
    ) -> None:
        _aware(now, "now")
        with self._transaction() as connection:
            subscribers.set_preferences(
                connection, subscriber_id, newsletter_id, cadence=cadence, topics=topics, now=now
            )

    def reader_groups(
        self, newsletter_id: str, readers: CadenceReaders
    ) -> list[tuple[Reader, int]]:
        with self._transaction(read_only=True) as connection:
            return subscribers.reader_groups(connection, newsletter_id, readers)

    def reader_state(self, subscriber_id: str, newsletter_id: str) -> Reader:
        with self._transaction(read_only=True) as connection:
            return subscribers.reader_state(connection, subscriber_id, newsletter_id)

    def schedule_start(self, newsletter_id: str, cadence: str, now: datetime) -> datetime:
        _aware(now, "now")
        with self._transaction() as connection:
            return subscribers.schedule_start(connection, newsletter_id, cadence, now)

    # --- sign-up ---------------------------------------------------------------------------

    def take_allowance(self, allowances: Sequence[Allowance], now: datetime) -> bool:
        _aware(now, "now")
        with self._transaction() as connection:
            return signups.take_allowance(connection, allowances, now)

    def record_signup(
        self,
        *,
        email: str,
        ascii_email: str,
        consents: Sequence[Consent],
        confirmed: bool,
        now: datetime,
    ) -> tuple[str, list[str]]:
        _aware(now, "now")
        with self._transaction() as connection:
            return signups.record_signup(
                connection,
                email=email,
                ascii_email=ascii_email,
                consents=consents,
                confirmed=confirmed,
                now=now,
            )

    def confirm_signup(self, subscriber_id: str, now: datetime) -> list[str]:
        _aware(now, "now")
        with self._transaction() as connection:
            return signups.confirm_signup(connection, subscriber_id, now)

    def subscriptions_of(self, subscriber_id: str) -> list[Subscription]:
        with self._transaction(read_only=True) as connection:
            return signups.subscriptions_of(connection, subscriber_id)

    def consents_of(self, subscriber_id: str) -> list[Consent]:
        with self._transaction(read_only=True) as connection:
            return signups.consents_of(connection, subscriber_id)

    def change_email(self, subscriber_id: str, email: str, ascii_email: str) -> None:
        with self._transaction() as connection:
            signups.change_email(connection, subscriber_id, email, ascii_email)

    def purge_pending(self, before: datetime, *, limits_before: datetime) -> int:
        _aware(before, "before")
        _aware(limits_before, "limits_before")
        with self._transaction() as connection:
            return signups.purge_pending(connection, before, limits_before)

    # --- editions ------------------------------------------------------------------------

    def open_edition(
        self,
        draft: Draft,
        *,
        message_id: Callable[[str], str],
        due: Due | None = None,
        no_readers: str = "",
    ) -> tuple[Edition, int] | None:
        _aware(draft.now, "now")
        try:
            with self._transaction() as connection:
                twin = edition_queries.find(connection, draft.newsletter_id, draft.period_key)
                if twin is not None:
                    return twin, -1
                return edition_queries.open_edition(
                    connection, draft, message_id=message_id, due=due, no_readers=no_readers
                )
        except edition_queries.PostsChanged:
            return None
        except IntegrityError:
            # PostgreSQL: a concurrent transaction committed the twin period between our
            # check and our insert; the unique constraint refereed.
            twin = self.find_edition(draft.newsletter_id, draft.period_key)
            if twin is not None:
                return twin, -1
            with self._transaction(read_only=True) as connection:
                if edition_queries.editions(connection, t.editions.c.id == draft.edition_id):
                    raise AlreadyExists(
                        f"edition id {draft.edition_id!r} is already taken"
                    ) from None
            raise

    def get_edition(self, edition_id: str) -> Edition:
        with self._transaction(read_only=True) as connection:
            return edition_queries.one(connection, edition_id)

    def edition_ids(self, prefix: str = "") -> list[str]:
        with self._transaction(read_only=True) as connection:
            return edition_queries.ids(connection, prefix)

    def find_edition(self, newsletter_id: str, period_key: str) -> Edition | None:
        with self._transaction(read_only=True) as connection:
            return edition_queries.find(connection, newsletter_id, period_key)

    def list_editions(
        self, newsletter_id: str | None = None, limit: int = 50
    ) -> list[EditionSummary]:
        with self._transaction(read_only=True) as connection:
            return edition_queries.summaries(connection, newsletter_id, limit)

    def edition_summary(self, edition_id: str) -> EditionSummary:
        with self._transaction(read_only=True) as connection:
            return edition_queries.summary(connection, edition_queries.one(connection, edition_id))

    def editions_with_status(self, status: EditionStatus) -> list[Edition]:
        with self._transaction(read_only=True) as connection:
            return edition_queries.editions(
                connection, t.editions.c.status == status.value, order=edition_queries.OLDEST_FIRST
            )

    def archived_editions(self, newsletter_id: str, *, offset: int, limit: int) -> list[Edition]:
        e = t.editions.c
        with self._transaction(read_only=True) as connection:
            return edition_queries.editions(
                connection,
                e.newsletter_id == newsletter_id,
                e.status.in_([status.value for status in ARCHIVED]),
                limit=limit,
                offset=offset,
            )

    def set_edition_status(
        self,
        edition_id: str,
        status: EditionStatus,
        error: str = "",
        *,
        only_from: Sequence[EditionStatus] | None = None,
    ) -> bool:
        with self._transaction() as connection:
            return edition_queries.set_status(
                connection, edition_id, status, error, only_from=only_from
            )

    def get_renderings(self, edition_id: str) -> dict[int, Rendered]:
        with self._transaction(read_only=True) as connection:
            return edition_queries.get_renderings(connection, edition_id)

    def cancel_unsent(self, edition_id: str, now: datetime) -> int:
        _aware(now, "now")
        with self._transaction() as connection:
            edition_queries.one(connection, edition_id)
            return ledger.cancel_unsent(connection, edition_id, now)

    def reopen_deliveries(self, edition_id: str, statuses: Sequence[DeliveryStatus]) -> int:
        with self._transaction() as connection:
            edition_queries.one(connection, edition_id)
            return ledger.reopen(connection, edition_id, statuses)

    # --- deliveries (the ledger) ---------------------------------------------------------

    def claim_batch(
        self,
        edition_id: str,
        owner: str,
        now: datetime,
        lease_until: datetime,
        limit: int,
        quotas: Sequence[Quota] = (),
    ) -> Claimed:
        _aware(now, "now")
        with self._transaction() as connection:
            return ledger.claim_batch(
                connection,
                edition_id=edition_id,
                owner=owner,
                now=now,
                lease_until=lease_until,
                limit=limit,
                quotas=quotas,
            )

    def record_batch(
        self, edition_id: str, owner: str, outcomes: Sequence[Outcome], now: datetime
    ) -> int:
        _aware(now, "now")
        with self._transaction() as connection:
            return ledger.record_batch(
                connection, edition_id=edition_id, owner=owner, outcomes=outcomes, now=now
            )

    def renew_leases(self, edition_id: str, owner: str, lease_until: datetime) -> int:
        with self._transaction() as connection:
            return ledger.renew_leases(
                connection, edition_id=edition_id, owner=owner, lease_until=lease_until
            )

    def sent_since(self, since: datetime) -> int:
        with self._transaction(read_only=True) as connection:
            return ledger.sent_since(connection, since)

    def iter_deliveries(
        self,
        edition_id: str,
        *,
        status: DeliveryStatus | None = None,
        email: str | None = None,
    ) -> Iterator[Delivery]:
        self.get_edition(edition_id)  # NotFound before the first row is asked for
        return self._pages(edition_id, status, email)

    def _pages(
        self, edition_id: str, status: DeliveryStatus | None, email: str | None
    ) -> Iterator[Delivery]:
        after: tuple[str, str] | None = None
        while True:
            with self._transaction(read_only=True) as connection:
                rows = ledger.page(
                    connection, edition_id, after=after, size=PAGE, status=status, email=email
                )
            yield from rows
            if len(rows) < PAGE:
                return
            after = (rows[-1].email, rows[-1].subscriber_id)

    def list_deliveries(self, edition_id: str) -> list[Delivery]:
        return list(self.iter_deliveries(edition_id))


def _implements_the_port(store: SqlStore) -> Store:
    """Never called: makes mypy prove that ``SqlStore`` satisfies ``Store``."""
    return store
