"""The `digest` command: a thin client of ``digest.app`` (the only package that prints).

One module per area: ``service`` (run, migrate, check, fetch, preview), ``sources``
(source health), ``readers`` (subscribers), ``sending`` (send-now, worker, editions,
deliveries), ``lint``; ``common`` holds what they share. This module parses the command line
and maps errors to exit codes.

Every command logs to stderr (see ``logs``): warnings and errors, and for `run` and
`worker` what they do as well.

Exit status: 0 success, 1 a problem with input or the environment (the message names
it), 2 wrong usage.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from rich.console import Console

from digest.cli.common import Handler
from digest.cli.editions import cmd_deliveries, cmd_editions
from digest.cli.editor import cmd_preview, cmd_schedule, cmd_send_test
from digest.cli.lint import cmd_lint
from digest.cli.logs import logging_to_stderr
from digest.cli.readers import (
    cmd_subscribers_add,
    cmd_subscribers_export,
    cmd_subscribers_import,
    cmd_subscribers_list,
    cmd_subscribers_remove,
)
from digest.cli.sending import cmd_send_now, cmd_worker
from digest.cli.service import cmd_check, cmd_fetch, cmd_migrate, cmd_reload, cmd_run
from digest.cli.sources import cmd_sources
from digest.errors import DigestError, UsageError
from digest.models import DeliveryStatus, SubscriptionStatus


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    console = Console(highlight=False, markup=False)
    errors = Console(stderr=True, highlight=False, markup=False)
    handler: Handler = args.handler
    try:
        with logging_to_stderr(args.log_level):
            return handler(args, console)
    except DigestError as exc:
        errors.print(f"error: {exc}", style="bold red", soft_wrap=True)
        return 2 if isinstance(exc, UsageError) else 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`digest deliveries ID | head`): stop quietly, and keep
        # Python from complaining about the closed stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


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
        sub.set_defaults(handler=handler, log_level=logging.WARNING)
        return sub

    command("run", cmd_run).set_defaults(log_level=logging.INFO)
    command("reload", cmd_reload)
    command("migrate", cmd_migrate)
    check = command("check", cmd_check)
    check.add_argument("--json", action="store_true", help="the sources and next sends as JSON")
    fetch = command("fetch", cmd_fetch)
    fetch.add_argument("source", nargs="?", metavar="SOURCE", help="source id (default: all)")
    fetch.add_argument("--json", action="store_true", help="the report per source as JSON")
    sources = command("sources", cmd_sources)
    sources.add_argument("--json", action="store_true", help="print JSON, with exact times")
    preview = command("preview", cmd_preview)
    preview.add_argument("newsletter", metavar="NEWSLETTER")
    preview.add_argument("--html", metavar="FILE", help="write the HTML part to FILE")
    preview.add_argument("--eml", metavar="FILE", help="write the whole message to FILE")
    preview.add_argument("--open", action="store_true", help="open the HTML in a browser")
    preview.add_argument(
        "--json", action="store_true", help="print the candidate posts and the subject as JSON"
    )
    send_test = command("send-test", cmd_send_test)
    send_test.add_argument("newsletter", metavar="NEWSLETTER")
    send_test.add_argument("--to", required=True, metavar="ADDRESS", help="the editor's address")
    for sub in (preview, send_test):
        sub.add_argument("--subscriber", metavar="EMAIL", help="the next digest of this reader")
        sub.add_argument("--cadence", metavar="C", help="of this cadence (default: the reader's)")
    lint = command("lint", cmd_lint)
    lint.add_argument(
        "target", metavar="NEWSLETTER|EDITION", help="a newsletter id, or an edition id"
    )
    lint.add_argument("--subscriber", metavar="EMAIL", help="NEWSLETTER: this reader's next digest")
    lint.add_argument("--cadence", metavar="C", help="NEWSLETTER: of this cadence")
    lint.add_argument("--json", action="store_true", help="print JSON instead of a table")
    schedule = command("schedule", cmd_schedule)
    schedule.add_argument("newsletter", nargs="?", metavar="NEWSLETTER", help="default: all")
    schedule.add_argument("-n", type=int, default=5, metavar="N", help="sends per cadence (5)")
    schedule.add_argument("--json", action="store_true", help="JSON instead of a table")
    send_now = command("send-now", cmd_send_now)
    send_now.add_argument("newsletter", metavar="NEWSLETTER")
    send_now.add_argument("--cadence", metavar="C", help="the readers of this cadence (default)")
    send_now.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="send with N processes in all (0: one per core); for large lists on a fast relay",
    )
    worker = command("worker", cmd_worker)
    worker.set_defaults(log_level=logging.INFO)
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
    listing.add_argument("--json", action="store_true", help="list or show: JSON, exact times")
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
    form = deliveries.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="a JSON array, one row a line")
    form.add_argument("--tsv", action="store_true", help="tab-separated, for spreadsheets")

    subscribers = commands.add_parser(
        "subscribers", parents=[common], help="Manage readers.", description="Manage readers."
    )
    subscribers_commands = subscribers.add_subparsers(
        title="commands", required=True, metavar="COMMAND"
    )
    add = command("add", cmd_subscribers_add, parent=subscribers_commands)
    add.add_argument("email", metavar="EMAIL")
    add.add_argument("--newsletter", metavar="N", help="newsletter id (optional if only one)")
    add.add_argument(
        "--timezone",
        metavar="ZONE",
        help='the reader\'s IANA time zone, for cadences with reader_timezone ("Asia/Tokyo")',
    )
    importer = command("import", cmd_subscribers_import, parent=subscribers_commands)
    importer.add_argument("file", metavar="FILE.csv")
    importer.add_argument("--newsletter", metavar="N", help="for rows without a newsletters column")
    for sub, whose in ((add, "the reader's"), (importer, "for rows without one:")):
        sub.add_argument("--cadence", metavar="C", help=f"{whose} cadence (default: the first)")
        sub.add_argument(
            "--topics", metavar="A,B", help=f"{whose} topics, comma-separated (default: all)"
        )
    lister = command("list", cmd_subscribers_list, parent=subscribers_commands)
    lister.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    exporter = command("export", cmd_subscribers_export, parent=subscribers_commands)
    exporter.add_argument("--output", metavar="FILE", help="write to FILE (default: stdout)")
    for sub in (lister, exporter):
        sub.add_argument("--newsletter", metavar="N", help="only this newsletter")
        sub.add_argument(
            "--status",
            choices=[status.value for status in SubscriptionStatus],
            help="only this status",
        )
    remove = command("remove", cmd_subscribers_remove, parent=subscribers_commands)
    remove.add_argument("email", metavar="EMAIL")
    return parser
