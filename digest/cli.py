"""The `digest` command: a thin client of ``digest.app`` (the only module that prints).

Exit status: 0 success, 1 a problem with input or the environment (the message names
it), 2 wrong usage.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from digest import editions, subscriptions
from digest.app import App, build_app, open_store, utc_now
from digest.config import Config
from digest.editions import SendReport
from digest.editorial import default_config_path, load_config
from digest.errors import DigestError
from digest.models import DeliveryStatus, EditionStatus
from digest.render import personalize
from digest.scheduler import check_schedules, next_fire_time
from digest.store import masked

Handler = Callable[[argparse.Namespace, Console], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    console = Console(highlight=False, markup=False)
    errors = Console(stderr=True, highlight=False, markup=False)
    handler: Handler = args.handler
    try:
        return handler(args, console)
    except DigestError as exc:
        errors.print(f"error: {exc}", style="bold red", soft_wrap=True)
        return 1
    except KeyboardInterrupt:
        return 130


# --- commands ---------------------------------------------------------------------


def cmd_check(args: argparse.Namespace, out: Console) -> int:
    """Validate the config: keys, types, sources, schedules, time zones."""
    config = _config(args)
    check_schedules(config)
    out.print(f"{config.path}: OK")
    out.print(f"  {len(config.sources)} source(s): {', '.join(config.sources)}")
    for newsletter in config.newsletters.values():
        when = next_fire_time(newsletter.schedule, utc_now())
        zone = ZoneInfo(newsletter.schedule.timezone)
        out.print(
            f"  newsletter {newsletter.id} ({newsletter.title}): next at "
            f"{when.astimezone(zone):%Y-%m-%d %H:%M} {newsletter.schedule.timezone}"
        )
    return 0


def cmd_migrate(args: argparse.Namespace, out: Console) -> int:
    """Create or upgrade the database schema (also done by `digest run`)."""
    config = _config(args)
    open_store(config, apply_migrations=True)
    out.print(f"database ready: {masked(config.database_url)}")
    return 0


def cmd_run(args: argparse.Namespace, out: Console) -> int:
    """Run the scheduler, the fetchers, the senders and the web pages until stopped."""
    from digest.service import run_service

    config = _config(args)
    check_schedules(config)
    logging.basicConfig(
        level=logging.INFO,
        format="%(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(console=Console(stderr=True), show_path=False)],
    )
    for chatty in ("alembic", "apscheduler"):  # their INFO lines say nothing an operator needs
        logging.getLogger(chatty).setLevel(logging.WARNING)
    app = build_app(config, environ=os.environ)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await run_service(app, stop)

    asyncio.run(serve())
    return 0


def cmd_fetch(args: argparse.Namespace, out: Console) -> int:
    """Fetch one source (or all) now and report new posts and problems per source."""
    app = _app(args)
    reports = asyncio.run(app.fetch([args.source] if args.source else None))
    table = Table("source", "new", "in feed", "result")
    for report in reports:
        result = report.error or "ok"
        if report.not_modified:
            result = "not modified"
        table.add_row(report.source_id, str(report.new), str(report.seen), result)
    out.print(table)
    for report in reports:
        for problem in report.problems:
            out.print(f"warning: {report.source_id}: {problem}", style="yellow", soft_wrap=True)
    return 1 if any(report.error for report in reports) else 0


def cmd_preview(args: argparse.Namespace, out: Console) -> int:
    """Fetch the sources, then render the next edition without sending or recording it."""
    app = _app(args)
    newsletter = app.newsletter(args.newsletter)
    now = app.clock()
    # Like a firing, look at the sources first: the preview is the digest that would go now.
    for report in asyncio.run(app.fetch(newsletter.source_ids, now)):
        if report.error:
            out.print(f"warning: {report.error}", style="yellow", soft_wrap=True)
    plan = app.preview(newsletter.id, now)
    table = Table("post", "published", "verdict")
    for candidate in plan.selection.candidates:
        post = candidate.post
        table.add_row(post.title, f"{post.published:%Y-%m-%d %H:%M}", candidate.reason)
    out.print(table)
    if plan.rendered is None:
        out.print(f"no new posts: the next {newsletter.id} edition would be skipped")
        return 0
    out.print(f"subject: {plan.rendered.subject}")
    site = app.config.site
    url = editions.unsubscribe_url(site, app.secret, "preview", newsletter.id)
    html, text = personalize(plan.rendered, unsubscribe_url=url)
    if args.html:
        _write(Path(args.html), html.encode("utf-8"))
        out.print(f"HTML written to {args.html}")
    if args.eml:
        message = editions.personal_message(
            plan.rendered,
            site,
            newsletter,
            app.secret,
            subscriber_id="preview",
            email=f"reader@{site.sender_domain}",
            message_id=f"<preview@{site.sender_domain}>",
            now=now,
        )
        _write(Path(args.eml), message)
        out.print(f"message written to {args.eml}")
    if not args.html and not args.eml:
        out.print(text, markup=False, highlight=False)
    return 0


def cmd_send_now(args: argparse.Namespace, out: Console) -> int:
    """Send the newsletter now: its unfinished edition if it has one, else a new edition."""
    app = _app(args)
    report = _sending(
        app, out, lambda progress, stop: app.send_now(args.newsletter, progress, stop)
    )
    edition = report.edition
    if edition.status is EditionStatus.SKIPPED:
        why = edition.error or "no new posts: nothing sent"
        out.print(f"{args.newsletter}: {why} (edition recorded as skipped)")
        return 0
    if report.resumed:
        out.print(f"resumed the unfinished edition {edition.id} of {args.newsletter}")
    return _print_report(out, report)


def cmd_worker(args: argparse.Namespace, out: Console) -> int:
    """Send what unfinished editions owe now, then exit (--watch: keep at it until stopped).

    Any number of workers, in any number of processes or machines sharing the database,
    can send the same edition: each claims its own batches.
    """
    app = _app(args)

    async def work() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            while True:
                if args.edition:
                    edition_id = app.store.resolve_edition(args.edition)
                    reports = [await app.send_edition(edition_id, None, stop)]
                else:
                    reports = await app.resume(stop)
                for report in reports:
                    _print_report(out, report)
                if stop.is_set():
                    return 130
                if not args.watch:
                    return 0
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), args.watch)
        finally:
            await app.aclose()

    return asyncio.run(work())


def _sending(
    app: App,
    out: Console,
    start: Callable[[Callable[[int, int], None], asyncio.Event], Awaitable[SendReport]],
) -> SendReport:
    """Run a send with a progress bar; Ctrl-C or SIGTERM stop it cleanly (see README)."""
    columns = (TextColumn("sending"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=out, transient=True) as progress:
        task = progress.add_task("send", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        async def run() -> SendReport:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            try:
                return await start(advance, stop)
            finally:
                for signum in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(signum)
                await app.aclose()

        return asyncio.run(run())


def _print_report(out: Console, report: SendReport) -> int:
    edition = report.edition
    counts = ", ".join(f"{status}: {n}" for status, n in sorted(report.counts.items()))
    out.print(
        f"edition {edition.id} ({edition.status}): {report.recipients} recipient(s); {counts}",
        soft_wrap=True,
    )
    run = report.run
    out.print(f"this run: {run.sent} sent, {sum(run.outcomes.values())} recorded", soft_wrap=True)
    if report.duplicates:
        out.print(
            f"{report.duplicates} possible duplicate(s) marked in the ledger"
            f" (`digest editions show {edition.id[:8]}`)",
            soft_wrap=True,
        )
    if run.interrupted:
        out.print(
            f"stopped: in-flight messages were recorded and unsent rows given back;"
            f" {report.unfinished} reader(s) still owed it."
            f" Continue with `digest editions resume {edition.id[:8]}` (or `digest run`).",
            style="yellow",
            soft_wrap=True,
        )
        return 130
    if report.paused:
        out.print(f"paused: {report.paused}", style="red", soft_wrap=True)
        return 1
    if run.waiting:
        out.print(f"waiting: {run.waiting}", style="yellow", soft_wrap=True)
    elif report.unfinished:
        out.print(
            f"{report.unfinished} row(s) wait for a retry (deferred or uncertain);"
            " `digest run` retries them when due",
            soft_wrap=True,
        )
    return 0


def cmd_subscribers_add(args: argparse.Namespace, out: Console) -> int:
    """Add a reader to a newsletter (confirmed: you vouch for their consent)."""
    app = _app(args)
    newsletter = _default_newsletter(app.config, args.newsletter)
    subscription, changed = subscriptions.add_subscriber(
        app.store, args.email, newsletter, app.config.newsletters, app.clock()
    )
    verb = "added" if changed else "already subscribed:"
    out.print(f"{verb} {subscription.subscriber.email} -> {newsletter}")
    return 0


def cmd_subscribers_list(args: argparse.Namespace, out: Console) -> int:
    """List subscriptions with their status."""
    app = _app(args)
    table = Table("email", "newsletter", "status", "since")
    rows = app.store.list_subscriptions(args.newsletter)
    for sub in rows:
        table.add_row(
            sub.subscriber.email, sub.newsletter_id, str(sub.status), f"{sub.changed_at:%Y-%m-%d}"
        )
    out.print(table)
    out.print(f"{len(rows)} subscription(s)")
    return 0


def cmd_subscribers_import(args: argparse.Namespace, out: Console) -> int:
    """Import readers from a CSV file; bad rows are reported by line, the rest imported."""
    app = _app(args)
    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DigestError(f"cannot read {path}: {exc}; give a UTF-8 CSV file") from exc
    defaults = [args.newsletter] if args.newsletter else _sole_newsletter(app.config)
    report = subscriptions.import_csv(
        app.store, text, defaults, app.config.newsletters, app.clock()
    )
    for line, message in report.errors:
        out.print(f"{path}:{line}: {message}", style="yellow", soft_wrap=True)
    out.print(
        f"imported {report.added}, unchanged {report.unchanged}, rejected {len(report.errors)}"
    )
    return 1 if report.errors else 0


EDITION_ACTIONS = ("show", "pause", "resume", "cancel", "resend")


def cmd_editions(args: argparse.Namespace, out: Console) -> int:
    """List editions, or act on one: show, pause, resume, cancel, resend ID."""
    words: list[str] = args.words
    if words and words[0] in EDITION_ACTIONS:
        if len(words) != 2:
            raise DigestError(f"usage: digest editions {words[0]} EDITION_ID")
        return _edition_action(args, out, words[0], words[1])
    if len(words) > 1:
        raise DigestError(
            f"usage: digest editions [NEWSLETTER] or digest editions"
            f" {{{','.join(EDITION_ACTIONS)}}} EDITION_ID (got {' '.join(words)!r})"
        )
    app = _app(args)
    newsletter = words[0] if words else None
    if newsletter:
        app.newsletter(newsletter)
    zone = ZoneInfo(app.config.site.timezone)
    table = Table(
        "created", "edition", "newsletter", "period", "status", "sent", "other", "subject"
    )
    table.columns[0].no_wrap = True
    table.columns[1].no_wrap = True
    for summary in app.store.list_editions(newsletter, limit=args.limit):
        edition = summary.edition
        sent = summary.counts.get(DeliveryStatus.SENT, 0)
        other = ", ".join(
            f"{status}: {n}"
            for status, n in sorted(summary.counts.items())
            if status is not DeliveryStatus.SENT and n
        )
        table.add_row(
            f"{edition.created_at.astimezone(zone):%Y-%m-%d %H:%M}",
            edition.id[:8],
            edition.newsletter_id,
            edition.period_key,
            str(edition.status) + (f" ({edition.error})" if edition.error else ""),
            str(sent),
            other,
            edition.subject,
        )
    out.print(table)
    out.print("ids are shown by their first 8 characters; any unique prefix is accepted")
    return 0


def _edition_action(args: argparse.Namespace, out: Console, action: str, prefix: str) -> int:
    app = _app(args)
    edition_id = app.store.resolve_edition(prefix)
    if action == "show":
        return _show_edition(app, out, edition_id)
    if action == "pause":
        edition = editions.hold(app.store, edition_id)
        out.print(f"edition {edition.id} paused: senders stop claiming its rows", soft_wrap=True)
        return 0
    if action == "cancel":
        edition, cancelled = editions.cancel(app.store, edition_id, app.clock())
        out.print(f"edition {edition.id} cancelled: {cancelled} unsent row(s) cancelled")
        return 0
    if action == "resend":
        if args.failed == args.unsent:
            raise DigestError("say what to resend: --failed or --unsent")
        statuses = editions.RESEND_FAILED if args.failed else editions.RESEND_UNSENT
        edition, count = editions.reopen(app.store, edition_id, statuses)
        names = ", ".join(str(status) for status in statuses)
        out.print(f"edition {edition.id}: {count} row(s) ({names}) to send again", soft_wrap=True)
        if not count:
            return 0
    else:  # resume
        edition = editions.release(app.store, edition_id)
        out.print(f"edition {edition.id} resumed")
    report = _sending(app, out, lambda progress, stop: app.send_edition(edition_id, progress, stop))
    return _print_report(out, report)


def _show_edition(app: App, out: Console, edition_id: str) -> int:
    summary = app.store.edition_summary(edition_id)
    edition = summary.edition
    zone = ZoneInfo(app.config.site.timezone)
    out.print(f"edition {edition.id}", style="bold")
    out.print(f"  newsletter  {edition.newsletter_id} ({edition.period_key})")
    out.print(f"  created     {edition.created_at.astimezone(zone):%Y-%m-%d %H:%M %Z}")
    out.print(f"  status      {edition.status}" + (f": {edition.error}" if edition.error else ""))
    out.print(f"  subject     {edition.subject}", soft_wrap=True)
    out.print(f"  recipients  {summary.recipients}; still owed: {summary.unfinished}")
    out.print(f"  possible duplicates  {summary.duplicates}")
    table = Table("status", "rows")
    for status, count in summary.counts.items():
        if count:
            table.add_row(str(status), str(count))
    out.print(table)
    failures = Table("email", "status", "reply", title="failures (first 20)")
    shown = 0
    for status in (DeliveryStatus.FAILED, DeliveryStatus.EXPIRED, DeliveryStatus.UNCERTAIN):
        for row in app.store.iter_deliveries(edition_id, status=status):
            if shown == 20:
                break
            failures.add_row(row.email, str(row.status), row.reply)
            shown += 1
    if shown:
        out.print(failures)
        out.print(f"all of them: digest deliveries {edition.id[:8]} --status failed")
    return 0


def cmd_deliveries(args: argparse.Namespace, out: Console) -> int:
    """Who got an edition and what failed: one line per reader, streamed, with the reply."""
    app = _app(args)
    edition = app.store.get_edition(app.store.resolve_edition(args.edition))
    zone = ZoneInfo(app.config.site.timezone)
    status = DeliveryStatus(args.status) if args.status else None
    out.print(
        f"edition {edition.id}: {edition.newsletter_id} {edition.period_key} ({edition.status})"
    )
    # Tab-separated and streamed: the first line shows at once, memory stays flat at any
    # size, and `cut -f` or a spreadsheet reads it.
    write = out.file.write
    write("email\tstatus\tattempts\tlast attempt\tduplicate\treply\n")
    count = 0
    for row in app.store.iter_deliveries(edition.id, status=status, email=args.email):
        when = f"{row.updated_at.astimezone(zone):%Y-%m-%d %H:%M}" if row.updated_at else "-"
        duplicate = "possible" if row.duplicate else "-"
        write(f"{row.email}\t{row.status}\t{row.attempts}\t{when}\t{duplicate}\t{row.reply}\n")
        count += 1
    out.print(f"{count} row(s)")
    return 0


# --- plumbing ---------------------------------------------------------------------


def _write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise DigestError(f"cannot write {path}: {exc.strerror}; choose a writable path") from exc


def _config(args: argparse.Namespace) -> Config:
    given = getattr(args, "config", None)  # absent unless --config was passed somewhere
    path = Path(given) if given else default_config_path(os.environ)
    return load_config(path)


def _app(args: argparse.Namespace) -> App:
    return build_app(_config(args), environ=os.environ)


def _sole_newsletter(config: Config) -> list[str]:
    return list(config.newsletters) if len(config.newsletters) == 1 else []


def _default_newsletter(config: Config, given: str | None) -> str:
    if given:
        return given
    sole = _sole_newsletter(config)
    if not sole:
        raise DigestError(f"which newsletter? pass --newsletter ({', '.join(config.newsletters)})")
    return sole[0]


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="config file (default: $DIGEST_CONFIG or config/digest.toml)",
    )
    parser = argparse.ArgumentParser(
        prog="digest",
        description="Self-hosted newsletter digests: feeds in, scheduled digest emails out.",
        parents=[common],
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    def command(
        name: str,
        handler: Handler,
        *,
        parent: argparse._SubParsersAction[argparse.ArgumentParser] = commands,
    ) -> argparse.ArgumentParser:
        doc = (handler.__doc__ or "").strip().splitlines()[0]
        sub = parent.add_parser(name, parents=[common], help=doc, description=doc)
        sub.set_defaults(handler=handler)
        return sub

    command("run", cmd_run)
    command("migrate", cmd_migrate)
    command("check", cmd_check)
    fetch = command("fetch", cmd_fetch)
    fetch.add_argument("source", nargs="?", metavar="SOURCE", help="source id (default: all)")
    preview = command("preview", cmd_preview)
    preview.add_argument("newsletter", metavar="NEWSLETTER")
    preview.add_argument("--html", metavar="FILE", help="write the HTML part to FILE")
    preview.add_argument("--eml", metavar="FILE", help="write the whole message to FILE")
    send_now = command("send-now", cmd_send_now)
    send_now.add_argument("newsletter", metavar="NEWSLETTER")
    send_now.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="send with N processes in all (0: one per core); for large lists on a fast relay",
    )
    worker = command("worker", cmd_worker)
    worker.add_argument("--edition", metavar="ID", help="only this edition (a unique id prefix)")
    worker.add_argument(
        "--watch",
        type=float,
        metavar="SECONDS",
        help="keep sending, looking for owed rows every SECONDS, until stopped",
    )
    listing = command("editions", cmd_editions)
    listing.add_argument(
        "words",
        nargs="*",
        metavar="[NEWSLETTER | show|pause|resume|cancel|resend EDITION]",
        help="list a newsletter's editions, or act on one edition (any unique id prefix)",
    )
    listing.add_argument("--limit", type=int, default=50, help="how many (default 50)")
    listing.add_argument("--failed", action="store_true", help="resend: failed, expired, uncertain")
    listing.add_argument(
        "--unsent", action="store_true", help="resend: cancelled, expired, deferred"
    )

    deliveries = command("deliveries", cmd_deliveries)
    deliveries.add_argument("edition", metavar="EDITION", help="edition id or a unique prefix")
    deliveries.add_argument(
        "--status", choices=[status.value for status in DeliveryStatus], help="only this status"
    )
    deliveries.add_argument("--email", metavar="TEXT", help="only addresses containing TEXT")

    subscribers = commands.add_parser(
        "subscribers", parents=[common], help="manage readers", description="Manage readers."
    )
    subscribers_commands = subscribers.add_subparsers(
        title="commands", required=True, metavar="COMMAND"
    )
    add = command("add", cmd_subscribers_add, parent=subscribers_commands)
    add.add_argument("email", metavar="EMAIL")
    add.add_argument("--newsletter", metavar="N", help="newsletter id (optional if only one)")
    lister = command("list", cmd_subscribers_list, parent=subscribers_commands)
    lister.add_argument("--newsletter", metavar="N", help="only this newsletter")
    importer = command("import", cmd_subscribers_import, parent=subscribers_commands)
    importer.add_argument("file", metavar="FILE.csv")
    importer.add_argument("--newsletter", metavar="N", help="for rows without a newsletters column")
    return parser


if __name__ == "__main__":
    sys.exit(main())
