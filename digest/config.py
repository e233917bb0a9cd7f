"""The editor's configuration as validated, immutable values.

``digest.editorial`` builds these from ``config/digest.toml``; everything else only
reads them. Paths are absolute (resolved against the config file's directory).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from digest.branding import Branding

SourceKind = Literal["feed", "folder"]
ScheduleKind = Literal["cron", "daily", "weekly", "monthly"]
LAST_DAY = 31  # a monthly schedule's day for "the month's last day"
TransportKind = Literal["outbox", "smtp"]
TlsMode = Literal["starttls", "tls", "none"]
Layout = Literal["full", "compact"]  # a post with image and excerpt, or one line of it
LAYOUTS: tuple[Layout, ...] = ("full", "compact")

DEFAULT_SUBJECT = (
    "{{ newsletter.title }}: {{ posts[0].title }}"
    "{% if posts|length > 1 %} {{ ngettext('(+%(count)s more)', '(+%(count)s more)',"
    " posts|length - 1) % {'count': posts|length - 1} }}{% endif %}"
)


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` names this machine (localhost, 127.0.0.0/8, ::1)."""
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class SiteConfig:
    """``[site]``: who sends, where the web app is reachable, the footer's postal address."""

    name: str
    base_url: str  # public URL of `digest run`'s web app, no trailing slash
    postal_address: str
    sender_name: str
    sender_email: str  # normalized; its domain is the Message-ID domain
    reply_to: str = ""
    unsubscribe_mailto: str = ""  # optional mailbox for List-Unsubscribe's mailto form
    timezone: str = "UTC"  # IANA zone for display and the default for schedules
    editors: tuple[str, ...] = ()  # normalized addresses told when a source fails or recovers

    @property
    def sender_domain(self) -> str:
        return self.sender_email.rpartition("@")[2]


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """``[sources.<id>]``: a feed (``url`` http(s) or ``path`` to a local file) or a folder."""

    id: str
    kind: SourceKind
    url: str = ""  # feed over HTTP(S)
    path: Path | None = None  # local feed file, or the folder of a folder source
    title: str = ""
    timeout_seconds: float = 20.0
    max_bytes: int = 5_000_000
    fetch_every_minutes: int = 30  # the poll interval; backed off while failing
    alert_after_failures: int = 3  # tell the editors after this many failed fetches in a row
    stale_after_days: int = 0  # warn when the newest post is older than this; 0: never
    allow_private_addresses: bool = False  # an intranet feed: loopback and private hosts too
    base_url: str = ""  # a local feed file: the web address its relative links resolve against


@dataclass(frozen=True, slots=True)
class ScheduleConfig:
    """When a cadence fires: cron, or daily/weekly/monthly at a local time in an IANA zone."""

    kind: ScheduleKind
    timezone: str
    cron: str = ""  # five crontab fields, for kind = "cron"
    time: str = "08:00"  # HH:MM local time, for daily, weekly and monthly
    weekday: str = "mon"  # mon..sun, for weekly
    weekdays: tuple[str, ...] = ()  # daily only on these days (mon..sun); empty: every day
    day: int = 1  # day of the month for monthly (1-28, or 31 = the month's last day)
    reader_timezone: bool = False  # at ``time`` in each reader's own zone (daily/weekly)


@dataclass(frozen=True, slots=True)
class CadenceConfig:
    """One way of receiving a newsletter (``[newsletters.<id>.cadences.<cadence>]``).

    A newsletter with a plain ``[newsletters.<id>.schedule]`` has one cadence, named after
    its schedule's kind. The first cadence is every reader's default.
    """

    id: str
    title: str
    schedule: ScheduleConfig


def one_cadence(schedule: ScheduleConfig) -> tuple[CadenceConfig, ...]:
    """The cadences of a newsletter with a single ``[schedule]``: one, named by its kind."""
    return (CadenceConfig(schedule.kind, schedule.kind.capitalize(), schedule),)


@dataclass(frozen=True, slots=True)
class TopicConfig:
    """A topic readers can choose: the post categories it gathers (case-insensitive)."""

    id: str
    title: str
    categories: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NewsletterConfig:
    """``[newsletters.<id>]``."""

    id: str
    title: str
    description: str
    source_ids: tuple[str, ...]
    cadences: tuple[CadenceConfig, ...]
    max_items: int = 10
    subject: str = DEFAULT_SUBJECT  # a Jinja2 template over `newsletter` and `posts`
    topics: tuple[TopicConfig, ...] = ()
    min_items: int = 1  # hold an edition for a reader until this many posts are owed ...
    max_wait_hours: float = 168.0  # ... or the oldest of them waited this long
    catch_up_items: int | None = None  # a new reader's first digest: newest posts (max_items)
    late_after_hours: float = 6.0  # a slot missed by more than this folds into the next
    public: bool = False  # offered on the home page and open to sign-up
    language: str = "en"  # a language tag: the templates' strings and the dates
    templates: Path | None = None  # the editor's templates, before the shipped ones
    branding: Branding = field(default_factory=Branding)
    layout: Layout = "full"
    source_titles: tuple[str, ...] = ()  # each source's title, in the order of source_ids

    def source_label(self, source_id: str) -> str:
        """What a post of ``source_id`` says it comes from, when there are several sources
        (its ``title``, else its id); "" for a newsletter of one source."""
        if len(self.source_ids) < 2:
            return ""
        titles = dict(zip(self.source_ids, self.source_titles, strict=False))
        return titles.get(source_id) or source_id

    @property
    def schedule(self) -> ScheduleConfig:
        """The default (first) cadence's schedule."""
        return self.cadences[0].schedule

    @property
    def default_cadence(self) -> CadenceConfig:
        return self.cadences[0]

    def cadence(self, cadence_id: str | None) -> CadenceConfig:
        """The cadence of that id; an unknown or missing one is the default."""
        for cadence in self.cadences:
            if cadence.id == cadence_id:
                return cadence
        return self.cadences[0]

    @property
    def catch_up(self) -> int:
        return self.max_items if self.catch_up_items is None else self.catch_up_items


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """``[delivery.smtp]``. The password is read from the environment variable named here."""

    host: str
    port: int = 587
    tls: TlsMode = "starttls"
    username: str = ""
    password_env: str = "DIGEST_SMTP_PASSWORD"
    timeout_seconds: float = 60.0
    concurrency: int = 10  # connections in use at once (messages in flight)
    max_per_second: int = 0  # rate limits for this relay; 0 = none
    max_per_hour: int = 0
    max_per_day: int = 0


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    """``[delivery]``: ``outbox`` (a Maildir folder, the default) or ``smtp``."""

    transport: TransportKind
    outbox_dir: Path
    smtp: SmtpConfig | None = None
    lease_seconds: float = 60.0  # a dead sender's claimed rows are taken over after this
    batch_size: int = 200  # ledger rows per claim transaction


@dataclass(frozen=True, slots=True)
class WebConfig:
    """``[web]``: where `digest run` serves its pages, and the rules of sign-up."""

    host: str = "127.0.0.1"
    port: int = 8000
    confirm_window_hours: float = 24.0  # at most one confirmation email per address per window
    confirmations_per_client_hour: int = 10  # per client IP address, every path together
    confirmations_per_hour: int = 500  # for the whole site
    pending_expiry_hours: float = 168.0  # an unconfirmed sign-up (and its link) lasts this long
    honeypot: bool = True  # a hidden form field that only robots fill in
    archive_page_size: int = 20  # editions per archive page


@dataclass(frozen=True, slots=True)
class Config:
    path: Path
    site: SiteConfig
    delivery: DeliveryConfig
    data_dir: Path
    database_url: str
    web: WebConfig = field(default_factory=WebConfig)
    sources: dict[str, SourceConfig] = field(default_factory=dict)
    newsletters: dict[str, NewsletterConfig] = field(default_factory=dict)
