"""`digest send-now` and `digest worker`: sending, with progress, and what a send did."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from digest import display
from digest.app import App
from digest.cli.common import app_of, stop_on_signals
from digest.cli.ids import resolve_edition, short_id, short_ids
from digest.editions import SendReport
from digest.models import EditionStatus
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

    report = send_with_progress(app, out, send)
    edition = report.edition
    others = [
        other for other in app.unfinished(args.newsletter, held=True) if other.id != edition.id
    ]
    short = short_ids(app, [edition.id, *(other.id for other in others)])
    code = 0
    if edition.status is EditionStatus.SKIPPED:
        why = edition.error or "no new posts: nothing sent"
        out.print(f"{args.newsletter}: {why} (edition recorded as skipped)")
    else:
        if report.resumed:
            out.print(f"resumed the unfinished edition {short[edition.id]} of {args.newsletter}")
        code = print_report(out, report, short[edition.id])
    for other in others:
        owed = app.store.edition_summary(other.id).unfinished
        how = (
            f"`digest editions resume {short[other.id]}` continues it"
            if other.status is EditionStatus.HELD
            else "`digest run` or `digest worker` sends them when due"
        )
        out.print(f"note: edition {short[other.id]} ({other.status}) still owes {owed}: {how}")
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
                reports = [await app.send_edition(resolve_edition(app, args.edition), None, stop)]
            else:
                reports = await app.resume(stop)
            codes = [
                print_report(out, report, short_id(app, report.edition.id)) for report in reports
            ]
            if not reports and not args.watch:
                out.print("nothing is owed now: no edition is sending or paused by a fault")
            if stop.is_set():
                return 130
            if not args.watch:
                return max(codes, default=0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), args.watch)

    return asyncio.run(work())


def send_with_progress(
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


def print_report(out: Console, report: SendReport, short: str) -> int:
    """What a send did and how to go on (``short``: the edition's id as shown); returns
    the exit status it calls for."""
    edition, run = report.edition, report.run
    counts = display.counts(report.counts) or "no rows"
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
