"""`digest run`: the long-running service — scheduler, fetchers, senders and web in one loop.

On start it fetches every source once, resumes editions a crash or a transport fault
left unfinished, then lets the scheduler fire. Every ``RESUME_EVERY`` it retries
deferred deliveries and paused editions, and forgets sign-ups never confirmed. When
``stop`` is set (SIGTERM, Ctrl-C) every send in progress stops claiming, lets its
in-flight messages finish and records them, and gives its unsent rows back before the
process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from starlette.applications import Starlette

from digest import display
from digest.app import App, check_renderer
from digest.config import Config
from digest.errors import DigestError
from digest.ports import Due
from digest.scheduler import DigestScheduler
from digest.signup import SignupRules, purge_expired
from digest.store import masked
from digest.web import create_web_app, listen, reconfigure_web, serve_on

log = logging.getLogger("digest.service")

RESUME_EVERY = timedelta(minutes=10)
WIND_DOWN_SECONDS = 120.0  # how long in-flight sends may take to finish after a stop


async def run_service(
    app: App,
    stop: asyncio.Event,
    *,
    reload: asyncio.Event | None = None,
    load_config: Callable[[], Config] | None = None,
) -> None:
    """Run until ``stop`` is set; then shut the scheduler, web server and mailer down.

    Each time ``reload`` is set (SIGHUP, `digest reload`) the config is read again with
    ``load_config`` and applied without a restart (see :func:`apply_config`).
    """
    config = app.config
    delivery = config.delivery
    if delivery.transport == "outbox":
        log.info("delivering to the outbox %s (no mail server needed)", delivery.outbox_dir)
    elif delivery.smtp is not None:
        log.info("delivering over SMTP via %s:%s", delivery.smtp.host, delivery.smtp.port)
    log.info("database: %s", masked(config.database_url))
    app.mailer()  # a delivery config error (e.g. a missing password variable) stops us now
    check_renderer(app.renderer, config, app.clock())  # and a template that fails to render

    web = create_web_app(
        store=app.store,
        secret=app.keys,
        site=config.site,
        newsletters=config.newsletters,
        templates_dir=app.templates_dir / "web",
        clock=app.clock,
        web=config.web,
        mailer=app.mailer,
    )
    sock = listen(config.web.host, config.web.port)  # a taken port fails now, clearly
    server = asyncio.create_task(serve_on(web, sock, stop))
    running: set[asyncio.Task[object]] = set()
    await _initial_fetch(app)
    if not stop.is_set():
        await _resume(app, stop)

    async def on_newsletter(
        newsletter_id: str, cadence_id: str, period_key: str, now: datetime, due: Due | None
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            running.add(task)
        try:
            report = await app.run_newsletter(
                newsletter_id, period_key, now, stop=stop, cadence_id=cadence_id, due=due
            )
        finally:
            if task is not None:
                running.discard(task)
        if report is None:  # a cadence in each reader's zone, and no reader's time yet
            log.debug("%s %s: no reader is due", newsletter_id, period_key)
            return
        log.info(
            "%s %s: edition %s %s, %d recipient(s) %s%s",
            newsletter_id,
            period_key,
            report.edition.id,
            report.edition.status,
            report.recipients,
            display.counts(report.counts) or "no rows",
            f", paused: {report.paused}" if report.paused else "",
        )

    async def on_fetch(source_id: str, now: datetime) -> None:
        for item in await app.fetch([source_id], now, due_only=True):
            _log_fetch(item.source_id, item.new, item.error)

    scheduler = DigestScheduler(
        config=config,
        clock=app.clock,
        on_newsletter=on_newsletter,
        on_fetch=on_fetch,
        scheduled_since=_scheduled_since(app, config),
    )
    scheduler.start()
    _log_next_runs(scheduler, config)

    log.info(
        "web pages at http://%s:%s (public as %s)",
        config.web.host,
        config.web.port,
        config.site.base_url,
    )
    resumer = asyncio.create_task(_resume_forever(app, stop))
    reloader = asyncio.create_task(
        _reload_forever(app, scheduler, web, stop, reload or asyncio.Event(), load_config)
    )
    try:
        await stop.wait()
    finally:
        reloader.cancel()
        # Sends in progress saw `stop`: they record what went out and give the rest back.
        if running:
            await asyncio.wait(set(running), timeout=WIND_DOWN_SECONDS)
        scheduler.shutdown()
        resumer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await resumer
        await server
        await app.aclose()
        log.info("stopped")


def apply_config(app: App, scheduler: DigestScheduler, web: Starlette, config: Config) -> None:
    """Use ``config`` in the running service: the app, the schedule and the web pages.

    Jobs whose schedule did not change keep their next run; a new cadence starts from
    its next slot. Keys that need a restart are kept as they were, with a warning.
    """
    before = app.config
    kept = app.reconfigure(config)  # broken templates: ConfigError, and nothing changed
    moved = scheduler.reconfigure(app.config, _scheduled_since(app, app.config))
    reconfigure_web(web, site=app.config.site, newsletters=app.config.newsletters)
    if kept:
        log.warning(
            "reload: %s changed in %s but take effect only at the next start of digest run",
            ", ".join(f"[{key}]" if key in ("delivery", "web") else key for key in kept),
            config.path,
        )
    log.info("reloaded %s: %s", config.path, "; ".join(_changes(before, app.config, moved)))
    _log_next_runs(scheduler, app.config)


def _changes(before: Config, after: Config, moved: list[str]) -> list[str]:
    """What a reload changed, in words: tables added, removed or edited (and which of
    their keys), and the sends and fetches scheduled anew."""
    said: list[str] = []
    for what, old, new in (
        ("newsletter", before.newsletters, after.newsletters),
        ("source", before.sources, after.sources),
    ):
        added = [i for i in new if i not in old]
        removed = [i for i in old if i not in new]
        edited = [
            f"{i} ({', '.join(_edited(old[i], new[i]))})"
            for i in new
            if i in old and new[i] != old[i]
        ]
        for verb, ids in (("added", added), ("removed", removed), ("changed", edited)):
            if ids:
                said.append(f"{what}(s) {verb}: {', '.join(ids)}")
    if before.site != after.site:
        said.append(f"[site] changed ({', '.join(_edited(before.site, after.site))})")
    jobs = {"newsletter": "send", "fetch": "fetch"}
    if moved:
        named = [
            f"{jobs.get(kind, kind)} of {rest.replace(':', '/')}"
            for kind, _, rest in (job.partition(":") for job in moved)
        ]
        said.append(f"scheduled anew: {', '.join(named)}")
    return said or ["nothing changed"]


def _edited(old: object, new: object) -> list[str]:
    """The fields of two config tables of one kind that differ."""
    names = [f.name for f in dataclasses.fields(old)]  # type: ignore[arg-type]
    return [name for name in names if getattr(old, name) != getattr(new, name)]


async def _reload_forever(
    app: App,
    scheduler: DigestScheduler,
    web: Starlette,
    stop: asyncio.Event,
    reload: asyncio.Event,
    load_config: Callable[[], Config] | None,
) -> None:
    while not stop.is_set():
        await reload.wait()
        reload.clear()
        if load_config is None:
            log.warning("reload asked for, but this service was started without a config file")
            continue
        try:
            apply_config(app, scheduler, web, load_config())
        except DigestError as exc:
            log.error("reload refused, still running the previous config: %s", exc)


def _scheduled_since(app: App, config: Config) -> dict[tuple[str, str], datetime]:
    now = app.clock()
    return {
        (newsletter.id, cadence.id): app.store.schedule_start(newsletter.id, cadence.id, now)
        for newsletter in config.newsletters.values()
        for cadence in newsletter.cadences
    }


def _log_next_runs(scheduler: DigestScheduler, config: Config) -> None:
    for job, when in scheduler.next_runs().items():
        newsletter_id, _, cadence_id = job.partition(":")
        zone = config.newsletters[newsletter_id].cadence(cadence_id).schedule.timezone
        local = display.local_and_utc(when, ZoneInfo(zone))
        log.info("newsletter %s fires next at %s, in %s", job, local, zone)


async def _initial_fetch(app: App) -> None:
    for item in await app.fetch():
        _log_fetch(item.source_id, item.new, item.error)


async def _resume(app: App, stop: asyncio.Event) -> None:
    for report in await app.resume(stop):
        log.info(
            "resumed edition %s: %s", report.edition.id, display.counts(report.counts) or "no rows"
        )


async def forget_expired_signups(app: App) -> int:
    """Purge the sign-ups left unconfirmed past ``[web] pending_expiry_hours``."""
    rules = SignupRules.of(app.config.web)
    return await asyncio.to_thread(purge_expired, app.store, rules, app.clock())


async def _resume_forever(app: App, stop: asyncio.Event) -> None:
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), RESUME_EVERY.total_seconds())
        if not stop.is_set():
            try:
                await _resume(app, stop)
                await forget_expired_signups(app)
            except DigestError as exc:
                log.error("resuming unfinished editions failed: %s", exc)
            except Exception:  # one failed pass must not end the loop
                log.exception("resuming unfinished editions failed")


def _log_fetch(source_id: str, new: int, error: str) -> None:
    if error:
        log.warning("fetch %s failed: %s", source_id, error)
    else:
        log.info("fetched %s: %d new post(s)", source_id, new)
