"""How every listing command prints: one table that fits the terminal, or JSON.

A listing is rows of named fields (a mapping each) and the columns that show some of
them. ``--json`` prints every field of every row (full ids, exact UTC times, statuses
as words: see :func:`digest.display.plain`); the table shows the columns, each cell
one line where it can be: a column marked ``cut`` (free text: a subject, a reply) gets
what the others leave of the width and ends in "…" when longer, other columns fold
onto more lines only when the width is too small for them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table

from digest.display import plain

Row = Mapping[str, object]

GAP = 2  # cells between columns: the box's blank divider and one of padding
MIN_CUT = 12  # a cut column never gets fewer cells than this, even if lines then fold


def text(value: object) -> str:
    """A cell's default text: "-" for None, statuses as words, the rest as str()."""
    return "-" if value is None or value == "" else str(value)


@dataclass(frozen=True)
class Column:
    """One column of a table: the row field ``key`` under ``header``, shown by ``show``."""

    key: str
    header: str = ""  # default: the key
    show: Callable[[Any], str] = text
    right: bool = False  # numbers
    cut: bool = False  # long free text: one line, cut to the width left with "…"
    whole_row: bool = False  # ``show`` reads the whole row (a cell made of several fields)

    def cell(self, row: Row) -> str:
        return self.show(row if self.whole_row else row.get(self.key))

    @property
    def title(self) -> str:
        return self.header or self.key


def print_json(out: Console, value: object) -> None:
    """``value`` as indented JSON (see :func:`digest.display.plain`), never wrapped."""
    out.out(json.dumps(plain(value), indent=2, ensure_ascii=False), highlight=False)


def show_listing(
    out: Console,
    rows: Sequence[Row],
    columns: Sequence[Column],
    *,
    as_json: bool,
    empty: str = "",
    title: str = "",
) -> None:
    """Print ``rows`` as JSON (a list of objects, every field) or as a table of ``columns``.

    With no rows the table is replaced by ``empty`` (when given); ``title`` is a line
    above the table only.
    """
    if as_json:
        print_json(out, rows)
        return
    if not rows:
        if empty:
            out.print(empty)
        return
    if title:
        out.print(title, style="bold")
    out.print(table(rows, columns, width=out.width))


def table(rows: Iterable[Row], columns: Sequence[Column], *, width: int) -> Table:
    """The rows as a table of at most ``width`` cells a line, in the house style."""
    cells = [[column.cell(row) for column in columns] for row in rows]
    widths = [
        max([cell_len(column.title)] + [cell_len(line[i]) for line in cells])
        for i, column in enumerate(columns)
    ]
    cut = [i for i, column in enumerate(columns) if column.cut]
    fixed = sum(w for i, w in enumerate(widths) if i not in cut) + GAP * (len(columns) - 1)
    share = max(MIN_CUT, (width - fixed) // len(cut)) if cut else 0
    grid = Table(box=box.SIMPLE_HEAD, padding=(0, GAP - 1, 0, 0), pad_edge=False, show_edge=False)
    for column in columns:
        grid.add_column(
            column.title,
            justify="right" if column.right else "left",
            no_wrap=column.cut,
            overflow="ellipsis" if column.cut else "fold",
            max_width=share if column.cut else None,
        )
    for line in cells:
        grid.add_row(*line)
    return grid
