"""The languages a digest is written in: template strings, dates and writing direction.

Template strings are marked for Jinja's i18n extension (``{% trans %}``, ``_()``) in
English, the source language; a catalogue per language lives in
``templates/locale/<language>/LC_MESSAGES/digest.po`` (extract with ``make messages``,
translate, commit: the ``.po`` file is read and compiled in memory, so no build step
and no binary ``.mo`` file is needed). Dates are written in the language's long form
(Babel's CLDR data): "27 November 2026", "27. listopadu 2026".

Pure: callers pass the catalogue folder; nothing here is global.
"""

from __future__ import annotations

import gettext
import io
import unicodedata
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from digest.errors import ConfigError

SOURCE_LANGUAGE = "en"
SHIPPED_LOCALE_DIR = Path(__file__).resolve().parent.parent / "templates" / "locale"
DOMAIN = "digest"
CATALOGUE = "{language}/LC_MESSAGES/" + DOMAIN + ".po"


def NP_(singular: str, plural: str) -> tuple[str, str]:
    """Mark a message with a plural form for the catalogues where it is used inside a
    template string kept in Python code (``make messages`` finds it by this name)."""
    return singular, plural


# Strings that only appear inside templates kept in Python code (config defaults).
IN_PYTHON_TEMPLATES = (NP_("(+%(count)s more)", "(+%(count)s more)"),)  # DEFAULT_SUBJECT


def babel_locale(language: str) -> Locale:
    """The CLDR locale of a language tag ("en", "en-GB", "cs", "ar"); ValueError if unknown."""
    try:
        return Locale.parse(language.replace("-", "_"))
    except (UnknownLocaleError, ValueError) as exc:
        raise ValueError(f"{language!r} is not a language tag CLDR knows ({exc})") from None


def catalogue_path(locale_dir: Path, language: str) -> Path | None:
    """The catalogue that translates ``language`` ("cs-CZ" falls back to "cs"), if any."""
    locale = babel_locale(language)
    for name in (str(locale), locale.language):
        path = locale_dir / CATALOGUE.format(language=name)
        if path.is_file():
            return path
    return None


def available_languages(locale_dir: Path) -> list[str]:
    """English (the templates' own) and every language with a catalogue, sorted."""
    found = {SOURCE_LANGUAGE}
    if locale_dir.is_dir():
        found.update(
            path.parent.parent.name for path in locale_dir.glob(CATALOGUE.format(language="*"))
        )
    return sorted(found)


def check_language(locale_dir: Path, language: str, where: str) -> None:
    """ConfigError, naming ``where``, unless ``language`` can be written."""
    try:
        locale = babel_locale(language)
    except ValueError as exc:
        raise ConfigError(f'{where}language {exc}; use a tag like "en" or "cs"') from None
    if locale.language != SOURCE_LANGUAGE and catalogue_path(locale_dir, language) is None:
        raise ConfigError(
            f"{where}language {language!r} has no translation of the templates; available: "
            f"{', '.join(available_languages(locale_dir))} (to add one, see README, "
            '"Languages")'
        )


def translations(locale_dir: Path, language: str) -> gettext.NullTranslations:
    """The gettext translations of ``language``: English needs none.

    ConfigError names the catalogue when it cannot be read.
    """
    if babel_locale(language).language == SOURCE_LANGUAGE:
        return gettext.NullTranslations()
    path = catalogue_path(locale_dir, language)
    if path is None:
        raise ConfigError(f"no translation catalogue for {language!r} in {locale_dir}")
    try:
        with path.open("rb") as handle:
            catalogue = read_po(handle, locale=babel_locale(language))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the translation catalogue {path}: {exc}") from exc
    compiled = io.BytesIO()
    write_mo(compiled, catalogue)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def long_date(moment: datetime, zone: ZoneInfo, language: str) -> str:
    """``moment`` as a day in ``zone``, in the language's long form ("27 November 2026")."""
    return format_date(moment.astimezone(zone).date(), format="long", locale=babel_locale(language))


def text_direction(text: str) -> str:
    """ "rtl" when the first strongly directional character of ``text`` is right-to-left
    (Arabic, Hebrew, Syriac, Thaana...), else "ltr" (the Unicode bidi rule P2)."""
    for char in text:
        kind = unicodedata.bidirectional(char)
        if kind in ("R", "AL"):
            return "rtl"
        if kind == "L":
            return "ltr"
    return "ltr"
