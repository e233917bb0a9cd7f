"""Composition root: builds the adapters from the config and offers the use cases.

``build_app`` is the only place that chooses implementations (SQL store, SMTP or
outbox mailer, HTTP client); tests call it with their own config, clock and environ.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from digest import editions, fetching
from digest.config import Config, NewsletterConfig, SourceConfig
from digest.delivery import build_mailer
from digest.errors import DigestError, NotFound
from digest.fetching import FetchReport
from digest.models import Edition, EditionStatus, SourceState
from digest.ports import Clock, Mailer, Store
from digest.render import Renderer
from digest.settings import load_secret
from digest.sources import FetchResult, fetch_source
from digest.store import SqlStore, check_schema, create_engine_for, migrate

log = logging.getLogger("digest.app")

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
MAX_REDIRECTS = 5


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class App:
    """One digest deployment, wired: config, store, renderer, secret, clock, mailer."""

    config: Config
    store: Store
    renderer: Renderer
    secret: bytes
    clock: Clock
    environ: Mapping[str, str]
    templates_dir: Path = TEMPLATES_DIR
    _mailer: Mailer | None = field(default=None, repr=False)
    # Editions being sent by this process: the resume loop must not send them a second
    # time while a firing is still working through them.
    _sending: set[str] = field(default_factory=set, repr=False)

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

    async def aclose(self) -> None:
        if self._mailer is not None:
            await self._mailer.aclose()
            self._mailer = None

    # --- use cases -----------------------------------------------------------------
    async def fetch(
        self, source_ids: Sequence[str] | None = None, now: datetime | None = None
    ) -> list[FetchReport]:
        """Fetch the given sources (all by default); failures are in the reports."""
        sources = self.sources(source_ids)
        async with httpx.AsyncClient(follow_redirects=True, max_redirects=MAX_REDIRECTS) as client:

            async def read(
                source: SourceConfig, state: SourceState | None, at: datetime
            ) -> FetchResult:
                return await fetch_source(source, state, client=client, now=at)

            return await fetching.fetch_all(self.store, read, sources, now or self.clock())

    def preview(self, newsletter_id: str, now: datetime | None = None) -> editions.Plan:
        """The next edition of the newsletter, selected and rendered, recording nothing."""
        return editions.plan_edition(
            self.store,
            self.renderer,
            self.config.site,
            self.newsletter(newsletter_id),
            now or self.clock(),
        )

    async def run_newsletter(
        self,
        newsletter_id: str,
        period_key: str,
        now: datetime,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> editions.SendReport:
        """What a schedule firing does: fetch the sources, open the edition once, send it."""
        newsletter = self.newsletter(newsletter_id)
        await self.fetch(newsletter.source_ids, now)
        # Rendering (premailer) and the store are blocking: keep the loop free for the web.
        edition, _created = await asyncio.to_thread(
            editions.open_edition,
            self.store,
            self.renderer,
            self.config.site,
            newsletter,
            self.secret,
            period_key,
            now,
        )
        if edition.status is EditionStatus.SENT or edition.status is EditionStatus.SKIPPED:
            return editions.SendReport(edition)
        return await self._send(edition.id, on_progress)

    async def send_now(
        self, newsletter_id: str, on_progress: Callable[[int, int], None] | None = None
    ) -> editions.SendReport:
        """An edition outside the schedule, for the period "manual-<UTC time>"."""
        now = self.clock()
        key = f"manual-{now.astimezone(UTC):%Y-%m-%dT%H:%M:%S.%f}"
        return await self.run_newsletter(newsletter_id, key, now, on_progress)

    async def resume(self) -> list[editions.SendReport]:
        """Carry on every edition left sending (crash, deferred rows) or paused."""
        reports = []
        for status in (EditionStatus.SENDING, EditionStatus.PAUSED):
            for edition in self.store.editions_with_status(status):
                if edition.newsletter_id not in self.config.newsletters:
                    continue
                try:
                    reports.append(await self._send(edition.id, None))
                except DigestError as exc:  # one edition's trouble must not stop the others
                    log.error("resuming edition %s failed: %s", edition.id, exc)
        return reports

    async def _send(
        self, edition_id: str, on_progress: Callable[[int, int], None] | None
    ) -> editions.SendReport:
        edition = self.store.get_edition(edition_id)
        if edition_id in self._sending:
            return editions.SendReport(edition)
        self._sending.add(edition_id)
        try:
            return await self._send_once(edition, on_progress)
        finally:
            self._sending.discard(edition_id)

    async def _send_once(
        self, edition: Edition, on_progress: Callable[[int, int], None] | None
    ) -> editions.SendReport:
        smtp = self.config.delivery.smtp
        return await editions.send_edition(
            self.store,
            self.mailer(),
            self.renderer,
            self.config.site,
            self.newsletter(edition.newsletter_id),
            self.secret,
            edition,
            self.clock,
            concurrency=smtp.concurrency if smtp else 4,
            on_progress=on_progress,
        )


def open_store(config: Config, *, apply_migrations: bool) -> Store:
    """The SQL store of ``config``: migrated to head, or checked to be at head."""
    engine = create_engine_for(config.database_url)
    if apply_migrations:
        migrate(engine)
    else:
        check_schema(engine)
    return SqlStore(engine)


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
        renderer=Renderer(templates_dir / "email"),
        secret=load_secret(environ, config.data_dir),
        clock=clock,
        environ=environ,
        templates_dir=templates_dir,
    )
