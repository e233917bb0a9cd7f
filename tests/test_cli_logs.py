"""The log of a `digest` command: dated plain lines off a terminal, rich's handler on one."""

from __future__ import annotations

import io
import logging
import re
import sys
from pathlib import Path

import pytest
from rich.logging import RichHandler

from digest.cli import _parser
from digest.cli.logs import handler_for, logging_to_stderr

from support import cli
from support.cli import run

FEEDS = Path(__file__).resolve().parent / "fixtures" / "feeds"
DATED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (INFO|WARNING|ERROR) [a-z_.]+: ")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_a_line_has_the_utc_time_the_level_and_the_logger() -> None:
    stream = io.StringIO()
    handler = handler_for(stream)
    record = logging.LogRecord(
        "digest.scheduler", logging.INFO, __file__, 1, "fired %s", ("daily",), None
    )
    record.created = 1_796_133_903.5  # 2026-12-01 14:05:03.5 UTC
    handler.handle(record)
    assert stream.getvalue() == "2026-12-01T14:05:03Z INFO digest.scheduler: fired daily\n"


def test_on_a_terminal_rich_shows_the_lines() -> None:
    assert isinstance(handler_for(Terminal()), RichHandler)
    assert not isinstance(handler_for(io.StringIO()), RichHandler)


def test_the_log_is_set_up_for_the_command_and_put_back_after_it() -> None:
    root = logging.getLogger()
    before = (root.level, list(root.handlers), logging.getLogger("alembic").level)
    with logging_to_stderr(logging.INFO) as handler:
        assert handler in root.handlers
        assert root.level == logging.INFO
        assert logging.getLogger("alembic").getEffectiveLevel() == logging.WARNING
        assert logging.getLogger("digest.service").isEnabledFor(logging.INFO)
    assert (root.level, list(root.handlers), logging.getLogger("alembic").level) == before


def test_run_and_worker_log_what_they_do_the_others_only_warnings() -> None:
    levels = {
        command: _parser().parse_args(command.split()).log_level
        for command in ("run", "worker", "fetch", "subscribers list", "editions")
    }
    assert levels == {
        "run": logging.INFO,
        "worker": logging.INFO,
        "fetch": logging.WARNING,
        "subscribers list": logging.WARNING,
        "editions": logging.WARNING,
    }


def test_a_command_logs_dated_lines_to_stderr_when_it_is_not_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cli.terminal(monkeypatch, 80)
    broken = f'[sources.broken]\nkind = "feed"\npath = "{FEEDS / "malformed.xml"}"\n'
    config = ["--config", str(cli.write_config(tmp_path, broken))]
    assert not sys.stderr.isatty()
    for _ in range(3):  # the third failure in a row raises the source's alert
        code, _, err = run(capsys, *config, "fetch", "broken")
        assert code == 1
    lines = err.splitlines()
    assert lines
    assert all(DATED.match(line) for line in lines), lines
    assert any(
        " digest.sources: source 'broken': 3 failed fetches in a row" in line for line in lines
    )
