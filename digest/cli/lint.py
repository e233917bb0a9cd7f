"""`digest lint`: check a newsletter's next digest, or an edition's stored renderings."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from digest.app import App
from digest.cli.common import app_of
from digest.cli.editor import next_digest, preview_message
from digest.cli.ids import resolve_edition
from digest.errors import NotFound, UsageError
from digest.lint import HTML_BUDGET, Level, Lint, lint_message

WIDTH = 80


@dataclass(frozen=True, slots=True)
class _Checked:
    label: str  # what was checked, e.g. "daily: the next digest" or "edition 1a2b3c4d, variant 2"
    subject: str
    lint: Lint


def cmd_lint(args: argparse.Namespace, out: Console) -> int:
    """Check a digest for what would hurt its delivery or display (exit 1 on errors).

    NEWSLETTER: its next digest, fetched and rendered as `digest preview` does. EDITION
    (an id or a unique prefix; a newsletter id wins): each rendering stored for it.
    Errors: the HTML part over the size budget (Gmail clips past 102 KB), missing or
    repeated headers, a missing part, relative links or images. Warnings: images without
    width or alt, links and images that are not https, CSS premailer left un-inlined,
    elements wider than the column.
    """
    app = app_of(args)
    notes = Console(stderr=True, highlight=False, markup=False) if args.json else out
    if args.target in app.config.newsletters:
        checked = _next_digest(app, args, notes)
    else:
        if args.subscriber or args.cadence:
            raise UsageError("--subscriber and --cadence go with a NEWSLETTER, not an edition")
        checked = _edition(app, args.target)
    errors = sum(item.lint.errors for item in checked)
    if args.json:
        out.file.write(json.dumps(_as_json(args.target, checked), indent=2) + "\n")
    else:
        for item in checked:
            _print(out, item)
    return 1 if errors else 0


def _next_digest(app: App, args: argparse.Namespace, notes: Console) -> list[_Checked]:
    newsletter = app.newsletter(args.target)
    plan, now = next_digest(app, newsletter.id, args, notes)
    shown = app.sample(plan, newsletter.id, now)
    rendered = shown.rendered()
    if rendered is None:
        raise NotFound(f"newsletter {newsletter.id!r} has no posts yet: nothing to lint")
    who = args.subscriber or "a reader subscribing now"
    label = f"{newsletter.id}: the next digest for {who}"
    if shown is not plan:
        label = f"{newsletter.id}: nothing new for {who}; a sample of the newest posts"
    message = preview_message(app, rendered, newsletter, now)
    return [_Checked(label, rendered.subject, lint_message(message))]


def _edition(app: App, target: str) -> list[_Checked]:
    try:
        edition_id = resolve_edition(app, target)
    except NotFound as exc:
        newsletters = ", ".join(app.config.newsletters)
        raise NotFound(f"{target!r} is not a newsletter ({newsletters}), and {exc}") from exc
    edition = app.store.get_edition(edition_id)
    renderings = app.store.get_renderings(edition_id)
    if not renderings:
        raise NotFound(
            f"edition {edition_id} ({edition.status}) has no rendering to lint: nothing was"
            " sent for it"
        )
    newsletter = app.newsletter(edition.newsletter_id)
    now = app.clock()
    checked: list[_Checked] = []
    for variant, rendered in sorted(renderings.items()):
        label = f"edition {edition_id[:8]} of {newsletter.id} ({edition.period_key})"
        if len(renderings) > 1:
            label += f", variant {variant}"
        message = preview_message(app, rendered, newsletter, now)
        checked.append(_Checked(label, rendered.subject, lint_message(message)))
    return checked


def _print(out: Console, item: _Checked) -> None:
    lint = item.lint
    out.print(item.label, style="bold", soft_wrap=True)
    out.print(f"subject: {item.subject}", soft_wrap=True)
    share = lint.html_bytes / HTML_BUDGET
    out.print(
        f"HTML part: {lint.html_bytes:,} bytes, {share:.0%} of the {HTML_BUDGET:,}-byte budget"
    )
    if lint.findings:
        table = Table("level", "code", "finding", width=WIDTH)
        for finding in lint.findings:
            style = "red" if finding.level is Level.ERROR else "yellow"
            table.add_row(finding.level.value, finding.code, finding.message, style=style)
        out.print(table, width=WIDTH)
    out.print(f"{lint.errors} error(s), {lint.warnings} warning(s)")


def _as_json(target: str, checked: list[_Checked]) -> dict[str, object]:
    return {
        "target": target,
        "budget": HTML_BUDGET,
        "messages": [
            {
                "checked": item.label,
                "subject": item.subject,
                "html_bytes": item.lint.html_bytes,
                "errors": item.lint.errors,
                "warnings": item.lint.warnings,
                "findings": [
                    {"level": f.level.value, "code": f.code, "message": f.message}
                    for f in item.lint.findings
                ],
            }
            for item in checked
        ],
    }
