"""``MemoryStore``: the synchronous ``Store`` port held in memory, for tests without a database.

It mirrors ``SqlStore`` (``digest/store/sql.py`` and its query modules) row for row: the
same orderings, the same ``NotFound`` wording, naive datetimes refused with the same
``ValueError`` and stored datetimes converted to UTC. Every record it keeps is immutable,
so a shallow copy of its tables is a snapshot: each write takes one under the lock and
puts it back if the method raises, which makes every method one transaction.
"""

from __future__ import annotations

import secrets
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from itertools import islice

from digest.errors import AlreadyExists, NotFound
from digest.models import (
    REMOVED_ADDRESS,
    REMOVED_REPLY,
    Added,
    Allowance,
    CadenceReaders,
    Claimed,
    ClaimedRow,
    Consent,
    Delivery,
    DeliveryStatus,
    Draft,
    Edition,
    EditionStatus,
    EditionSummary,
    Mark,
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
    redacted,
)
from digest.ports import Due, Store
from digest.store.posts import released_after

PENDING = DeliveryStatus.PENDING
SENDING = DeliveryStatus.SENDING
DEFERRED = DeliveryStatus.DEFERRED
UNCERTAIN = DeliveryStatus.UNCERTAIN
SENT = EditionStatus.SENT
SUPPRESSED = DeliveryStatus.SUPPRESSED
CONFIRMED = SubscriptionStatus.CONFIRMED
LEFT_REPLY: dict[SubscriptionStatus | None, str] = {  # as in ``digest.store.ledger``
    SubscriptionStatus.UNSUBSCRIBED: "not sent: the reader unsubscribed before their turn",
    SubscriptionStatus.BOUNCED: "not sent: the address bounced earlier",
    SubscriptionStatus.PENDING: "not sent: the subscription is not confirmed",
    None: "not sent: no subscription",
}
CANCELLED_REPLY = "not sent: the edition was cancelled"


def _aware(value: datetime, name: str) -> datetime:
    """An argument ``SqlStore`` checks itself (``now``), in UTC."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} {value.isoformat()} is naive: pass an aware UTC datetime")
    return value.astimezone(UTC)


def _utc(value: datetime) -> datetime:
    """A datetime as ``tables.UtcDateTime`` binds it: refused if naive, else in UTC."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()} given: pass an aware UTC one")
    return value.astimezone(UTC)


def _claimable(row: _Row, kind: DeliveryStatus, now: datetime) -> bool:
    """Whether a claim taking ``kind`` rows takes ``row`` (see ``ledger.claim_batch``)."""
    if row.status is not kind:
        return False
    if kind is PENDING:
        return True
    if kind is SENDING:  # its sender died
        return row.lease_until is not None and row.lease_until < now
    due = row.not_before is not None and row.not_before <= now
    return due and not (kind is UNCERTAIN and row.duplicate)


@dataclass(frozen=True, slots=True)
class _Row:
    """One ``deliveries`` row of an edition, with the sender's columns."""

    subscriber_id: str
    email: str
    message_id: str
    status: DeliveryStatus = PENDING
    attempts: int = 0
    reply: str = ""
    updated_at: datetime | None = None
    owner: str | None = None
    lease_until: datetime | None = None
    not_before: datetime | None = None
    duplicate: bool = False
    variant: int = 0

    def delivery(self, edition_id: str) -> Delivery:
        return Delivery(
            edition_id, self.subscriber_id, self.email, self.message_id, self.status,
            self.attempts, self.reply, self.updated_at, self.duplicate
        )  # fmt: skip


@dataclass(slots=True)
class _Tables:
    """The tables of ``store/tables.py``; values are immutable, so ``copy`` is a snapshot."""

    sources: dict[str, SourceState] = field(default_factory=dict)
    health: dict[str, SourceHealth] = field(default_factory=dict)  # source_health
    posts: dict[str, StoredPost] = field(default_factory=dict)
    subscribers: dict[str, Subscriber] = field(default_factory=dict)  # by id
    emails: dict[str, str] = field(default_factory=dict)  # email -> subscriber id
    subscriptions: dict[tuple[str, str], Subscription] = field(default_factory=dict)
    editions: dict[str, Edition] = field(default_factory=dict)
    marks: dict[tuple[str, str], tuple[Mark, datetime | None]] = field(default_factory=dict)
    zones: dict[str, str] = field(default_factory=dict)  # subscriber id -> their time zone
    starts: dict[tuple[str, str], datetime] = field(default_factory=dict)  # schedule_starts
    renderings: dict[str, dict[int, Rendered]] = field(default_factory=dict)
    deliveries: dict[str, dict[str, _Row]] = field(default_factory=dict)  # edition -> reader
    suppressions: dict[str, datetime] = field(default_factory=dict)  # address key -> removed
    consents: dict[str, tuple[str, Consent]] = field(default_factory=dict)  # id -> reader's
    limits: dict[str, tuple[datetime, int]] = field(default_factory=dict)  # key -> since, uses

    def copy(self) -> _Tables:
        copied = _Tables(*(dict(getattr(self, table.name)) for table in fields(self)))
        copied.deliveries = {edition_id: dict(rows) for edition_id, rows in self.deliveries.items()}
        return copied

    def edition(self, edition_id: str) -> Edition:
        found = self.editions.get(edition_id)
        if found is None:
            raise NotFound(f"no edition with id {edition_id!r}: see `digest editions`")
        return found

    def find(self, newsletter_id: str, period_key: str) -> Edition | None:
        for edition in self.editions.values():
            if (edition.newsletter_id, edition.period_key) == (newsletter_id, period_key):
                return edition
        return None

    def ordered(self, keep: Callable[[Edition], bool], *, newest: bool) -> list[Edition]:
        """The editions ``keep`` accepts, by (created_at, period_key), newest or oldest first."""
        found = [edition for edition in self.editions.values() if keep(edition)]
        return sorted(found, key=lambda e: (e.created_at, e.period_key), reverse=newest)

    def rows(self, edition_id: str) -> dict[str, _Row]:
        return self.deliveries.get(edition_id, {})

    def summary(self, edition: Edition) -> EditionSummary:
        counts = dict.fromkeys(DeliveryStatus, 0)
        duplicates = unfinished = 0
        for row in self.rows(edition.id).values():
            counts[row.status] += 1
            duplicates += row.duplicate
            if not row.status.is_final or (row.status is UNCERTAIN and not row.duplicate):
                unfinished += 1
        return EditionSummary(edition, counts, duplicates=duplicates, unfinished=unfinished)

    def reader(self, email: str, ascii_email: str, now: datetime, name: str = "") -> str:
        """The id of the subscriber of ``email``, created if new (else keeping its forms)."""
        subscriber_id = self.emails.get(email)
        if subscriber_id is None:
            subscriber_id = secrets.token_urlsafe(16)
            self.subscribers[subscriber_id] = Subscriber(
                subscriber_id, email, ascii_email, now, name
            )
            self.emails[email] = subscriber_id
        return subscriber_id

    def subscribe(
        self,
        key: tuple[str, str],
        status: SubscriptionStatus,
        now: datetime,
        cadence: str | None = None,
        topics: tuple[str, ...] | None = None,
    ) -> bool:
        """Create the subscription ``(subscriber id, newsletter)`` unless it exists."""
        if key in self.subscriptions:
            return False
        chosen = None if topics is None else tuple(sorted(set(topics)))
        self.subscriptions[key] = Subscription(
            self.subscribers[key[0]], key[1], status, now, cadence, chosen, created_at=now
        )
        self.marks[key] = (Mark(now), None)
        return True

    def set_subscription(
        self, key: tuple[str, str], status: SubscriptionStatus, now: datetime
    ) -> bool:
        current = self.subscriptions[key]
        if current.status is status:
            return False
        self.subscriptions[key] = replace(current, status=status, changed_at=now)
        if status is SubscriptionStatus.CONFIRMED:  # back from away: starts from now
            self.marks[key] = (Mark(now), self.marks[key][1])
        return True

    def selection_state(self, key: tuple[str, str]) -> Reader:
        topics = self.subscriptions[key].topics
        mark, last_sent = self.marks[key]
        return Reader(mark, None if topics is None else frozenset(topics), last_sent is None)

    def of_cadence(self, newsletter_id: str, readers: CadenceReaders) -> list[tuple[str, str]]:
        """The confirmed subscriptions an edition of that cadence is for, by subscriber id."""
        found = []
        for key, s in self.subscriptions.items():
            if s.newsletter_id != newsletter_id or s.status is not CONFIRMED:
                continue
            chosen = s.cadence == readers.cadence_id
            other = s.cadence is None or s.cadence not in readers.offered
            if chosen or (readers.default and other):
                found.append(key)
        return sorted(found)


class MemoryStore:
    """Durable state in memory; see ``digest.ports.Store`` for the contract."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._t = _Tables()

    def close(self) -> None:
        """Nothing to release: the data stays, as a database's would."""

    @contextmanager
    def _write(self) -> Iterator[_Tables]:
        """One write transaction: the tables are put back as they were if the body raises."""
        with self._lock:
            snapshot = self._t.copy()
            try:
                yield self._t
            except BaseException:
                self._t = snapshot
                raise

    @contextmanager
    def _read(self) -> Iterator[_Tables]:
        with self._lock:
            yield self._t

    # --- sources and posts ---------------------------------------------------------------

    def get_source_state(self, source_id: str) -> SourceState | None:
        with self._read() as t:
            return t.sources.get(source_id)

    def save_source_state(self, state: SourceState) -> None:
        fetched = None if state.last_fetched is None else _utc(state.last_fetched)
        with self._write() as t:
            t.sources[state.source_id] = replace(state, last_fetched=fetched)

    def upsert_posts(self, posts: Sequence[Post], now: datetime) -> int:
        now = _aware(now, "now")
        latest = {  # a feed listing a GUID twice: last wins
            post.key: replace(
                post, published=_utc(post.published), categories=tuple(post.categories)
            )
            for post in posts
        }
        with self._write() as t:
            new = 0
            floor = max((mark.at for mark, _ in t.marks.values()), default=None)
            for key, post in latest.items():
                known = t.posts.get(key)
                new += known is None
                if known is not None and not post.dated:  # keeps the date it was given
                    post = replace(post, published=known.post.published, dated=known.post.dated)
                if known is None:
                    t.posts[key] = StoredPost(post, now, released_after(post, now, floor))
                else:
                    t.posts[key] = StoredPost(post, known.first_seen, known.released_at)
            return new

    def recent_posts(
        self, source_ids: Sequence[str], *, released_after: datetime, newest: int = 0
    ) -> list[StoredPost]:
        sources = set(source_ids)
        with self._read() as t:
            mine = [p for p in t.posts.values() if p.post.source_id in sources]
        found = {p.post.key: p for p in mine if p.released_at > released_after}
        latest = sorted(mine, key=lambda p: (p.post.published, p.post.key), reverse=True)
        for stored in latest[: max(newest, 0)]:
            found.setdefault(stored.post.key, stored)
        return list(found.values())

    def released_count(self, source_ids: Sequence[str], until: datetime) -> int:
        sources = set(source_ids)
        with self._read() as t:
            return sum(
                1
                for p in t.posts.values()
                if p.post.source_id in sources and p.released_at <= until
            )

    def sources_started(self, source_ids: Sequence[str]) -> dict[str, datetime]:
        sources = set(source_ids)
        started: dict[str, datetime] = {}
        with self._read() as t:
            for stored in t.posts.values():
                source = stored.post.source_id
                if source in sources:
                    seen = started.get(source, stored.first_seen)
                    started[source] = min(seen, stored.first_seen)
        return started

    def get_posts(self, keys: Sequence[str]) -> list[Post]:
        with self._read() as t:
            return [t.posts[key].post for key in keys if key in t.posts]

    def known_posts(
        self, source_id: str, guids: Sequence[str], links: Sequence[str]
    ) -> set[tuple[str, str]]:
        wanted_guids, wanted_links = set(guids) - {""}, set(links) - {""}
        with self._read() as t:
            return {
                (stored.post.guid, stored.post.link)
                for stored in t.posts.values()
                if stored.post.source_id == source_id
                and (stored.post.guid in wanted_guids or stored.post.link in wanted_links)
            }

    # --- source health -------------------------------------------------------------------

    def get_source_health(self, source_id: str) -> SourceHealth | None:
        with self._read() as t:
            return t.health.get(source_id)

    def save_source_health(self, health: SourceHealth) -> None:
        moments = ("last_fetch", "last_success", "failing_since", "newest_post")
        given = {name: getattr(health, name) for name in moments}
        utc = {name: None if value is None else _utc(value) for name, value in given.items()}
        with self._write() as t:
            t.health[health.source_id] = replace(health, **utc)

    def list_source_health(self) -> list[SourceHealth]:
        with self._read() as t:
            return [t.health[source_id] for source_id in sorted(t.health)]

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
        now = _aware(now, "now")
        status = SubscriptionStatus(status)
        with self._write() as t:
            key = (t.reader(email, ascii_email, now), newsletter_id)
            changed = t.subscribe(key, status, now) or (
                resubscribe and t.set_subscription(key, status, now)
            )
            return t.subscriptions[key], changed

    def add_subscriptions(
        self, entries: Sequence[tuple[str, str, str]], status: SubscriptionStatus, now: datetime
    ) -> int:
        readers = [
            NewReader(email, ascii_email, newsletter) for email, ascii_email, newsletter in entries
        ]
        return self.add_readers(readers, status, now).subscriptions

    def add_readers(
        self, entries: Sequence[NewReader], status: SubscriptionStatus, now: datetime
    ) -> Added:
        now = _aware(now, "now")
        status = SubscriptionStatus(status)
        with self._write() as t:
            known = len(t.subscribers)
            ids = {e.email: t.reader(e.email, e.ascii_email, now, e.name) for e in entries}
            added = sum(
                t.subscribe((ids[e.email], e.newsletter_id), status, now, e.cadence, e.topics)
                for e in entries
            )
            return Added(people=len(t.subscribers) - known, subscriptions=added)

    def iter_subscriptions(
        self, newsletter_id: str | None = None, status: SubscriptionStatus | None = None
    ) -> Iterator[Subscription]:
        with self._read() as t:
            found = [
                s
                for s in t.subscriptions.values()
                if newsletter_id in (None, s.newsletter_id) and status in (None, s.status)
            ]
        return iter(sorted(found, key=lambda s: (s.subscriber.email, s.newsletter_id)))

    def suppressions(self, keys: Sequence[str]) -> dict[str, datetime]:
        with self._read() as t:
            return {key: t.suppressions[key] for key in keys if key in t.suppressions}

    def remove_subscriber(self, email: str, suppression_key: str, now: datetime) -> Removal:
        now = _aware(now, "now")
        with self._write() as t:
            since = t.suppressions.setdefault(suppression_key, now)
            subscriber_id = t.emails.pop(email, None)
            if subscriber_id is None:
                return Removal(False, since)
            reader = t.subscribers.pop(subscriber_id)
            mine = [key for key in t.subscriptions if key[0] == subscriber_id]
            for key in mine:
                del t.subscriptions[key]
                del t.marks[key]
            t.zones.pop(subscriber_id, None)
            for consent_id, (holder, _) in list(t.consents.items()):
                if holder == subscriber_id:
                    del t.consents[consent_id]
            anonymous = f"removed-{secrets.token_urlsafe(12)}"
            rows = 0
            for edition_rows in t.deliveries.values():
                row = edition_rows.pop(subscriber_id, None)
                if row is None:
                    continue
                rows += 1
                row = replace(
                    row,
                    subscriber_id=anonymous,
                    email=REMOVED_ADDRESS,
                    message_id="",
                    reply=redacted(row.reply, email, reader.ascii_email),
                )
                if row.status in (PENDING, SENDING, DEFERRED):
                    row = replace(
                        row,
                        status=SUPPRESSED,
                        reply=REMOVED_REPLY,
                        updated_at=now,
                        owner=None,
                        lease_until=None,
                        not_before=None,
                    )
                edition_rows[anonymous] = row
            return Removal(True, since, subscriptions=len(mine), deliveries=rows)

    def set_timezone(self, subscriber_id: str, zone: str) -> None:
        with self._write() as t:
            reader = t.subscribers.get(subscriber_id)
            if reader is None:
                raise NotFound(f"no subscriber with id {subscriber_id!r}")
            t.subscribers[subscriber_id] = replace(reader, timezone=zone)
            t.zones[subscriber_id] = zone

    def get_subscriber(self, subscriber_id: str) -> Subscriber:
        with self._read() as t:
            found = t.subscribers.get(subscriber_id)
        if found is None:
            raise NotFound(f"no subscriber with id {subscriber_id!r}")
        return found

    def find_subscription(self, email: str, newsletter_id: str) -> Subscription | None:
        with self._read() as t:
            return t.subscriptions.get((t.emails.get(email, ""), newsletter_id))

    def list_subscriptions(self, newsletter_id: str | None = None) -> list[Subscription]:
        return list(self.iter_subscriptions(newsletter_id))

    def set_subscription_status(
        self, subscriber_id: str, newsletter_id: str, status: SubscriptionStatus, now: datetime
    ) -> bool:
        now = _aware(now, "now")
        with self._write() as t:
            key = (subscriber_id, newsletter_id)
            if key not in t.subscriptions:
                raise NotFound(
                    f"subscriber {subscriber_id!r} has no subscription to newsletter"
                    f" {newsletter_id!r}"
                )
            return t.set_subscription(key, SubscriptionStatus(status), now)

    def set_preferences(
        self,
        subscriber_id: str,
        newsletter_id: str,
        *,
        cadence: str | None,
        topics: Sequence[str] | None,
        now: datetime,
    ) -> None:
        now = _aware(now, "now")
        key = (subscriber_id, newsletter_id)
        with self._write() as t:
            current = t.subscriptions.get(key)
            if current is None:
                raise NotFound(
                    f"subscriber {subscriber_id!r} has no subscription to newsletter"
                    f" {newsletter_id!r}"
                )
            chosen = None if topics is None else tuple(sorted(set(topics)))
            t.subscriptions[key] = replace(current, cadence=cadence, topics=chosen, changed_at=now)

    def reader_groups(
        self, newsletter_id: str, readers: CadenceReaders
    ) -> list[tuple[Reader, int]]:
        with self._read() as t:
            counts = Counter(t.selection_state(key) for key in t.of_cadence(newsletter_id, readers))
        return list(counts.items())

    def readers_by_zone(
        self, newsletter_id: str, readers: CadenceReaders
    ) -> list[tuple[str, datetime | None]]:
        oldest: dict[str, datetime | None] = {}
        with self._read() as t:
            for key in t.of_cadence(newsletter_id, readers):
                zone, last = t.zones.get(key[0], ""), t.marks[key][1]
                if zone not in oldest:
                    oldest[zone] = last
                elif oldest[zone] is not None:
                    oldest[zone] = None if last is None else min(last, oldest[zone])  # type: ignore[type-var]
        return list(oldest.items())

    def reader_state(self, subscriber_id: str, newsletter_id: str) -> Reader:
        key = (subscriber_id, newsletter_id)
        with self._read() as t:
            if key not in t.subscriptions:
                raise NotFound(
                    f"subscriber {subscriber_id!r} has no subscription to newsletter"
                    f" {newsletter_id!r}"
                )
            return t.selection_state(key)

    def schedule_start(self, newsletter_id: str, cadence: str, now: datetime) -> datetime:
        now = _aware(now, "now")
        with self._write() as t:
            return t.starts.setdefault((newsletter_id, cadence), now)

    # --- sign-up ---------------------------------------------------------------------------

    def take_allowance(self, allowances: Sequence[Allowance], now: datetime) -> bool:
        now = _aware(now, "now")
        unique = {a.key: a for a in allowances}
        with self._write() as t:
            counted = {}
            for key, allowance in unique.items():
                since, uses = t.limits.get(key, (now, 0))
                if now - since >= allowance.window:
                    since, uses = now, 0
                if uses >= allowance.limit:
                    return False
                counted[key] = (since, uses + 1)
            t.limits.update(counted)
            return True

    def record_signup(
        self,
        *,
        email: str,
        ascii_email: str,
        consents: Sequence[Consent],
        confirmed: bool,
        now: datetime,
    ) -> tuple[str, list[str]]:
        now = _aware(now, "now")
        status = SubscriptionStatus.CONFIRMED if confirmed else SubscriptionStatus.PENDING
        revivable = (SubscriptionStatus.PENDING, SubscriptionStatus.UNSUBSCRIBED)
        with self._write() as t:
            subscriber_id = t.reader(email, ascii_email, now)
            changed: list[str] = []
            for consent in consents:
                key = (subscriber_id, consent.newsletter_id)
                if consent.newsletter_id in changed:
                    continue
                if not t.subscribe(key, status, now):
                    current = t.subscriptions[key]
                    if current.status not in revivable:
                        continue
                    if not t.set_subscription(key, status, now):
                        t.subscriptions[key] = replace(current, changed_at=now)
                changed.append(consent.newsletter_id)
                record = replace(
                    consent,
                    given_at=_utc(consent.given_at),
                    confirmed_at=now if confirmed else None,
                )
                t.consents[secrets.token_hex(16)] = (subscriber_id, record)
            return subscriber_id, changed

    def confirm_signup(self, subscriber_id: str, now: datetime) -> list[str]:
        now = _aware(now, "now")
        with self._write() as t:
            pending = sorted(
                newsletter_id
                for (reader, newsletter_id), s in t.subscriptions.items()
                if reader == subscriber_id and s.status is SubscriptionStatus.PENDING
            )
            for newsletter_id in pending:
                t.set_subscription((subscriber_id, newsletter_id), CONFIRMED, now)
            for consent_id, (reader, consent) in list(t.consents.items()):
                if (
                    reader == subscriber_id
                    and consent.newsletter_id in pending
                    and consent.confirmed_at is None
                ):
                    t.consents[consent_id] = (reader, replace(consent, confirmed_at=now))
            return pending

    def subscriptions_of(self, subscriber_id: str) -> list[Subscription]:
        with self._read() as t:
            found = [s for (reader, _), s in t.subscriptions.items() if reader == subscriber_id]
        return sorted(found, key=lambda s: s.newsletter_id)

    def consents_of(self, subscriber_id: str) -> list[Consent]:
        with self._read() as t:
            found = [
                (consent.given_at, consent.newsletter_id, consent_id, consent)
                for consent_id, (reader, consent) in t.consents.items()
                if reader == subscriber_id
            ]
        return [consent for *_, consent in sorted(found, key=lambda f: f[:3])]

    def change_email(self, subscriber_id: str, email: str, ascii_email: str) -> None:
        with self._write() as t:
            holder = t.emails.get(email)
            if holder is not None and holder != subscriber_id:
                raise AlreadyExists(f"another reader already has the address {email!r}")
            current = t.subscribers.get(subscriber_id)
            if current is None:
                raise NotFound(f"no subscriber with id {subscriber_id!r}")
            del t.emails[current.email]
            moved = replace(current, email=email, ascii_email=ascii_email)
            t.subscribers[subscriber_id] = moved
            t.emails[email] = subscriber_id
            for key, subscription in t.subscriptions.items():
                if key[0] == subscriber_id:
                    t.subscriptions[key] = replace(subscription, subscriber=moved)

    def purge_pending(self, before: datetime, *, limits_before: datetime) -> int:
        before = _aware(before, "before")
        limits_before = _aware(limits_before, "limits_before")
        with self._write() as t:
            stale = [
                key
                for key, s in t.subscriptions.items()
                if s.status is SubscriptionStatus.PENDING and s.changed_at < before
            ]
            for reader, newsletter_id in stale:
                del t.subscriptions[(reader, newsletter_id)]
                t.marks.pop((reader, newsletter_id), None)
                for consent_id, (holder, consent) in list(t.consents.items()):
                    if (holder, consent.newsletter_id) == (reader, newsletter_id) and (
                        consent.confirmed_at is None
                    ):
                        del t.consents[consent_id]
            for reader in {reader for reader, _ in stale}:
                if (
                    any(key[0] == reader for key in t.subscriptions)
                    or any(reader in rows for rows in t.deliveries.values())
                    or any(holder == reader for holder, _ in t.consents.values())
                ):
                    continue
                del t.emails[t.subscribers.pop(reader).email]
                t.zones.pop(reader, None)
            for key, (since, _) in list(t.limits.items()):
                if since < limits_before:
                    del t.limits[key]
            return len(stale)

    # --- editions ------------------------------------------------------------------------

    def open_edition(
        self,
        draft: Draft,
        *,
        message_id: Callable[[str], str],
        due: Due | None = None,
        no_readers: str = "",
    ) -> tuple[Edition, int] | None:
        now = _aware(draft.now, "now")
        with self._write() as t:
            twin = t.find(draft.newsletter_id, draft.period_key)
            if twin is not None:
                return twin, -1
            if draft.edition_id in t.editions:
                raise AlreadyExists(f"edition id {draft.edition_id!r} is already taken")
            sources = set(draft.source_ids)
            released = sum(
                1 for p in t.posts.values() if p.post.source_id in sources and p.released_at <= now
            )
            if released != draft.released:
                return None  # posts arrived since the draft: the caller selects again
            rows: dict[str, _Row] = {}
            for key in t.of_cadence(draft.newsletter_id, draft.readers):
                verdict = draft.verdicts.get(t.selection_state(key))
                last_sent = t.marks[key][1]
                if verdict is None or (
                    due is not None and not due(t.zones.get(key[0], ""), last_sent)
                ):
                    continue
                subscriber = t.subscribers[key[0]]
                if verdict.variant is not None:
                    rows[subscriber.id] = _Row(
                        subscriber.id,
                        subscriber.ascii_email,
                        message_id(subscriber.id),
                        variant=verdict.variant,
                    )
                    last_sent = now
                t.marks[key] = (verdict.mark, last_sent)
            variants = draft.variants if rows else ()
            nobody = draft.variants or not draft.verdicts  # something to send, or no reader
            keys = tuple(dict.fromkeys(k for v in variants for k in v.post_keys))
            edition = Edition(
                draft.edition_id,
                draft.newsletter_id,
                draft.period_key,
                now,
                EditionStatus.SENDING if rows else EditionStatus.SKIPPED,
                keys,
                subject=variants[0].rendered.subject if variants else "",
                error="" if rows or not nobody else no_readers,
                cadence=draft.readers.cadence_id,
                variants=max(len(variants), 1),
            )
            t.editions[draft.edition_id] = edition
            if rows:
                t.renderings[draft.edition_id] = {
                    n: Rendered(v.rendered.subject, v.rendered.html, v.rendered.text)
                    for n, v in enumerate(variants)
                }
                t.deliveries[draft.edition_id] = rows
            return edition, len(rows)

    def get_edition(self, edition_id: str) -> Edition:
        with self._read() as t:
            return t.edition(edition_id)

    def edition_ids(self, prefix: str = "") -> list[str]:
        with self._read() as t:
            return sorted(edition_id for edition_id in t.editions if edition_id.startswith(prefix))

    def find_edition(self, newsletter_id: str, period_key: str) -> Edition | None:
        with self._read() as t:
            return t.find(newsletter_id, period_key)

    def list_editions(
        self, newsletter_id: str | None = None, limit: int = 50
    ) -> list[EditionSummary]:
        with self._read() as t:
            found = t.ordered(
                newest=True,
                keep=lambda e: newsletter_id is None or e.newsletter_id == newsletter_id,
            )
            return [t.summary(edition) for edition in (found if limit < 0 else found[:limit])]

    def edition_summary(self, edition_id: str) -> EditionSummary:
        with self._read() as t:
            return t.summary(t.edition(edition_id))

    def archived_editions(self, newsletter_id: str, *, offset: int, limit: int) -> list[Edition]:
        went_out = (EditionStatus.SENDING, EditionStatus.PAUSED, EditionStatus.HELD, SENT)
        with self._read() as t:
            found = t.ordered(
                newest=True,
                keep=lambda e: e.newsletter_id == newsletter_id and e.status in went_out,
            )
        return found[offset : offset + limit]

    def editions_with_status(self, status: EditionStatus) -> list[Edition]:
        with self._read() as t:
            return t.ordered(newest=False, keep=lambda e: e.status == status)

    def set_edition_status(
        self,
        edition_id: str,
        status: EditionStatus,
        error: str = "",
        *,
        only_from: Sequence[EditionStatus] | None = None,
    ) -> bool:
        with self._write() as t:
            edition = t.edition(edition_id)
            if only_from is not None and edition.status not in only_from:
                return False
            t.editions[edition_id] = replace(edition, status=EditionStatus(status), error=error)
            return True

    def get_renderings(self, edition_id: str) -> dict[int, Rendered]:
        with self._read() as t:
            return dict(t.renderings.get(edition_id, {}))

    def cancel_unsent(self, edition_id: str, now: datetime) -> int:
        now = _aware(now, "now")
        with self._write() as t:
            t.edition(edition_id)  # NotFound for an unknown id
            rows = t.rows(edition_id)
            chosen = [row for row in rows.values() if row.status in (PENDING, DEFERRED)]
            for row in chosen:
                rows[row.subscriber_id] = replace(
                    row, status=DeliveryStatus.CANCELLED, reply=CANCELLED_REPLY, updated_at=now
                )
            return len(chosen)

    def reopen_deliveries(self, edition_id: str, statuses: Sequence[DeliveryStatus]) -> int:
        with self._write() as t:
            t.edition(edition_id)  # NotFound for an unknown id
            rows = t.rows(edition_id)
            chosen = [row for row in rows.values() if row.status in statuses]
            failed = {r.subscriber_id for r in chosen if r.status is DeliveryStatus.FAILED}
            for key, subscription in list(t.subscriptions.items()):
                # The operator judged the failure not the address's: the bounce is undone
                # everywhere, as it was made everywhere (changed_at kept).
                if key[0] in failed and subscription.status is SubscriptionStatus.BOUNCED:
                    t.subscriptions[key] = replace(subscription, status=CONFIRMED)
            for row in chosen:
                rows[row.subscriber_id] = replace(
                    row,
                    status=PENDING,
                    attempts=0,
                    not_before=None,
                    owner=None,
                    lease_until=None,
                    duplicate=row.duplicate or row.status is UNCERTAIN,
                )
            return len(chosen)

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
        now = _aware(now, "now")
        with self._write() as t:
            edition = t.editions.get(edition_id)
            if edition is None or edition.status is not EditionStatus.SENDING:
                return Claimed([], 0)
            if quotas:
                every = [row for rows in t.deliveries.values() for row in rows.values()]
                holding = sum(row.status is SENDING for row in every)
                for quota in quotas:
                    since = _utc(quota.since)
                    sent = sum(
                        row.status is DeliveryStatus.SENT
                        and row.updated_at is not None
                        and row.updated_at > since
                        for row in every
                    )
                    left = quota.limit - sent - holding
                    if left < limit:
                        limit = max(0, left)
                        if limit == 0:
                            return Claimed([], 0, blocked_by=quota.window)
            rows = t.rows(edition_id)
            claimed: list[ClaimedRow] = []
            suppressed = 0
            for kind in (PENDING, DEFERRED, UNCERTAIN, SENDING):  # in this order, as SQL does
                duplicate = kind in (UNCERTAIN, SENDING)  # the reader may have it already
                wanted = limit - len(claimed)
                if wanted <= 0:
                    break
                due = (row for row in rows.values() if _claimable(row, kind, now))
                for row in list(islice(due, wanted)):
                    subscription = t.subscriptions.get((row.subscriber_id, edition.newsletter_id))
                    reader = None if subscription is None else subscription.status
                    if reader is not CONFIRMED:
                        reason = LEFT_REPLY.get(reader, LEFT_REPLY[None])
                        rows[row.subscriber_id] = replace(
                            row,
                            status=SUPPRESSED,
                            reply=reason,
                            updated_at=now,
                            owner=None,
                            lease_until=None,
                        )
                        suppressed += 1
                        continue
                    taken = replace(
                        row,
                        status=SENDING,
                        owner=owner,
                        lease_until=_utc(lease_until),
                        duplicate=row.duplicate or duplicate,
                    )
                    rows[row.subscriber_id] = taken
                    claimed.append(
                        ClaimedRow(
                            taken.subscriber_id,
                            taken.email,
                            taken.message_id,
                            taken.attempts,
                            taken.duplicate,
                            taken.variant,
                        )
                    )
            return Claimed(claimed, suppressed)

    def record_batch(
        self, edition_id: str, owner: str, outcomes: Sequence[Outcome], now: datetime
    ) -> int:
        now = _aware(now, "now")
        if not outcomes:
            return 0
        for outcome in outcomes:  # refused with the words of ``ledger.record_batch``
            if outcome.retry_at is not None and outcome.retry_at.utcoffset() is None:
                raise ValueError(
                    f"retry_at {outcome.retry_at.isoformat()} is naive: pass aware UTC"
                )
        retries = [None if o.retry_at is None else o.retry_at.astimezone(UTC) for o in outcomes]
        with self._write() as t:
            rows = t.rows(edition_id)
            written = 0
            bounced: set[str] = set()  # only failures this owner could still record
            for outcome, retry_at in zip(outcomes, retries, strict=True):
                row = rows.get(outcome.subscriber_id)
                if row is None or row.owner != owner or row.status is not SENDING:
                    continue  # fenced: the owner lost the row
                rows[row.subscriber_id] = replace(
                    row,
                    status=DeliveryStatus(outcome.status),
                    reply=outcome.reply,
                    attempts=row.attempts + (1 if outcome.count_attempt else 0),
                    updated_at=now,
                    not_before=retry_at,
                    owner=None,
                    lease_until=None,
                )
                written += 1
                if outcome.status is DeliveryStatus.FAILED:
                    bounced.add(outcome.subscriber_id)
            for key, subscription in list(t.subscriptions.items()):
                if key[0] in bounced and subscription.status is CONFIRMED:
                    t.set_subscription(key, SubscriptionStatus.BOUNCED, now)
            return written

    def renew_leases(self, edition_id: str, owner: str, lease_until: datetime) -> int:
        lease = _utc(lease_until)
        return self._change_held(edition_id, owner, None, lambda r: replace(r, lease_until=lease))

    def _change_held(
        self, edition_id: str, owner: str, only: set[str] | None, change: Callable[[_Row], _Row]
    ) -> int:
        """Apply ``change`` to the ``sending`` rows ``owner`` holds (those in ``only``)."""
        with self._write() as t:
            rows = t.rows(edition_id)
            held = [
                row
                for row in rows.values()
                if row.status is SENDING
                and row.owner == owner
                and (only is None or row.subscriber_id in only)
            ]
            for row in held:
                rows[row.subscriber_id] = change(row)
            return len(held)

    def sent_since(self, since: datetime) -> int:
        since = _utc(since)
        with self._read() as t:
            return sum(
                row.status is DeliveryStatus.SENT
                and row.updated_at is not None
                and row.updated_at > since
                for rows in t.deliveries.values()
                for row in rows.values()
            )

    def iter_deliveries(
        self,
        edition_id: str,
        *,
        status: DeliveryStatus | None = None,
        email: str | None = None,
    ) -> Iterator[Delivery]:
        needle = (email or "").lower()
        with self._read() as t:
            t.edition(edition_id)  # NotFound before the first row is asked for
            found = [
                row.delivery(edition_id)
                for row in t.rows(edition_id).values()
                if (status is None or row.status == status) and needle in row.email.lower()
            ]
        return iter(sorted(found, key=lambda d: (d.email, d.subscriber_id)))

    def list_deliveries(self, edition_id: str) -> list[Delivery]:
        return list(self.iter_deliveries(edition_id))


def _implements_the_port(store: MemoryStore) -> Store:
    """Never called: makes mypy prove that ``MemoryStore`` satisfies ``Store``."""
    return store
