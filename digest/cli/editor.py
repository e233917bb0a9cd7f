"""The editor's commands: look at the next digest, send a test, see when digests go out."""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import webbrowser
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from rich.console import Console

from digest import display, editions
from digest.app import App
from digest.cli.common import app_of, config_of, write_file
from digest.cli.output import Column, Row, print_json, show_listing
from digest.config import Config, NewsletterConfig
from digest.editorial_newsletters import describe
from digest.errors import NotFound
from digest.models import DeliveryStatus, Rendered
from digest.planning import Plan
from digest.render import personalize
from digest.scheduler import next_fire_times
from digest.select import Candidate


def next_digest(
    app: App, newsletter_id: str, args: argparse.Namespace, notes: Console
) -> tuple[Plan, datetime]:
    """Fetch the newsletter's sources, as a firing does, then plan the next digest for
    ``--subscriber`` (else a new reader) of ``--cadence``; a failing source is a note."""
    newsletter = app.newsletter(newsletter_id)
    now = app.clock()
    for report in asyncio.run(app.fetch(newsletter.source_ids, now)):
        if report.error:
            notes.print(f"warning: {report.error}", style="yellow", soft_wrap=True)
    plan = app.preview(
        newsletter.id, cadence_id=args.cadence, subscriber_email=args.subscriber, now=now
    )
    return plan, now


def preview_message(
    app: App, rendered: Rendered, newsletter: NewsletterConfig, now: datetime
) -> bytes:
    """``rendered`` as the wire message a reader would get, with a preview reader's links."""
    site = app.config.site
    return editions.personal_letter(
        rendered,
        site,
        newsletter,
        app.secret,
        subscriber_id="preview",
        email=f"reader@{site.sender_domain}",
        message_id=f"<preview@{site.sender_domain}>",
        now=now,
    ).message


def cmd_preview(args: argparse.Namespace, out: Console) -> int:
    """Fetch the sources, then render the next digest (for one reader) without sending it.

    Lists every candidate post with the reason it is in or out. With nothing new, shows
    the digest a new reader would get, so that template changes can be checked.
    """
    app = app_of(args)
    newsletter = app.newsletter(args.newsletter)
    # With --json, stdout is the JSON alone: the notes go to stderr.
    notes = Console(stderr=True, highlight=False, markup=False) if args.json else out
    plan, now = next_digest(app, newsletter.id, args, notes)
    cadence = app.cadence(newsletter, plan.draft.readers.cadence_id)
    [selection] = plan.selections.values()
    candidates = [_candidate_row(candidate) for candidate in selection.candidates]
    upcoming = plan.rendered()
    if args.json:
        print_json(
            out,
            {
                "newsletter": newsletter.id,
                "cadence": cadence.id,
                "subscriber": args.subscriber,
                "subject": upcoming.subject if upcoming else None,
                "candidates": candidates,
            },
        )
    else:
        who = args.subscriber or "a reader subscribing now"
        out.print(f"{newsletter.id}, cadence {cadence.id} ({cadence.title}), for {who}:")
        zone = ZoneInfo(app.config.site.timezone)
        columns = [
            Column("title", "post", wrap=True),
            Column("published", show=lambda moment: display.local_time(moment, zone)),
            Column("reason", "verdict", wrap=True),
        ]
        show_listing(out, candidates, columns, as_json=False, empty="no candidate posts")
    rendered = upcoming
    if rendered is None:
        notes.print("nothing new: the next digest would not go to this reader; a sample follows")
        rendered = app.sample(plan, newsletter.id, now).rendered()
    if rendered is None:
        notes.print(f"newsletter {newsletter.id!r} has no posts yet: nothing to show")
        return 0
    notes.print(f"subject: {rendered.subject}", soft_wrap=True)
    _write_preview(app, args, notes, rendered, now, show_text=not args.json)
    return 0


def _candidate_row(candidate: Candidate) -> Row:
    post = candidate.post
    return {
        "title": post.title,
        "source": post.source_id,
        "guid": post.guid,
        "link": post.link,
        "published": post.published,
        "first_seen": candidate.first_seen,
        "included": candidate.included,
        "reason": candidate.reason,
    }


def _write_preview(
    app: App,
    args: argparse.Namespace,
    notes: Console,
    rendered: Rendered,
    now: datetime,
    *,
    show_text: bool,
) -> None:
    """Write the rendering where ``--html``, ``--eml`` and ``--open`` say; else print its
    text part (when ``show_text``)."""
    site, newsletter = app.config.site, app.newsletter(args.newsletter)
    url = editions.unsubscribe_url(site, app.secret, "preview", newsletter.id)
    html, text = personalize(rendered, unsubscribe_url=url)
    if args.html:
        write_file(Path(args.html), html.encode("utf-8"))
        notes.print(f"HTML written to {args.html}")
    if args.eml:
        write_file(Path(args.eml), preview_message(app, rendered, newsletter, now))
        notes.print(f"message written to {args.eml}")
    if args.open:
        with tempfile.NamedTemporaryFile("wb", suffix=".html", delete=False) as file:
            file.write(html.encode("utf-8"))
        webbrowser.open(Path(file.name).as_uri())
        notes.print(f"opened {file.name}")
    if show_text and not args.html and not args.eml and not args.open:
        notes.print(text, markup=False, highlight=False, soft_wrap=True)  # URLs stay whole


def cmd_send_test(args: argparse.Namespace, out: Console) -> int:
    """Send the next digest to an editor's address, "[TEST]" in the subject, recording nothing."""
    app = app_of(args)
    newsletter = app.newsletter(args.newsletter)
    plan, now = next_digest(app, newsletter.id, args, out)
    rendered = app.sample(plan, newsletter.id, now).rendered()
    if rendered is None:
        out.print(f"newsletter {newsletter.id!r} has no posts yet: nothing to send")
        return 1

    async def send() -> DeliveryStatus:
        try:
            return (await app.send_test(rendered, newsletter.id, args.to)).status
        finally:
            await app.aclose()

    status = asyncio.run(send())
    out.print(f"test of {newsletter.id} to {args.to}: {status.value} (no delivery recorded)")
    if status is not DeliveryStatus.SENT:
        out.print("the relay did not take it: see `digest check` and the [delivery] table")
    return 0 if status is DeliveryStatus.SENT else 1


def cmd_schedule(args: argparse.Namespace, out: Console) -> int:
    """List the next sends of each newsletter and cadence, in local time and UTC."""
    config = config_of(args)
    if args.newsletter and args.newsletter not in config.newsletters:
        declared = ", ".join(config.newsletters)
        raise NotFound(f"no newsletter {args.newsletter!r}; declared: {declared}")
    wanted = [args.newsletter] if args.newsletter else list(config.newsletters)
    rows = next_sends(config, wanted, datetime.now(UTC), args.n)
    show_listing(out, rows, NEXT_SEND_COLUMNS, as_json=args.json)
    return 0


NEXT_SEND_COLUMNS = [
    Column("newsletter"),
    Column("cadence"),
    Column("local", "local time", whole_row=True, show=lambda row: _wall_clock(row)),
    Column("at", "UTC", whole_row=True, show=lambda row: _utc(row)),
]


def _wall_clock(row: Row) -> str:
    at, zone = row["at"], row["timezone"]
    assert isinstance(at, datetime)
    assert isinstance(zone, str)
    local = at.astimezone(ZoneInfo(zone))
    if row.get("each_reader"):  # at this time of day in every reader's own zone
        return f"{local:%a %Y-%m-%d %H:%M}, reader's zone"
    return f"{local:%a %Y-%m-%d %H:%M %Z}"


def _utc(row: Row) -> str:
    at = row["at"]
    assert isinstance(at, datetime)
    return "varies" if row.get("each_reader") else f"{at:%Y-%m-%d %H:%M}"


def next_sends(config: Config, newsletter_ids: list[str], now: datetime, count: int) -> list[Row]:
    """The next ``count`` sends of every cadence of the newsletters, as listing rows: the
    instant (``at``, UTC) and its wall-clock time in the schedule's zone (``local``)."""
    rows: list[Row] = []
    for newsletter_id in newsletter_ids:
        newsletter = config.newsletters[newsletter_id]
        for cadence in newsletter.cadences:
            zone = ZoneInfo(cadence.schedule.timezone)
            for fire in next_fire_times(cadence.schedule, now, count):
                rows.append(
                    {
                        "newsletter": newsletter.id,
                        "cadence": cadence.id,
                        "schedule": describe(cadence.schedule),
                        "timezone": zone.key,
                        "at": fire.astimezone(UTC),
                        "local": fire.astimezone(zone).isoformat(),
                        # The times are those of readers without a zone of their own.
                        "each_reader": cadence.schedule.reader_timezone,
                    }
                )
    return rows
