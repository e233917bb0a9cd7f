"""The one way listings print: a table that fits the width, or JSON with every field."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

from rich.console import Console

from digest.cli.output import Column, show_listing
from digest.models import EditionStatus

ROWS = [
    {
        "id": "5a365525e0b1",
        "status": EditionStatus.SENT,
        "readers": 3,
        "subject": "Transmission Daily: The Dictator's New Calendar (+2 more), and a long tail",
        "created_at": datetime(2026, 12, 1, 14, 5, tzinfo=UTC),
    },
    {
        "id": "298f1b75aa00",
        "status": EditionStatus.SKIPPED,
        "readers": 0,
        "subject": "",
        "created_at": datetime(2026, 12, 2, 6, 0, tzinfo=UTC),
    },
]
COLUMNS = [
    Column("id", "edition", show=lambda full: full[:8]),
    Column("status"),
    Column("readers", right=True),
    Column("subject", cut=True),
]


def printed(width: int, **options: object) -> str:
    out = Console(file=io.StringIO(), width=width, highlight=False, markup=False)
    show_listing(out, options.pop("rows", ROWS), COLUMNS, **options)  # type: ignore[arg-type]
    return out.file.getvalue()  # type: ignore[attr-defined, no-any-return]


def test_a_table_fits_the_width_and_cuts_only_the_free_text() -> None:
    lines = printed(60, as_json=False).splitlines()
    assert max(map(len, lines)) == 60
    assert lines[0].split() == ["edition", "status", "readers", "subject"]
    first = lines[2]
    assert first.split()[:5] == ["5a365525", "sent", "3", "Transmission", "Daily:"]
    assert first.endswith("…")
    assert lines[3].split() == ["298f1b75", "skipped", "0", "-"]  # nothing shows as "-"


def test_a_wide_table_cuts_nothing() -> None:
    lines = printed(200, as_json=False).splitlines()
    assert lines[2].rstrip().endswith("and a long tail")
    assert max(map(len, lines)) < 200


def test_json_has_every_field_exactly() -> None:
    rows = json.loads(printed(40, as_json=True))
    assert rows[0] == {
        "id": "5a365525e0b1",
        "status": "sent",
        "readers": 3,
        "subject": ROWS[0]["subject"],
        "created_at": "2026-12-01T14:05:00+00:00",
    }
    assert rows[1]["status"] == "skipped"


def test_no_rows_print_the_empty_note_or_an_empty_list() -> None:
    assert printed(80, rows=[], as_json=False, empty="no editions yet") == "no editions yet\n"
    assert json.loads(printed(80, rows=[], as_json=True)) == []
    assert printed(80, rows=[], as_json=False) == ""
