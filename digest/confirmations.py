"""The transactional emails of sign-up: confirm a subscription, confirm a new address.

Rendered from ``templates/email/confirm.html`` and ``confirm.txt`` with nothing the reader
typed in them (no name, no address: a sign-up form must not be a way to mail a victim
someone else's words), and built as transactional mail: ``Auto-Submitted:
auto-generated`` and none of a digest's list headers (no ``List-Id``,
``List-Unsubscribe`` or ``Precedence: bulk``). One recipient per letter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import jinja2

from digest.config import SiteConfig
from digest.errors import ConfigError
from digest.message import BODY_POLICY, address_header, clean_header_text, from_address
from digest.models import Letter
from digest.plaintext import wrap

# How each part tells the reader to act: the HTML part has a button, the text part a link.
PRESS = "press the button"
OPEN = "open this link"


@dataclass(frozen=True, slots=True)
class Wording:
    """What one kind of confirmation says. Each paragraph may name the way to act as
    ``{act}``: "press the button" in the HTML part, "open this link" in the text part."""

    subject: str
    heading: str
    paragraphs: tuple[str, ...]
    button: str
    ignore: str

    def said(self, act: str) -> tuple[str, ...]:
        """The paragraphs for the part whose way to act is ``act``."""
        return tuple(paragraph.replace("{act}", act) for paragraph in self.paragraphs)


def signup_wording(site: SiteConfig, titles: Sequence[str]) -> Wording:
    listed = " and ".join(titles) if len(titles) < 3 else ", ".join(titles)
    return Wording(
        subject=f"Confirm your subscription to {listed}",
        heading="Please confirm your subscription",
        paragraphs=(
            f"Someone, probably you, asked to receive {listed} from {site.name} at this address.",
            "Nothing will be sent until you confirm: {act}, then confirm on the page that opens.",
        ),
        button="Confirm my subscription",
        ignore="If you did not ask for this, ignore this email: you will not be subscribed "
        "and will hear nothing more from us.",
    )


def address_wording(site: SiteConfig) -> Wording:
    return Wording(
        subject=f"Confirm your new address for {site.name}",
        heading="Please confirm your new address",
        paragraphs=(
            f"Someone, probably you, asked to receive their {site.name} newsletters at this "
            "address instead of the one they use now.",
            "Nothing changes until you confirm: {act}, then confirm on the page that opens. "
            "Until then the emails keep going to the old address.",
        ),
        button="Confirm this address",
        ignore="If you did not ask for this, ignore this email: nothing will change.",
    )


def lasting(span: timedelta) -> str:
    """``span`` in words: "7 days", "24 hours", "1 hour"."""
    hours = int(span.total_seconds() // 3600)
    count, unit = (hours // 24, "day") if hours % 24 == 0 and hours else (max(hours, 1), "hour")
    return f"{count} {unit}" + ("" if count == 1 else "s")


class ConfirmationMail:
    """Renders confirmation letters from ``templates_dir`` (loaded once, here)."""

    def __init__(self, templates_dir: Path) -> None:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(templates_dir),
            autoescape=jinja2.select_autoescape(["html"]),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        try:
            self._html = env.get_template("confirm.html")
            self._text = env.get_template("confirm.txt")
        except (jinja2.TemplateError, OSError) as exc:
            raise ConfigError(
                f"confirmation email templates in {templates_dir} cannot be loaded: {exc}"
            ) from exc

    def letter(
        self,
        site: SiteConfig,
        wording: Wording,
        *,
        url: str,
        recipient: str,
        lasts: timedelta,
        now: datetime,
    ) -> Letter:
        """The letter to ``recipient`` (ASCII form) carrying the confirmation ``url``."""
        context = {
            "site": site,
            "subject": wording.subject,
            "heading": wording.heading,
            "paragraphs": wording.said(PRESS),
            "text_paragraphs": wording.said(OPEN),
            "wrap": wrap,
            "button": wording.button,
            "ignore": wording.ignore,
            "url": url,
            "lasts": lasting(lasts),
        }
        message = EmailMessage(policy=BODY_POLICY)
        message["From"] = from_address(site)
        message["To"] = address_header(recipient)
        if site.reply_to:
            message["Reply-To"] = address_header(site.reply_to)
        message["Subject"] = clean_header_text(wording.subject)
        message["Date"] = format_datetime(now)
        message["Message-ID"] = make_msgid("confirm", domain=site.sender_domain)
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(
            self._text.render(context), subtype="plain", charset="utf-8", cte="quoted-printable"
        )
        message.add_alternative(
            self._html.render(context), subtype="html", charset="utf-8", cte="quoted-printable"
        )
        for part in message.iter_parts():
            del part["MIME-Version"]
        return Letter(site.sender_email, recipient, message.as_bytes(policy=policy.SMTP))
