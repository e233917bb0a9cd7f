"""The `digest` command, run in-process on real config files, SQLite and an outbox."""

from __future__ import annotations

import asyncio
import io
import json
import mailbox
from datetime import datetime
from pathlib import Path

import pytest
from rich.console import Console

from digest.app import build_app
from digest.cli import _parser, main
from digest.editions import open_edition
from digest.editorial import load_config
from digest.models import DeliveryStatus, SubscriptionStatus

from support.feedserver import Route, serving

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
FEEDS = FIXTURES / "feeds"


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setenv("DIGEST_SECRET_KEY", "cli-test-" + "k" * 32)
    monkeypatch.delenv("DIGEST_CONFIG", raising=False)


def write_config(tmp_path: Path, extra: str = "", schedule: str = 'daily = "07:00"') -> Path:
    path = tmp_path / "digest.toml"
    path.write_text(
        f"""
[site]
name = "Transmission"
base_url = "https://news.example.org/digest"
postal_address = "Vinohradska 12, Prague"
sender_email = "digest@example.org"
timezone = "Europe/Prague"

[storage]
data_dir = "var"

[delivery]
transport = "outbox"

[sources.posts]
kind = "folder"
path = "{FIXTURES / "posts"}"

[sources.broken]
kind = "feed"
path = "{FEEDS / "malformed.xml"}"

[newsletters.daily]
title = "Transmission Daily"
description = "The day's analysis."
sources = ["posts", "broken"]

[newsletters.daily.schedule]
{schedule}
{extra}
""",
        encoding="utf-8",
    )
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    commands = [
        ["run"], ["migrate"], ["check"], ["fetch"], ["preview"], ["send-now"], ["editions"],
        ["deliveries"], ["worker"],
        ["subscribers"], ["subscribers", "add"], ["subscribers", "list"], ["subscribers", "import"],
    ]  # fmt: skip
    for command in commands:
        with pytest.raises(SystemExit) as exit_info:
            _parser().parse_args([*command, "--help"])
        assert exit_info.value.code == 0
        out = capsys.readouterr().out
        assert "--config" in out, command
        assert "usage: digest" in out


def test_check_accepts_the_shipped_config(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", "--config", str(REPO / "config" / "digest.toml"))
    assert code == 0
    assert "2 source(s): transmission-posts, transmission-feed" in out
    rows = [line.split() for line in out.splitlines() if line.startswith("daily ")]
    assert [row[1] for row in rows] == ["daily", "weekly", "hourly"]  # the sample's cadences
    assert rows[0][-4:-2] == ["07:00", "CET"]


@pytest.mark.parametrize(
    ("extra", "schedule", "expected"),
    [
        ("[web]\nprot = 8000", 'daily = "07:00"', "prot"),
        ("", 'cron = "61 * * * *"', "cron"),
        ("", 'daily = "07:00"\ntimezone = "Europe/Londn"', "Europe/Londn"),
        ('[sources.gone]\nkind = "folder"\npath = "gone"', 'daily = "07:00"', "no such folder"),
    ],
)
def test_check_names_what_is_wrong(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: str,
    schedule: str,
    expected: str,
) -> None:
    config = write_config(tmp_path, extra, schedule)
    code, out, err = run(capsys, "check", "--config", str(config))
    assert code == 1
    assert expected in err
    assert "digest.toml" in err
    assert "Traceback" not in out + err


def test_fetch_reports_a_broken_feed_and_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    code, out, _ = run(capsys, "--config", str(config), "fetch")
    assert code == 1
    rows = {line.split()[0]: line.split() for line in out.splitlines()}
    assert "malformed.xml" in " ".join(out.split())
    assert rows["broken"][1:4] == ["0", "0", "source"]
    assert rows["posts"][1:4] == ["3", "3", "ok"]  # the three sample posts are new


def test_fetch_refuses_a_feed_at_a_private_address_unless_its_source_allows_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    internal = (FIXTURES / "ssrf" / "internal.xml").read_bytes()
    with serving({"/status.xml": Route(internal)}) as server:
        url = server.url("/status.xml")
        extra = (
            f'[sources.guarded]\nkind = "feed"\nurl = "{url}"\n'
            f'[sources.intranet]\nkind = "feed"\nurl = "{url}"\nallow_private_addresses = true\n'
        )
        config = write_config(tmp_path, extra)
        code, out, _ = run(capsys, "--config", str(config), "fetch", "guarded")
        assert code == 1
        assert "leads to 127.0.0.1, a loopback address" in " ".join(out.split())
        assert server.requests == []
        code, out, _ = run(capsys, "--config", str(config), "fetch", "intranet")
        assert code == 0
        assert server.requests == ["/status.xml"]
    rows = {line.split()[0]: line.split() for line in out.splitlines()}
    assert rows["intranet"][1:] == ["1", "1", "ok"]


def test_fetch_reports_the_relative_links_a_local_feed_file_lost(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    local = f'[sources.site]\nkind = "feed"\npath = "{FEEDS / "relative-links.xml"}"\n'
    code, out, _ = run(capsys, "--config", str(write_config(tmp_path, local)), "fetch", "site")
    assert code == 0
    assert (
        "warning: site: 6 relative links in 2 items dropped (first: item 'Pipeline Politics')"
    ) in out
    assert 'set base_url = "https://..." in [sources.site]' in out
    fixed = local + 'base_url = "https://transmission.example.org/"\n'
    code, out, _ = run(capsys, "--config", str(write_config(tmp_path, fixed)), "fetch", "site")
    assert code == 0
    assert "relative link" not in out


def test_import_reports_bad_rows_by_line_and_keeps_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    csv_file = tmp_path / "readers.csv"
    csv_file.write_text("email\nana@example.net\nnot-an-address\n\nBen@Example.org\n")
    code, out, _ = run(capsys, "subscribers", "import", str(csv_file), "--config", str(config))
    assert code == 1
    assert f"{csv_file}:3:" in out
    assert "not-an-address" in out
    assert "2 people (2 new, 0 already on the list); subscriptions: 2 added" in out
    assert "1 rejected" in out
    code, out, _ = run(capsys, "subscribers", "list", "--config", str(config))
    assert code == 0
    assert "ana@example.net" in out
    assert "ben@example.org" in out  # addresses are case-insensitive: stored lower-case
    assert "2 subscription(s)" in out


def test_add_rejects_a_bad_address_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    code, _, err = run(capsys, "--config", str(config), "subscribers", "add", "ana@@example")
    assert code == 1
    assert "'ana@@example' is not a usable email address" in err


def test_preview_records_nothing_and_send_now_fills_the_outbox(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = ["--config", str(write_config(tmp_path))]
    assert run(capsys, *config, "subscribers", "add", "ana@example.net")[0] == 0
    html, eml = tmp_path / "next.html", tmp_path / "next.eml"
    code, out, _ = run(capsys, *config, "preview", "daily", "--html", str(html), "--eml", str(eml))
    assert code == 0
    assert "Strains Visible In CIS Military Alliance" in html.read_text()
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in eml.read_bytes()
    assert "included" in out
    code, out, _ = run(capsys, *config, "editions")
    assert "manual-" not in out  # preview recorded no edition

    code, out, _ = run(capsys, *config, "send-now", "daily")
    assert code == 0
    assert "1 recipient(s); sent: 1" in out
    outbox = mailbox.Maildir(tmp_path / "var" / "outbox", create=False)
    [stored] = list(outbox)
    assert stored["To"] == "ana@example.net"

    code, out, _ = run(capsys, *config, "editions", "daily")
    assert code == 0
    assert "sent" in out
    prefix = next(word for word in out.split() if len(word) == 8 and word.isalnum())
    code, out, _ = run(capsys, *config, "editions", "show", prefix)
    assert "manual-" in out

    # Nothing new since: a second send-now records a skipped edition and sends nothing.
    code, out, _ = run(capsys, *config, "send-now", "daily")
    assert code == 0
    assert "nothing sent" in out
    assert len(list(outbox)) == 1


def test_unknown_newsletter_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    code, _, err = run(capsys, "--config", str(config), "preview", "weekly")
    assert code == 1
    assert "no newsletter 'weekly'" in err


def test_missing_config_file_says_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "--config", str(tmp_path / "nope.toml"), "check")
    assert code == 1
    assert "nope.toml" in err


def test_preview_to_an_unwritable_path_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    target = tmp_path / "missing-folder" / "next.html"
    code, out, err = run(capsys, "--config", str(config), "preview", "daily", "--html", str(target))
    assert code == 1
    assert f"cannot write {target}" in err
    assert "Traceback" not in out + err


def test_deliveries_show_who_got_an_edition(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = ["--config", str(write_config(tmp_path))]
    run(capsys, *config, "subscribers", "add", "ana@example.net")
    run(capsys, *config, "subscribers", "add", "ben@example.org")
    assert run(capsys, *config, "send-now", "daily")[0] == 0
    code, out, _ = run(capsys, *config, "editions", "daily")
    edition_id = next(word for word in out.split() if len(word) == 8 and word.isalnum())
    code, out, _ = run(capsys, *config, "deliveries", edition_id, "--tsv")
    assert code == 0
    rows = [line for line in out.splitlines() if "@example" in line]
    assert len(rows) == 2
    assert all("\tsent\t" in row and "stored in" in row for row in rows)
    code, out, _ = run(capsys, *config, "deliveries", edition_id, "--status", "failed")
    assert "@example" not in out
    code, _, err = run(capsys, *config, "deliveries", "no-such-edition")
    assert code == 1
    assert "no-such-edition" in err


def edition_prefix(capsys: pytest.CaptureFixture[str], config: list[str]) -> str:
    _, out, _ = run(capsys, *config, "editions", "daily")
    return next(word for word in out.split() if len(word) == 8 and word.isalnum())


def test_the_operator_steers_an_edition_by_its_id_prefix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = ["--config", str(write_config(tmp_path))]
    for email in ("ana@example.net", "ben@example.org"):
        run(capsys, *config, "subscribers", "add", email)
    assert run(capsys, *config, "send-now", "daily")[0] == 0
    prefix = edition_prefix(capsys, config)

    code, out, _ = run(capsys, *config, "editions", "show", prefix[:5])
    assert code == 0
    assert "status      sent" in out
    assert "recipients  2; still owed: 0" in out
    assert "duplicates  0 possible" in out

    code, _, err = run(capsys, *config, "editions", "pause", prefix)
    assert code == 1
    assert "is sent: only a sending or paused edition can be paused" in err
    code, out, _ = run(capsys, *config, "editions", "resend", prefix, "--unsent")
    assert (code, "0 row(s)" in out) == (0, True)
    code, _, err = run(capsys, *config, "editions", "resend", prefix)
    assert "--failed or --unsent" in err
    code, _, err = run(capsys, *config, "editions", "show", "zzzz")
    assert (code, "no edition with id 'zzzz'" in err) == (1, True)
    code, _, err = run(capsys, *config, "editions", "show")
    assert "usage: digest editions show EDITION_ID" in err

    code, out, _ = run(capsys, *config, "deliveries", prefix, "--email", "ANA")
    assert [line.split()[0] for line in out.splitlines() if "@" in line] == ["ana@example.net"]


def test_a_paused_edition_waits_for_resume_and_a_sent_one_cannot_be_cancelled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path)
    config = ["--config", str(path)]
    run(capsys, *config, "subscribers", "add", "ana@example.net")
    app = build_app(load_config(path), environ={"DIGEST_SECRET_KEY": "cli-test-" + "k" * 32})
    asyncio.run(app.fetch())
    site, newsletter = app.config.site, app.newsletter("daily")
    opened = open_edition(app.store, app.renderer, site, newsletter, app.secret, "p", app.clock())
    edition = opened.edition.id
    assert run(capsys, *config, "editions", "pause", edition[:6])[0] == 0
    assert run(capsys, *config, "worker")[0] == 0
    assert app.store.edition_summary(edition).counts[DeliveryStatus.PENDING] == 1  # held
    code, out, _ = run(capsys, *config, "editions", "resume", edition[:6])
    assert code == 0
    assert "1 recipient(s); sent: 1" in out
    code, _, err = run(capsys, *config, "editions", "cancel", edition[:6])
    assert (code, "is sent: only an unfinished edition" in err) == (1, True)
    app.store.close()


# --- the editor's commands ------------------------------------------------------------------


def write_cadenced_config(tmp_path: Path) -> Path:
    """The test config with two cadences, daily (the default) and weekly, for "daily"."""
    cadences = (
        '[newsletters.daily.cadences.daily]\ndaily = "07:00"\n'
        '[newsletters.daily.cadences.weekly]\nweekly = "mon 07:30"\n'
    )
    path = write_config(tmp_path, schedule="")
    path.write_text(path.read_text().replace("[newsletters.daily.schedule]\n", cadences))
    return path


def test_schedule_lists_the_next_sends_of_each_cadence_in_local_time_and_utc(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_cadenced_config(tmp_path)
    code, out, _ = run(capsys, "--config", str(path), "schedule", "-n", "3", "--json")
    assert code == 0
    rows = json.loads(out)
    assert [(r["cadence"], r["local"][-14:]) for r in rows][:3] == [("daily", "07:00:00+01:00")] * 3
    weekly = [r for r in rows if r["cadence"] == "weekly"]
    assert len(weekly) == 3
    assert all(datetime.fromisoformat(r["local"]).weekday() == 0 for r in weekly)  # Mondays
    assert all(r["at"].endswith("T06:30:00+00:00") for r in weekly)  # CET is UTC+1 in winter
    assert {r["timezone"] for r in rows} == {"Europe/Prague"}


def test_preview_for_one_reader_gives_every_posts_reason_and_send_test_records_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = ["--config", str(write_config(tmp_path))]
    run(capsys, *config, "subscribers", "add", "ana@example.net")
    code, out, _ = run(capsys, *config, "preview", "daily", "--subscriber", "Ana@Example.net")
    assert code == 0
    assert "for Ana@Example.net" in out
    assert "included: catch-up for a new reader" in out  # her first digest
    code, _, err = run(capsys, *config, "preview", "daily", "--subscriber", "bo@example.net")
    assert code == 1
    assert "'bo@example.net' has no subscription to newsletter 'daily'" in err

    code, out, _ = run(capsys, *config, "send-test", "daily", "--to", "editor@example.org")
    assert code == 0
    assert "test of daily to editor@example.org: sent (no delivery recorded)" in out
    [message] = mailbox.Maildir(tmp_path / "var" / "outbox", create=False)
    assert str(message["Subject"]).startswith("[TEST] Transmission Daily: ")
    assert message["To"] == "editor@example.org"
    app = build_app(load_config(tmp_path / "digest.toml"), environ={"DIGEST_SECRET_KEY": "x" * 40})
    assert app.store.list_editions("daily") == []  # nothing was recorded


def test_send_now_sends_to_the_readers_of_the_cadence_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_cadenced_config(tmp_path)
    config = ["--config", str(path)]
    for email in ("ana@example.net", "ben@example.net"):
        run(capsys, *config, "subscribers", "add", email)
    app = build_app(load_config(path), environ={"DIGEST_SECRET_KEY": "x" * 40})
    ben = app.subscription(app.newsletter("daily"), "ben@example.net")
    app.store.set_preferences(
        ben.subscriber.id, "daily", cadence="weekly", topics=None, now=app.clock()
    )
    assert run(capsys, *config, "send-now", "daily", "--cadence", "weekly")[0] == 0
    outbox = mailbox.Maildir(tmp_path / "var" / "outbox", create=False)
    assert [m["To"] for m in outbox] == ["ben@example.net"]
    [summary] = app.store.list_editions("daily")
    assert summary.edition.cadence == "weekly"


# --- the reader list ---------------------------------------------------------------------

READERS = FIXTURES / "readers"
UNSUBSCRIBED = SubscriptionStatus.UNSUBSCRIBED


def write_readers_config(tmp_path: Path) -> list[str]:
    """``--config`` of the two-cadence config with two topics, tech and arts, for "daily"."""
    path = write_cadenced_config(tmp_path)
    topics = (
        '[newsletters.daily.topics.tech]\ncategories = ["Tech"]\n'
        '[newsletters.daily.topics.arts]\ncategories = ["Arts"]\n'
    )
    path.write_text(path.read_text() + topics)
    return ["--config", str(path)]


def listed(capsys: pytest.CaptureFixture[str], config: list[str], *options: str) -> list[dict]:
    code, out, _ = run(capsys, *config, "subscribers", "list", "--json", *options)
    assert code == 0
    return [json.loads(line) for line in out.splitlines()]


def test_subscribers_export_and_remove_have_help(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("export", "remove"):
        with pytest.raises(SystemExit) as exited:
            main(["subscribers", command, "--help"])
        assert exited.value.code == 0
        assert capsys.readouterr().out.startswith("usage: digest subscribers " + command)


def test_add_stores_cadence_and_topics_and_names_unknown_ids(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_readers_config(tmp_path)
    code, out, _ = run(
        capsys, *config, "subscribers", "add", "ana@example.net", "--cadence", "weekly",
        "--topics", "tech",
    )  # fmt: skip
    assert code == 0
    assert "added ana@example.net -> daily (weekly; topics: tech)" in out
    run(capsys, *config, "subscribers", "add", "ben@example.net")
    code, _, err = run(
        capsys, *config, "subscribers", "add", "cy@example.net", "--cadence", "hourly"
    )
    assert code == 1
    assert "unknown cadence 'hourly' of newsletter daily; it offers: daily, weekly" in err
    code, _, err = run(
        capsys, *config, "subscribers", "add", "cy@example.net", "--topics", "x,tech"
    )
    assert code == 1
    assert "unknown topic 'x' of newsletter daily; it offers: tech, arts" in err
    choices = {r["email"]: (r["cadence"], r["topics"]) for r in listed(capsys, config)}
    assert choices == {
        "ana@example.net": ("weekly", ["tech"]),
        "ben@example.net": ("daily", ["tech", "arts"]),  # the defaults: first cadence, all topics
    }


def test_add_sets_the_readers_time_zone_and_refuses_an_unknown_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_readers_config(tmp_path)
    code, out, _ = run(
        capsys, *config, "subscribers", "add", "ana@example.net", "--timezone", "Asia/Tokyo"
    )
    assert code == 0
    assert out.strip().endswith("(daily; topics: tech, arts), time zone Asia/Tokyo")
    code, _, err = run(
        capsys, *config, "subscribers", "add", "ben@example.net", "--timezone", "Mars/Base"
    )
    assert code == 1
    assert "unknown time zone 'Mars/Base'; use an IANA name like 'Europe/Prague'" in err
    app = build_app(load_config(Path(config[1])), environ={"DIGEST_SECRET_KEY": "x" * 40})
    found = app.store.find_subscription("ana@example.net", "daily")
    assert found is not None
    assert found.subscriber.timezone == "Asia/Tokyo"
    assert app.store.find_subscription("ben@example.net", "daily") is None  # nothing added


@pytest.mark.parametrize(
    ("fixture", "readers"),
    [
        ("mailchimp.csv", {"ana.novak@example.org": "Ana Novák", "ben@example.org": "Ben"}),
        ("substack.csv", {"cy@example.net": "", "dee@example.net": ""}),
        ("buttondown.csv", {"eve@example.com": "", "finn@example.com": ""}),
        ("excel-semicolon.csv", {"gus@example.de": "Gustav Müller", "hana@example.de": "Hana Šťastná"}),  # noqa: E501
        ("excel-utf16.txt", {"ivo@example.cz": "Ivo Dvořák", "jana@example.cz": "Jana"}),
    ],
)  # fmt: skip
def test_import_reads_the_exports_of_other_tools(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fixture: str, readers: dict[str, str]
) -> None:
    config = write_readers_config(tmp_path)
    code, out, _ = run(capsys, *config, "subscribers", "import", str(READERS / fixture))
    assert code == 0
    assert "read 2 row(s): 2 people (2 new, 0 already on the list); subscriptions: 2 added" in out
    found = {r["email"]: r["name"] for r in listed(capsys, config)}
    assert found == readers
    again = run(capsys, *config, "subscribers", "import", str(READERS / fixture))[1]
    assert "2 people (0 new, 2 already on the list); subscriptions: 0 added, 2 unchanged" in again


def test_import_takes_choices_per_row_and_defaults_and_reports_bad_ones_by_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_readers_config(tmp_path)
    path = tmp_path / "readers.csv"
    path.write_text(
        "email,cadence,topics\n"
        "ana@example.net,,arts\n"
        "ben@example.net,daily,\n"
        "cy@example.net,hourly,\n"
        "dee@example.net,,tech;sport\n"
    )
    command = ["subscribers", "import", str(path), "--cadence", "weekly", "--topics", "tech"]
    code, out, _ = run(capsys, *config, *command)
    assert code == 1
    assert f"{path}:4: unknown cadence 'hourly' of newsletter daily; it offers: daily" in out
    assert f"{path}:5: unknown topic 'sport' of newsletter daily; it offers: tech, arts" in out
    assert "2 rejected" in out
    choices = {r["email"]: (r["cadence"], r["topics"]) for r in listed(capsys, config)}
    assert choices == {
        "ana@example.net": ("weekly", ["arts"]),
        "ben@example.net": ("daily", ["tech"]),
    }


@pytest.mark.parametrize(
    ("content", "line", "problem"),
    [
        (b"email\nana@example.net\n" + b"x" * 200_000 + b"\n", 3, "a field longer than 131,072"),
        (b'email,name\nana@example.net,Ana\n"ben@example.net,Ben\n', 3, "never closed"),
        (b"email\nana@example.net\nb\xe9n@example.net\n", 3, "not UTF-8"),
    ],
    ids=["200-kb-field", "unclosed-quote", "latin-1"],
)
def test_a_malformed_file_is_refused_by_line_and_nothing_is_imported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, line: int, problem: str
) -> None:
    config = write_readers_config(tmp_path)
    path = tmp_path / "broken.csv"
    path.write_bytes(content)
    code, out, err = run(capsys, *config, "subscribers", "import", str(path))
    assert code == 1
    assert f"error: {path}:{line}: " in err
    assert problem in err
    assert "Traceback" not in out + err
    assert listed(capsys, config) == []


def test_list_is_a_table_of_80_columns_or_json_lines_with_filters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    config = write_readers_config(tmp_path)
    long = "a.very.long.address.of.someone@subdomain.department.example.org"
    for email in ("ana@example.net", "ben@example.net", "cy@example.net", long):
        run(capsys, *config, "subscribers", "add", email)
    run(capsys, *config, "subscribers", "add", "ana@example.net", "--topics", "tech")
    run(capsys, *config, "subscribers", "add", "ben@example.net", "--cadence", "weekly")
    app = build_app(load_config(Path(config[1])), environ={"DIGEST_SECRET_KEY": "x" * 40})
    cy = app.subscription(app.newsletter("daily"), "cy@example.net")
    app.store.set_subscription_status(cy.subscriber.id, "daily", UNSUBSCRIBED, app.clock())
    code, out, _ = run(capsys, *config, "subscribers", "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["email", "newsletter", "status", "cadence", "since", "topics"]
    assert set(lines[1]) == {"─"}
    assert lines[2].split()[:3] == ["a.very.lon…xample.org", "daily", "confirmed"]
    assert lines[3].split()[:4] == ["ana@example.net", "daily", "confirmed", "daily"]
    assert lines[3].split()[-1] == "tech"  # her choice replaced by the second add
    assert lines[4].split()[:4] == ["ben@example.net", "daily", "confirmed", "weekly"]
    assert lines[5].split()[:3] == ["cy@example.net", "daily", "unsubscribed"]
    assert lines[-1] == "4 subscription(s)"
    assert max(len(line) for line in lines) <= 80
    gone = listed(capsys, config, "--status", "unsubscribed")
    assert [(r["email"], r["status"]) for r in gone] == [("cy@example.net", "unsubscribed")]
    assert len(listed(capsys, config, "--newsletter", "daily", "--status", "confirmed")) == 3
    code, _, err = run(capsys, *config, "subscribers", "list", "--newsletter", "monthly")
    assert code == 1
    assert "no newsletter 'monthly'" in err


def test_export_writes_csv_that_import_reads_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    config = write_readers_config(tmp_path / "one")
    source = tmp_path / "list.csv"
    source.write_text(
        "email,name,topics\nana@example.net,=HYPERLINK(1),arts\nben@example.net,Ben Novák,\n"
    )
    run(capsys, *config, "subscribers", "import", str(source), "--cadence", "weekly")
    run(capsys, *config, "subscribers", "add", "cy@example.net")
    app = build_app(load_config(Path(config[1])), environ={"DIGEST_SECRET_KEY": "x" * 40})
    cy = app.subscription(app.newsletter("daily"), "cy@example.net")
    app.store.set_subscription_status(cy.subscriber.id, "daily", UNSUBSCRIBED, app.clock())
    code, out, err = run(capsys, *config, "subscribers", "export")
    assert code == 0
    assert "3 subscription(s) exported" in err
    header, *rows = out.splitlines()
    assert header == "email,name,newsletter,status,cadence,topics,subscribed_at,changed_at"
    assert rows[0].startswith("ana@example.net,'=HYPERLINK(1),daily,confirmed,weekly,arts,")
    assert rows[1].startswith("ben@example.net,Ben Novák,daily,confirmed,weekly,tech arts,")
    assert rows[2].startswith("cy@example.net,,daily,unsubscribed,daily,tech arts,")
    exported = tmp_path / "export.csv"
    command = ["subscribers", "export", "--status", "confirmed", "--output", str(exported)]
    assert run(capsys, *config, *command)[0] == 0
    assert exported.read_text().splitlines() == [header, *rows[:2]]
    run(capsys, *config, "subscribers", "export", "--output", str(exported))  # all three

    other = write_readers_config(tmp_path / "two")
    code, out, _ = run(capsys, *other, "subscribers", "import", str(exported))
    assert code == 0
    assert f"{exported}:4: status 'unsubscribed' in the file: not imported" in out
    again = {
        (r["email"], r["name"], r["cadence"], tuple(r["topics"])) for r in listed(capsys, other)
    }
    assert again == {
        ("ana@example.net", "=HYPERLINK(1)", "weekly", ("arts",)),
        ("ben@example.net", "Ben Novák", "weekly", ("tech", "arts")),
    }


def test_a_key_rotation_keeps_the_suppressions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_readers_config(tmp_path)
    old_key = "cli-test-" + "k" * 32
    run(capsys, *config, "subscribers", "add", "ana@example.net")
    assert run(capsys, *config, "subscribers", "remove", "ana@example.net")[0] == 0
    monkeypatch.setenv("DIGEST_SECRET_KEY", "rotated-" + "n" * 32)
    monkeypatch.setenv("DIGEST_PREVIOUS_SECRET_KEYS", old_key)
    code, _, err = run(capsys, *config, "subscribers", "add", "ana@example.net")
    assert code == 1
    assert "ana@example.net is suppressed (removed on " in err
    csv_file = tmp_path / "readers.csv"
    csv_file.write_text("email\nana@example.net\nben@example.net\n")
    code, out, _ = run(capsys, *config, "subscribers", "import", str(csv_file))
    assert "suppressed" in out
    assert [r["email"] for r in listed(capsys, config)] == ["ben@example.net"]
    # Without the old key listed, the suppression made under it can no longer be read.
    monkeypatch.delenv("DIGEST_PREVIOUS_SECRET_KEYS")
    assert run(capsys, *config, "subscribers", "add", "ana@example.net")[0] == 0


def test_remove_erases_a_reader_keeps_the_editions_counts_and_suppresses_the_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_readers_config(tmp_path)
    run(capsys, *config, "subscribers", "add", "ana@example.net")
    run(capsys, *config, "subscribers", "add", "ben@example.org")
    assert run(capsys, *config, "send-now", "daily")[0] == 0
    edition = edition_prefix(capsys, config)

    code, out, _ = run(capsys, *config, "subscribers", "remove", "Ana@Example.net")
    assert code == 0
    assert "removed ana@example.net: 1 subscription(s) erased, 1 delivery record(s) kept" in out
    assert [r["email"] for r in listed(capsys, config)] == ["ben@example.org"]
    code, out, _ = run(capsys, *config, "editions", "show", edition)
    assert code == 0
    assert "recipients  2" in out
    app = build_app(load_config(Path(config[1])), environ={"DIGEST_SECRET_KEY": "x" * 40})
    [summary] = app.store.list_editions("daily")
    assert summary.counts[DeliveryStatus.SENT] == 2
    code, out, _ = run(capsys, *config, "deliveries", edition, "--tsv")
    assert code == 0
    assert "ana@example.net" not in out
    assert [line.split("\t")[:2] for line in out.splitlines()[1:]] == [
        ["(removed)", "sent"],
        ["ben@example.org", "sent"],
    ]

    code, _, err = run(capsys, *config, "subscribers", "add", "ana@example.net")
    assert code == 1
    assert "ana@example.net is suppressed (removed on " in err
    path = tmp_path / "again.csv"
    path.write_text("email\nANA@example.net\ncy@example.net\n")
    code, out, _ = run(capsys, *config, "subscribers", "import", str(path))
    assert code == 0
    assert f"{path}:2: ana@example.net: suppressed (removed on " in out
    assert "1 person (1 new, 0 already on the list)" in out
    code, out, _ = run(capsys, *config, "subscribers", "remove", "dee@example.net")
    assert code == 0
    assert out.startswith("dee@example.net was not on the list; suppressed since ")


def test_import_asks_which_newsletter_once_when_the_file_does_not_say(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weekly = (
        '[newsletters.weekly]\ntitle = "Weekly"\ndescription = "The week."\n'
        'sources = ["posts"]\n[newsletters.weekly.schedule]\nweekly = "mon 07:00"\n'
    )
    config = ["--config", str(write_config(tmp_path, extra=weekly))]
    path = tmp_path / "readers.csv"
    path.write_text("email\nana@example.net\n")
    code, out, err = run(capsys, *config, "subscribers", "import", str(path))
    assert code == 1
    assert "which newsletter? pass --newsletter (daily, weekly)" in err
    assert listed(capsys, config) == []
    path.write_text("email,newsletters\nana@example.net,weekly\nben@example.net,\n")
    code, out, _ = run(capsys, *config, "subscribers", "import", str(path))
    assert code == 1
    assert f"{path}:3: no newsletter given" in out
    assert [(r["email"], r["newsletter"]) for r in listed(capsys, config)] == [
        ("ana@example.net", "weekly")
    ]


def test_import_shows_a_progress_bar_on_a_terminal_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_readers_config(tmp_path)
    path = tmp_path / "readers.csv"
    path.write_text("email\n" + "".join(f"r{n}@example.net\n" for n in range(50)))
    args = _parser().parse_args([*config, "subscribers", "import", str(path)])
    terminal = Console(file=io.StringIO(), force_terminal=True, width=80)
    assert args.handler(args, terminal) == 0
    assert "importing" in terminal.file.getvalue()  # type: ignore[attr-defined]
    code, out, _ = run(capsys, *config, "subscribers", "import", str(path))
    assert code == 0
    assert "importing" not in out
    assert "50 people (0 new, 50 already on the list)" in out
