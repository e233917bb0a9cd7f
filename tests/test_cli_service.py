"""`digest check` and `digest fetch` in 80 columns and as JSON; the log of `run` and `worker`."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from support import cli
from support.cli import run, widest

FEEDS = Path(__file__).resolve().parent / "fixtures" / "feeds"
BROKEN = f'[sources.broken-wire-service]\nkind = "feed"\npath = "{FEEDS / "malformed.xml"}"\n'


@pytest.fixture(autouse=True)
def narrow_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    cli.terminal(monkeypatch, 80)


def test_check_lists_every_cadences_next_send_in_80_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = cli.write_config(tmp_path)
    code, out, _ = run(capsys, "--config", str(path), "check")
    assert code == 0
    assert widest(out) <= 80
    lines = out.splitlines()
    assert lines[:3] == [
        f"{path}: OK",
        "1 source(s): posts",
        "2 newsletter(s), each cadence next sent at:",
    ]
    assert lines[3].split() == ["newsletter", "cadence", "local", "time", "UTC"]
    assert [line.split()[:2] for line in lines[5:]] == [
        ["daily", "daily"],
        ["weekly-review", "weekly"],
        ["weekly-review", "monthly"],
    ]


def test_check_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = cli.write_config(tmp_path)
    code, out, _ = run(capsys, "--config", str(path), "check", "--json")
    assert code == 0
    checked = json.loads(out)
    assert (checked["config"], checked["sources"]) == (str(path), ["posts"])
    daily, weekly, monthly = checked["next"]
    assert (daily["newsletter"], daily["cadence"], daily["timezone"]) == (
        "daily",
        "daily",
        "Europe/Prague",
    )
    assert datetime.fromisoformat(daily["at"]).utcoffset() == timedelta(0)
    assert datetime.fromisoformat(daily["local"]).strftime("%H:%M") == "07:00"
    assert datetime.fromisoformat(weekly["local"]).strftime("%a %H:%M") == "Mon 07:30"
    assert monthly["timezone"] == "America/New_York"


def test_fetch_reports_each_source_in_80_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = ["--config", str(cli.write_config(tmp_path, BROKEN))]
    code, out, _ = run(capsys, *config, "fetch")
    assert code == 1
    assert widest(out) <= 80
    lines = out.splitlines()
    assert lines[0].split() == ["source", "new", "in", "feed", "result"]
    assert lines[2].split() == ["posts", "3", "3", "ok"]
    assert lines[3].split()[:4] == ["broken-wire-service", "0", "0", "source"]
    error = " ".join(" ".join(line[35:] for line in lines[3:]).split())
    assert "is not a valid RSS or Atom feed (line 3: mismatched tag)" in error  # folded, whole


def test_fetch_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = ["--config", str(cli.write_config(tmp_path, BROKEN))]
    code, out, _ = run(capsys, *config, "fetch", "--json")
    assert code == 1
    posts, broken = json.loads(out)
    assert posts == {
        "source": "posts",
        "new": 3,
        "seen": 3,
        "not_modified": False,
        "error": "",
        "consecutive_failures": 0,
        "problems": [],
    }
    assert broken["source"] == "broken-wire-service"
    assert "mismatched tag" in broken["error"]
    assert broken["consecutive_failures"] == 1
