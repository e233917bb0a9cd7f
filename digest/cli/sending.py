"""`digest send-now`, `worker`, `editions` and `deliveries`: sending and what it did."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable
from itertools import chain, islice
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from digest import editions
from digest.app import App
from digest.cli.common import (
    app_of,
    stop_on_signals,
)
from digest.editions import SendReport
from digest.errors import UsageError
from digest.models import DeliveryStatus, EditionStatus
from digest.workers import send_now_with_workers, worker_count


def cmd_send_now(args: argparse.Namespace, out: Console) -> int:
    """Send the newsletter now: its unfinished edition if it has one, else a new edition."""
    app = app_of(args)
    workers = worker_count(args.workers)

    def send(progress: Callable[[int, int], None], stop: asyncio.Event) -> Awaitable[SendReport]:
        return send_now_with_workers(
            app,
            args.newsletter,
            workers=workers,
            config_path=app.config.path,
            environ=os.environ,
            on_progress=progress,
            stop=stop,
            cadence_id=args.cadence,
        )

    report = _sending(app, out, send)
    edition = report.edition
    code = 0
    if edition.status is EditionStatus.SKIPPED:
        why = edition.error or "no new posts: nothing sent"
        out.print(f"{args.newsletter}: {why} (edition recorded as skipped)")
    else:
        if report.resumed:
            out.print(f"resumed the unfinished edition {edition.id[:8]} of {args.newsletter}")
        code = _print_report(out, report)
    for other in app.unfinished(args.newsletter, held=True):
        if other.id != edition.id:
            owed = app.store.edition_summary(other.id).unfinished
            how = (
                f"`digest editions resume {other.id[:8]}` continues it"
                if other.status is EditionStatus.HELD
                else "`digest run` or `digest worker` sends them when due"
            )
            out.print(f"note: edition {other.id[:8]} ({other.status}) still owes {owed}: {how}")
    return code


def cmd_worker(args: argparse.Namespace, out: Console) -> int:
    """Send what unfinished editions owe now, then exit (--watch: keep at it until stopped).

    Any number of workers, in any number of processes or machines sharing the database,
    can send the same edition: each claims its own batches.
    """
    app = app_of(args)

    async def work() -> int:
        try:
            with stop_on_signals() as stop:
                return await worker_loop(stop)
        finally:
            await app.aclose()

    async def worker_loop(stop: asyncio.Event) -> int:
        while True:
            if args.edition:
                edition_id = app.store.resolve_edition(args.edition)
                reports = [await app.send_edition(edition_id, None, stop)]
            else:
                reports = await app.resume(stop)
            codes = [_print_report(out, report) for report in reports]
            if not reports and not args.watch:
                out.print("nothing is owed now: no edition is sending or paused by a fault")
            if stop.is_set():
                return 130
            if not args.watch:
                return max(codes, default=0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), args.watch)

    return asyncio.run(work())


def _sending(
    app: App,
    out: Console,
    start: Callable[[Callable[[int, int], None], asyncio.Event], Awaitable[SendReport]],
) -> SendReport:
    """Run a send with a progress bar; Ctrl-C or SIGTERM stop it cleanly (see README).

    The bar shows on a terminal only, so output piped into a file or a script is just
    the report.
    """
    columns = (TextColumn("sending"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=out, transient=True, disable=not out.is_terminal) as progress:
        task = progress.add_task("send", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        async def run() -> SendReport:
            try:
                with stop_on_signals() as stop:
                    return await start(advance, stop)
            finally:
                await app.aclose()

        return asyncio.run(run())


def _print_report(out: Console, report: SendReport) -> int:
    """What a send did and how to go on; returns the exit status it calls for."""
    edition, run = report.edition, report.run
    short = edition.id[:8]
    counts = ", ".join(f"{status}: {n}" for status, n in sorted(report.counts.items()))
    out.print(f"edition {short} ({edition.status}): {report.recipients} recipient(s); {counts}")
    handled = sum(run.outcomes.values())
    out.print(f"this run: {run.sent} sent of {handled} reader(s) handled")
    if report.duplicates:
        out.print(
            f"{report.duplicates} possible duplicate(s) marked in the ledger"
            f" (`digest editions show {short}`)"
        )
    if run.interrupted:
        out.print(
            f"stopped: in-flight messages were recorded and unsent rows given back;"
            f" {report.unfinished} reader(s) still owed it. Continue with"
            f" `digest editions resume {short}` (or `digest run`).",
            style="yellow",
        )
        return 130
    if report.paused:
        out.print(f"paused: {report.paused}", style="red")
        out.print(
            f"When it is fixed: `digest editions resume {short}`"
            " (`digest run` retries paused editions every 10 minutes)."
        )
        return 1
    if edition.status is EditionStatus.HELD:
        out.print(
            f"paused by the operator: {report.unfinished} reader(s) still owed it;"
            f" `digest editions resume {short}` continues it.",
            style="yellow",
        )
        return 1
    if edition.status is EditionStatus.CANCELLED:
        out.print(f"cancelled: {report.unfinished} reader(s) were not sent it.", style="yellow")
        return 1
    if run.waiting:
        out.print(f"waiting: {run.waiting}", style="yellow")
    elif report.unfinished:
        out.print(
            f"{report.unfinished} reader(s) wait for a retry that is not due yet (deferred, or"
            " an uncertain send retried once); `digest run` or `digest worker` sends them"
            " when due."
        )
    return 0


EDITION_ACTIONS = ("show", "pause", "resume", "cancel", "resend")


def cmd_editions(args: argparse.Namespace, out: Console) -> int:
    """List editions, or act on one: show, pause, resume, cancel, resend ID."""
    words: list[str] = args.words
    if words and words[0] in EDITION_ACTIONS:
        if len(words) != 2:
            raise UsageError(f"usage: digest editions {words[0]} EDITION_ID")
        return _edition_action(args, out, words[0], words[1])
    if len(words) > 1:
        raise UsageError(
            f"usage: digest editions [NEWSLETTER] or digest editions"
            f" {{{','.join(EDITION_ACTIONS)}}} EDITION_ID (got {' '.join(words)!r})"
        )
    app = app_of(args)
    newsletter = words[0] if words else None
    if newsletter:
        app.newsletter(newsletter)
    zone = ZoneInfo(app.config.site.timezone)
    summaries = app.store.list_editions(newsletter, limit=args.limit)
    width = max([len(s.edition.newsletter_id) for s in summaries] + [len("newsletter")])
    # Plain lines rather than a table: each edition fits 80 columns, subject below it.
    out.print(f"{'created':16}  {'edition':8}  {'newsletter':{width}}  {'status':9}  sent/readers")
    for summary in summaries:
        edition = summary.edition
        sent = summary.counts.get(DeliveryStatus.SENT, 0)
        other = ", ".join(
            f"{status}: {n}"
            for status, n in sorted(summary.counts.items())
            if status is not DeliveryStatus.SENT and n
        )
        out.print(
            f"{edition.created_at.astimezone(zone):%Y-%m-%d %H:%M}  {edition.id[:8]}"
            f"  {edition.newsletter_id:{width}}  {edition.status!s:9}"
            f"  {sent}/{summary.recipients}" + (f" ({other})" if other else ""),
            overflow="ellipsis",
            no_wrap=True,
        )
        if edition.subject:
            out.print(f"  {edition.subject}", overflow="ellipsis", no_wrap=True, style="dim")
    out.print("ids: any unique prefix works; details: `digest editions show ID`")
    return 0


def _edition_action(args: argparse.Namespace, out: Console, action: str, prefix: str) -> int:
    app = app_of(args)
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
            raise UsageError("say what to resend: either --failed or --unsent")
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
    out.print(f"  duplicates  {summary.duplicates} possible (taken over after a crash, or retried)")
    table = Table("status", "rows")
    for status, count in summary.counts.items():
        if count:
            table.add_row(str(status), str(count))
    out.print(table)
    failures = Table("email", "status", "reply", title="failures (first 20)")
    unsent = (DeliveryStatus.FAILED, DeliveryStatus.EXPIRED, DeliveryStatus.UNCERTAIN)
    rows = chain.from_iterable(app.store.iter_deliveries(edition_id, status=s) for s in unsent)
    for row in islice(rows, 20):  # a status is read only while rows are still wanted
        failures.add_row(row.email, str(row.status), row.reply)
    if failures.row_count:
        out.print(failures)
        out.print(f"all of them: digest deliveries {edition.id[:8]} --status failed")
    return 0


def cmd_deliveries(args: argparse.Namespace, out: Console) -> int:
    """Who got an edition and what failed: one line per reader, streamed, with the reply."""
    app = app_of(args)
    edition = app.store.get_edition(app.store.resolve_edition(args.edition))
    zone = ZoneInfo(app.config.site.timezone)
    status = DeliveryStatus(args.status) if args.status else None
    notes = Console(stderr=True, highlight=False, markup=False)
    notes.print(f"edition {edition.id} of {edition.newsletter_id} ({edition.status})")
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
    notes.print(f"{count} row(s)")
    return 0
