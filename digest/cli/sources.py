"""`digest sources`: how every source of the config has been doing (its health)."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from zoneinfo import ZoneInfo

from rich import box
from rich.console import Console
from rich.table import Table

from digest import source_health
from digest.cli.common import app_of
from digest.source_health import HealthView


def cmd_sources(args: argparse.Namespace, out: Console) -> int:
    """List every source's health: last fetch and success, failures, newest post, churn."""
    app = app_of(args)
    now = app.clock()
    known = {health.source_id: health for health in app.store.list_source_health()}
    views = [source_health.view(s, known.get(s.id), now) for s in app.config.sources.values()]
    if args.json:
        out.out(json.dumps([_as_json(view, now) for view in views], indent=2), highlight=False)
        return 0
    zone = ZoneInfo(app.config.site.timezone)
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), pad_edge=False, show_edge=False)
    for header in ("source", "status", "fetched", "worked", "newest"):
        table.add_column(header, overflow="fold")
    for header in ("fails", "undated", "churn"):
        table.add_column(header, justify="right")
    for view in views:
        health = view.health
        table.add_row(
            view.source.id,
            view.status,
            _age(health.last_fetch if health else None, now),
            _age(health.last_success if health else None, now),
            _age(health.newest_post if health else None, now),
            str(health.failures) if health else "",
            str(health.undated) if health else "",
            f"{health.churn}/{health.churn_total}" if health else "",
        )
    out.print(table)
    out.print("times are ages (5h: 5 hours ago); churn: last fetch/in all; --json: exact times")
    for view in views:
        for note in _notes(view, zone, emailed=bool(app.config.site.editors)):
            style = "red" if view.status == "failing" else "yellow"
            out.print(f"{view.source.id}: {note}", style=style)
    return 0


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


def _as_json(view: HealthView, now: datetime) -> dict[str, object]:
    health, source = view.health, view.source

    def moment(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "source": source.id,
        "kind": source.kind,
        "title": source.title,
        "location": source.url or (str(source.path) if source.path else ""),
        "status": view.status,
        "fetch_every_minutes": source.fetch_every_minutes,
        "last_fetch": moment(health.last_fetch if health else None),
        "last_success": moment(health.last_success if health else None),
        "last_error": health.last_error if health else "",
        "consecutive_failures": health.failures if health else 0,
        "failing_since": moment(health.failing_since if health else None),
        "next_attempt": moment(view.next_attempt),
        "editors_alerted": view.alerted,
        "alert_after_failures": source.alert_after_failures,
        "undated_items": health.undated if health else 0,
        "guid_churn": {
            "last_fetch": health.churn if health else 0,
            "total": health.churn_total if health else 0,
        },
        "newest_post": moment(health.newest_post if health else None),
        "days_without_new_post": view.quiet_days,
        "stale_after_days": source.stale_after_days or None,
        "stale": view.stale,
    }


def _age(moment: datetime | None, now: datetime) -> str:
    """How long ago, in one unit: "now", "12m", "5h", "3d"; "-" for never."""
    if moment is None:
        return "-"
    seconds = (now - moment).total_seconds()
    if seconds < 60:
        return "now"  # or a moment ahead, by another machine's clock
    size, unit = next(u for u in ((86_400, "d"), (3_600, "h"), (60, "m")) if seconds >= u[0])
    return f"{int(seconds // size)}{unit}"


def _local(moment: datetime | None, zone: ZoneInfo) -> str:
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M %Z}" if moment else "-"
