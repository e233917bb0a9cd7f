"""The editors' email about a source that keeps failing, or works again.

A transactional message to each of ``[site] editors``, one recipient per letter: plain
text, with ``Auto-Submitted: auto-generated`` (RFC 3834, so that vacation responders stay
quiet) and none of a digest's list headers (no List-Unsubscribe, List-Id or Precedence:
it is not bulk mail). It goes out through the configured transport, like the digests.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from zoneinfo import ZoneInfo

from digest.config import SiteConfig
from digest.errors import DigestError
from digest.message import BODY_POLICY, address_header, clean_header_text, from_address
from digest.models import DeliveryStatus, Letter
from digest.ports import Mailer
from digest.source_health import Alert, AlertKind, failed_fetches, longest_backoff

log = logging.getLogger("digest.sources")


def alert_subject(site: SiteConfig, alert: Alert) -> str:
    what = "is failing" if alert.kind is AlertKind.FAILING else "works again"
    return f"[{site.name}] source {alert.source.id} {what}"


def alert_text(site: SiteConfig, alert: Alert) -> str:
    """The body: what happened, since when (in ``[site] timezone``), and what digest does."""
    source = alert.source

    def local(moment: datetime) -> str:
        return moment.astimezone(ZoneInfo(site.timezone)).strftime("%Y-%m-%d %H:%M %Z")

    name = f"{source.id} ({source.title})" if source.title else source.id
    where = source.url or str(source.path or "")
    if alert.kind is AlertKind.FAILING:
        interval = timedelta(minutes=source.fetch_every_minutes)
        lines = [
            f"The source {name} has had {failed_fetches(alert.failures)} in a row, the first at"
            f" {local(alert.since)}.",
            "",
            "The last error:",
            f"  {alert.error}",
            "",
            f"Where it is read from: {where}",
            "",
            f"digest keeps trying, less often while it fails (every {_span(interval)},"
            f" doubling up to every {_span(longest_backoff(interval))}), and sends one more"
            " email when it works again.",
        ]
    else:
        lines = [
            f"The source {name} works again: fetched at {local(alert.at)}, after"
            f" {failed_fetches(alert.failures)} since {local(alert.since)}.",
            "",
            "The last error was:",
            f"  {alert.error}",
        ]
    lines += ["", "`digest sources` shows the health of every source.", "", f"-- {site.name}"]
    return "\n".join(lines) + "\n"


def alert_message(site: SiteConfig, alert: Alert, recipient: str, now: datetime) -> bytes:
    """The message to one editor, as wire bytes (CRLF line endings)."""
    message = EmailMessage(policy=BODY_POLICY)
    message["From"] = from_address(site)
    message["To"] = address_header(recipient)
    message["Subject"] = clean_header_text(alert_subject(site, alert))
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid("source-alert", domain=site.sender_domain)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(alert_text(site, alert), charset="utf-8", cte="quoted-printable")
    return message.as_bytes(policy=policy.SMTP)


async def send_alert(mailer: Mailer, site: SiteConfig, alert: Alert, now: datetime) -> int:
    """Send the alert to every editor; returns how many accepted it. Failures are logged
    (an editor's mail must never stop a fetch)."""
    accepted = 0
    for editor in site.editors:
        letter = Letter(site.sender_email, editor, alert_message(site, alert, editor, now))
        try:
            result = await mailer.send(letter)
        except DigestError as exc:
            log.error("source %r: the alert to %s was not sent: %s", alert.source.id, editor, exc)
            continue
        if result.status is DeliveryStatus.SENT:
            accepted += 1
        else:
            log.error(
                "source %r: the alert to %s was not sent (%s): %s",
                alert.source.id,
                editor,
                result.status,
                result.reply,
            )
    return accepted


def _span(interval: timedelta) -> str:
    """A whole number of minutes in the largest unit that divides it: "8 hours"."""
    minutes = int(interval.total_seconds() // 60)
    units = ((1440, "day"), (60, "hour"))
    size, unit = next(((s, u) for s, u in units if minutes % s == 0), (1, "minute"))
    count = minutes // size
    return f"{count} {unit}" + ("" if count == 1 else "s")
