"""Several sender processes on one edition, for when one core is not enough.

`digest send-now --workers N` opens (or resumes) the edition in this process, starts
N - 1 `digest worker --edition ID` processes on it and sends alongside them. Each
process claims its own batches under its own owner name, so none sends a row twice;
a signal to this process is passed on, and every worker stops cleanly. A sender holds
up to three claims' worth of rows at once, so workers only help with editions much
larger than that (thousands of readers).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from digest import editions
from digest.app import App

PROGRESS_EVERY = 0.5  # seconds between progress readings from the ledger


async def send_now_with_workers(
    app: App,
    newsletter_id: str,
    *,
    workers: int,
    config_path: Path,
    environ: Mapping[str, str],
    on_progress: Callable[[int, int], None] | None = None,
    stop: asyncio.Event | None = None,
    cadence_id: str | None = None,
) -> editions.SendReport:
    """`send-now` with ``workers`` processes in all (this one included; 1: just this one)."""
    if workers <= 1:
        return await app.send_now(newsletter_id, on_progress, stop, cadence_id=cadence_id)
    opened, resumed = await app.open_now(newsletter_id, cadence_id)
    edition = opened.edition
    if not edition.status.is_open:
        report = await app.send_edition(edition.id, on_progress, stop)
        report.resumed = resumed
        return report
    command = [sys.executable, "-m", "digest.cli", "--config", str(config_path)]
    helpers = [
        await asyncio.create_subprocess_exec(
            *command,
            "worker",
            "--edition",
            edition.id,
            env=dict(environ),
            stdout=asyncio.subprocess.DEVNULL,
        )
        for _ in range(workers - 1)
    ]
    total = (await app.ledger.edition_summary(edition.id)).unfinished
    watcher = asyncio.create_task(_follow(app, edition.id, total, on_progress))
    try:
        mine = await app.send_edition(edition.id, None, stop, renderings=opened.renderings)
    finally:
        if stop is not None and stop.is_set():
            for helper in helpers:
                with contextlib.suppress(ProcessLookupError):
                    helper.send_signal(signal.SIGTERM)
        await asyncio.gather(*(helper.wait() for helper in helpers))
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    report = await editions.report(app.ledger, edition.id, app.send_policy(), mine.run)
    report.resumed = resumed
    if on_progress is not None:
        on_progress(total - report.unfinished, total)
    return report


async def _follow(
    app: App, edition_id: str, total: int, on_progress: Callable[[int, int], None] | None
) -> None:
    """Every process records its own outcomes: the ledger tells how far they all got."""
    if on_progress is None:
        return
    while True:
        await asyncio.sleep(PROGRESS_EVERY)
        summary = await app.ledger.edition_summary(edition_id)
        on_progress(total - summary.unfinished, total)


def worker_count(given: int | None) -> int:
    """``--workers``, or one per core when given as 0."""
    if given == 0:
        return os.cpu_count() or 1
    return max(1, given or 1)
