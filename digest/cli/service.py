"""`digest run`, `reload`, `migrate`, `check` and `fetch`: the service and its content."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal

from rich.console import Console

from digest.app import TEMPLATES_DIR, build_app, checked_renderer, open_store, utc_now
from digest.cli.common import app_of, config_of, reload_on_hangup, stop_on_signals
from digest.cli.editor import NEXT_SEND_COLUMNS, next_sends
from digest.cli.output import Column, Row, print_json, show_listing
from digest.cli.process import PID_FILE, pid_file, running_pid
from digest.editorial import load_config
from digest.errors import DigestError
from digest.store import masked


def cmd_check(args: argparse.Namespace, out: Console) -> int:
    """Validate the config: keys, types, sources, schedules, time zones, templates."""
    config = config_of(args)
    checked_renderer(TEMPLATES_DIR, config, utc_now())
    sends = next_sends(config, list(config.newsletters), utc_now(), 1)
    if args.json:
        print_json(out, {"config": config.path, "sources": list(config.sources), "next": sends})
        return 0
    out.print(f"{config.path}: OK", soft_wrap=True)
    out.print(f"{len(config.sources)} source(s): {', '.join(config.sources)}")
    out.print(f"{len(config.newsletters)} newsletter(s), each cadence next sent at:")
    show_listing(out, sends, NEXT_SEND_COLUMNS, as_json=False)
    return 0


def cmd_migrate(args: argparse.Namespace, out: Console) -> int:
    """Create or upgrade the database schema (also done by `digest run`)."""
    config = config_of(args)
    open_store(config, apply_migrations=True)
    out.print(f"database ready: {masked(config.database_url)}")
    return 0


def cmd_run(args: argparse.Namespace, out: Console) -> int:
    """Run the scheduler, the fetchers, the senders and the web pages until stopped."""
    from digest.service import run_service

    config = config_of(args)
    app = build_app(config, environ=os.environ)

    async def serve() -> None:
        with stop_on_signals() as stop, reload_on_hangup() as reload:
            await run_service(
                app, stop, reload=reload, load_config=lambda: load_config(config.path)
            )

    with pid_file(config.data_dir / PID_FILE):
        asyncio.run(serve())
    return 0


def cmd_reload(args: argparse.Namespace, out: Console) -> int:
    """Check the config, then have the running `digest run` use it (SIGHUP), no restart."""
    config = config_of(args)  # a broken config is refused here, and the service keeps going
    path = config.data_dir / PID_FILE
    pid = running_pid(path)
    if pid is None:
        raise DigestError(
            f"no running `digest run` found (no live process in {path}); start it with "
            "`make run`: it reads the config when it starts"
        )
    os.kill(pid, signal.SIGHUP)
    out.print(
        f"{config.path}: OK; sent to digest run (pid {pid}), which logs what changed",
        soft_wrap=True,
    )
    return 0


def cmd_fetch(args: argparse.Namespace, out: Console) -> int:
    """Fetch one source (or all) now and report new posts and problems per source."""
    app = app_of(args)
    reports = asyncio.run(app.fetch([args.source] if args.source else None))
    rows = [
        {
            "source": report.source_id,
            "new": report.new,
            "seen": report.seen,
            "not_modified": report.not_modified,
            "error": report.error,
            "consecutive_failures": report.failures,
            "problems": report.problems,
        }
        for report in reports
    ]
    columns = [
        Column("source"),
        Column("new", right=True),
        Column("seen", "in feed", right=True),
        Column("result", whole_row=True, wrap=True, show=_result),
    ]
    show_listing(out, rows, columns, as_json=args.json)
    if not args.json:
        for report in reports:
            for problem in report.problems:
                out.print(f"warning: {report.source_id}: {problem}", style="yellow", soft_wrap=True)
    return 1 if any(report.error for report in reports) else 0


def _result(row: Row) -> str:
    return str(row["error"]) or ("not modified" if row["not_modified"] else "ok")
