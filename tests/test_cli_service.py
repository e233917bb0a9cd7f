"""`digest check`, `fetch`, `run` and `reload` as an operator runs them: 80 columns, JSON, the
log of `run` and `worker`, a real process and a real SIGHUP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from digest.cli import main
from digest.cli.process import PID_FILE, running_pid

from support import cli
from support.cli import run, widest
from support.deployment import SECRET_ENV, write_config

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


# --- digest run and digest reload, as processes --------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(what: str, check: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[Path, Path, subprocess.Popen[bytes]]]:
    port = free_port()
    path = write_config(tmp_path, smtp_port=1, web_port=port, transport="outbox")
    log = tmp_path / "run.log"
    env = {**os.environ, **SECRET_ENV, "COLUMNS": "80"}
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "digest.cli", "--config", str(path), "run"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:

        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
            except httpx.TransportError:
                return process.poll() is not None

        wait_for("digest run to serve", healthy)
        assert process.poll() is None, log.read_text()
        yield path, log, process
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def test_reload_makes_the_running_service_use_the_new_config(
    service: tuple[Path, Path, subprocess.Popen[bytes]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path, log, process = service
    monkeypatch.setenv("DIGEST_SECRET_KEY", SECRET_ENV["DIGEST_SECRET_KEY"])
    pid_path = path.parent / "var" / PID_FILE
    assert running_pid(pid_path) == process.pid

    text = path.read_text()
    path.write_text(text.replace('daily = "07:00"', 'daily = "06:15"'))
    assert main(["--config", str(path), "reload"]) == 0
    assert f"sent to digest run (pid {process.pid})" in capsys.readouterr().out
    wait_for("the reload in the log", lambda: "reloaded" in log.read_text())
    after = " ".join(log.read_text().split("reloaded", 1)[1].split())  # unwrapped
    assert "newsletter daily:daily fires next at" in after
    assert "06:15 CET (05:15 UTC), in Europe/Prague" in after

    # A broken config is refused by `digest reload` itself: the service is not disturbed.
    path.write_text(text.replace('daily = "07:00"', 'daily = "25:00"'))
    assert main(["--config", str(path), "reload"]) == 1
    assert "daily" in capsys.readouterr().err
    assert log.read_text().count("reloaded") == 1
    assert process.poll() is None

    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    assert not pid_path.exists()  # the service removed its pid file on the way out
    path.write_text(text)
    assert main(["--config", str(path), "reload"]) == 1
    assert "no running `digest run` found" in capsys.readouterr().err


def test_reload_without_a_running_service_says_how_to_start_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    path = write_config(tmp_path, smtp_port=1, web_port=1, transport="outbox")
    (tmp_path / "var").mkdir(exist_ok=True)
    (tmp_path / "var" / PID_FILE).write_text("999999999\n")  # a process long gone
    assert main(["--config", str(path), "reload"]) == 1
    err = capsys.readouterr().err
    assert "no running `digest run` found" in err
    assert "make run" in err


def test_check_renders_each_newsletter_so_a_broken_template_fails_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = cli.write_config(tmp_path)
    own = tmp_path / "own"
    own.mkdir()
    (own / "_post.html").write_text("<tr><td>{{ nosuch(post) }}</td></tr>\n")
    text = path.read_text().replace(
        "[newsletters.daily]\n", '[newsletters.daily]\ntemplates = "own"\n', 1
    )
    path.write_text(text)
    code, _, err = run(capsys, "--config", str(path), "check")
    assert code == 1
    assert "[newsletters.daily] the email templates fail to render" in err
    assert "nosuch" in err
    assert "Traceback" not in err
