"""Use cases of the subscriber list: validate addresses, add, import, remove, unsubscribe.

(Double opt-in signup through the web comes later; addresses added here by an editor
are taken as already consented, as in listmonk's "preconfirmed" imports.)
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from email_validator import EmailNotValidError, validate_email

from digest.config import NewsletterConfig
from digest.config_table import is_zone
from digest.errors import InvalidAddress, NotFound, Suppressed
from digest.models import Added, NewReader, Removal, Subscription, SubscriptionStatus
from digest.ports import Store
from digest.reader_csv import ReaderRow, rows_of_text
from digest.tokens import Keys


def normalize_address(raw: str) -> tuple[str, str]:
    """``(normalized, ascii_form)`` of an address, or ``InvalidAddress`` naming it.

    The domain goes out as an A-label (xn--); a non-ASCII local part needs SMTPUTF8,
    which digest does not send, so it is refused here rather than failing forever later.
    """
    candidate = raw.strip()
    try:
        info = validate_email(candidate, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise InvalidAddress(f"{candidate!r} is not a usable email address: {exc}") from exc
    # Mailbox providers treat local parts case-insensitively, and so does digest (as
    # Mailchimp and listmonk do): Ana@… and ana@… are one reader, never two copies.
    normalized = info.normalized.lower()
    return normalized, (info.ascii_email or info.normalized).lower()


def add_subscriber(
    store: Store, raw_email: str, newsletter_id: str, known: Collection[str], now: datetime
) -> tuple[Subscription, bool]:
    """A reader is added, confirmed at once, reviving an earlier unsubscribe. (Without the
    suppression check and choices of ``add_reader``, which the editor's command uses.)"""
    _require_newsletter(newsletter_id, known)
    email, ascii_email = normalize_address(raw_email)
    return store.add_subscription(
        email=email,
        ascii_email=ascii_email,
        newsletter_id=newsletter_id,
        status=SubscriptionStatus.CONFIRMED,
        now=now,
        resubscribe=True,
    )


def suppression_key(secret: bytes, email: str) -> str:
    """The keyed hash a removed address is remembered by: HMAC-SHA256 of the normalized
    address under the site's secret, so that the suppression list names nobody to whoever
    reads the database without the key."""
    return hmac.new(secret, b"suppression\x00" + email.encode(), hashlib.sha256).hexdigest()


def check_choices(
    newsletter: NewsletterConfig, cadence: str | None, topics: Sequence[str] | None
) -> tuple[str | None, tuple[str, ...] | None]:
    """A reader's cadence and topics as stored (None: the default cadence, every topic, as
    for a reader who chose them all); ``NotFound`` naming an id the newsletter does not
    offer, and the ones it does."""
    if cadence:
        offered = [c.id for c in newsletter.cadences]
        if cadence not in offered:
            raise NotFound(
                f"unknown cadence {cadence!r} of newsletter {newsletter.id}; it offers:"
                f" {', '.join(offered)}"
            )
    if not topics:
        return cadence or None, None
    offered = [t.id for t in newsletter.topics]
    for topic in topics:
        if topic not in offered:
            raise NotFound(
                f"unknown topic {topic!r} of newsletter {newsletter.id}; it offers:"
                f" {', '.join(offered) or 'no topics (leave topics out)'}"
            )
    if set(topics) == set(offered):
        return cadence or None, None  # every topic: also the ones added later
    return cadence or None, tuple(sorted(set(topics)))


def effective_choices(
    subscription: Subscription, newsletter: NewsletterConfig | None
) -> tuple[str, tuple[str, ...]]:
    """The cadence id and topic ids a subscription gets now, defaults spelled out, topics in
    the config's order (as stored when its newsletter is no longer configured)."""
    if newsletter is None:
        return subscription.cadence or "", subscription.topics or ()
    chosen = subscription.topics
    topics = tuple(t.id for t in newsletter.topics if chosen is None or t.id in chosen)
    return newsletter.cadence(subscription.cadence).id, topics


def suppression_keys(keys: Keys | bytes, email: str) -> list[str]:
    """The keys ``email`` may be suppressed under: one per signing key still accepted, so
    that a key rotation (``DIGEST_PREVIOUS_SECRET_KEYS``) keeps the suppression list."""
    return [suppression_key(key, email) for key in Keys.of(keys).accepted]


def _refuse_suppressed(store: Store, keys: Keys | bytes, email: str) -> None:
    removed = store.suppressions(suppression_keys(keys, email))
    for when in removed.values():
        raise Suppressed(
            f"{email} is suppressed (removed on {when:%Y-%m-%d}): digest does not add a"
            " removed reader again"
        )


def add_reader(
    store: Store,
    raw_email: str,
    newsletter: NewsletterConfig,
    *,
    cadence: str | None = None,
    topics: Sequence[str] | None = None,
    secret: Keys | bytes,
    now: datetime,
) -> tuple[Subscription, bool]:
    """The editor adds a reader (confirmed at once, reviving an unsubscribe) with the
    cadence and topics given, which replace the ones of an existing subscription.
    ``Suppressed`` for a removed address."""
    email, _ = normalize_address(raw_email)
    chosen_cadence, chosen_topics = check_choices(newsletter, cadence, topics)
    _refuse_suppressed(store, secret, email)
    subscription, changed = add_subscriber(store, email, newsletter.id, [newsletter.id], now)
    if not cadence and not topics:
        return subscription, changed
    wanted = (
        chosen_cadence if cadence else subscription.cadence,
        chosen_topics if topics else subscription.topics,
    )
    if wanted == (subscription.cadence, subscription.topics):
        return subscription, changed
    sid = subscription.subscriber.id
    store.set_preferences(sid, newsletter.id, cadence=wanted[0], topics=wanted[1], now=now)
    return replace(subscription, cadence=wanted[0], topics=wanted[1], changed_at=now), True


def remove_reader(store: Store, raw_email: str, *, secret: bytes, now: datetime) -> Removal:
    """Erase a reader on request and suppress their address (see ``Readers.remove_subscriber``)."""
    email, _ = normalize_address(raw_email)
    return store.remove_subscriber(email, suppression_key(secret, email), now)


@dataclass(frozen=True, slots=True)
class ImportDefaults:
    """What an import gives rows that do not say: ``--newsletter``, ``--cadence``, ``--topics``."""

    newsletters: tuple[str, ...] = ()
    cadence: str | None = None
    topics: tuple[str, ...] | None = None


@dataclass
class ImportReport:
    """What an import did. Lists hold ``(line, message)``; ``suppressed`` ``(line, email,
    removed at)``."""

    rows: int = 0  # data rows read
    people: int = 0  # distinct addresses imported (new or already on the list)
    new_people: int = 0
    added: int = 0  # subscriptions created
    unchanged: int = 0  # subscriptions that were there already, left as they were
    skipped: list[tuple[int, str]] = field(default_factory=list)  # the file says: not subscribed
    suppressed: list[tuple[int, str, datetime]] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)


IMPORT_BATCH = 5000  # rows per transaction: quick enough that senders and the web wait little
SUBSCRIBED = frozenset({"", "confirmed", "subscribed", "active"})  # a status column's yes


def import_readers(
    store: Store,
    rows: Iterable[ReaderRow],
    *,
    defaults: ImportDefaults,
    newsletters: Mapping[str, NewsletterConfig],
    secret: Keys | bytes,
    now: datetime,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import readers, confirmed (the editor vouches for their consent), a batch per
    transaction; each bad row is reported with its line and the rest imported.

    Existing subscriptions are left as they are: an import never revives an unsubscribe
    nor changes a reader's choices. Suppressed addresses are skipped and reported, as are
    rows whose ``status`` says they are not subscribed (an export of unsubscribed readers).
    ``progress`` is told the rows read after each batch.
    """
    report = ImportReport()
    people: set[str] = set()
    batch: list[tuple[int, list[NewReader]]] = []
    for row in rows:
        report.rows += 1
        if row.status not in SUBSCRIBED:
            report.skipped.append((row.line, f"status {row.status!r} in the file: not imported"))
            continue
        try:
            batch.append((row.line, _entries(row, defaults, newsletters)))
        except (InvalidAddress, NotFound) as exc:
            report.errors.append((row.line, str(exc)))
            continue
        if len(batch) >= IMPORT_BATCH:
            _import(store, batch, report, people, secret, now)
            if progress is not None:
                progress(report.rows)
    _import(store, batch, report, people, secret, now)
    report.people = len(people)
    if progress is not None:
        progress(report.rows)
    return report


def _entries(
    row: ReaderRow, defaults: ImportDefaults, newsletters: Mapping[str, NewsletterConfig]
) -> list[NewReader]:
    if not row.email:
        raise InvalidAddress("no address in the email column")
    email, ascii_email = normalize_address(row.email)
    targets = row.newsletters or defaults.newsletters
    if not targets:
        raise NotFound("no newsletter given: add a newsletters column or pass --newsletter")
    entries = []
    for newsletter_id in targets:
        _require_newsletter(newsletter_id, newsletters)
        cadence, topics = check_choices(
            newsletters[newsletter_id],
            row.cadence or defaults.cadence,
            row.topics if row.topics is not None else defaults.topics,
        )
        entries.append(NewReader(email, ascii_email, newsletter_id, row.name, cadence, topics))
    return entries


def _import(
    store: Store,
    batch: list[tuple[int, list[NewReader]]],
    report: ImportReport,
    people: set[str],
    secret: Keys | bytes,
    now: datetime,
) -> None:
    keys = {entries[0].email: suppression_keys(secret, entries[0].email) for _, entries in batch}
    removed = store.suppressions([key for each in keys.values() for key in each])
    wanted: list[NewReader] = []
    for line, entries in batch:
        email = entries[0].email
        when = next((removed[key] for key in keys[email] if key in removed), None)
        if when is not None:
            report.suppressed.append((line, email, when))
            continue
        people.add(email)
        wanted.extend(entries)
    added = store.add_readers(wanted, SubscriptionStatus.CONFIRMED, now) if wanted else Added(0, 0)
    report.new_people += added.people
    report.added += added.subscriptions
    report.unchanged += len({(e.email, e.newsletter_id) for e in wanted}) - added.subscriptions
    batch.clear()


def import_csv(
    store: Store,
    text: str,
    default_newsletters: Sequence[str],
    newsletters: Mapping[str, NewsletterConfig],
    now: datetime,
    *,
    secret: Keys | bytes,
) -> ImportReport:
    """Import CSV text (tests and benchmarks seeding a list); see ``import_readers``."""
    return import_readers(
        store,
        rows_of_text(text),
        defaults=ImportDefaults(tuple(default_newsletters)),
        newsletters=newsletters,
        secret=secret,
        now=now,
    )


def unsubscribe(store: Store, subscriber_id: str, newsletter_id: str, now: datetime) -> bool:
    """Honour an unsubscribe at once; True if it changed anything (idempotent)."""
    return store.set_subscription_status(
        subscriber_id, newsletter_id, SubscriptionStatus.UNSUBSCRIBED, now
    )


def _require_newsletter(newsletter_id: str, known: Collection[str]) -> None:
    if newsletter_id not in known:
        raise NotFound(
            f"unknown newsletter {newsletter_id!r}; the config declares: "
            f"{', '.join(sorted(known)) or 'none'}"
        )


def check_timezone(zone: str) -> str:
    """``zone`` stripped, if it is an IANA time zone or "" (none); else ``NotFound``."""
    zone = zone.strip()
    if zone and not is_zone(zone):
        raise NotFound(
            f"unknown time zone {zone!r}; use an IANA name like 'Europe/Prague' or"
            " 'America/New_York'"
        )
    return zone
