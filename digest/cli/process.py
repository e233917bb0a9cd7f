"""The pid file of `digest run`, through which `digest reload` finds the service."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from digest.errors import DigestError

PID_FILE = "digest-run.pid"  # in the config's data folder


@contextlib.contextmanager
def pid_file(path: Path) -> Iterator[None]:
    """Hold ``path`` with this process's id while the block runs; remove it after if ours.

    A file left by a process that died is taken over; one of a live process too, with
    the newest `digest run` answering `digest reload` (two on one data folder share a
    database and are each other's standby, not a mistake this file should stop).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{os.getpid()}\n", encoding="ascii")
    except OSError as exc:
        raise DigestError(
            f"cannot write {path}: {exc.strerror}; make the data folder writable"
        ) from exc
    try:
        yield
    finally:
        if running_pid(path) == os.getpid():
            with contextlib.suppress(OSError):
                path.unlink()


def running_pid(path: Path) -> int | None:
    """The live process whose id ``path`` holds, or None (no file, garbage, or it died)."""
    try:
        pid = int(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, but another user's: still the service to tell
        return pid
    return pid
