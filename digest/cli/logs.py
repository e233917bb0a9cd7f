"""Where a `digest` command's log goes: stderr, for a person or for a log file.

On a terminal rich's handler shows the lines (time, level, message, in colour). Anywhere
else (systemd's journal, a file, a pipe) each line is plain and complete on its own:
``2026-12-01T14:05:03Z INFO digest.scheduler: ...``, the time in UTC to the second,
the level, and the logger that wrote it.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator
from typing import TextIO

from rich.console import Console
from rich.logging import RichHandler

LINE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
QUIET = ("alembic", "apscheduler")  # their INFO lines say nothing an operator needs


def dated_lines() -> logging.Formatter:
    """The plain format: ISO-8601 UTC time, level, logger name, message."""
    formatter = logging.Formatter(LINE_FORMAT, TIME_FORMAT)
    formatter.converter = time.gmtime
    return formatter


def handler_for(stream: TextIO) -> logging.Handler:
    """Rich's handler when ``stream`` is a terminal, else dated plain lines."""
    if stream.isatty():
        return RichHandler(console=Console(file=stream), show_path=False)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(dated_lines())
    return handler


@contextlib.contextmanager
def logging_to_stderr(level: int) -> Iterator[logging.Handler]:
    """Log records of ``level`` and above to stderr while the block runs; the root
    logger's level and handlers are put back after it."""
    root = logging.getLogger()
    handler = handler_for(sys.stderr)
    saved = root.level, {name: logging.getLogger(name).level for name in QUIET}
    root.addHandler(handler)
    root.setLevel(level)
    for name in QUIET:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        for name, quiet_level in saved[1].items():
            logging.getLogger(name).setLevel(quiet_level)
