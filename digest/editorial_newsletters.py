"""Reads ``[newsletters.<id>]`` tables: sources, cadences and their schedules, topics, rules.

Part of :mod:`digest.editorial` (which reads the rest of the file); like it, every problem
names file, table and key and says what to do, and all problems are reported together.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import jinja2

from digest.branding import (
    MAX_LOGO_WIDTH,
    Branding,
    contrast_problems,
    for_dark_mode,
    parse_colour,
)
from digest.config import (
    DEFAULT_SUBJECT,
    LAST_DAY,
    LAYOUTS,
    CadenceConfig,
    NewsletterConfig,
    ScheduleConfig,
    SourceConfig,
    TopicConfig,
    one_cadence,
)
from digest.config_table import ConfigTable, is_zone, show
from digest.errors import ConfigError
from digest.i18n import SHIPPED_LOCALE_DIR, check_language
from digest.models import Post
from digest.scheduler import check_schedule

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
NEWSLETTER_KEYS = (
    "title",
    "description",
    "sources",
    "max_items",
    "min_items",
    "max_wait_hours",
    "catch_up_items",
    "late_after_hours",
    "subject",
    "public",
    "language",
    "templates",
    "layout",
    "branding",
    "schedule",
    "cadences",
    "topics",
)
SCHEDULE_KEYS = ("daily", "weekly", "monthly", "cron", "weekdays", "reader_timezone", "timezone")
_CADENCE_KEYS = ("title", *SCHEDULE_KEYS)
_TOPIC_KEYS = ("title", "categories")
_BRANDING_KEYS = ("accent", "accent_dark", "logo_url", "logo_width", "logo_alt")
_SCHEDULE_HINT = (
    'daily = "07:00", weekly = "mon 07:00", monthly = "1 07:00" or cron = "0 7 * * 1-5"'
)
_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}\Z")
_HHMM = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)\Z")
_FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_NAMES = dict(zip(WEEKDAYS, WEEKDAYS, strict=True)) | {d: d[:3] for d in _FULL_DAYS}
_HOURS_PER_YEAR = 8760.0

# What `digest check` renders each subject template with: every field filled, so that a
# template which fails on a real edition fails here first.
SAMPLE_POST = Post(
    source_id="sample",
    guid="urn:digest:sample",
    title="A sample post",
    link="https://example.org/posts/sample",
    published=datetime(2026, 1, 1, 7, 0, tzinfo=UTC),
    author="A. Writer",
    summary_html="<p>The summary.</p>",
    content_html="<p>The content.</p>",
    image_url="https://example.org/posts/sample.png",
    image_caption="A caption",
    categories=("news",),
)


def check_id(table: ConfigTable, kind: str, ident: str) -> None:
    if not _ID.match(ident):
        table.fail(
            f"{kind} id {ident!r} must match [a-z0-9][a-z0-9_-]* (at most 64 characters): "
            "ids appear in URLs and List-Id"
        )


def _time_of_day(t: ConfigTable, kind: str, value: str, hhmm: str) -> str | None:
    match = _HHMM.match(hhmm)
    if not match:
        t.fail(f'{kind} {value!r}: {hhmm!r} is not a time of day as HH:MM, 24-hour (e.g. "07:00")')
        return None
    return f"{int(match[1]):02d}:{match[2]}"


def _weekdays(t: ConfigTable, kind: str) -> tuple[str, ...]:
    raw = t.data.get("weekdays")
    if raw is None:
        return ()
    words = raw if isinstance(raw, list) else [raw]
    days = [_DAY_NAMES.get(str(word).strip().lower()) for word in words]
    if not words or None in days or not all(isinstance(word, str) for word in words):
        t.fail(f'weekdays: expected a list of days such as ["mon", "fri"], got {show(raw)}')
        return ()
    if kind != "daily":
        t.fail("weekdays only goes with daily (a weekly schedule names its day)")
    return tuple(day for day in WEEKDAYS if day in days)


def schedule(t: ConfigTable, default_zone: str) -> ScheduleConfig:
    """One schedule: exactly one of daily, weekly, monthly or cron, in a zone; one that
    read cleanly is also one the scheduler can run (a problem is reported once)."""
    before = len(t.problems)
    result = _read_schedule(t, default_zone)
    if len(t.problems) == before and is_zone(result.timezone):
        try:
            check_schedule(result, f"{t.file}: [{t.name}] ")
        except ConfigError as exc:
            t.problems.append(str(exc))
    return result


def _read_schedule(t: ConfigTable, default_zone: str) -> ScheduleConfig:
    zone = t.zone("timezone", default_zone)
    given = [key for key in ("daily", "weekly", "monthly", "cron") if key in t.data]
    if len(given) != 1:
        found = f" (found {' and '.join(given)})" if given else ""
        t.fail(f"give exactly one of {_SCHEDULE_HINT}{found}")
        return ScheduleConfig(kind="daily", timezone=zone)
    kind = given[0]
    value = t.string(kind)
    weekdays = _weekdays(t, kind)
    reader_zone = t.data.get("reader_timezone", False)
    if not isinstance(reader_zone, bool):
        t.fail(f"reader_timezone: expected true or false, got {show(reader_zone)}")
        reader_zone = False
    if reader_zone and kind not in ("daily", "weekly"):
        t.fail("reader_timezone only goes with daily or weekly (a time of day in each zone)")
    if kind == "cron" or not value:
        return ScheduleConfig(kind=kind, timezone=zone, cron=" ".join(value.split()))
    weekday, day, hhmm = "mon", 1, value
    words = value.lower().split()
    if kind in ("weekly", "monthly"):
        if len(words) != 2:
            example = '(e.g. "mon 07:00")' if kind == "weekly" else '(e.g. "1 07:00", "last 07:00")'
            shape = "<weekday> HH:MM" if kind == "weekly" else "<day> HH:MM"
            t.fail(f'{kind} {value!r} is not "{shape}" {example}')
            return ScheduleConfig(kind=kind, timezone=zone)
        hhmm = words[1]
    if kind == "weekly":
        named = _DAY_NAMES.get(words[0])
        if named is None:
            t.fail(f'weekly {value!r}: {words[0]!r} is not a weekday (mon..sun, e.g. "mon 07:00")')
            return ScheduleConfig(kind=kind, timezone=zone)
        weekday = named
    if kind == "monthly":
        number = LAST_DAY if words[0] == "last" else int(words[0]) if words[0].isdigit() else 0
        if not (1 <= number <= 28 or number == LAST_DAY):
            t.fail(
                f'monthly {value!r}: the day is 1 to 28 or "last" (not every month has a'
                " 29th, 30th or 31st)"
            )
            return ScheduleConfig(kind=kind, timezone=zone)
        day = number
    time = _time_of_day(t, kind, value, hhmm)
    if time is None:
        return ScheduleConfig(kind=kind, timezone=zone)
    return ScheduleConfig(
        kind=kind,
        timezone=zone,
        time=time,
        weekday=weekday,
        weekdays=weekdays,
        day=day,
        reader_timezone=bool(reader_zone),
    )


def describe(schedule_config: ScheduleConfig) -> str:
    """A schedule in words, for pages and listings ("daily at 07:00 (Europe/Prague)")."""
    s = schedule_config
    zone = "each reader's time zone" if s.reader_timezone else s.timezone
    if s.kind == "cron":
        return f"cron {s.cron} ({zone})"
    if s.kind == "weekly":
        return f"weekly on {s.weekday} at {s.time} ({zone})"
    if s.kind == "monthly":
        day = "the last day" if s.day == LAST_DAY else f"day {s.day}"
        return f"monthly on {day} at {s.time} ({zone})"
    days = f" on {', '.join(s.weekdays)}" if s.weekdays else ""
    return f"daily{days} at {s.time} ({zone})"


def _cadences(t: ConfigTable, default_zone: str) -> tuple[CadenceConfig, ...]:
    if ("schedule" in t.data) == ("cadences" in t.data):
        t.fail(
            "give either a [schedule] table (one cadence) or [cadences.<id>] tables (readers"
            " choose one; the first is the default), exactly one of them"
        )
        if "schedule" not in t.data:
            return (CadenceConfig("daily", "Daily", ScheduleConfig("daily", default_zone)),)
    if "cadences" not in t.data:
        plan = schedule(t.table("schedule", SCHEDULE_KEYS), default_zone)
        return one_cadence(plan)
    table = t.table("cadences", None)
    cadences: list[CadenceConfig] = []
    for ident, data in table.data.items():
        sub = ConfigTable(t.problems, t.file, f"{table.name}.{ident}", data, _CADENCE_KEYS)
        check_id(sub, "cadence", ident)
        plan = schedule(sub, default_zone)
        cadences.append(CadenceConfig(ident, sub.string("title", describe(plan)), plan))
    if not cadences:
        table.fail('no cadence defined: add a [cadences.<id>] table with daily = "07:00" or so')
        return (CadenceConfig("daily", "Daily", ScheduleConfig("daily", default_zone)),)
    return tuple(cadences)


def _topics(t: ConfigTable) -> tuple[TopicConfig, ...]:
    table = t.table("topics", None)
    topics: list[TopicConfig] = []
    for ident, data in table.data.items():
        sub = ConfigTable(t.problems, t.file, f"{table.name}.{ident}", data, _TOPIC_KEYS)
        check_id(sub, "topic", ident)
        raw = sub.data.get("categories", [ident])
        if not isinstance(raw, list) or not raw or not all(isinstance(c, str) for c in raw):
            sub.fail(f"categories: expected a list of post categories, got {show(raw)}")
            raw = [ident]
        names = tuple(dict.fromkeys(str(c).strip().casefold() for c in raw if str(c).strip()))
        topics.append(TopicConfig(ident, sub.string("title", ident.capitalize()), names))
    return tuple(topics)


def newsletter(
    t: ConfigTable,
    ident: str,
    sources: Mapping[str, SourceConfig],
    default_zone: str,
    base: Path,
) -> NewsletterConfig:
    source_ids: list[str] = []
    raw = t.data.get("sources")
    if raw is None:
        t.fail("missing required key 'sources' (a list of source ids)")
    elif not isinstance(raw, list) or not raw or not all(isinstance(s, str) for s in raw):
        t.fail(f"sources: expected a non-empty list of source ids, got {show(raw)}")
    else:
        source_ids = [s.strip() for s in raw]
    for sid in source_ids:
        if sid not in sources:
            close = difflib.get_close_matches(sid, list(sources), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            t.fail(
                f"sources: unknown source id {sid!r} ({hint}defined: "
                f"{', '.join(sources) or 'none'}); add a [sources.{sid}] table or fix the id"
            )
    if len(set(source_ids)) != len(source_ids):
        t.fail("sources: a source id is listed twice")
    public = t.data.get("public", False)
    if not isinstance(public, bool):
        t.fail(f"public: expected true or false, got {show(public)}")
    max_items = t.integer("max_items", 10, 1)
    result = NewsletterConfig(
        id=ident,
        title=t.string("title"),
        description=t.string("description", ""),
        source_ids=tuple(source_ids),
        cadences=_cadences(t, default_zone),
        max_items=max_items,
        subject=t.string("subject", DEFAULT_SUBJECT),
        topics=_topics(t),
        min_items=t.integer("min_items", 1, 1, max_items),
        max_wait_hours=t.number("max_wait_hours", 168.0, _HOURS_PER_YEAR),
        catch_up_items=t.integer("catch_up_items", max_items, 0, max_items)
        if "catch_up_items" in t.data
        else None,
        late_after_hours=t.number("late_after_hours", 6.0, _HOURS_PER_YEAR),
        public=public is True,
        language=_language(t),
        templates=_templates(t, base),
        branding=_branding(t),
        layout=t.choice("layout", LAYOUTS, "full"),
        source_titles=tuple(sources[sid].title if sid in sources else "" for sid in source_ids),
    )
    _check_subject(t, result)
    return result


def _templates(t: ConfigTable, base: Path) -> Path | None:
    if "templates" not in t.data:
        return None
    folder = t.path("templates", base, base)
    if not folder.is_dir():
        t.fail(
            f"templates: {folder} is not a folder; give a folder holding any of digest.html,"
            " _post.html, _post_compact.html, _more.html, digest.txt and email.css (the"
            " shipped ones fill in the rest)"
        )
        return None
    return folder


def _branding(t: ConfigTable) -> Branding:
    table = t.table("branding", _BRANDING_KEYS)
    default = Branding()
    colours: dict[str, str] = {}
    for key in ("accent", "accent_dark"):
        colour = table.string(key, getattr(default, key))
        try:
            parse_colour(colour)
        except ValueError as exc:
            table.fail(f"{key}: {exc}")
            colour = getattr(default, key)
        colours[key] = colour.lower()
    logo_url = table.string("logo_url", "")
    if logo_url and not logo_url.startswith("https://"):
        table.fail(
            f"logo_url {logo_url!r}: use an absolute https:// address (mail programs block"
            " images from plain http, and a relative address means nothing in an inbox)"
        )
        logo_url = ""
    if "accent" in table.data and "accent_dark" not in table.data:
        colours["accent_dark"] = for_dark_mode(colours["accent"])  # the brand in both schemes
    branding = Branding(
        accent=colours["accent"],
        accent_dark=colours["accent_dark"],
        logo_url=logo_url,
        logo_width=table.integer("logo_width", default.logo_width, 16, MAX_LOGO_WIDTH),
        logo_alt=table.string("logo_alt", ""),
    )
    for problem in contrast_problems(branding):
        table.fail(problem)
    return branding


def _language(t: ConfigTable) -> str:
    language = t.string("language", "en")
    try:
        check_language(SHIPPED_LOCALE_DIR, language, "")
    except ConfigError as exc:
        t.fail(str(exc))
        return "en"
    return language


def _check_subject(t: ConfigTable, config: NewsletterConfig) -> None:
    """Compile and render the subject once, as ``digest.render`` will for every edition."""
    env = jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined)
    try:
        template = env.from_string(config.subject)
    except jinja2.TemplateSyntaxError as exc:  # unknown filters and tests included
        t.fail(f"subject is not a valid Jinja2 template: {exc.message}")
        return
    try:
        template.render(newsletter=config, posts=[SAMPLE_POST])
    except Exception as exc:  # whatever it is, it would stop every edition of this newsletter
        t.fail(
            f"subject cannot be rendered ({type(exc).__name__}: {' '.join(str(exc).split())}):"
            " it gets `newsletter` (id, title, description) and `posts`, each with title,"
            " link, published, author, summary_html, categories, ..."
        )
