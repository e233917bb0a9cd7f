"""Tests for digest.i18n: catalogues read from .po, dates per language, writing direction."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from digest.errors import ConfigError
from digest.i18n import (
    available_languages,
    check_language,
    long_date,
    text_direction,
    translations,
)

PO = """\
msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\\n"
"Plural-Forms: nplurals=3; plural=(n==1) ? 0 : (n>=2 && n<=4) ? 1 : 2;\\n"

msgid "Unsubscribe"
msgstr "Odhlásit odběr"

msgid "%(num)d post"
msgid_plural "%(num)d posts"
msgstr[0] "%(num)d článek"
msgstr[1] "%(num)d články"
msgstr[2] "%(num)d článků"
"""


@pytest.fixture
def locale_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "locale" / "cs" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    (folder / "digest.po").write_text(PO, encoding="utf-8")
    return tmp_path / "locale"


def test_a_po_catalogue_translates_with_plurals(locale_dir: Path) -> None:
    czech = translations(locale_dir, "cs")
    assert czech.gettext("Unsubscribe") == "Odhlásit odběr"
    assert czech.ngettext("%(num)d post", "%(num)d posts", 3) == "%(num)d články"
    assert czech.ngettext("%(num)d post", "%(num)d posts", 5) == "%(num)d článků"
    assert czech.gettext("Not in the catalogue") == "Not in the catalogue"
    # A region falls back to its language's catalogue; English needs none.
    assert translations(locale_dir, "cs-CZ").gettext("Unsubscribe") == "Odhlásit odběr"
    assert translations(locale_dir, "en-GB").gettext("Unsubscribe") == "Unsubscribe"


def test_languages_without_a_catalogue_are_refused_naming_the_table(locale_dir: Path) -> None:
    assert available_languages(locale_dir) == ["cs", "en"]
    check_language(locale_dir, "cs", "[newsletters.daily] ")
    check_language(locale_dir, "en-US", "[newsletters.daily] ")
    with pytest.raises(
        ConfigError, match=r"\[newsletters.daily\] language 'de'.*available: cs, en"
    ):
        check_language(locale_dir, "de", "[newsletters.daily] ")
    with pytest.raises(ConfigError, match=r"\[newsletters.daily\] language 'klingon'"):
        check_language(locale_dir, "klingon", "[newsletters.daily] ")


def test_a_broken_catalogue_is_a_config_error_naming_it(locale_dir: Path) -> None:
    (locale_dir / "cs" / "LC_MESSAGES" / "digest.po").write_bytes(b'msgid "x"\nmsgstr \xff\xfe')
    with pytest.raises(ConfigError, match=r"digest\.po"):
        translations(locale_dir, "cs")


def test_dates_are_written_the_languages_way_in_the_given_zone() -> None:
    # 23:30 UTC on the 26th is already the 27th in Prague
    moment = datetime(2026, 11, 26, 23, 30, tzinfo=UTC)
    prague = ZoneInfo("Europe/Prague")
    assert long_date(moment, prague, "en-GB") == "27 November 2026"
    assert long_date(moment, prague, "en") == "November 27, 2026"
    assert long_date(moment, prague, "cs") == "27. listopadu 2026"
    assert long_date(moment, ZoneInfo("UTC"), "cs") == "26. listopadu 2026"


@pytest.mark.parametrize(
    ("text", "direction"),
    [
        ("Strains Visible In CIS Military Alliance", "ltr"),
        ("«مرحبا» بالعالم", "rtl"),  # punctuation first: the first strong letter decides
        ("2026: שלום עולם", "rtl"),
        ("ܫܠܡܐ", "rtl"),  # Syriac
        ("123 — 456", "ltr"),  # nothing strong: the default
        ("", "ltr"),
    ],
)
def test_text_direction_follows_the_first_strong_character(text: str, direction: str) -> None:
    assert text_direction(text) == direction
