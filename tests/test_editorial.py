"""Tests for digest.editorial: the shipped example loads; every mistake is named precisely."""

from __future__ import annotations

import re
import shutil
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from digest.config import DEFAULT_SUBJECT, Config
from digest.editorial import default_config_path, load_config
from digest.editorial_newsletters import NEWSLETTER_KEYS
from digest.errors import ConfigError
from digest.sources import fetch_source

SHIPPED = Path(__file__).resolve().parent.parent / "config" / "digest.toml"
FIXTURE_FEED = Path(__file__).resolve().parent / "fixtures" / "feeds" / "transmission.xml"

MINIMAL = """\
[site]
name = "Transmission"
base_url = "https://digest.example.org/"
postal_address = "1 Example Street, Prague"
sender_email = "digest@transmission.example.org"
timezone = "Europe/Prague"

[sources.posts]
kind = "folder"
path = "posts"

[newsletters.daily]
title = "Transmission Daily"
sources = ["posts"]

[newsletters.daily.schedule]
daily = "07:00"
"""


def edit(old: str, new: str, text: str = MINIMAL) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    """Where the tests write their config, next to the folder MINIMAL's source reads."""
    (tmp_path / "conf" / "posts").mkdir(parents=True)
    return tmp_path / "conf" / "digest.toml"


def load(path: Path, text: str) -> Config:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def problem(path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load(path, text)
    return str(caught.value)


# --- what loads ------------------------------------------------------------------------


def test_the_shipped_example_loads() -> None:
    config = load_config(SHIPPED)
    assert config.path == SHIPPED
    assert config.site.name == "Transmission"
    assert config.site.sender_email == "digest@transmission.example.org"
    assert config.site.sender_domain == "transmission.example.org"
    assert config.site.postal_address
    assert config.site.timezone == "Europe/Prague"
    root = SHIPPED.parent.parent
    assert config.data_dir == root / "var"
    assert config.database_url == f"sqlite:///{root / 'var' / 'digest.db'}"
    assert config.delivery.transport == "outbox"
    assert config.delivery.outbox_dir == root / "var" / "outbox"
    assert config.sources["transmission-posts"].kind == "folder"
    assert config.sources["transmission-posts"].path == SHIPPED.parent / "posts"
    assert config.sources["transmission-feed"].path == SHIPPED.parent / "feeds/transmission.xml"
    daily = config.newsletters["daily"]
    assert daily.source_ids == ("transmission-posts", "transmission-feed")
    assert (daily.schedule.kind, daily.schedule.time) == ("daily", "07:00")
    assert daily.schedule.timezone == "Europe/Prague"
    assert daily.subject == DEFAULT_SUBJECT


async def test_the_shipped_sources_read_whatever_posts_the_editor_has(now: datetime) -> None:
    # Content-free on purpose: the editor adds and removes posts (tests/fixtures has copies
    # for the tests that count them); what must hold is that every source can be read.
    config = load_config(SHIPPED)
    async with httpx.AsyncClient(transport=httpx.MockTransport(_no_network)) as client:
        for source in config.sources.values():
            result = await fetch_source(source, None, client=client, now=now)
            assert result.source_id == source.id


def _no_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"the shipped sources are local files, yet {request.url} was asked")


def test_the_shipped_commented_examples_are_valid(config_path: Path) -> None:
    text = SHIPPED.read_text(encoding="utf-8")
    text = edit('transport = "outbox"', 'transport = "smtp"', text)
    # uncomment the [delivery.smtp] table and the weekly newsletter
    text = re.sub(r"^# (\[delivery\.smtp\]|\[newsletters\.weekly.*\])", r"\1", text, flags=re.M)
    text = re.sub(
        r"^# ((?:host|port|tls|username|password_env|timeout_seconds|concurrency|title|"
        r"description|sources|max_items|subject|weekly) = .*)$",
        r"\1",
        text,
        flags=re.M,
    )
    (config_path.parent / "feeds").mkdir()
    shutil.copy(FIXTURE_FEED, config_path.parent / "feeds")
    config = load(config_path, text)
    assert config.delivery.smtp is not None
    assert config.delivery.smtp.host == "smtp.example.org"
    assert config.delivery.smtp.tls == "starttls"
    weekly = config.newsletters["weekly"]
    assert (weekly.schedule.kind, weekly.schedule.weekday, weekly.schedule.time) == (
        "weekly",
        "mon",
        "07:30",
    )
    assert weekly.schedule.timezone == "Europe/Prague"  # from [site]
    assert weekly.max_items == 15


def test_defaults_and_relative_paths(config_path: Path) -> None:
    config = load(config_path, MINIMAL)
    base = config_path.parent.resolve()
    assert config.site.base_url == "https://digest.example.org"  # trailing slash stripped
    assert config.site.sender_name == "Transmission"
    assert config.data_dir == base / "var"
    assert config.database_url == f"sqlite:///{base}/var/digest.db"
    assert config.delivery.outbox_dir == base / "var" / "outbox"
    assert config.web.port == 8000
    assert config.sources["posts"].path == base / "posts"
    assert config.newsletters["daily"].max_items == 10
    assert config.newsletters["daily"].description == ""


def test_storage_paths_and_database_urls(config_path: Path) -> None:
    base = config_path.parent.resolve()
    text = MINIMAL + '[storage]\ndata_dir = "../state"\ndatabase_url = "sqlite:///db/d.db"\n'
    config = load(config_path, text)
    assert config.data_dir == base.parent / "state"
    assert config.database_url == f"sqlite:///{base}/db/d.db"
    pg = "postgresql+psycopg://digest@db/digest"
    assert load(config_path, MINIMAL + f'[storage]\ndatabase_url = "{pg}"\n').database_url == pg


def test_values_are_normalized(config_path: Path) -> None:
    text = edit('"digest@transmission.example.org"', '"Digest@Transmission.EXAMPLE.org"')
    text = edit('daily = "07:00"', 'weekly = "Friday 7:05"\ntimezone = "America/New_York"', text)
    config = load(config_path, text)
    assert config.site.sender_email == "Digest@transmission.example.org"
    schedule = config.newsletters["daily"].schedule
    assert (schedule.kind, schedule.weekday, schedule.time) == ("weekly", "fri", "07:05")
    assert schedule.timezone == "America/New_York"


def test_cron_schedules_are_kept_for_the_scheduler_to_check(config_path: Path) -> None:
    config = load(config_path, edit('daily = "07:00"', 'cron = "0  7 * * 1-5"'))
    schedule = config.newsletters["daily"].schedule
    assert (schedule.kind, schedule.cron) == ("cron", "0 7 * * 1-5")


@pytest.mark.parametrize(
    ("cron", "reason"),
    [
        ("0 7 * *", "cron '0 7 * *' is not valid: it has 4 fields"),
        ("61 7 * * *", "cron '61 7 * * *' is not valid: "),
        ("0 7 1 * 1", "cron '0 7 1 * 1' is not valid: it restricts both day of month and weekday"),
        ("0 7 31 2 *", "cron '0 7 31 2 *' never fires"),
    ],
)
def test_a_bad_cron_is_refused_when_the_config_is_loaded(
    config_path: Path, cron: str, reason: str
) -> None:
    message = problem(config_path, edit('daily = "07:00"', f'cron = "{cron}"'))
    assert message.startswith(f"{config_path}: [newsletters.daily.schedule] {reason}")
    assert "\n" not in message


def test_a_bad_cron_is_reported_with_the_other_problems(config_path: Path) -> None:
    text = edit('daily = "07:00"', 'cron = "0 7 * *"', edit('kind = "folder"', 'kind = "fodler"'))
    lines = problem(config_path, text).splitlines()
    assert len(lines) == 2
    assert "[sources.posts] kind 'fodler' is not one of" in lines[0]
    assert "[newsletters.daily.schedule] cron '0 7 * *' is not valid" in lines[1]


def test_a_missing_post_folder_is_named_with_what_to_do(config_path: Path) -> None:
    text = edit('path = "posts"', 'path = "articles"')
    folder = config_path.parent / "articles"
    assert problem(config_path, text) == (
        f"{config_path}: [sources.posts] path 'articles' ({folder}): no such folder; create it"
        f" for the posts (*.md, *.html), or fix path (relative to the folder of {config_path})"
    )
    folder.write_text("not a folder", encoding="utf-8")
    assert "is not a folder: a folder source reads" in problem(config_path, text)


def test_a_missing_local_feed_file_is_named_with_what_to_do(config_path: Path) -> None:
    feed = config_path.parent / "feed.xml"
    text = edit('kind = "folder"\npath = "posts"', f'kind = "feed"\npath = "{feed}"')
    assert problem(config_path, text) == (
        f"{config_path}: [sources.posts] path '{feed}': no such feed file; fix path, or give"
        ' url = "https://..." for a feed on the web'
    )
    feed.mkdir()
    assert f"path '{feed}' is a folder, not a feed file: use kind = \"folder\"" in problem(
        config_path, text
    )
    feed.rmdir()
    feed.write_text("<rss/>", encoding="utf-8")
    assert load(config_path, text).sources["posts"].path == feed


def test_source_health_keys(config_path: Path) -> None:
    source = load(config_path, MINIMAL).sources["posts"]
    assert (source.alert_after_failures, source.stale_after_days) == (3, 0)
    text = edit('path = "posts"', 'path = "posts"\nalert_after_failures = 5\nstale_after_days = 14')
    source = load(config_path, text).sources["posts"]
    assert (source.alert_after_failures, source.stale_after_days) == (5, 14)
    text = edit('path = "posts"', 'path = "posts"\nalert_after_failures = 0')
    assert "alert_after_failures 0 is out of range: use a whole number from 1 to 1000" in problem(
        config_path, text
    )


def test_editors_are_validated_and_normalized(config_path: Path) -> None:
    assert load(config_path, MINIMAL).site.editors == ()
    line = 'editors = ["Desk@Example.ORG", "ana@bücher.example", "Desk@example.org"]'
    text = edit('timezone = "Europe/Prague"', f'timezone = "Europe/Prague"\n{line}')
    editors = load(config_path, text).site.editors
    assert editors == ("Desk@example.org", "ana@xn--bcher-kva.example")
    bad = edit('timezone = "Europe/Prague"', 'timezone = "Europe/Prague"\neditors = ["desk"]')
    assert "[site] editors 'desk' is not a valid email address" in problem(config_path, bad)
    one = edit('timezone = "Europe/Prague"', 'timezone = "Europe/Prague"\neditors = "a@b.org"')
    assert "[site] editors: expected a list of email addresses" in problem(config_path, one)


def test_smtp_transport_defaults(config_path: Path) -> None:
    text = MINIMAL + '[delivery]\ntransport = "smtp"\n[delivery.smtp]\nhost = "mx"\ntls = "tls"\n'
    smtp = load(config_path, text).delivery.smtp
    assert smtp is not None
    assert (smtp.host, smtp.port, smtp.tls, smtp.password_env) == (
        "mx",
        465,
        "tls",
        "DIGEST_SMTP_PASSWORD",
    )


def test_default_config_path() -> None:
    assert default_config_path({}) == Path("config/digest.toml")
    assert default_config_path({"DIGEST_CONFIG": "  "}) == Path("config/digest.toml")
    assert default_config_path({"DIGEST_CONFIG": "/etc/digest.toml"}) == Path("/etc/digest.toml")


# --- what is refused, and how it is said -----------------------------------------------


def test_file_not_found_says_what_to_do(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as caught:
        load_config(missing)
    message = str(caught.value)
    assert message.startswith(f"{missing}: configuration file not found")
    assert "copy config/digest.toml" in message
    assert "--config" in message


def test_invalid_toml_gives_line_and_column(config_path: Path) -> None:
    message = problem(config_path, edit('name = "Transmission"', 'name = "Transmission'))
    assert message.startswith(f"{config_path}: not valid TOML: ")
    assert "line 2" in message
    assert "column" in message


def test_not_utf8(config_path: Path) -> None:
    config_path.write_bytes(MINIMAL.encode("utf-8") + b"# caf\xe9\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(config_path)


def test_unknown_key_suggests_the_right_one(config_path: Path) -> None:
    message = problem(
        config_path, edit("[newsletters.daily.schedule]", "[newsletters.daily.shedule]")
    )
    assert (
        f"{config_path}: [newsletters.daily] unknown key 'shedule' (did you mean 'schedule'? "
        f"known: {', '.join(NEWSLETTER_KEYS)})"
    ) in message
    assert "give either a [schedule] table (one cadence) or [cadences.<id>] tables" in message


def test_unknown_top_level_table(config_path: Path) -> None:
    message = problem(config_path, MINIMAL + "[delivry]\n")
    assert f"{config_path}: unknown table 'delivry' (did you mean 'delivery'?" in message


def test_timezone_must_be_iana(config_path: Path) -> None:
    text = edit('daily = "07:00"', 'daily = "07:00"\ntimezone = "Europe/Londn"')
    assert problem(config_path, text) == (
        f"{config_path}: [newsletters.daily.schedule] timezone 'Europe/Londn' is not an IANA "
        "time zone (e.g. 'Europe/London')"
    )
    for bad in ("Europe", "", "../../etc/passwd", "CEST"):
        text = edit('timezone = "Europe/Prague"', f'timezone = "{bad}"')
        # reported once, in [site], not again for the schedule that inherits it
        assert problem(config_path, text).startswith(
            f"{config_path}: [site] timezone {bad!r} is not an IANA time zone (e.g. "
        )
        assert "\n" not in problem(config_path, text)


def test_missing_required_key(config_path: Path) -> None:
    message = problem(config_path, edit('sender_email = "digest@transmission.example.org"\n', ""))
    assert message == f"{config_path}: [site] missing required key 'sender_email'"


def test_missing_site_table(config_path: Path) -> None:
    text = MINIMAL[MINIMAL.index("[sources.posts]") :]
    message = problem(config_path, text)
    assert message.startswith(f"{config_path}: missing required table [site]")


def test_wrong_type(config_path: Path) -> None:
    message = problem(config_path, edit('name = "Transmission"', "name = 3"))
    assert f"{config_path}: [site] name: expected a string, got 3" in message
    text = edit('daily = "07:00"', "daily = 07:00:00")
    assert "[newsletters.daily.schedule] daily: expected a string, got 07:00:00" in problem(
        config_path, text
    )
    text = edit('sources = ["posts"]', 'sources = ["posts"]\nmax_items = "5"')
    assert "[newsletters.daily] max_items: expected an integer, got '5'" in problem(
        config_path, text
    )
    text = MINIMAL + "[web]\nport = true\n"
    assert "[web] port: expected an integer, got true" in problem(config_path, text)


def test_unknown_source_id(config_path: Path) -> None:
    message = problem(config_path, edit('sources = ["posts"]', 'sources = ["post", "feed"]'))
    lines = message.splitlines()
    assert lines[0] == (
        f"{config_path}: [newsletters.daily] sources: unknown source id 'post' (did you mean "
        "'posts'? defined: posts); add a [sources.post] table or fix the id"
    )
    assert "unknown source id 'feed'" in lines[1]


@pytest.mark.parametrize("value", ['""', '"   "'])
def test_postal_address_is_required(config_path: Path, value: str) -> None:
    text = edit('postal_address = "1 Example Street, Prague"', f"postal_address = {value}")
    message = problem(config_path, text)
    assert message.startswith(f"{config_path}: [site] postal_address is empty: ")
    assert "CAN-SPAM" in message
    assert "every footer" in message
    missing = problem(config_path, edit('postal_address = "1 Example Street, Prague"\n', ""))
    assert missing.startswith(f"{config_path}: [site] missing required key 'postal_address'")
    assert "CAN-SPAM" in missing


def test_sender_email_must_be_valid(config_path: Path) -> None:
    text = edit('"digest@transmission.example.org"', '"digest at transmission"')
    message = problem(config_path, text)
    assert message.startswith(
        f"{config_path}: [site] sender_email 'digest at transmission' is not a valid email address"
    )
    text = MINIMAL.replace('timezone = "Europe/Prague"', 'reply_to = "a@@b"', 1)
    assert "[site] reply_to 'a@@b' is not a valid email address" in problem(config_path, text)


@pytest.mark.parametrize("url", ["ftp://example.org", "example.org", "https://", "javascript:x"])
def test_base_url_must_be_http(config_path: Path, url: str) -> None:
    text = edit('base_url = "https://digest.example.org/"', f'base_url = "{url}"')
    assert problem(config_path, text).startswith(
        f"{config_path}: [site] base_url {url.rstrip('/')!r} is not an http:// or https:// URL"
    )


def test_max_items_must_be_positive(config_path: Path) -> None:
    text = edit('sources = ["posts"]', 'sources = ["posts"]\nmax_items = 0')
    assert problem(config_path, text) == (
        f"{config_path}: [newsletters.daily] max_items 0 is out of range: use a whole number "
        "at least 1"
    )


@pytest.mark.parametrize(
    ("extra", "where"),
    [
        ("[web]\nport = 70000\n", "[web] port 70000"),
        ("[web]\nport = 0\n", "[web] port 0"),
        ('[delivery.smtp]\nhost = "mx"\nport = 65536\n', "[delivery.smtp] port 65536"),
    ],
)
def test_port_out_of_range(config_path: Path, extra: str, where: str) -> None:
    assert problem(config_path, MINIMAL + extra) == (
        f"{config_path}: {where} is out of range: use a whole number from 1 to 65535"
    )


@pytest.mark.parametrize("ident", ["Daily", "-daily", "dai ly", "dailý", "x" * 65])
def test_ids_must_be_url_safe(config_path: Path, ident: str) -> None:
    text = edit("[newsletters.daily]", f'[newsletters."{ident}"]')
    text = edit("[newsletters.daily.schedule]", f'[newsletters."{ident}".schedule]', text)
    message = problem(config_path, text)
    assert message.startswith(f"{config_path}: [newsletters.{ident}] newsletter id {ident!r}")
    assert "[a-z0-9][a-z0-9_-]*" in message
    text = edit("[sources.posts]", "[sources.Posts]")
    assert f"{config_path}: [sources.Posts] source id 'Posts' must match" in problem(
        config_path, text
    )


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("", "give exactly one of daily = "),
        ('daily = "07:00"\ncron = "0 7 * * *"', "(found daily and cron)"),
        ('daily = "7.00"', "daily '7.00': '7.00' is not a time of day as HH:MM"),
        ('daily = "24:00"', "daily '24:00': '24:00' is not a time of day"),
        ('weekly = "07:00"', "weekly '07:00' is not \"<weekday> HH:MM\""),
        ('weekly = "mnday 07:00"', "weekly 'mnday 07:00': 'mnday' is not a weekday"),
        ('monthly = "30 07:00"', 'the day is 1 to 28 or "last"'),
        ('daily = "07:00"\nweekdays = ["mon", "frday"]', "weekdays: expected a list of days"),
        ('cron = "0 7 * * *"\nreader_timezone = true', "reader_timezone only goes with daily"),
        ('weekly = "mon 7:60"', "weekly 'mon 7:60': '7:60' is not a time of day"),
        ('daily = ""', "daily is empty"),
    ],
)
def test_schedule_mistakes(config_path: Path, schedule: str, expected: str) -> None:
    message = problem(config_path, edit('daily = "07:00"', schedule))
    assert message.startswith(f"{config_path}: [newsletters.daily.schedule] ")
    assert expected in message


def test_source_mistakes(config_path: Path) -> None:
    feed = '[sources.feed]\nkind = "feed"\nurl = "https://example.org/f.xml"\npath = "f.xml"\n'
    assert "[sources.feed] give either url" in problem(config_path, MINIMAL + feed)
    text = MINIMAL + '[sources.feed]\nkind = "feed"\nurl = "file:///etc/passwd"\n'
    assert "[sources.feed] url 'file:///etc/passwd' is not an http:// or https://" in problem(
        config_path, text
    )
    text = MINIMAL + '[sources.feed]\nkind = "rss"\nurl = "https://example.org/"\n'
    assert "[sources.feed] kind 'rss' is not one of 'feed', 'folder'" in problem(config_path, text)
    text = MINIMAL + '[sources.feed]\nkind = "feed"\n'
    assert "[sources.feed] missing required key 'url'" in problem(config_path, text)
    text = edit('path = "posts"', 'url = "https://example.org/"')
    assert "[sources.posts] url is only for feeds" in problem(config_path, text)
    text = MINIMAL + '[sources.feed]\nkind = "feed"\nurl = "https://e.org/"\ntimeout_seconds = 0\n'
    assert "[sources.feed] timeout_seconds 0 must be greater than 0" in problem(config_path, text)


def test_allow_private_addresses_is_a_boolean_for_a_feed_from_a_url(config_path: Path) -> None:
    feed = '[sources.feed]\nkind = "feed"\nurl = "http://intranet.example/f.xml"\n'
    assert not load(config_path, MINIMAL + feed).sources["feed"].allow_private_addresses
    allowed = load(config_path, MINIMAL + feed + "allow_private_addresses = true\n")
    assert allowed.sources["feed"].allow_private_addresses
    text = MINIMAL + feed + 'allow_private_addresses = "yes"\n'
    assert "allow_private_addresses: expected true or false, got 'yes'" in problem(
        config_path, text
    )
    text = edit('path = "posts"', 'path = "posts"\nallow_private_addresses = true')
    assert "[sources.posts] allow_private_addresses is for a feed fetched from a url" in problem(
        config_path, text
    )


def test_base_url_is_an_http_url_for_a_local_feed_file(config_path: Path) -> None:
    feed = '[sources.feed]\nkind = "feed"\npath = "site/feed.xml"\n'
    site = 'base_url = "https://transmission.example.org/blog/"\n'
    (config_path.parent / "site").mkdir()
    (config_path.parent / "site" / "feed.xml").write_text("<rss/>")
    assert load(config_path, MINIMAL + feed + site).sources["feed"].base_url == (
        "https://transmission.example.org/blog/"
    )
    assert load(config_path, MINIMAL + feed).sources["feed"].base_url == ""
    text = MINIMAL + feed + 'base_url = "transmission.example.org"\n'
    assert "[sources.feed] base_url 'transmission.example.org' is not an http:// or https://" in (
        problem(config_path, text)
    )
    web = '[sources.web]\nkind = "feed"\nurl = "https://e.org/f.xml"\n' + site
    assert "[sources.web] base_url is for a local feed file" in problem(config_path, MINIMAL + web)
    text = edit('path = "posts"', 'path = "posts"\n' + site)
    assert "[sources.posts] base_url is for a local feed file" in problem(config_path, text)


def test_delivery_mistakes(config_path: Path) -> None:
    text = MINIMAL + '[delivery]\ntransport = "smtp"\n'
    assert f'{config_path}: [delivery] transport = "smtp" needs a [delivery.smtp]' in problem(
        config_path, text
    )
    text = MINIMAL + '[delivery.smtp]\nhost = "mx"\npassword = "hunter2"\n'
    message = problem(config_path, text)
    assert "[delivery.smtp] unknown key 'password'" in message
    assert "never put the password here" in message
    assert "hunter2" not in message
    text = MINIMAL + '[delivery.smtp]\nhost = "mx"\ntls = "ssl"\n'
    assert "[delivery.smtp] tls 'ssl' is not one of 'starttls', 'tls', 'none'" in problem(
        config_path, text
    )
    text = MINIMAL + "[delivery.smtp]\nport = 25\n"
    assert "[delivery.smtp] missing required key 'host'" in problem(config_path, text)


def test_subject_must_be_a_valid_template(config_path: Path) -> None:
    text = edit('sources = ["posts"]', 'sources = ["posts"]\nsubject = "{{ posts[0].title "')
    assert "[newsletters.daily] subject is not a valid Jinja2 template" in problem(
        config_path, text
    )


def test_a_newsletter_is_required(config_path: Path) -> None:
    text = MINIMAL[: MINIMAL.index("[newsletters.daily]")]
    assert problem(config_path, text) == (
        f"{config_path}: no newsletter defined: add a [newsletters.<id>] table (see the example)"
    )


def test_all_problems_are_reported_together(config_path: Path) -> None:
    text = edit('name = "Transmission"', "name = 3")
    text = edit('daily = "07:00"', 'daily = "7h"', text)
    text = edit('sources = ["posts"]', 'sources = ["posts"]\nmax_items = -1', text)
    lines = problem(config_path, text).splitlines()
    assert len(lines) == 3
    assert all(line.startswith(f"{config_path}: [") for line in lines)
    assert "[site] name" in lines[0]


# --- values that would pass here and break later ---------------------------------------


def test_idn_addresses_are_kept_as_a_labels(config_path: Path) -> None:
    # A U-label sender makes the SMTP mailer demand SMTPUTF8, which an A-label never needs.
    for written in ("digest@xn--bcher-kva.example", "digest@Bücher.example"):
        text = edit('"digest@transmission.example.org"', f'"{written}"')
        text = edit(
            'timezone = "Europe/Prague"',
            'unsubscribe_mailto = "mailto:u@bücher.example"\nreply_to = "jürgen@bücher.example"',
            text,
        )
        site = load(config_path, text).site
        assert site.sender_email == "digest@xn--bcher-kva.example"
        assert site.sender_domain == "xn--bcher-kva.example"
        assert site.unsubscribe_mailto == "u@xn--bcher-kva.example"
        assert site.reply_to == "jürgen@bücher.example"  # a header, never an envelope


@pytest.mark.parametrize("key", ["sender_email", "unsubscribe_mailto"])
def test_envelope_addresses_need_an_ascii_local_part(config_path: Path, key: str) -> None:
    text = edit('timezone = "Europe/Prague"', 'timezone = "Europe/Prague"\nunsubscribe_mailto = ""')
    text = edit(f'{key} = "', f'{key} = "jürgen@example.org"\n# "', text)
    message = problem(config_path, text)
    assert message == (
        f"{config_path}: [site] {key} 'jürgen@example.org' needs an ASCII local part (before "
        "the @): a non-ASCII one needs SMTPUTF8, which most relays and mail headers do not carry"
    )


@pytest.mark.parametrize(
    ("url", "stored"),
    [
        ("https://Bücher.example/", "https://xn--bcher-kva.example"),
        ("https://bücher.example:8443/digest", "https://xn--bcher-kva.example:8443/digest"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
    ],
)
def test_an_idn_base_url_host_becomes_its_a_label(config_path: Path, url: str, stored: str) -> None:
    text = edit('base_url = "https://digest.example.org/"', f'base_url = "{url}"')
    assert load(config_path, text).site.base_url == stored


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.org/my digest", "must be printable ASCII without spaces"),
        ("https://example.org/bücher", "must be printable ASCII without spaces"),
        ("https://example.org/a\\tb", "must be printable ASCII without spaces"),
        ("https://" + "ü" * 70 + ".example", "its host is not a valid domain name"),
    ],
)
def test_base_url_must_fit_a_header(config_path: Path, url: str, expected: str) -> None:
    text = edit('base_url = "https://digest.example.org/"', f'base_url = "{url}"')
    message = problem(config_path, text)
    assert message.startswith(f"{config_path}: [site] base_url ")
    assert expected in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("{{ posts|lenght }}", "subject is not a valid Jinja2 template: No filter named 'lenght'"),
        ("{{ newsletter.titel }}", "subject cannot be rendered (UndefinedError: "),
        ("{{ posts[0].title|truncate('x') }}", "subject cannot be rendered (TypeError: "),
        ("{{ posts[1].title }}", "subject cannot be rendered (UndefinedError: "),
        ("{{ posts|length // 0 }}", "subject cannot be rendered (ZeroDivisionError: "),
    ],
)
def test_a_subject_that_fails_to_render_is_caught_by_check(
    config_path: Path, subject: str, expected: str
) -> None:
    text = edit('sources = ["posts"]', f'sources = ["posts"]\nsubject = "{subject}"')
    message = problem(config_path, text)
    assert message.startswith(f"{config_path}: [newsletters.daily] {expected}")


def test_a_subject_may_use_every_post_field(config_path: Path) -> None:
    subject = (
        "{{ newsletter.title }} {{ newsletter.id }}: {{ posts[0].title|truncate(40) }} by "
        "{{ posts[0].author }} ({{ posts[0].published.strftime('%d %b') }}, "
        "{{ posts[0].categories|join(', ') }}, {{ posts[0].link }})"
    )
    text = edit('sources = ["posts"]', f'sources = ["posts"]\nsubject = "{subject}"')
    assert load(config_path, text).newsletters["daily"].subject == subject


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            "fetch_every_minutes = 525601",
            "fetch_every_minutes 525601 is out of range: use a whole number from 1 to 525600",
        ),
        (
            "timeout_seconds = 601",
            "timeout_seconds 601 is out of range: use a number greater than 0, at most 600",
        ),
        (
            "timeout_seconds = inf",
            "timeout_seconds inf is out of range: use a number greater than 0, at most 600",
        ),
        ("timeout_seconds = nan", "timeout_seconds nan must be greater than 0"),
        ("max_bytes = 0", "max_bytes 0 is out of range: use a whole number at least 1"),
    ],
)
def test_source_numbers_have_sane_bounds(config_path: Path, extra: str, expected: str) -> None:
    text = edit('path = "posts"', f'path = "posts"\n{extra}')
    assert problem(config_path, text) == f"{config_path}: [sources.posts] {expected}"


def test_source_numbers_at_their_bounds_load(config_path: Path) -> None:
    text = edit(
        'path = "posts"', 'path = "posts"\nfetch_every_minutes = 525600\ntimeout_seconds = 600'
    )
    source = load(config_path, text).sources["posts"]
    assert (source.fetch_every_minutes, source.timeout_seconds) == (525600, 600.0)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("concurrency = 257", "concurrency 257 is out of range: use a whole number from 1 to 256"),
        ("concurrency = 0", "concurrency 0 is out of range: use a whole number from 1 to 256"),
        ("max_per_second = -1", "max_per_second -1 is out of range: use a whole number at least 0"),
        ("timeout_seconds = 1e9", "timeout_seconds 1000000000.0 is out of range"),
        ("timeout_seconds = -1", "timeout_seconds -1 must be greater than 0"),
    ],
)
def test_smtp_numbers_have_sane_bounds(config_path: Path, extra: str, expected: str) -> None:
    text = MINIMAL + f'[delivery.smtp]\nhost = "mx"\n{extra}\n'
    assert problem(config_path, text).startswith(f"{config_path}: [delivery.smtp] {expected}")


def test_a_password_in_clear_text_to_another_host_is_refused_at_load(config_path: Path) -> None:
    text = MINIMAL + '[delivery.smtp]\nhost = "smtp.example.org"\ntls = "none"\nusername = "me"\n'
    assert problem(config_path, text).startswith(
        f"{config_path}: [delivery.smtp] tls = \"none\" would send the password of 'me'"
    )
    local = MINIMAL + '[delivery.smtp]\nhost = "127.0.0.1"\ntls = "none"\nusername = "me"\n'
    assert load(config_path, local).delivery.smtp is not None


def test_every_cadence_is_checked_and_named_by_its_own_table(config_path: Path) -> None:
    cadences = (
        '[newsletters.daily.cadences.first]\ndaily = "07:00"\n'
        '[newsletters.daily.cadences.second]\ncron = "0 7 31 2 *"\n'
    )
    text = edit('[newsletters.daily.schedule]\ndaily = "07:00"\n', cadences)
    message = problem(config_path, text)
    assert f"{config_path}: [newsletters.daily.cadences.second] cron '0 7 31 2 *' never fires" in (
        message
    )
    assert "cadences.first" not in message
    good = edit('cron = "0 7 31 2 *"', 'weekly = "mon 07:30"', text)
    loaded = load(config_path, good).newsletters["daily"]
    assert [c.id for c in loaded.cadences] == ["first", "second"]


def test_a_newsletters_language_is_checked_against_the_shipped_catalogues(
    config_path: Path,
) -> None:
    assert load(config_path, MINIMAL).newsletters["daily"].language == "en"
    british = edit('sources = ["posts"]', 'sources = ["posts"]\nlanguage = "en-GB"')
    assert load(config_path, british).newsletters["daily"].language == "en-GB"
    german = edit('sources = ["posts"]', 'sources = ["posts"]\nlanguage = "de"')
    message = problem(config_path, german)
    assert "[newsletters.daily] language 'de' has no translation" in message
    assert "available: " in message
    assert "Traceback" not in message


def test_a_newsletters_layout_is_full_or_compact(config_path: Path) -> None:
    assert load(config_path, MINIMAL).newsletters["daily"].layout == "full"
    compact = edit('sources = ["posts"]', 'sources = ["posts"]\nlayout = "compact"')
    assert load(config_path, compact).newsletters["daily"].layout == "compact"
    message = problem(
        config_path, edit('sources = ["posts"]', 'sources = ["posts"]\nlayout = "list"')
    )
    assert "[newsletters.daily] layout 'list' is not one of 'full', 'compact'" in message


def test_a_newsletters_templates_folder_and_branding_are_read_and_checked(
    config_path: Path,
) -> None:
    (config_path.parent / "look").mkdir()
    text = edit(
        'sources = ["posts"]',
        'sources = ["posts"]\ntemplates = "look"\n'
        '[newsletters.daily.branding]\naccent = "#9A1B1B"\n'
        'logo_url = "https://transmission.example.org/logo.png"\nlogo_width = 200\n',
    )
    daily = load(config_path, text).newsletters["daily"]
    assert daily.templates == config_path.parent / "look"
    assert daily.branding.accent == "#9a1b1b"
    assert daily.branding.accent_dark == "#c27676"  # the accent, lightened for dark mode
    assert (daily.branding.logo_url, daily.branding.logo_width) == (
        "https://transmission.example.org/logo.png",
        200,
    )
    assert load(config_path, MINIMAL).newsletters["daily"].templates is None

    bad = edit(
        'sources = ["posts"]',
        'sources = ["posts"]\ntemplates = "nowhere"\n'
        '[newsletters.daily.branding]\naccent = "#ffdd00"\naccent_dark = "blue"\n'
        'logo_url = "http://transmission.example.org/logo.png"\nlogo_width = 9000\n',
    )
    message = problem(config_path, bad)
    assert f"[newsletters.daily] templates: {config_path.parent / 'nowhere'} is not a folder" in (
        message
    )
    assert "[newsletters.daily.branding] accent #ffdd00 has a contrast of" in message
    assert "[newsletters.daily.branding] accent_dark: 'blue' is not a colour" in message
    assert "logo_url 'http://transmission.example.org/logo.png': use an absolute https://" in (
        message
    )
    assert "logo_width 9000 is out of range" in message


def test_a_newsletter_knows_its_sources_titles_for_the_digest(config_path: Path) -> None:
    (config_path.parent / "notes").mkdir()
    text = edit('path = "posts"\n', 'path = "posts"\ntitle = "The Blog"\n')
    text = edit('sources = ["posts"]', 'sources = ["posts", "notes"]', text)
    text += '\n[sources.notes]\nkind = "folder"\npath = "notes"\n'
    daily = load(config_path, text).newsletters["daily"]
    assert daily.source_titles == ("The Blog", "")
    assert (daily.source_label("posts"), daily.source_label("notes")) == ("The Blog", "notes")
