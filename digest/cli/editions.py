"""`digest editions` and `digest deliveries`: what was sent, and steering one edition."""

from __future__ import annotations

import argparse
from datetime import datetime
from itertools import chain, islice
from zoneinfo import ZoneInfo

from rich.console import Console

from digest import display, editions
from digest.app import App
from digest.cli.common import app_of
from digest.cli.ids import resolve_edition, short_id, short_ids
from digest.cli.output import Column, Row, print_json, show_listing, stream_listing
from digest.cli.sending import print_report, send_with_progress
from digest.errors import UsageError
from digest.models import Delivery, DeliveryStatus, EditionSummary

EDITION_ACTIONS = ("show", "pause", "resume", "cancel", "resend")
FAILURES_SHOWN = 20


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
    short = short_ids(app, [summary.edition.id for summary in summaries])
    several_cadences = any(len(n.cadences) > 1 for n in app.config.newsletters.values())
    columns = [
        Column("created_at", "created", show=lambda moment: display.local_time(moment, zone)),
        Column("id", "edition", show=short.__getitem__),
        Column("newsletter"),
        *([Column("cadence")] if several_cadences else []),
        Column("status"),
        Column("sent", whole_row=True, right=True, show=_sent),
        Column("counts", "others", show=_others, wrap=True),
        Column("subject", below=True),
    ]
    rows = [_summary_row(summary) for summary in summaries]
    show_listing(out, rows, columns, as_json=args.json, empty="no editions yet")
    if rows and not args.json:
        out.print(f"times in {zone.key}; any unique id prefix works: `digest editions show ID`")
    return 0


def _sent(row: Row) -> str:
    return f"{row['sent']}/{row['recipients']}"


def _others(counts: dict[DeliveryStatus, int]) -> str:
    return display.counts(counts, skip=[DeliveryStatus.SENT])


def _summary_row(summary: EditionSummary) -> Row:
    """Every field of an edition and its counts (``--json`` prints them all)."""
    edition = summary.edition
    return {
        "id": edition.id,
        "newsletter": edition.newsletter_id,
        "cadence": edition.cadence,
        "period_key": edition.period_key,
        "created_at": edition.created_at,
        "status": edition.status,
        "error": edition.error,
        "subject": edition.subject,
        "variants": edition.variants,
        "recipients": summary.recipients,
        "sent": summary.counts.get(DeliveryStatus.SENT, 0),
        "counts": summary.counts,
        "unfinished": summary.unfinished,
        "duplicates": summary.duplicates,
    }


def _edition_action(args: argparse.Namespace, out: Console, action: str, prefix: str) -> int:
    app = app_of(args)
    edition_id = resolve_edition(app, prefix)
    if action == "show":
        return _show_edition(app, out, edition_id, as_json=args.json)
    short = short_id(app, edition_id)
    if action == "pause":
        editions.hold(app.store, edition_id)
        out.print(f"edition {short} paused: senders stop claiming its rows", soft_wrap=True)
        return 0
    if action == "cancel":
        _, cancelled = editions.cancel(app.store, edition_id, app.clock())
        out.print(f"edition {short} cancelled: {cancelled} unsent row(s) cancelled")
        return 0
    if action == "resend":
        if args.failed == args.unsent:
            raise UsageError("say what to resend: either --failed or --unsent")
        statuses = editions.RESEND_FAILED if args.failed else editions.RESEND_UNSENT
        _, count = editions.reopen(app.store, edition_id, statuses)
        names = ", ".join(str(status) for status in statuses)
        out.print(f"edition {short}: {count} row(s) ({names}) to send again", soft_wrap=True)
        if not count:
            return 0
    else:  # resume
        editions.release(app.store, edition_id)
        out.print(f"edition {short} resumed")
    report = send_with_progress(
        app, out, lambda progress, stop: app.send_edition(edition_id, progress, stop)
    )
    return print_report(out, report, short)


def _show_edition(app: App, out: Console, edition_id: str, *, as_json: bool) -> int:
    summary = app.store.edition_summary(edition_id)
    edition = summary.edition
    unsent = (DeliveryStatus.FAILED, DeliveryStatus.EXPIRED, DeliveryStatus.UNCERTAIN)
    rows = chain.from_iterable(app.store.iter_deliveries(edition_id, status=s) for s in unsent)
    # A status is read only while rows are still wanted.
    failures = [_delivery_row(row) for row in islice(rows, FAILURES_SHOWN)]
    if as_json:
        print_json(out, {**_summary_row(summary), "failures": failures})
        return 0
    zone = ZoneInfo(app.config.site.timezone)
    short = short_id(app, edition_id)
    out.print(f"edition {edition.id}", style="bold")
    out.print(f"  newsletter  {edition.newsletter_id}, cadence {edition.cadence}")
    out.print(f"  period      {edition.period_key}")
    out.print(f"  created     {display.local_and_utc(edition.created_at, zone)}")
    out.print(f"  status      {edition.status}" + (f": {edition.error}" if edition.error else ""))
    out.print(f"  subject     {edition.subject or '-'}", soft_wrap=True)
    out.print(f"  recipients  {summary.recipients}; still owed: {summary.unfinished}")
    out.print(f"  rows        {display.counts(summary.counts) or 'none'}")
    out.print(f"  duplicates  {summary.duplicates} possible (taken over after a crash, or retried)")
    if failures:
        columns = [
            Column("email"),
            Column("status"),
            Column("attempts", "tries", right=True),
            Column("updated_at", "last attempt", show=lambda t: display.local_time(t, zone)),
            Column("reply", below=True),
        ]
        show_listing(
            out, failures, columns, as_json=False, title=f"failures (first {FAILURES_SHOWN})"
        )
        out.print(f"all of them: digest deliveries {short} --status failed")
    return 0


def _delivery_row(row: Delivery) -> Row:
    return {
        "email": row.email,
        "status": row.status,
        "attempts": row.attempts,
        "updated_at": row.updated_at,
        "duplicate": row.duplicate,
        "reply": row.reply,
        "message_id": row.message_id,
    }


def _reply_of_unsent(row: Row) -> str:
    """The server's reply where it explains something: for the rows not sent."""
    return "" if row["status"] is DeliveryStatus.SENT else str(row["reply"])


def cmd_deliveries(args: argparse.Namespace, out: Console) -> int:
    """Who got an edition and what failed: one line per reader, streamed, with the reply."""
    app = app_of(args)
    edition = app.store.get_edition(resolve_edition(app, args.edition))
    zone = ZoneInfo(app.config.site.timezone)
    status = DeliveryStatus(args.status) if args.status else None
    notes = Console(stderr=True, highlight=False, markup=False)
    short = short_id(app, edition.id)
    notes.print(f"edition {short} of {edition.newsletter_id} ({edition.status})")

    def when(moment: datetime | None) -> str:
        return display.local_time(moment, zone)

    if args.tsv:  # the columns spreadsheets and `cut -f` scripts have read since the start
        columns = [
            Column("email"),
            Column("status"),
            Column("attempts"),
            Column("updated_at", "last attempt", show=when),
            Column("duplicate", show=lambda duplicate: "possible" if duplicate else "-"),
            Column("reply"),
        ]
    else:  # fixed widths, so that lines stay aligned as they stream
        columns = [
            Column("email", width=36),
            Column("status", width=10),
            Column("attempts", "tries", right=True, width=5),
            Column("updated_at", "last attempt", width=16, show=when),
            Column("duplicate", "dup", width=3, show=lambda duplicate: "yes" if duplicate else "-"),
            Column("reply", whole_row=True, below=True, show=_reply_of_unsent),
        ]
    rows = app.store.iter_deliveries(edition.id, status=status, email=args.email)
    form = "json" if args.json else "tsv" if args.tsv else "table"
    count = stream_listing(out, map(_delivery_row, rows), columns, form=form)
    notes.print(
        f"{count} row(s)" + ("; replies of sent rows: --tsv or --json" if form == "table" else "")
    )
    return 0
