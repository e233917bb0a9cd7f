"""What every `digest` command shares: the config and app of the command line, writing files."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

from rich.console import Console

from digest.app import App, build_app
from digest.config import Config
from digest.editorial import default_config_path, load_config
from digest.errors import DigestError

Handler = Callable[[argparse.Namespace, Console], int]


def write_file(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise DigestError(f"cannot write {path}: {exc.strerror}; choose a writable path") from exc


def config_of(args: argparse.Namespace) -> Config:
    given = getattr(args, "config", None)  # absent unless --config was passed somewhere
    path = Path(given) if given else default_config_path(os.environ)
    return load_config(path)


def app_of(args: argparse.Namespace) -> App:
    return build_app(config_of(args), environ=os.environ)


def sole_newsletter(config: Config) -> list[str]:
    return list(config.newsletters) if len(config.newsletters) == 1 else []


def default_newsletter(config: Config, given: str | None) -> str:
    if given:
        return given
    sole = sole_newsletter(config)
    if not sole:
        raise DigestError(f"which newsletter? pass --newsletter ({', '.join(config.newsletters)})")
    return sole[0]


@contextlib.contextmanager
def stop_on_signals() -> Iterator[asyncio.Event]:
    """An event set by Ctrl-C or SIGTERM while the block runs (then the defaults return)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        yield stop
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


@contextlib.contextmanager
def reload_on_hangup() -> Iterator[asyncio.Event]:
    """An event set by SIGHUP (`digest reload`) while the block runs."""
    reload = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGHUP, reload.set)
    try:
        yield reload
    finally:
        loop.remove_signal_handler(signal.SIGHUP)
