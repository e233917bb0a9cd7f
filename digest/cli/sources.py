"""`digest sources`: how every source of the config has been doing (its health)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from rich.console import Console

from digest import display, source_health
from digest.cli.common import app_of
from digest.cli.output import Column, Row, show_listing
from digest.source_health import HealthView


def cmd_sources(args: argparse.Namespace, out: Console) -> int:
    """List every source's health: last fetch and success, failures, newest post, churn."""
    app = app_of(args)
    now = app.clock()
    known = {health.source_id: health for health in app.store.list_source_health()}
    views = [source_health.view(s, known.get(s.id), now) for s in app.config.sources.values()]
    rows = [_row(view) for view in views]

    def ago(moment: datetime | None) -> str:
        return display.age(moment, now)

    columns = [
        Column("source"),
        Column("status"),
        Column("last_fetch", "fetched", show=ago),
        Column("last_success", "worked", show=ago),
        Column("newest_post", "newest", show=ago),
        _tally("fails", lambda row: row["consecutive_failures"]),
        _tally("undated", lambda row: row["undated_items"]),
        _tally("churn", _churn),
    ]
    show_listing(out, rows, columns, as_json=args.json)
    if args.json:
        return 0
    out.print("times are ages (5h: 5 hours ago); churn: last fetch/in all; --json: exact times")
    zone = ZoneInfo(app.config.site.timezone)
    for view in views:
        for note in _notes(view, zone, emailed=bool(app.config.site.editors)):
            style = "red" if view.status == "failing" else "yellow"
            out.print(f"{view.source.id}: {note}", style=style)
    return 0


def _tally(header: str, count: Callable[[Row], object]) -> Column:
    """A column of counts, blank for a source never fetched (it has none yet)."""
    return Column(
        header,
        right=True,
        whole_row=True,
        show=lambda row: str(count(row)) if row["last_fetch"] else "",
    )


def _churn(row: Row) -> str:
    churn = row["guid_churn"]
    assert isinstance(churn, dict)
    return f"{churn['last_fetch']}/{churn['total']}"


def _notes(view: HealthView, zone: ZoneInfo, *, emailed: bool) -> list[str]:
    """What an editor should know about the source beyond its row."""
    health, source = view.health, view.source
    if health is None or health.last_fetch is None:
        return [f"never fetched: `digest fetch {source.id}` (or `digest run`) reads it"]
    notes: list[str] = []
    if health.failures and health.failing_since is not None:
        alert = f"an alert at {source.alert_after_failures} in a row"
        if view.alerted:
            alert = (
                "alert logged and mailed to [site] editors (a refused mail is in the log)"
                if emailed
                else "alert logged; no [site] editors"
            )
        retry = f"; next poll {_local(view.next_attempt, zone)}" if view.next_attempt else ""
        notes.append(
            f"failing since {_local(health.failing_since, zone)},"
            f" {source_health.failed_fetches(health.failures)} in a row ({alert})"
            f"{retry}; last error: {health.last_error}"
        )
    if view.stale:
        notes.append(
            f"no new post for {view.quiet_days} days (stale_after_days = {source.stale_after_days})"
        )
    return notes


def _row(view: HealthView) -> dict[str, object]:
    """Every field of a source's health (``--json`` prints them all, the table some)."""
    health, source = view.health, view.source
    return {
        "source": source.id,
        "kind": source.kind,
        "title": source.title,
        "location": source.url or (str(source.path) if source.path else ""),
        "status": view.status,
        "fetch_every_minutes": source.fetch_every_minutes,
        "last_fetch": health.last_fetch if health else None,
        "last_success": health.last_success if health else None,
        "last_error": health.last_error if health else "",
        "consecutive_failures": health.failures if health else 0,
        "failing_since": health.failing_since if health else None,
        "next_attempt": view.next_attempt,
        "editors_alerted": view.alerted,
        "alert_after_failures": source.alert_after_failures,
        "undated_items": health.undated if health else 0,
        "guid_churn": {
            "last_fetch": health.churn if health else 0,
            "total": health.churn_total if health else 0,
        },
        "newest_post": health.newest_post if health else None,
        "days_without_new_post": view.quiet_days,
        "stale_after_days": source.stale_after_days or None,
        "stale": view.stale,
    }


def _local(moment: datetime | None, zone: ZoneInfo) -> str:
    return display.local_time(moment, zone, with_zone=True)
