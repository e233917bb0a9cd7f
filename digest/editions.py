"""Use cases of one edition's life: plan, open once, send resumably, pause, resume, cancel, resend.

The delivery ledger (edition x subscriber) is the only truth of who got what. An edition
is opened in one transaction with its posts, its rendering and a row (with its
Message-ID) per reader, so there is never a half-written edition to repair; the
rendering is handed to the sender directly. Sending is :mod:`digest.sending`'s work.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from digest import links
from digest.config import CadenceConfig, NewsletterConfig, SiteConfig
from digest.errors import DigestError
from digest.letters import LetterTemplate
from digest.message import message_id_for
from digest.models import (
    ClaimedRow,
    DeliveryStatus,
    Edition,
    EditionStatus,
    EditionSummary,
    Letter,
    Rendered,
)
from digest.planning import plan_edition
from digest.ports import Clock, Due, Ledger, Mailer, Store
from digest.render import PREFERENCES_URL, UNSUBSCRIBE_URL, Renderer
from digest.sending import LetterFor, Sender, SendPolicy, SendRun
from digest.tokens import preferences_token, unsubscribe_token

NO_READERS = "no confirmed subscribers: nothing sent, posts kept for the next edition"
OPEN_ATTEMPTS = 5  # selections made again when posts arrived while opening


def unsubscribe_url(site: SiteConfig, secret: bytes, subscriber_id: str, newsletter_id: str) -> str:
    """The reader's one-click unsubscribe link (served by ``digest.web``)."""
    return links.unsubscribe_url(site, unsubscribe_token(secret, subscriber_id, newsletter_id))


def letter_template(
    rendered: Rendered, site: SiteConfig, newsletter: NewsletterConfig
) -> LetterTemplate:
    """The edition's per-reader template (built once per edition, or per variant)."""
    return LetterTemplate.build(
        rendered,
        site,
        newsletter,
        slots=[UNSUBSCRIBE_URL, PREFERENCES_URL],
        unsubscribe_slot=UNSUBSCRIBE_URL,
    )


def letters_for(
    templates: Mapping[int, LetterTemplate], site: SiteConfig, newsletter_id: str, secret: bytes
) -> LetterFor:
    """Each claimed row's letter: its variant's template with its recipient, Message-ID and
    signed links (unsubscribe from this newsletter, the preference center) filled in."""

    def letter(row: ClaimedRow, now: datetime) -> Letter:
        reader = row.subscriber_id
        urls = {
            UNSUBSCRIBE_URL: unsubscribe_url(site, secret, reader, newsletter_id),
            PREFERENCES_URL: links.preferences_url(site, preferences_token(secret, reader)),
        }
        template = templates.get(row.variant) or templates[0]
        return template.letter(recipient=row.email, message_id=row.message_id, links=urls, now=now)

    return letter


def personal_letter(
    rendered: Rendered,
    site: SiteConfig,
    newsletter: NewsletterConfig,
    secret: bytes,
    *,
    subscriber_id: str,
    email: str,
    message_id: str,
    now: datetime,
) -> Letter:
    """One reader's letter exactly as the sender assembles it (previews, test sends)."""
    template = letter_template(rendered, site, newsletter)
    row = ClaimedRow(subscriber_id, email, message_id, attempts=0, duplicate=False)
    return letters_for({0: template}, site, newsletter.id, secret)(row, now)


def _message_id(secret: bytes, edition_id: str, domain: str, subscriber_id: str) -> str:
    return message_id_for(secret, edition_id, subscriber_id, domain)


@dataclass(frozen=True, slots=True)
class Opened:
    edition: Edition
    created: bool
    renderings: Mapping[int, Rendered] | None = None  # the new edition's, to send unread
    recipients: int = 0


def open_edition(
    store: Store,
    renderer: Renderer,
    site: SiteConfig,
    newsletter: NewsletterConfig,
    secret: bytes,
    period_key: str,
    now: datetime,
    *,
    cadence: CadenceConfig | None = None,
    due: Due | None = None,
) -> Opened:
    """Open the edition of ``period_key`` for one cadence once, in one transaction.

    Each reader of the cadence gets what they are owed (see :mod:`digest.select`); with
    nothing owed to anyone, or no confirmed reader, the edition is recorded as skipped
    and nothing is sent. A second call for the same period (another scheduler, a
    restart) returns the existing edition with ``created=False``. When posts arrive
    between the selection and the transaction, the selection is made again. ``cadence``
    defaults to the newsletter's first; ``due`` picks the readers of a cadence sent in
    each reader's own time zone.
    """
    existing = store.find_edition(newsletter.id, period_key)
    if existing is not None:
        return Opened(existing, created=False)
    cadence = cadence or newsletter.default_cadence
    for _ in range(OPEN_ATTEMPTS):
        edition_id = secrets.token_hex(16)
        plan = plan_edition(
            store,
            renderer,
            site,
            newsletter,
            cadence,
            now,
            edition_id=edition_id,
            period_key=period_key,
        )
        opened = store.open_edition(
            plan.draft,
            message_id=functools.partial(_message_id, secret, edition_id, site.sender_domain),
            due=due,
            no_readers=NO_READERS,
        )
        if opened is None:
            continue  # posts arrived meanwhile: select again
        edition, recipients = opened
        if recipients < 0:
            return Opened(edition, created=False)
        sending = edition.status is EditionStatus.SENDING
        renderings = {n: v.rendered for n, v in enumerate(plan.draft.variants)}
        return Opened(edition, True, renderings if sending else None, recipients)
    raise DigestError(
        f"newsletter {newsletter.id!r}: posts kept arriving while the edition was opened;"
        " try again (is a fetch of this newsletter's sources running in a loop?)"
    )


@dataclass
class SendReport:
    """Where an edition stands after a send: its totals from the ledger, and this run."""

    edition: Edition
    counts: dict[DeliveryStatus, int] = field(default_factory=dict)
    paused: str = ""  # the fault that paused the edition, if any
    duplicates: int = 0  # rows marked as possible duplicates, in all
    unfinished: int = 0  # rows still owed (deferred, or uncertain awaiting their retry)
    duplicate_bound: int = 0  # most duplicates a crash of this run could have caused
    run: SendRun = field(default_factory=SendRun)
    resumed: bool = False  # an unfinished edition was carried on rather than a new one

    @property
    def recipients(self) -> int:
        return sum(self.counts.values())


async def send_edition(
    store: Store,
    ledger: Ledger,
    mailer: Mailer,
    site: SiteConfig,
    newsletter: NewsletterConfig,
    secret: bytes,
    edition: Edition,
    clock: Clock,
    *,
    owner: str,
    policy: SendPolicy,
    renderings: Mapping[int, Rendered] | None = None,
    stop: asyncio.Event | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> SendReport:
    """Send every row of ``edition`` that is due now; safe to call again at any time.

    A paused edition (a fault of the site) is resumed; a held, cancelled, sent or
    skipped one is left as it is. ``renderings`` are those just opened (by variant);
    without them the archived ones are read (never rendered again). ``on_progress(done, total)``
    follows the outcomes written; ``stop`` ends the run early (in-flight sends finish
    and are recorded, unsent rows are given back).
    """
    if edition.status is EditionStatus.PAUSED:
        await ledger.set_edition_status(
            edition.id, EditionStatus.SENDING, only_from=[EditionStatus.PAUSED]
        )
    elif edition.status is not EditionStatus.SENDING:
        return await report(ledger, edition.id, policy)
    if renderings is None:
        renderings = await asyncio.to_thread(store.get_renderings, edition.id)
    if not renderings:
        raise DigestError(
            f"edition {edition.id} has no archived rendering (it was opened by an older"
            f" digest that stopped halfway): cancel it with `digest editions cancel {edition.id}`"
        )
    templates = {n: letter_template(r, site, newsletter) for n, r in renderings.items()}
    progress: Callable[[int], None] | None = None
    if on_progress is not None:
        total = (await ledger.edition_summary(edition.id)).unfinished
        done = 0

        def progress(recorded: int) -> None:
            nonlocal done
            done += recorded
            on_progress(min(done, total), total)

    sender = Sender(
        ledger=ledger,
        mailer=mailer,
        letter_for=letters_for(templates, site, newsletter.id, secret),
        edition_id=edition.id,
        owner=owner,
        clock=clock,
        policy=policy,
        stop=stop,
        on_progress=progress,
    )
    run = await sender.run()
    if run.fault:
        return await report(ledger, edition.id, policy, run)
    # One read of the edition's totals both decides "sent" and makes the report.
    summary = await ledger.edition_summary(edition.id)
    if summary.unfinished == 0:
        if not await ledger.set_edition_status(
            edition.id, EditionStatus.SENT, only_from=[EditionStatus.SENDING]
        ):
            return await report(ledger, edition.id, policy, run)  # moved meanwhile: read it
        sent = replace(summary.edition, status=EditionStatus.SENT, error="")
        summary = replace(summary, edition=sent)
    return _report(summary, policy, run)


async def report(
    ledger: Ledger, edition_id: str, policy: SendPolicy, run: SendRun | None = None
) -> SendReport:
    return _report(await ledger.edition_summary(edition_id), policy, run or SendRun())


def _report(summary: EditionSummary, policy: SendPolicy, run: SendRun) -> SendReport:
    return SendReport(
        edition=summary.edition,
        counts={status: n for status, n in summary.counts.items() if n},
        paused=run.fault,
        duplicates=summary.duplicates,
        unfinished=summary.unfinished,
        duplicate_bound=policy.duplicate_bound,
        run=run,
    )


# --- the operator's controls ---------------------------------------------------------------


def hold(store: Store, edition_id: str) -> Edition:
    """Pause a sending (or fault-paused) edition until `resume`; senders stop claiming."""
    return _move(
        store,
        edition_id,
        EditionStatus.HELD,
        [EditionStatus.SENDING, EditionStatus.PAUSED],
        f"paused by the operator: `digest editions resume {edition_id[:8]}` continues it",
        "only a sending or paused edition can be paused",
    )


def release(store: Store, edition_id: str) -> Edition:
    """Let a held or paused edition send again."""
    return _move(
        store,
        edition_id,
        EditionStatus.SENDING,
        [EditionStatus.HELD, EditionStatus.PAUSED, EditionStatus.SENDING],
        "",
        "only a paused edition can be resumed",
    )


def cancel(store: Store, edition_id: str, now: datetime) -> tuple[Edition, int]:
    """Cancel an unfinished edition; its unsent rows become ``cancelled``. ``(edition, n)``."""
    edition = _move(
        store,
        edition_id,
        EditionStatus.CANCELLED,
        [EditionStatus.SENDING, EditionStatus.PAUSED, EditionStatus.HELD],
        "cancelled by the operator",
        "only an unfinished edition can be cancelled",
    )
    return edition, store.cancel_unsent(edition_id, now)


RESEND_FAILED = (DeliveryStatus.FAILED, DeliveryStatus.EXPIRED, DeliveryStatus.UNCERTAIN)
RESEND_UNSENT = (
    DeliveryStatus.CANCELLED,
    DeliveryStatus.EXPIRED,
    DeliveryStatus.DEFERRED,
)


def reopen(
    store: Store, edition_id: str, statuses: tuple[DeliveryStatus, ...]
) -> tuple[Edition, int]:
    """Make the edition's rows in ``statuses`` pending again and the edition sending."""
    edition = store.get_edition(edition_id)
    if edition.status is EditionStatus.SKIPPED:
        raise DigestError(f"edition {edition_id} was skipped: it has nothing to resend")
    count = store.reopen_deliveries(edition_id, statuses)
    if count:
        store.set_edition_status(edition_id, EditionStatus.SENDING)
    return store.get_edition(edition_id), count


def _move(
    store: Store,
    edition_id: str,
    status: EditionStatus,
    allowed: list[EditionStatus],
    error: str,
    refusal: str,
) -> Edition:
    if not store.set_edition_status(edition_id, status, error, only_from=allowed):
        current = store.get_edition(edition_id)
        raise DigestError(f"edition {edition_id} is {current.status}: {refusal}")
    return store.get_edition(edition_id)
