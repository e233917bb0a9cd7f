"""`digest subscribers add|list|import`: the reader list."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from digest import subscriptions
from digest.cli.common import (
    app_of,
    default_newsletter,
    sole_newsletter,
)
from digest.errors import DigestError


def cmd_subscribers_add(args: argparse.Namespace, out: Console) -> int:
    """Add a reader to a newsletter (confirmed: you vouch for their consent)."""
    app = app_of(args)
    newsletter = default_newsletter(app.config, args.newsletter)
    subscription, changed = subscriptions.add_subscriber(
        app.store, args.email, newsletter, app.config.newsletters, app.clock()
    )
    verb = "added" if changed else "already subscribed:"
    out.print(f"{verb} {subscription.subscriber.email} -> {newsletter}")
    return 0


def cmd_subscribers_list(args: argparse.Namespace, out: Console) -> int:
    """List subscriptions with their status."""
    app = app_of(args)
    table = Table("email", "newsletter", "status", "since")
    rows = app.store.list_subscriptions(args.newsletter)
    for sub in rows:
        table.add_row(
            sub.subscriber.email, sub.newsletter_id, str(sub.status), f"{sub.changed_at:%Y-%m-%d}"
        )
    out.print(table)
    out.print(f"{len(rows)} subscription(s)")
    return 0


def cmd_subscribers_import(args: argparse.Namespace, out: Console) -> int:
    """Import readers from a CSV file; bad rows are reported by line, the rest imported."""
    app = app_of(args)
    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DigestError(f"cannot read {path}: {exc}; give a UTF-8 CSV file") from exc
    defaults = [args.newsletter] if args.newsletter else sole_newsletter(app.config)
    report = subscriptions.import_csv(
        app.store, text, defaults, app.config.newsletters, app.clock()
    )
    for line, message in report.errors:
        out.print(f"{path}:{line}: {message}", style="yellow", soft_wrap=True)
    out.print(
        f"imported {report.added}, unchanged {report.unchanged}, rejected {len(report.errors)}"
    )
    return 1 if report.errors else 0
