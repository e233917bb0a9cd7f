"""`digest schedule` and `digest preview` in 80 columns and as JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from support import cli
from support.cli import run, widest


@pytest.fixture(autouse=True)
def narrow_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    cli.terminal(monkeypatch, 80)


def test_schedule_fits_80_columns_with_local_times_and_utc(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = ["--config", str(cli.write_config(tmp_path))]
    code, out, _ = run(capsys, *config, "schedule", "-n", "2")
    assert code == 0
    assert widest(out) <= 80
    lines = out.splitlines()
    assert lines[0].split() == ["newsletter", "cadence", "local", "time", "UTC"]
    rows = [line.split() for line in lines[2:]]
    assert [row[:2] for row in rows] == [["daily", "daily"]] * 2 + [
        ["weekly-review", "weekly"]
    ] * 2 + [["weekly-review", "monthly"]] * 2
    monthly = rows[-1]
    assert monthly[2] in {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}
    assert monthly[4:6] == ["08:00", "EST"] or monthly[4:6] == ["08:00", "EDT"]
    assert monthly[-1] in {"13:00", "12:00"}  # 08:00 in New York, in UTC
    assert "…" not in out


def test_schedule_of_a_newsletter_not_declared_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = ["--config", str(cli.write_config(tmp_path))]
    code, out, err = run(capsys, *config, "schedule", "weekly", "--json")
    assert (code, out) == (1, "")
    assert "no newsletter 'weekly'; declared: daily, weekly-review" in err


def test_schedule_as_json_gives_the_instant_in_utc_and_the_wall_clock_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = ["--config", str(cli.write_config(tmp_path))]
    code, out, _ = run(capsys, *config, "schedule", "weekly-review", "-n", "1", "--json")
    assert code == 0
    weekly, monthly = json.loads(out)
    assert (monthly["cadence"], monthly["timezone"]) == ("monthly", "America/New_York")
    assert monthly["schedule"] == "monthly on day 1 at 08:00 (America/New_York)"
    at, local = datetime.fromisoformat(monthly["at"]), datetime.fromisoformat(monthly["local"])
    assert at.utcoffset() == timedelta(0)
    assert at == local
    assert (local.day, local.hour) == (1, 8)
    assert datetime.fromisoformat(weekly["local"]).strftime("%a %H:%M") == "Mon 07:30"


def test_preview_lists_the_candidates_in_80_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = ["--config", str(cli.write_config(tmp_path))]
    code, out, _ = run(capsys, *config, "preview", "weekly-review")
    assert code == 0
    assert widest("\n".join(line for line in out.splitlines() if "://" not in line)) <= 80
    # A link in the text part is printed whole, however long, so that it can be copied.
    link = "https://transmission.example.org/2026/11/strains-visible-in-cis-military-alliance"
    assert f"\nRead more: {link}\n" in out
    lines = out.splitlines()
    assert lines[0] == "weekly-review, cadence weekly (Every Monday), for a reader subscribing now:"
    assert lines[1].split() == ["post", "published", "verdict"]
    table = out[: out.index("\nsubject: ")]
    row = "The Dictator's New Calendar 2026-11-26 16:45 included: catch-up for a new reader"
    assert row in " ".join(table.split())  # in Prague time
    assert "…" not in table  # titles and verdicts take more lines, never a cut


def test_preview_as_json_is_the_candidates_and_the_subject_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = ["--config", str(cli.write_config(tmp_path))]
    run(capsys, *config, "subscribers", "add", "ana@example.net", "--newsletter", "daily")
    code, out, _ = run(
        capsys, *config, "preview", "daily", "--subscriber", "ana@example.net", "--json"
    )
    assert code == 0
    shown = json.loads(out)
    assert (shown["newsletter"], shown["cadence"], shown["subscriber"]) == (
        "daily",
        "daily",
        "ana@example.net",
    )
    assert shown["subject"].startswith("Transmission Daily: ")
    titles = {c["title"]: c for c in shown["candidates"]}
    calendar = titles["The Dictator's New Calendar"]
    assert calendar["included"] is True
    assert calendar["reason"] == "included: catch-up for a new reader"
    assert calendar["published"] == "2026-11-26T15:45:00+00:00"
    assert calendar["source"] == "posts"
    assert datetime.fromisoformat(calendar["first_seen"]) <= datetime.now(UTC)

    assert run(capsys, *config, "send-now", "daily")[0] == 0
    code, out, err = run(
        capsys, *config, "preview", "daily", "--subscriber", "ana@example.net", "--json"
    )
    assert code == 0
    assert json.loads(out)["subject"] is None  # nothing new for her
    assert json.loads(out)["candidates"] == []
    assert "nothing new" in err


def test_schedule_says_when_a_cadence_goes_by_each_readers_own_clock(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = cli.write_config(tmp_path)
    text = path.read_text()
    assert 'daily = "07:00"\n' in text
    path.write_text(
        text.replace('daily = "07:00"\n', 'daily = "07:00"\nreader_timezone = true\n', 1)
    )
    code, out, _ = run(capsys, "--config", str(path), "schedule", "daily", "-n", "1")
    assert code == 0
    assert widest(out) <= 80
    [row] = [line for line in out.splitlines() if line.startswith("daily ")]
    assert row.split()[-4:] == ["07:00,", "reader's", "zone", "varies"]
    code, out, _ = run(capsys, "--config", str(path), "schedule", "daily", "-n", "1", "--json")
    assert json.loads(out)[0]["each_reader"] is True
