"""Composition root: builds the adapters from the config and offers the use cases.

``build_app`` is the only place that chooses implementations (SQL store, SMTP or
outbox mailer, HTTP client); tests call it with their own config, clock and environ.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from digest import editions, fetching, source_alerts
from digest.config import CadenceConfig, Config, NewsletterConfig, SourceConfig
from digest.delivery import build_mailer
from digest.editorial_newsletters import SAMPLE_POST
from digest.errors import DigestError, NotFound
from digest.fetching import FetchReport
from digest.models import (
    DeliveryStatus,
    Edition,
    EditionStatus,
    Rendered,
    SendResult,
    SourceState,
    Subscription,
)
from digest.planning import Plan, cadence_readers, new_reader, plan_edition
from digest.ports import Clock, Due, Ledger, Mailer, Store
from digest.render import Renderer
from digest.sending import RateLimits, SendPolicy
from digest.settings import Secret, load_previous_secrets, load_secret
from digest.source_health import Alert
from digest.sources import FetchResult, feed_client, fetch_source
from digest.store import OffloadedLedger, SqlStore, check_schema, create_engine_for, migrate
from digest.subscriptions import normalize_address
from digest.tokens import Keys

log = logging.getLogger("digest.app")

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
RESTART_KEYS = ("database_url", "data_dir", "delivery", "web")  # `digest reload` keeps these
OUTBOX_CONCURRENCY = 4  # files written at once into the outbox (each is fsynced)


def utc_now() -> datetime:
    return datetime.now(UTC)


def sender_name() -> str:
    """This process's name as a ledger owner: host, pid and a random tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass
class App:
    """One digest deployment, wired: config, store, renderer, signing key, clock, mailer."""

    config: Config
    store: Store
    renderer: Renderer
    signing_key: Secret
    clock: Clock
    environ: Mapping[str, str] = field(repr=False)
    templates_dir: Path = TEMPLATES_DIR
    owner: str = field(default_factory=sender_name)
    previous_keys: tuple[Secret, ...] = ()  # still accepted in links, never used to sign
    _ledger: OffloadedLedger | None = field(default=None, repr=False)
    _mailer: Mailer | None = field(default=None, repr=False)
    # Editions being sent by this process: the resume loop must not send them a second
    # time while a firing is still working through them.
    _sending: set[str] = field(default_factory=set, repr=False)

    @property
    def secret(self) -> bytes:
        """The signing key's bytes, for the code that signs (links, Message-IDs)."""
        return self.signing_key.reveal()

    @property
    def keys(self) -> Keys:
        """The signing key and the previous ones, for the code that reads links."""
        return Keys(self.secret, tuple(key.reveal() for key in self.previous_keys))

    # --- lookups -----------------------------------------------------------------
    def newsletter(self, newsletter_id: str) -> NewsletterConfig:
        try:
            return self.config.newsletters[newsletter_id]
        except KeyError:
            raise NotFound(
                f"no newsletter {newsletter_id!r} in {self.config.path}; "
                f"declared: {', '.join(self.config.newsletters) or 'none'}"
            ) from None

    def sources(self, source_ids: Sequence[str] | None = None) -> list[SourceConfig]:
        if source_ids is None:
            return list(self.config.sources.values())
        unknown = [s for s in source_ids if s not in self.config.sources]
        if unknown:
            raise NotFound(
                f"no source {unknown[0]!r} in {self.config.path}; "
                f"declared: {', '.join(self.config.sources) or 'none'}"
            )
        return [self.config.sources[s] for s in source_ids]

    def mailer(self) -> Mailer:
        if self._mailer is None:
            self._mailer = build_mailer(self.config.delivery, self.environ)
        return self._mailer

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            server = not self.config.database_url.startswith("sqlite")
            self._ledger = OffloadedLedger(self.store, threads=2 if server else 1)
        return self._ledger

    def send_policy(self) -> SendPolicy:
        """How this deployment sends, from ``[delivery]``."""
        delivery = self.config.delivery
        smtp = delivery.smtp if delivery.transport == "smtp" else None
        return SendPolicy(
            concurrency=smtp.concurrency if smtp else OUTBOX_CONCURRENCY,
            batch_size=delivery.batch_size,
            lease=timedelta(seconds=delivery.lease_seconds),
            limits=RateLimits(smtp.max_per_second, smtp.max_per_hour, smtp.max_per_day)
            if smtp
            else RateLimits(),
        )

    def reconfigure(self, config: Config) -> list[str]:
        """Use ``config`` from now on (``digest reload``); what it changed that needs a restart.

        Newsletters, sources, schedules, the site's texts and the email templates take
        effect at once (the templates are loaded again, so a broken one is a ``ConfigError``
        here and nothing changes). The database, the data folder, the transport and the web
        address stay as they were until the next start: their keys are returned.
        """
        renderer = checked_renderer(self.templates_dir, config, self.clock())
        kept = [key for key in RESTART_KEYS if getattr(config, key) != getattr(self.config, key)]
        self.config = replace(config, **{key: getattr(self.config, key) for key in kept})
        self.renderer = renderer
        return kept

    async def aclose(self) -> None:
        if self._mailer is not None:
            await self._mailer.aclose()
            self._mailer = None
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None
        self.store.close()

    # --- use cases -----------------------------------------------------------------
    async def fetch(
        self,
        source_ids: Sequence[str] | None = None,
        now: datetime | None = None,
        *,
        due_only: bool = False,
    ) -> list[FetchReport]:
        """Fetch the given sources (all by default); failures are in the reports.

        ``due_only`` (the scheduler's polls) leaves out the sources backing off after
        failures. A source's alert goes to ``[site] editors`` through the mailer.
        """
        sources = self.sources(source_ids)
        # A client for the sources that may reach private addresses and one for the rest,
        # so that no connection to a private address is ever reused for a source that does
        # not allow them; none at all when only files and folders are read.
        async with contextlib.AsyncExitStack() as stack:
            clients = {
                private: await stack.enter_async_context(
                    feed_client(allow_private_addresses=private)
                )
                for private in sorted({s.allow_private_addresses for s in sources if s.url})
            }

            async def read(
                source: SourceConfig, state: SourceState | None, at: datetime
            ) -> FetchResult:
                client = clients.get(source.allow_private_addresses) if source.url else None
                return await fetch_source(source, state, client=client, now=at)

            return await fetching.fetch_all(
                self.store,
                read,
                sources,
                now or self.clock(),
                due_only=due_only,
                notify=self._tell_editors,
            )

    async def _tell_editors(self, alert: Alert) -> None:
        if not self.config.site.editors:
            return
        try:
            mailer = self.mailer()
        except DigestError as exc:
            log.error("source %r: the editors were not told: %s", alert.source.id, exc)
            return
        await source_alerts.send_alert(mailer, self.config.site, alert, self.clock())

    def preview(
        self,
        newsletter_id: str,
        *,
        cadence_id: str | None = None,
        subscriber_email: str | None = None,
        now: datetime | None = None,
    ) -> Plan:
        """The next digest of the newsletter, selected and rendered, recording nothing.

        For one reader (``subscriber_email``), else for a reader subscribing now.
        """
        newsletter = self.newsletter(newsletter_id)
        now = now or self.clock()
        reader = new_reader(now)
        cadence = self.cadence(newsletter, cadence_id)
        if subscriber_email is not None:
            subscription = self.subscription(newsletter, subscriber_email)
            reader = self.store.reader_state(subscription.subscriber.id, newsletter.id)
            if cadence_id is None:
                cadence = newsletter.cadence(subscription.cadence)
        return plan_edition(
            self.store, self.renderer, self.config.site, newsletter, cadence, now, only=reader
        )

    def sample(self, plan: Plan, newsletter_id: str, now: datetime | None = None) -> Plan:
        """``plan`` if it has something to send, else the digest a new reader would get
        (the newest posts), so that a template change can be looked at any time."""
        if plan.rendered() is not None:
            return plan
        newsletter = self.newsletter(newsletter_id)
        now = now or self.clock()
        cadence = self.cadence(newsletter, plan.draft.readers.cadence_id)
        reader = new_reader(now)
        rules_room = replace(newsletter, catch_up_items=newsletter.max_items)
        return plan_edition(
            self.store, self.renderer, self.config.site, rules_room, cadence, now, only=reader
        )

    async def send_test(self, rendered: Rendered, newsletter_id: str, to: str) -> SendResult:
        """Send ``rendered`` to ``to``, "[TEST]" in the subject, recording no delivery."""
        newsletter = self.newsletter(newsletter_id)
        site = self.config.site
        _, ascii_email = normalize_address(to)
        test = replace(rendered, subject=f"[TEST] {rendered.subject}")
        now = self.clock()
        message_id = f"<test.{secrets.token_hex(12)}@{site.sender_domain}>"
        letter = editions.personal_letter(
            test,
            site,
            newsletter,
            self.secret,
            subscriber_id="test",
            email=ascii_email,
            message_id=message_id,
            now=now,
        )
        return await self.mailer().send(letter)

    def cadence(self, newsletter: NewsletterConfig, cadence_id: str | None) -> CadenceConfig:
        """The newsletter's cadence of that id (its default for None); NotFound otherwise."""
        if cadence_id is None or any(c.id == cadence_id for c in newsletter.cadences):
            return newsletter.cadence(cadence_id)
        raise NotFound(
            f"newsletter {newsletter.id!r} has no cadence {cadence_id!r}; it offers: "
            f"{', '.join(c.id for c in newsletter.cadences)}"
        )

    def subscription(self, newsletter: NewsletterConfig, email: str) -> Subscription:
        """The subscription of the address (normalized as on sign-up); NotFound otherwise."""
        normalized, _ = normalize_address(email)
        subscription = self.store.find_subscription(normalized, newsletter.id)
        if subscription is not None:
            return subscription
        raise NotFound(f"{normalized!r} has no subscription to newsletter {newsletter.id!r}")

    async def run_newsletter(
        self,
        newsletter_id: str,
        period_key: str,
        now: datetime,
        on_progress: Callable[[int, int], None] | None = None,
        stop: asyncio.Event | None = None,
        *,
        cadence_id: str | None = None,
        due: Due | None = None,
    ) -> editions.SendReport | None:
        """What a schedule firing does: fetch the sources, open the edition once, send it.

        None, having done nothing, when ``due`` (a cadence sent at a time of day in each
        reader's zone, checked every few minutes) says no reader is due now.
        """
        newsletter = self.newsletter(newsletter_id)
        cadence = self.cadence(newsletter, cadence_id)
        if due is not None and not await asyncio.to_thread(
            self._anyone_due, newsletter, cadence, due
        ):
            return None
        opened = await self._fetch_and_open(newsletter, cadence, period_key, now, due)
        return await self._send(opened.edition, opened.renderings, on_progress, stop)

    def _anyone_due(self, newsletter: NewsletterConfig, cadence: CadenceConfig, due: Due) -> bool:
        zones = self.store.readers_by_zone(newsletter.id, cadence_readers(newsletter, cadence))
        return any(due(zone, oldest) for zone, oldest in zones)

    async def _fetch_and_open(
        self,
        newsletter: NewsletterConfig,
        cadence: CadenceConfig,
        period_key: str,
        now: datetime,
        due: Due | None = None,
    ) -> editions.Opened:
        """Fetch the newsletter's sources, then open its edition of ``period_key`` once."""
        await self.fetch(newsletter.source_ids, now)
        # Rendering (premailer) and the store are blocking: keep the loop free for the web.
        return await asyncio.to_thread(
            editions.open_edition,
            self.store,
            self.renderer,
            self.config.site,
            newsletter,
            self.secret,
            period_key,
            now,
            cadence=cadence,
            due=due,
        )

    async def send_now(
        self,
        newsletter_id: str,
        on_progress: Callable[[int, int], None] | None = None,
        stop: asyncio.Event | None = None,
        *,
        cadence_id: str | None = None,
    ) -> editions.SendReport:
        """Carry on the newsletter's unfinished edition, or open one now ("manual-<UTC time>").

        An edition left sending or paused by a crash or a fault is resumed first
        (``resumed`` in the report), so readers still owed it are served before anything new.
        """
        opened, resumed = await self.open_now(newsletter_id, cadence_id)
        report = await self._send(opened.edition, opened.renderings, on_progress, stop)
        report.resumed = resumed
        return report

    async def open_now(
        self, newsletter_id: str, cadence_id: str | None = None
    ) -> tuple[editions.Opened, bool]:
        """The edition `send-now` sends: ``(opened, resumed)``; see :meth:`send_now`.

        An unfinished edition is carried on only when readers are owed it now (pending
        rows, rows of a crashed sender, or a pause by a fault): one whose rows only wait
        for a retry later must not hold back the new posts.
        """
        newsletter = self.newsletter(newsletter_id)
        self.mailer()  # a delivery config error stops us before anything is recorded
        for edition in self.unfinished(newsletter.id):
            summary = self.store.edition_summary(edition.id)
            due = summary.counts.get(DeliveryStatus.PENDING, 0) + summary.counts.get(
                DeliveryStatus.SENDING, 0
            )
            if edition.status is EditionStatus.PAUSED or due:
                return editions.Opened(edition, created=False), True
        cadence = self.cadence(newsletter, cadence_id)
        now = self.clock()
        key = f"{cadence.id}@manual-{now.astimezone(UTC):%Y-%m-%dT%H:%M:%S.%f}"
        return await self._fetch_and_open(newsletter, cadence, key, now), False

    def unfinished(self, newsletter_id: str, *, held: bool = False) -> list[Edition]:
        """The newsletter's editions still owed to readers, oldest first (``held`` too)."""
        statuses = [EditionStatus.SENDING, EditionStatus.PAUSED]
        if held:
            statuses.append(EditionStatus.HELD)
        return [
            edition
            for status in statuses
            for edition in self.store.editions_with_status(status)
            if edition.newsletter_id == newsletter_id
        ]

    async def resume(self, stop: asyncio.Event | None = None) -> list[editions.SendReport]:
        """Carry on every edition left sending (crash, deferred rows) or paused by a fault."""
        reports: list[editions.SendReport] = []
        for status in (EditionStatus.SENDING, EditionStatus.PAUSED):
            for edition in self.store.editions_with_status(status):
                if edition.newsletter_id not in self.config.newsletters:
                    continue
                if stop is not None and stop.is_set():
                    return reports
                try:
                    reports.append(await self._send(edition, None, None, stop))
                except DigestError as exc:  # one edition's trouble must not stop the others
                    log.error("resuming edition %s failed: %s", edition.id, exc)
        return reports

    async def send_edition(
        self,
        edition_id: str,
        on_progress: Callable[[int, int], None] | None = None,
        stop: asyncio.Event | None = None,
        *,
        renderings: Mapping[int, Rendered] | None = None,
    ) -> editions.SendReport:
        """Send what is due of one edition now (after `editions resume` or `resend`);
        ``renderings`` are the edition's if the caller holds them (else they are read)."""
        edition = self.store.get_edition(edition_id)
        return await self._send(edition, renderings, on_progress, stop)

    async def _send(
        self,
        edition: Edition,
        renderings: Mapping[int, Rendered] | None,
        on_progress: Callable[[int, int], None] | None,
        stop: asyncio.Event | None,
    ) -> editions.SendReport:
        policy = self.send_policy()
        if edition.id in self._sending:
            return await editions.report(self.ledger, edition.id, policy)
        self._sending.add(edition.id)
        try:
            return await editions.send_edition(
                self.store,
                self.ledger,
                self.mailer(),
                self.config.site,
                self.newsletter(edition.newsletter_id),
                self.secret,
                edition,
                self.clock,
                owner=self.owner,
                policy=policy,
                renderings=renderings,
                stop=stop,
                on_progress=on_progress,
            )
        finally:
            self._sending.discard(edition.id)


def open_store(config: Config, *, apply_migrations: bool) -> Store:
    """The SQL store of ``config``: migrated to head, or checked to be at head."""
    engine = create_engine_for(config.database_url)
    if apply_migrations:
        migrate(engine)
    else:
        check_schema(engine)
    return SqlStore(engine)


def checked_renderer(templates_dir: Path, config: Config, now: datetime) -> Renderer:
    """The renderer of ``config``, checked with :func:`check_renderer`."""
    renderer = Renderer.for_newsletters(templates_dir / "email", config.newsletters.values())
    check_renderer(renderer, config, now)
    return renderer


def check_renderer(renderer: Renderer, config: Config, now: datetime) -> None:
    """Render a sample digest of every newsletter of ``config``: an editor's template that
    fails on a real edition (an undefined name, a broken include) is a ``ConfigError``
    naming the newsletter now, not at its next send."""
    for newsletter in config.newsletters.values():
        renderer.render_edition(
            site=config.site,
            newsletter=newsletter,
            posts=[SAMPLE_POST],
            edition_id="check",
            now=now,
        )


def build_app(
    config: Config,
    *,
    environ: Mapping[str, str],
    clock: Clock = utc_now,
    apply_migrations: bool = True,
    templates_dir: Path = TEMPLATES_DIR,
) -> App:
    """Wire a deployment from its config (the composition root)."""
    return App(
        config=config,
        store=open_store(config, apply_migrations=apply_migrations),
        renderer=Renderer.for_newsletters(templates_dir / "email", config.newsletters.values()),
        signing_key=load_secret(environ, config.data_dir),
        previous_keys=load_previous_secrets(environ),
        clock=clock,
        environ=environ,
        templates_dir=templates_dir,
    )
