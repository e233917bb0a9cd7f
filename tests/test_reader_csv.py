"""Reader lists as other tools write them: fixtures in tests/fixtures/readers/."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.errors import MalformedFile
from digest.reader_csv import ReaderRow, read_rows, rows_of_text, scan

READERS = Path(__file__).resolve().parent / "fixtures" / "readers"


def rows_of(path: Path) -> list[ReaderRow]:
    return list(read_rows(path, scan(path)))


def test_a_mailchimp_export_gives_address_and_first_and_last_name() -> None:
    layout = scan(READERS / "mailchimp.csv")
    assert (layout.delimiter, layout.header, layout.rows) == (",", True, 2)
    assert [(r.line, r.email, r.name) for r in rows_of(READERS / "mailchimp.csv")] == [
        (2, "Ana.Novak@Example.org", "Ana Novák"),
        (3, "ben@example.org", "Ben"),
    ]


def test_a_substack_export_gives_addresses() -> None:
    assert [(r.email, r.name) for r in rows_of(READERS / "substack.csv")] == [
        ("cy@example.net", ""),
        ("dee@example.net", ""),
    ]


def test_a_buttondown_export_with_a_line_break_in_a_field_keeps_line_numbers() -> None:
    assert scan(READERS / "buttondown.csv").rows == 2
    assert [(r.line, r.email) for r in rows_of(READERS / "buttondown.csv")] == [
        (2, "eve@example.com"),
        (4, "finn@example.com"),  # the notes of line 2 run over two lines
    ]


def test_a_semicolon_sheet_with_a_bom_gives_choices_per_row() -> None:
    layout = scan(READERS / "excel-semicolon.csv")
    assert (layout.encoding, layout.delimiter) == ("utf-8-sig", ";")
    assert rows_of(READERS / "excel-semicolon.csv") == [
        ReaderRow(2, "gus@example.de", "Gustav Müller", ("daily",), "weekly", ("tech", "arts")),
        ReaderRow(3, "hana@example.de", "Hana Šťastná", ("daily",)),
    ]


def test_utf16_with_a_bom_and_tabs() -> None:
    layout = scan(READERS / "excel-utf16.txt")
    assert (layout.encoding, layout.delimiter, layout.rows) == ("utf-16", "\t", 2)
    assert [(r.email, r.name) for r in rows_of(READERS / "excel-utf16.txt")] == [
        ("ivo@example.cz", "Ivo Dvořák"),
        ("jana@example.cz", "Jana"),
    ]


def test_without_a_header_the_addresses_are_in_the_first_column(tmp_path: Path) -> None:
    path = tmp_path / "plain.csv"
    path.write_text("ana@x.org,ignored\n\nben@x.org\n")
    layout = scan(path)
    assert (layout.header, layout.rows) == (False, 2)
    assert [(r.line, r.email) for r in rows_of(path)] == [(1, "ana@x.org"), (3, "ben@x.org")]
    assert [r.email for r in rows_of_text("ana@x.org\nben@x.org")] == ["ana@x.org", "ben@x.org"]


def test_a_quoted_delimiter_in_the_header_does_not_decide_the_delimiter(tmp_path: Path) -> None:
    path = tmp_path / "quoted.csv"
    path.write_text('email,"Notes; one; two; three"\nana@x.org,"a;b"\n')
    assert scan(path).delimiter == ","
    assert [r.email for r in rows_of(path)] == ["ana@x.org"]


def test_names_are_cleaned_capped_and_unguarded(tmp_path: Path) -> None:
    path = tmp_path / "names.csv"
    path.write_text(
        f'email,name\na@x.org,"  Ana\x00\u200b  Novak "\nb@x.org,\'=1+1\nc@x.org,{"n" * 300}\n'
    )
    assert [r.name for r in rows_of(path)] == ["Ana Novak", "=1+1", "n" * 200]


BIG = b"x" * 200_000
MALFORMED = {
    "empty": (b"", r"empty\.csv is empty"),
    "no email column": (b"address,list\nana@x.org,daily\n", r":1: no email column; name it"),
    "200 KB field": (
        b"email\nana@x.org\n" + BIG + b"\nben@x.org\n",
        r":3: not valid CSV: a field longer than 131,072 characters starts in this row",
    ),
    "unclosed quote": (
        b'email,name\nana@x.org,Ana\n"ben@x.org,Ben\ncy@x.org,Cy\n',
        r":3: not valid CSV: a quote opened in this row is never closed",
    ),
    "stray quote": (
        b'email,name\n"ana@x.org"x,Ana\n',
        r":2: not valid CSV: a quote opened in this row is closed in the wrong place",
    ),
    "latin-1": (
        b"email\nana@x.org\nb\xe9n@x.org\n",
        r":3: not UTF-8 \(byte 0xe9 at column 2\); save the file as UTF-8",
    ),
}


@pytest.mark.parametrize(("content", "message"), MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_file_is_refused_naming_the_line(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    with pytest.raises(MalformedFile, match=message):
        scan(path)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(MalformedFile, match=r"cannot read .*missing\.csv"):
        scan(tmp_path / "missing.csv")
