"""`digest editions` and `digest deliveries` on a deployment with some history, in 80 columns.

The history: a daily edition sent to three readers through the outbox, and a weekly
one still sending, whose rows the relay answered with a 250, a 550 and a 451.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from digest.app import build_app
from digest.editions import open_edition
from digest.editorial import load_config
from digest.models import CadenceReaders, DeliveryStatus, Draft, Outcome

from support import cli, deployment
from support.cli import run

READERS = ("ana@example.net", "ben.longername@subdomain.example.org", "carla@example.com")
REJECTED = (
    "550 5.1.1 <ben.longername@subdomain.example.org>: Recipient address rejected:"
    " User unknown in virtual mailbox table"
)
REPLIES = {
    READERS[0]: (DeliveryStatus.SENT, "250 2.0.0 Ok: queued as 4dQx1"),
    READERS[1]: (DeliveryStatus.FAILED, REJECTED),
    READERS[2]: (DeliveryStatus.DEFERRED, "451 4.7.1 Greylisted, try again in 5 minutes"),
}


@pytest.fixture(autouse=True)
def narrow_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    cli.terminal(monkeypatch, 80)


@dataclass
class History:
    path: Path
    config: list[str]
    sent: str  # the daily edition's id
    sending: str  # the weekly edition's id


@pytest.fixture
def history(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> History:
    path = cli.write_config(tmp_path)
    config = ["--config", str(path)]
    for email in READERS:
        for newsletter in ("daily", "weekly-review"):
            assert (
                run(capsys, *config, "subscribers", "add", email, "--newsletter", newsletter)[0]
                == 0
            )
    assert run(capsys, *config, "send-now", "daily")[0] == 0
    app = build_app(load_config(path), environ=deployment.SECRET_ENV)
    [daily] = app.store.list_editions("daily")
    now = app.clock()
    newsletter = app.newsletter("weekly-review")
    weekly = open_edition(
        app.store, app.renderer, app.config.site, newsletter, app.secret, "2026-w49", now
    ).edition
    claimed = app.store.claim_batch(weekly.id, "test", now, now + timedelta(minutes=1), 10)
    outcomes = [Outcome(row.subscriber_id, *REPLIES[row.email]) for row in claimed.rows]
    assert app.store.record_batch(weekly.id, "test", outcomes, now) == 3
    app.store.close()
    return History(path, config, daily.edition.id, weekly.id)


def shown_ids(out: str) -> list[str]:
    """The edition column of `digest editions`: the word after the creation time."""
    return [line.split()[2] for line in out.splitlines() if line[:2] == "20"]


def test_editions_fit_80_columns_and_each_short_id_is_taken_back(
    history: History, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, *history.config, "editions")
    assert code == 0
    lines = out.splitlines()
    assert max(map(len, lines)) <= 80
    assert lines[0].split() == [
        "created", "edition", "newsletter", "cadence", "status", "sent", "others",
    ]  # fmt: skip
    ids = shown_ids(out)
    assert ids == [history.sending[:8], history.sent[:8]]  # newest first
    weekly = " ".join((lines[2] + lines[3]).split())  # the other counts take two lines
    assert weekly.endswith("weekly-review weekly sending 1/3 deferred: 1, failed: 1")
    assert lines[4].startswith("  Transmission Weekly Review: ")  # the subject, whole, below
    assert lines[6].startswith("  Transmission Daily: ")
    assert "…" not in out
    assert lines[-1].startswith("times in Europe/Prague; any unique id prefix works")
    for short, full in zip(ids, (history.sending, history.sent), strict=True):
        code, out, _ = run(capsys, *history.config, "editions", "show", short)
        assert (code, out.splitlines()[0]) == (0, f"edition {full}")
        assert run(capsys, *history.config, "deliveries", short)[0] == 0


def test_editions_as_json_give_full_ids_exact_times_and_words(
    history: History, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, *history.config, "editions", "--json")
    assert code == 0
    weekly, daily = json.loads(out)
    assert (weekly["id"], daily["id"]) == (history.sending, history.sent)
    assert weekly["newsletter"] == "weekly-review"
    assert (weekly["cadence"], weekly["period_key"], weekly["status"]) == (
        "weekly",
        "2026-w49",
        "sending",
    )
    assert weekly["counts"]["failed"] == weekly["counts"]["deferred"] == 1
    assert (weekly["recipients"], weekly["sent"], weekly["unfinished"]) == (3, 1, 1)
    assert daily["status"] == "sent"
    assert weekly["subject"].startswith("Transmission Weekly Review: ")
    created = datetime.fromisoformat(weekly["created_at"])
    assert created.utcoffset() == timedelta(0)
    assert created <= datetime.now(UTC)


def test_editions_show_fits_80_columns_and_names_the_failures(
    history: History, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, *history.config, "editions", "show", history.sending[:8])
    assert code == 0
    lines = out.splitlines()
    assert max(map(len, lines)) <= 80
    assert "  status      sending" in lines
    assert "  rows        sent: 1, deferred: 1, failed: 1" in lines
    [created] = [line for line in lines if line.startswith("  created ")]
    assert created.endswith(" UTC)")
    assert " CET (" in created
    start = lines.index("failures (first 20)")
    assert lines[start + 1].split() == ["email", "status", "tries", "last", "attempt"]
    assert lines[start + 3].startswith("ben.longername@subdomain.example.org  failed      1  20")
    assert lines[start + 4] == "  " + REJECTED[:77] + "…"  # cut to 80; --json has it whole
    assert lines[-1] == f"all of them: digest deliveries {history.sending[:8]} --status failed"

    code, out, _ = run(capsys, *history.config, "editions", "show", history.sending, "--json")
    shown = json.loads(out)
    assert (shown["id"], shown["status"]) == (history.sending, "sending")
    [failure] = shown["failures"]
    assert failure["email"] == READERS[1]
    assert (failure["status"], failure["reply"], failure["attempts"]) == ("failed", REJECTED, 1)
    assert datetime.fromisoformat(failure["updated_at"]).utcoffset() == timedelta(0)


def test_deliveries_stream_aligned_rows_with_the_reply_under_an_unsent_one(
    history: History, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, *history.config, "deliveries", history.sending[:10])
    assert code == 0
    lines = out.splitlines()
    assert max(map(len, lines)) <= 80
    assert lines[0].split() == ["email", "status", "tries", "last", "attempt", "dup"]
    assert [line.split()[:3] for line in lines[2:] if "@" in line.split()[0]] == [
        ["ana@example.net", "sent", "1"],
        ["ben.longername@subdomain.example.org", "failed", "1"],
        ["carla@example.com", "deferred", "1"],
    ]
    assert lines[4] == "    " + REJECTED[:75] + "…"  # under ben's row, cut to 80
    assert lines[6].strip() == "451 4.7.1 Greylisted, try again in 5 minutes"
    assert len(lines) == 7  # a sent row's reply is in --tsv and --json
    assert f"edition {history.sending[:8]} of weekly-review (sending)" in err
    assert "3 row(s)" in err


def test_deliveries_as_json_and_as_tab_separated_values(
    history: History, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, *history.config, "deliveries", history.sending[:8], "--json")
    assert code == 0
    rows = {row["email"]: row for row in json.loads(out)}
    assert list(rows) == list(READERS)
    assert rows[READERS[1]]["status"] == "failed"
    assert rows[READERS[1]]["reply"] == REJECTED
    assert rows[READERS[0]]["duplicate"] is False
    assert rows[READERS[0]]["message_id"].endswith("@transmission.example.org>")
    code, out, _ = run(
        capsys, *history.config, "deliveries", history.sent[:8], "--json", "--status", "failed"
    )
    assert (code, json.loads(out)) == (0, [])

    code, out, _ = run(capsys, *history.config, "deliveries", history.sending[:8], "--tsv")
    lines = out.splitlines()
    assert lines[0] == "email\tstatus\tattempts\tlast attempt\tduplicate\treply"
    assert lines[2].split("\t")[:3] == [READERS[1], "failed", "1"]
    assert lines[2].split("\t")[5] == REJECTED


def opened_with_id(path: Path, edition_id: str, period: str) -> None:
    """An edition (skipped: no readers) with the id given, as two editions could have."""
    app = build_app(load_config(path), environ=deployment.SECRET_ENV)
    draft = Draft(
        edition_id=edition_id,
        newsletter_id="daily",
        readers=CadenceReaders("daily", ("daily",), default=True),
        period_key=period,
        now=app.clock(),
        source_ids=(),
        released=0,
        variants=(),
        verdicts={},
    )
    assert app.store.open_edition(draft, message_id=str, no_readers="nobody") is not None
    app.store.close()


def test_an_ambiguous_prefix_is_refused_with_the_editions_it_could_mean(
    history: History, capsys: pytest.CaptureFixture[str]
) -> None:
    opened_with_id(history.path, "feedc0de1" + "a" * 23, "p1")
    opened_with_id(history.path, "feedc0de2" + "b" * 23, "p2")
    _, out, _ = run(capsys, *history.config, "editions", "daily")
    assert shown_ids(out) == ["feedc0de2", "feedc0de1", history.sent[:8]]  # one more is unique
    for command in (
        ["editions", "show", "feedc0de"],
        ["editions", "cancel", "feedc"],
        ["deliveries", "feedc0de"],
        ["worker", "--edition", "feedc0de"],
    ):
        code, out, err = run(capsys, *history.config, *command)
        assert code == 1, command
        message = err.splitlines()
        assert message[0].startswith(f"error: edition id {command[-1]!r} is ambiguous: 2")
        assert [line.split()[:4] for line in message[1:]] == [
            ["feedc0de1", "daily", *_local_created(message[1])],
            ["feedc0de2", "daily", *_local_created(message[2])],
        ]
        assert all(line.split()[-1] == "skipped" for line in message[1:])
    code, out, _ = run(capsys, *history.config, "editions", "show", "feedc0de2")
    assert (code, out.splitlines()[0]) == (0, "edition feedc0de2" + "b" * 23)


def _local_created(line: str) -> list[str]:
    day, time = line.split()[2:4]
    assert (len(day), len(time)) == (10, 5)
    return [day, time]


def test_an_unknown_id_and_an_empty_one_are_refused(
    history: History, capsys: pytest.CaptureFixture[str]
) -> None:
    for prefix in ("zzzz", ""):
        code, _, err = run(capsys, *history.config, "editions", "show", prefix)
        assert (code, err.strip()) == (
            1,
            f"error: no edition with id {prefix!r}: see `digest editions`",
        )


def test_no_editions_say_so_and_json_is_an_empty_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = deployment.write_config(tmp_path, smtp_port=1, web_port=1, transport="outbox")
    assert run(capsys, "--config", str(path), "editions") == (0, "no editions yet\n", "")
    code, out, _ = run(capsys, "--config", str(path), "editions", "--json")
    assert (code, json.loads(out)) == (0, [])
