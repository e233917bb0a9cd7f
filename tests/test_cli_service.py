"""`digest run` and `digest reload` as an operator runs them: a real process, a real SIGHUP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from digest.cli import main
from digest.cli.process import PID_FILE, running_pid

from support.deployment import SECRET_ENV, write_config


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
    assert "06:15 (Europe/Prague)" in after

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
