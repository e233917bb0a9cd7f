"""Reader lists in CSV files, as Mailchimp, Substack, Buttondown or a spreadsheet write them.

A file is read as a stream (memory stays flat at any size): its encoding from its
byte-order mark (UTF-8 with or without one, UTF-16 with one), its delimiter from its first
line (``,``, ``;`` or a tab), its columns from the header names those tools use. A file
that is not valid CSV (an unclosed quote, a field over 128 KB, a NUL byte, bytes that are
not UTF-8) is refused with ``MalformedFile`` naming the line, before anything is imported.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from digest.errors import MalformedFile
from digest.sanitize import clean_identifier

NAME_LENGTH = 200

# Header names, compared lower-case with "_" and "-" read as spaces. Mailchimp writes
# "Email Address", "First Name", "Last Name"; Substack "email"; Buttondown "email" (older
# exports and its API "email_address"); digest's own export "email", "name", "newsletter".
_HEADERS = {
    "email": {"email", "email address", "e mail", "e mail address", "emailaddress", "mail"},
    "name": {"name", "full name", "fullname", "display name"},
    "first": {"first name", "firstname", "fname", "given name"},
    "last": {"last name", "lastname", "lname", "surname", "family name"},
    "newsletters": {"newsletters", "newsletter"},
    "cadence": {"cadence"},
    "topics": {"topics", "topic"},
    "status": {"status"},
}
_DELIMITERS = (",", ";", "\t")
_SEPARATORS = re.compile(r"[\s,;]+")
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass(frozen=True, slots=True)
class ReaderRow:
    """One data row: the cells digest reads, trimmed; ``line`` is where the row starts."""

    line: int
    email: str
    name: str = ""
    newsletters: tuple[str, ...] = ()  # empty: the import's default
    cadence: str = ""  # empty: the import's default
    topics: tuple[str, ...] | None = None  # None: the import's default
    status: str = ""  # as the file gives it (an export of another tool, or digest's own)


@dataclass(frozen=True, slots=True)
class Layout:
    """How a file is written: what ``scan`` found and ``read_rows`` reads by."""

    encoding: str
    delimiter: str
    header: bool
    columns: dict[str, int]  # field (a key of ``_HEADERS``) -> column index
    rows: int  # data rows (blank lines not counted)


def scan(path: Path) -> Layout:
    """Read the whole file once: its encoding, delimiter and columns, and how many rows it
    has; ``MalformedFile`` naming the line if any of it is not valid CSV."""
    encoding = _encoding(path)
    with _lines(path, encoding) as lines:
        first = next(lines, None)
        if first is None:
            raise MalformedFile(f"{path} is empty: give a CSV file with an email column")
        delimiter = _delimiter(first)
        records = _records(path, _chain(first, lines), delimiter)
        _, head = next(records)
        columns, header = _columns(path, head)
        rows = sum(1 for _, cells in records if any(cells)) + (0 if header else 1)
    return Layout(encoding, delimiter, header, columns, rows)


def read_rows(path: Path, layout: Layout) -> Iterator[ReaderRow]:
    """The data rows of a file ``scan`` accepted, one at a time."""
    with _lines(path, layout.encoding) as lines:
        records = _records(path, lines, layout.delimiter)
        if layout.header:
            next(records)
        for line, cells in records:
            if any(cells):
                yield _row(line, cells, layout.columns)


def rows_of_text(text: str) -> Iterator[ReaderRow]:
    """The data rows of CSV text (comma-separated, with a header or addresses first)."""
    records = _records(Path("<text>"), iter(text.splitlines(keepends=True)), ",")
    first = next(records, None)
    if first is None:
        return
    columns, header = _columns(Path("<text>"), first[1])
    if not header:
        yield _row(*first, columns)
    for line, cells in records:
        if any(cells):
            yield _row(line, cells, columns)


def _row(line: int, cells: list[str], columns: dict[str, int]) -> ReaderRow:
    def cell(field: str) -> str:
        index = columns.get(field)
        return cells[index] if index is not None and index < len(cells) else ""

    name = cell("name") or " ".join(filter(None, (cell("first"), cell("last"))))
    if name[:1] == "'" and name[1:2] in ("=", "+", "-", "@"):
        name = name[1:]  # digest's export guards such names against spreadsheet formulas
    name = " ".join(name.split())
    if not name.isprintable():  # control, format or lone surrogate characters (rare)
        name = " ".join(clean_identifier(name).split())
    return ReaderRow(
        line=line,
        email=cell("email"),
        name=name[:NAME_LENGTH],
        newsletters=tuple(filter(None, _SEPARATORS.split(cell("newsletters")))),
        cadence=cell("cadence"),
        topics=tuple(filter(None, _SEPARATORS.split(cell("topics")))) or None,
        status=cell("status").lower(),
    )


def _encoding(path: Path) -> str:
    try:
        with path.open("rb") as file:
            start = file.read(4)
    except OSError as exc:
        raise MalformedFile(f"cannot read {path}: {exc.strerror}") from exc
    return next((name for bom, name in _BOMS if start.startswith(bom)), "utf-8")


@contextmanager
def _lines(path: Path, encoding: str) -> Iterator[Iterator[str]]:
    """The file's lines as text. UTF-8 is decoded line by line, so that a bad byte is
    reported on its own line."""
    try:
        if encoding == "utf-16":
            with path.open(encoding="utf-16", newline="") as text:
                yield iter(text)
        else:
            with path.open("rb") as data:
                yield _utf8(path, data)
    except OSError as exc:
        raise MalformedFile(f"cannot read {path}: {exc.strerror}") from exc


def _utf8(path: Path, data: BinaryIO) -> Iterator[str]:
    for number, line in enumerate(data, start=1):
        if number == 1 and line.startswith(codecs.BOM_UTF8):
            line = line[len(codecs.BOM_UTF8) :]
        try:
            yield line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedFile(
                f"{path}:{number}: not UTF-8 (byte {line[exc.start]:#04x} at column"
                f" {exc.start + 1}); save the file as UTF-8 or UTF-16"
            ) from None


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest


def _delimiter(first_line: str) -> str:
    unquoted = re.sub(r'"[^"]*"', "", first_line)
    counts = {delimiter: unquoted.count(delimiter) for delimiter in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: counts[d])  # ties: the first, a comma
    return best if counts[best] else ","


def _records(path: Path, lines: Iterator[str], delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """``(line the record starts on, trimmed cells)``; ``MalformedFile`` naming that line."""
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError as exc:  # UTF-16 is decoded by the text stream
            raise MalformedFile(f"{path}:{start}: not valid UTF-16 ({exc.reason})") from None
        except csv.Error as exc:
            raise MalformedFile(f"{path}:{start}: not valid CSV: {_explain(exc)}") from None
        yield start, [cell.strip() for cell in cells]


def _explain(exc: csv.Error) -> str:
    message = str(exc)
    if "field larger than field limit" in message:
        limit = csv.field_size_limit()
        return (
            f"a field longer than {limit:,} characters starts in this row"
            " (an unclosed quote, or not a list of readers)"
        )
    if "unexpected end of data" in message:
        return "a quote opened in this row is never closed"
    if "expected after" in message:
        return f"a quote opened in this row is closed in the wrong place ({message})"
    return message


def _columns(path: Path, head: list[str]) -> tuple[dict[str, int], bool]:
    """The fields of a header row, or the first column when there is no header."""
    columns: dict[str, int] = {}
    for index, cell in enumerate(head):
        spelled = " ".join(cell.lower().replace("_", " ").replace("-", " ").split())
        for field, names in _HEADERS.items():
            if spelled in names:
                columns.setdefault(field, index)
    if "email" in columns:
        return columns, True
    if head and "@" in head[0]:
        return {"email": 0}, False
    raise MalformedFile(
        f"{path}:1: no email column; name it `email` (Mailchimp's `Email Address` and"
        " `email_address` work too), or give addresses in the first column without a header"
    )
