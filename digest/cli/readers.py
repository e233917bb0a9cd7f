"""`digest subscribers add|list|import|export|remove`: the reader list.

``list`` and ``export`` stream: rows are read from the store a page at a time and written
as they come, so the first line shows at once and memory stays flat at any size.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from digest import reader_csv, subscriptions
from digest.app import App
from digest.cli.common import app_of, default_newsletter, sole_newsletter
from digest.cli.output import GAP, Column, Row, stream_listing
from digest.display import shorten_middle
from digest.errors import DigestError
from digest.models import Subscription, SubscriptionStatus
from digest.subscriptions import ImportDefaults, ImportReport

EXPORT_COLUMNS = (
    "email", "name", "newsletter", "status", "cadence", "topics", "subscribed_at", "changed_at"
)  # fmt: skip
_FORMULA = re.compile(r"[=+\-@\t\r]")  # what a spreadsheet would run as a formula


def cmd_subscribers_add(args: argparse.Namespace, out: Console) -> int:
    """Add a reader to a newsletter (confirmed: you vouch for their consent)."""
    app = app_of(args)
    newsletter = app.newsletter(default_newsletter(app.config, args.newsletter))
    zone = None if args.timezone is None else subscriptions.check_timezone(args.timezone)
    subscription, changed = subscriptions.add_reader(
        app.store,
        args.email,
        newsletter,
        cadence=args.cadence,
        topics=_ids(args.topics),
        secret=app.keys,
        now=app.clock(),
    )
    cadence, topics = subscriptions.effective_choices(subscription, newsletter)
    verb = "added" if changed else "already subscribed:"
    chosen = f" ({cadence}; topics: {', '.join(topics)})" if topics else f" ({cadence})"
    if zone is not None:
        app.store.set_timezone(subscription.subscriber.id, zone)
        chosen += f", time zone {zone or 'of the newsletter'}"
    out.print(f"{verb} {subscription.subscriber.email} -> {newsletter.id}{chosen}", soft_wrap=True)
    return 0


EMAIL_WIDTH = 40  # most addresses; a longer one is shown shortened in the middle
TOPICS_WIDTH = 10  # what the table keeps for the last column, topics (cut with "…")


def cmd_subscribers_list(args: argparse.Namespace, out: Console) -> int:
    """List subscriptions: a table (80 columns), or JSON lines with --json."""
    app = app_of(args)
    write = out.file.write
    count = 0
    if args.json:
        for sub in _subscriptions(app, args):
            record = dict(zip(EXPORT_COLUMNS, _fields(app, sub), strict=True))
            write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
        Console(stderr=True, highlight=False, markup=False).print(f"{count} subscription(s)")
        return 0
    zone = ZoneInfo(app.config.site.timezone)
    newsletters = app.config.newsletters.values()
    widths = {
        "newsletter": max([len("newsletter"), *(len(n.id) for n in newsletters)]),
        "status": len(SubscriptionStatus.UNSUBSCRIBED),
        "cadence": max([len("cadence"), *(len(c.id) for n in newsletters for c in n.cadences)]),
        "since": len("2026-01-01"),
    }
    fixed = sum(widths.values()) + GAP * (len(widths) + 1) + TOPICS_WIDTH
    email_width = max(20, min(EMAIL_WIDTH, out.width - fixed))

    def table_rows() -> Iterator[Row]:
        for sub in _subscriptions(app, args):
            newsletter = app.config.newsletters.get(sub.newsletter_id)
            cadence, topics = subscriptions.effective_choices(sub, newsletter)
            every = newsletter is not None and sub.topics is None
            yield {
                "email": sub.subscriber.email,
                "newsletter": sub.newsletter_id,
                "status": sub.status,
                "cadence": cadence,
                "since": f"{sub.changed_at.astimezone(zone):%Y-%m-%d}",
                "topics": "all" if every or not topics else ",".join(topics),
            }

    columns = [
        Column("email", show=lambda email: shorten_middle(email, email_width), width=email_width),
        *(Column(key, width=width) for key, width in widths.items()),
        Column("topics"),
    ]
    count = stream_listing(out, table_rows(), columns, form="table")
    out.file.write(f"{count} subscription(s)\n")
    return 0


def cmd_subscribers_export(args: argparse.Namespace, out: Console) -> int:
    """Write subscriptions as CSV (to stdout, or --output FILE); `import` reads it back."""
    app = app_of(args)
    rows = _subscriptions(app, args)
    count = 0
    with _output(args.output, out) as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(EXPORT_COLUMNS)
        for sub in rows:
            email, name, *middle, topics, subscribed, changed = _fields(app, sub)
            name = f"'{name}" if _FORMULA.match(name) else name
            writer.writerow([email, name, *middle, " ".join(topics), subscribed, changed])
            count += 1
    where = f" to {args.output}" if args.output else ""
    Console(stderr=True, highlight=False, markup=False).print(
        f"{count} subscription(s) exported{where}"
    )
    return 0


def cmd_subscribers_import(args: argparse.Namespace, out: Console) -> int:
    """Import readers from a CSV file (Mailchimp, Substack, Buttondown, a spreadsheet)."""
    app = app_of(args)
    path = Path(args.file)
    layout = reader_csv.scan(path)  # a malformed file is refused before anything is written
    if args.newsletter:
        newsletters: tuple[str, ...] = (app.newsletter(args.newsletter).id,)
    elif "newsletters" in layout.columns:
        newsletters = tuple(sole_newsletter(app.config))
    else:  # every row would need one: ask once instead
        newsletters = (default_newsletter(app.config, None),)
    defaults = ImportDefaults(newsletters, args.cadence or None, _ids(args.topics))
    columns = (TextColumn("importing"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=out, transient=True, disable=not out.is_terminal) as bar:
        task = bar.add_task("import", total=layout.rows)
        report = subscriptions.import_readers(
            app.store,
            reader_csv.read_rows(path, layout),
            defaults=defaults,
            newsletters=app.config.newsletters,
            secret=app.keys,
            now=app.clock(),
            progress=lambda done: bar.update(task, completed=done),
        )
    _print_import(out, path, report)
    return 1 if report.errors else 0


def cmd_subscribers_remove(args: argparse.Namespace, out: Console) -> int:
    """Erase a reader (on their request): their subscriptions go, their address is suppressed."""
    app = app_of(args)
    email, _ = subscriptions.normalize_address(args.email)
    removal = subscriptions.remove_reader(app.store, email, secret=app.secret, now=app.clock())
    since = f"{removal.suppressed_at:%Y-%m-%d}"
    if not removal.found:
        out.print(
            f"{email} was not on the list; suppressed since {since} all the same", soft_wrap=True
        )
        return 0
    out.print(
        f"removed {email}: {removal.subscriptions} subscription(s) erased,"
        f" {removal.deliveries} delivery record(s) kept without the address;"
        f" suppressed since {since} (an import or add of it is refused)",
        soft_wrap=True,
    )
    return 0


def _ids(given: str | None) -> tuple[str, ...] | None:
    """``--topics a,b`` as ids (commas, semicolons or spaces between); None if not given."""
    if given is None:
        return None
    return tuple(filter(None, re.split(r"[\s,;]+", given))) or None


def _subscriptions(app: App, args: argparse.Namespace) -> Iterator[Subscription]:
    if args.newsletter:
        app.newsletter(args.newsletter)  # NotFound naming the ids declared
    status = SubscriptionStatus(args.status) if args.status else None
    return app.store.iter_subscriptions(args.newsletter, status)


def _fields(app: App, sub: Subscription) -> tuple[str, str, str, str, str, list[str], str, str]:
    """A subscription in ``EXPORT_COLUMNS`` order: defaults spelled out, times in UTC."""
    cadence, topics = subscriptions.effective_choices(
        sub, app.config.newsletters.get(sub.newsletter_id)
    )
    return (
        sub.subscriber.email,
        sub.subscriber.name,
        sub.newsletter_id,
        str(sub.status),
        cadence,
        list(topics),
        _iso(sub.created_at or sub.subscriber.created_at),
        _iso(sub.changed_at),
    )


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@contextlib.contextmanager
def _output(given: str | None, out: Console) -> Iterator[IO[str]]:
    if not given:
        yield out.file
        return
    path = Path(given)
    try:
        file = path.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        raise DigestError(f"cannot write {path}: {exc.strerror}; choose a writable path") from exc
    with file:
        yield file


def _print_import(out: Console, path: Path, report: ImportReport) -> None:
    for line, message in report.errors:
        out.print(f"{path}:{line}: {message}", style="yellow", soft_wrap=True)
    for line, email, when in report.suppressed:
        out.print(
            f"{path}:{line}: {email}: suppressed (removed on {when:%Y-%m-%d})", soft_wrap=True
        )
    for line, message in report.skipped:
        out.print(f"{path}:{line}: {message}", soft_wrap=True)
    known = report.people - report.new_people
    people = "person" if report.people == 1 else "people"
    out.print(
        f"read {report.rows:,} row(s): {report.people:,} {people} ({report.new_people:,} new,"
        f" {known:,} already on the list); subscriptions: {report.added:,} added,"
        f" {report.unchanged:,} unchanged; {len(report.suppressed):,} suppressed,"
        f" {len(report.skipped):,} skipped, {len(report.errors):,} rejected",
        soft_wrap=True,
    )
