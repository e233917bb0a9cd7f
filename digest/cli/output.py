"""How every listing command prints: one table that fits the terminal, or JSON.

A listing is rows of named fields (a mapping each) and the columns that show some of
them. ``--json`` prints every field of every row (full ids, exact UTC times, statuses
as words: see :func:`digest.display.plain`); the table shows the columns, as wide as
their longest cell, but for those marked ``cut`` (free text: a subject, a reply: one
line, ending in "…" when longer) or ``wrap`` (words on more lines), which share what
the others leave of the width.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.cells import cell_len, set_cell_size
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

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
    wrap: bool = False  # words that may take more lines, in the width left
    below: bool = False  # free text on a line of its own under the row, cut to the width
    width: int = 0  # in a streamed table: the cells the column takes (see stream_listing)
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


def table(rows: Sequence[Row], columns: Sequence[Column], *, width: int) -> RenderableType:
    """The rows as a table of at most ``width`` cells a line, in the house style.

    Columns keep the width of their longest cell, but for ``cut`` and ``wrap`` ones,
    which share what is left (the narrowest first, none below ``MIN_CUT``). A ``below``
    column gets a line of its own under its row, cut to the width.
    """
    inline = [column for column in columns if not column.below]
    below = [column for column in columns if column.below]
    cells = [[column.cell(row) for column in inline] for row in rows]
    widths = _widths(inline, cells, width)
    if not below:
        grid = _grid(inline, widths)
        for line in cells:
            grid.add_row(*line)
        return grid
    # One table per row, all of the same column widths, so that they line up.
    parts: list[RenderableType] = [_grid(inline, widths)]
    for row, line in zip(rows, cells, strict=True):
        part = _grid(inline, widths, show_header=False)
        part.add_row(*line)
        parts.append(part)
        parts += [
            Text(f"  {column.cell(row)}", style="dim", no_wrap=True, overflow="ellipsis")
            for column in below
            if row.get(column.key)
        ]
    return Group(*parts)


def _widths(columns: Sequence[Column], cells: Sequence[Sequence[str]], width: int) -> list[int]:
    natural = [
        max([cell_len(column.title)] + [cell_len(line[i]) for line in cells])
        for i, column in enumerate(columns)
    ]
    flexible = sorted(
        (i for i, column in enumerate(columns) if column.cut or column.wrap),
        key=natural.__getitem__,
    )
    left = width - GAP * (len(columns) - 1)
    left -= sum(w for i, w in enumerate(natural) if i not in flexible)
    widths = list(natural)
    for done, i in enumerate(flexible):
        widths[i] = min(natural[i], max(MIN_CUT, left // (len(flexible) - done)))
        left -= widths[i]
    return widths


def _grid(columns: Sequence[Column], widths: Sequence[int], *, show_header: bool = True) -> Table:
    """An empty table of ``columns``, each of its width."""
    grid = Table(
        box=box.SIMPLE_HEAD,
        padding=(0, GAP - 1, 0, 0),
        pad_edge=False,
        show_edge=False,
        show_header=show_header,
    )
    for column, width in zip(columns, widths, strict=True):
        grid.add_column(
            column.title,
            justify="right" if column.right else "left",
            no_wrap=not column.wrap,
            overflow="fold" if column.wrap else "ellipsis",
            width=width,
        )
    return grid


def stream_listing(
    out: Console, rows: Iterable[Row], columns: Sequence[Column], *, form: str
) -> int:
    """Print ``rows`` as they come, in flat memory, and return how many there were.

    ``form`` is ``json`` (an array, one object a line), ``tsv`` (a header line, then
    tab-separated cells of every column) or ``table``: columns of their ``width`` (a
    wider value pushes the rest of its line), cut to the console width with "…", and a
    ``below`` column on a line of its own under its row when it shows something.
    """
    write = out.file.write
    count = 0
    if form == "json":
        for row in rows:
            write(("[" if not count else ",\n") + json.dumps(plain(row), ensure_ascii=False))
            count += 1
        write("]\n" if count else "[]\n")
        return count
    inline = columns if form == "tsv" else [column for column in columns if not column.below]
    below = [column for column in columns if column not in inline]
    if form == "tsv":
        write("\t".join(column.title for column in inline) + "\n")
    else:
        header = _aligned([column.title for column in inline], inline, out.width)
        write(f"{header}\n{'─' * cell_len(header)}\n")
    for row in rows:
        cells = [column.cell(row) for column in inline]
        if form == "tsv":
            write("\t".join(" ".join(cell.split()) for cell in cells) + "\n")
        else:
            write(_aligned(cells, inline, out.width) + "\n")
            for column in below:
                if note := column.show(row if column.whole_row else row.get(column.key)):
                    write(_cut(f"    {' '.join(note.split())}", out.width) + "\n")
        count += 1
    return count


def _aligned(cells: Sequence[str], columns: Sequence[Column], width: int) -> str:
    padded = [
        cell.rjust(column.width) if column.right else cell.ljust(column.width)
        for cell, column in zip(cells, columns, strict=True)
    ]
    return _cut((" " * GAP).join(padded).rstrip(), width)


def _cut(line: str, width: int) -> str:
    return line if cell_len(line) <= width else set_cell_size(line, width - 1) + "…"
