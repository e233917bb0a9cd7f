"""Use cases of one edition: select and render it, open it once, send it resumably.

The delivery ledger (edition x subscriber) is the only truth of who got what: a row is
written (with its Message-ID) before the first attempt and updated only after the mailer
answered, so a crash at any point re-sends at most the messages that were in flight,
each with the same Message-ID.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from digest.config import NewsletterConfig, SiteConfig
from digest.errors import ConfigError, DigestError, TransportError
from digest.message import build_message, message_id_for
from digest.models import (
    Claim,
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    SendResult,
)
from digest.ports import Clock, Mailer, Store
from digest.render import Rendered, Renderer, personalize
from digest.select import Selection, select_posts
from digest.tokens import unsubscribe_token

MAX_ATTEMPTS = 8  # temporary failures (4xx) before a delivery is given up as expired
RETRY_AFTER = timedelta(minutes=10)  # first backoff; doubles each time (about 21 h in all)
LEASE = timedelta(minutes=15)  # a claimed row whose sender went silent this long is free
NO_READERS = "no confirmed subscribers: nothing sent, posts kept for the next edition"


def unsubscribe_url(site: SiteConfig, secret: bytes, subscriber_id: str, newsletter_id: str) -> str:
    """The reader's one-click unsubscribe link (served by ``digest.web``)."""
    return f"{site.base_url}/u/{unsubscribe_token(secret, subscriber_id, newsletter_id)}"


def personal_message(
    rendered: Rendered,
    site: SiteConfig,
    newsletter: NewsletterConfig,
    secret: bytes,
    *,
    subscriber_id: str,
    email: str,
    message_id: str,
    now: datetime,
) -> bytes:
    """One reader's copy: their unsubscribe link filled in, headers around the edition."""
    url = unsubscribe_url(site, secret, subscriber_id, newsletter.id)
    html, text = personalize(rendered, unsubscribe_url=url)
    return build_message(
        subject=rendered.subject,
        html=html,
        text=text,
        site=site,
        newsletter=newsletter,
        recipient=email,
        message_id=message_id,
        unsubscribe_url=url,
        now=now,
    )


@dataclass(frozen=True, slots=True)
class Plan:
    """What the next edition would hold: the verdict on every candidate and the rendering."""

    selection: Selection
    rendered: Rendered | None


def plan_edition(
    store: Store,
    renderer: Renderer,
    site: SiteConfig,
    newsletter: NewsletterConfig,
    now: datetime,
    edition_id: str = "preview",
) -> Plan:
    """Select and render the next edition without recording anything."""
    first = store.first_edition(newsletter.id)
    previous = store.last_edition(newsletter.id)
    selection = select_posts(
        store.candidate_posts(newsletter.id, newsletter.source_ids),
        now=now,
        max_items=newsletter.max_items,
        started_at=first.created_at if first else None,
        sources_started=store.sources_started(newsletter.source_ids),
        previous_at=previous.created_at if previous else None,
    )
    if not selection.posts:
        return Plan(selection, None)
    rendered = renderer.render_edition(
        site=site, newsletter=newsletter, posts=selection.posts, edition_id=edition_id, now=now
    )
    return Plan(selection, rendered)


def open_edition(
    store: Store,
    renderer: Renderer,
    site: SiteConfig,
    newsletter: NewsletterConfig,
    secret: bytes,
    period_key: str,
    now: datetime,
) -> tuple[Edition, bool]:
    """Create the edition of ``period_key`` once; ``(edition, created)``.

    With no new posts, or no confirmed reader, the edition is recorded as skipped and
    nothing is sent (without readers the posts stay for the next edition). Otherwise
    its rendering is archived and one ledger row per confirmed reader materialized.
    A second call for the same period (another scheduler, a restart) returns the
    existing edition with ``created=False``.
    """
    existing = store.find_edition(newsletter.id, period_key)
    if existing is not None:
        return existing, False
    edition_id = secrets.token_hex(16)
    # Nobody to send to: record the firing, but keep the posts for the first readers.
    has_readers = bool(store.confirmed_subscribers(newsletter.id))
    plan = plan_edition(store, renderer, site, newsletter, now, edition_id) if has_readers else None
    rendered = plan.rendered if plan else None
    edition = store.create_edition(
        newsletter_id=newsletter.id,
        period_key=period_key,
        now=now,
        post_keys=[post.key for post in plan.selection.posts] if plan and rendered else (),
        status=EditionStatus.SENDING if rendered else EditionStatus.SKIPPED,
        subject=rendered.subject if rendered else "",
        edition_id=edition_id,
    )
    if edition is None:  # lost a race against another process: theirs stands
        twin = store.find_edition(newsletter.id, period_key)
        assert twin is not None, "create_edition refused without an existing edition"
        return twin, False
    if not has_readers:
        store.set_edition_status(edition.id, EditionStatus.SKIPPED, NO_READERS)
        return store.get_edition(edition.id), True
    if rendered is not None:
        _archive(store, edition.id, rendered)
        materialize(store, site, newsletter, secret, edition)
    return edition, True


def materialize(
    store: Store, site: SiteConfig, newsletter: NewsletterConfig, secret: bytes, edition: Edition
) -> int:
    """Write a pending ledger row, with its Message-ID, for every confirmed reader."""
    rows = [
        Delivery(
            edition_id=edition.id,
            subscriber_id=reader.id,
            email=reader.ascii_email,
            message_id=message_id_for(secret, edition.id, reader.id, site.sender_domain),
            status=DeliveryStatus.PENDING,
        )
        for reader in store.confirmed_subscribers(newsletter.id)
    ]
    return store.add_deliveries(rows)


@dataclass
class SendReport:
    edition: Edition
    counts: Counter[DeliveryStatus] = field(default_factory=Counter)
    paused: str = ""  # the transport fault that paused the edition, if any

    @property
    def recipients(self) -> int:
        return sum(self.counts.values())


def _rendering(
    store: Store,
    renderer: Renderer,
    site: SiteConfig,
    newsletter: NewsletterConfig,
    edition: Edition,
) -> Rendered:
    archived = store.get_rendering(edition.id)
    if archived is not None:
        return Rendered(*archived)
    # Crashed between creating the edition and archiving it: render the same posts again.
    rendered = renderer.render_edition(
        site=site,
        newsletter=newsletter,
        posts=store.get_posts(edition.post_keys),
        edition_id=edition.id,
        now=edition.created_at,
    )
    _archive(store, edition.id, rendered)
    return rendered


def _archive(store: Store, edition_id: str, rendered: Rendered) -> None:
    store.save_rendering(
        edition_id, subject=rendered.subject, html=rendered.html, text=rendered.text
    )


async def send_edition(
    store: Store,
    mailer: Mailer,
    renderer: Renderer,
    site: SiteConfig,
    newsletter: NewsletterConfig,
    secret: bytes,
    edition: Edition,
    clock: Clock,
    *,
    concurrency: int = 4,
    on_progress: Callable[[int, int], None] | None = None,
) -> SendReport:
    """Send every unfinished delivery of ``edition``; safe to call again at any time.

    Each row is claimed in the store before its message is built (so two senders, even
    in two processes, never send it both) and its outcome recorded as soon as the
    mailer answers. A reader who left meanwhile is suppressed at their turn. Deferred
    rows wait out an exponential backoff. A fault that is not the reader's (the
    transport, the config, a bug) pauses the edition with the error; the remaining rows
    stay for a later resume. ``on_progress(done, total)`` follows each recorded row.
    """
    if edition.status is EditionStatus.SKIPPED:
        return SendReport(edition)
    rendered = _rendering(store, renderer, site, newsletter, edition)
    if not store.list_deliveries(edition.id):
        materialize(store, site, newsletter, secret, edition)
    if edition.status is EditionStatus.PAUSED:
        store.set_edition_status(edition.id, EditionStatus.SENDING)
    started = clock()
    todo = [row for row in store.unfinished_deliveries(edition.id) if _due(row, started)]
    gate = asyncio.Semaphore(max(1, concurrency))
    faults: list[str] = []
    done = 0

    async def deliver(row: Delivery) -> None:
        nonlocal done
        async with gate:
            if faults:  # something is wrong beyond this reader: leave the rest for a resume
                return
            claim = Claim.TAKEN
            try:
                now = clock()
                claim = await asyncio.to_thread(
                    store.claim_delivery,
                    edition.id,
                    row.subscriber_id,
                    newsletter.id,
                    now,
                    now - LEASE,
                )
                if claim is not Claim.CLAIMED:
                    return
                message = personal_message(
                    rendered,
                    site,
                    newsletter,
                    secret,
                    subscriber_id=row.subscriber_id,
                    email=row.email,
                    message_id=row.message_id,
                    now=now,
                )
                result = await mailer.send(
                    sender=site.sender_email, recipient=row.email, message=message
                )
                result = _give_up_if_exhausted(result, row.attempts + 1)
                await asyncio.to_thread(
                    store.record_delivery, edition.id, row.subscriber_id, result, clock()
                )
            except Exception as exc:  # even a bug must pause the edition, not orphan the rest
                known = isinstance(exc, DigestError)
                faults.append(str(exc) if known else f"unexpected {type(exc).__name__}: {exc}")
                if claim is Claim.CLAIMED and isinstance(exc, TransportError | ConfigError):
                    # Nothing went out: the row is free again at once, no lease to wait.
                    await asyncio.to_thread(store.release_delivery, edition.id, row.subscriber_id)
                return
            done += 1
            if on_progress is not None:
                on_progress(done, len(todo))

    await asyncio.gather(*(deliver(row) for row in todo))
    return finish(store, edition, faults[0] if faults else "")


def _due(row: Delivery, now: datetime) -> bool:
    """A deferred row waits 10 min, 20 min, 40 min, ... after each temporary failure."""
    if row.status is not DeliveryStatus.DEFERRED or row.updated_at is None:
        return True
    wait: timedelta = RETRY_AFTER * 2 ** max(0, row.attempts - 1)
    return now >= row.updated_at + wait


def _give_up_if_exhausted(result: SendResult, attempts: int) -> SendResult:
    if result.status is DeliveryStatus.DEFERRED and attempts >= MAX_ATTEMPTS:
        return SendResult(
            DeliveryStatus.EXPIRED, f"gave up after {attempts} attempts: {result.reply}"
        )
    return result


def finish(store: Store, edition: Edition, fault: str) -> SendReport:
    """Settle the edition's status from its ledger: paused, still sending, or sent."""
    rows = store.list_deliveries(edition.id)
    counts = Counter(row.status for row in rows)
    if fault:
        store.set_edition_status(edition.id, EditionStatus.PAUSED, fault)
    elif all(row.status.is_final for row in rows):
        store.set_edition_status(edition.id, EditionStatus.SENT)
    return SendReport(store.get_edition(edition.id), counts, fault)
