"""The editor's commands: look at the next digest, send a test, see when digests go out."""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import webbrowser
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table

from digest import editions
from digest.app import App
from digest.cli.common import app_of, config_of, write_file
from digest.config import NewsletterConfig
from digest.editorial_newsletters import describe
from digest.models import DeliveryStatus, Rendered
from digest.planning import Plan
from digest.render import personalize
from digest.scheduler import next_fire_times


def next_digest(
    app: App, newsletter_id: str, args: argparse.Namespace, out: Console
) -> tuple[Plan, datetime]:
    """Fetch the newsletter's sources, as a firing does, then plan the next digest for
    ``--subscriber`` (else a new reader) of ``--cadence``."""
    newsletter = app.newsletter(newsletter_id)
    now = app.clock()
    for report in asyncio.run(app.fetch(newsletter.source_ids, now)):
        if report.error:
            out.print(f"warning: {report.error}", style="yellow", soft_wrap=True)
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
    plan, now = next_digest(app, newsletter.id, args, out)
    who = args.subscriber or "a reader subscribing now"
    cadence = app.cadence(newsletter, plan.draft.readers.cadence_id)
    out.print(f"{newsletter.id}, cadence {cadence.id} ({cadence.title}), for {who}:")
    [selection] = plan.selections.values()
    table = Table("post", "published", "verdict")
    for candidate in selection.candidates:
        post = candidate.post
        table.add_row(post.title, f"{post.published:%Y-%m-%d %H:%M}", candidate.reason)
    out.print(table)
    shown = plan
    if plan.rendered() is None:
        out.print("nothing new: the next digest would not go to this reader; a sample follows")
        shown = app.sample(plan, newsletter.id, now)
    rendered = shown.rendered()
    if rendered is None:
        out.print(f"newsletter {newsletter.id!r} has no posts yet: nothing to show")
        return 0
    out.print(f"subject: {rendered.subject}")
    site = app.config.site
    url = editions.unsubscribe_url(site, app.secret, "preview", newsletter.id)
    html, text = personalize(rendered, unsubscribe_url=url)
    if args.html:
        write_file(Path(args.html), html.encode("utf-8"))
        out.print(f"HTML written to {args.html}")
    if args.eml:
        write_file(Path(args.eml), preview_message(app, rendered, newsletter, now))
        out.print(f"message written to {args.eml}")
    if args.open:
        with tempfile.NamedTemporaryFile("wb", suffix=".html", delete=False) as file:
            file.write(html.encode("utf-8"))
        webbrowser.open(Path(file.name).as_uri())
        out.print(f"opened {file.name}")
    if not args.html and not args.eml and not args.open:
        out.print(text, markup=False, highlight=False)
    return 0


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
    now = datetime.now(UTC)
    wanted = [args.newsletter] if args.newsletter else list(config.newsletters)
    rows: list[dict[str, str]] = []
    for newsletter_id in wanted:
        newsletter = config.newsletters.get(newsletter_id)
        if newsletter is None:
            out.print(f"no newsletter {newsletter_id!r}; declared: {', '.join(config.newsletters)}")
            return 1
        for cadence in newsletter.cadences:
            zone = ZoneInfo(cadence.schedule.timezone)
            for fire in next_fire_times(cadence.schedule, now, args.n):
                rows.append(
                    {
                        "newsletter": newsletter.id,
                        "cadence": cadence.id,
                        "schedule": describe(cadence.schedule),
                        "local": f"{fire.astimezone(zone):%a %Y-%m-%d %H:%M %Z}",
                        "utc": f"{fire.astimezone(UTC):%Y-%m-%d %H:%M}",
                    }
                )
    if args.json:
        out.print_json(json.dumps(rows))
        return 0
    table = Table("newsletter", "cadence", "local time", "UTC")
    for row in rows:
        table.add_row(row["newsletter"], row["cadence"], row["local"], row["utc"])
    out.print(table)
    return 0
