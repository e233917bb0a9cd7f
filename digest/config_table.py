"""One TOML table of the editor's config, read key by key with typed getters.

Each getter records a problem naming file, table and key (and what to do) instead of
raising, so that ``digest check`` reports every problem at once; unknown keys are
reported with the closest known one.
"""

from __future__ import annotations

import difflib
import zoneinfo
from pathlib import Path
from typing import TypeVar

from email_validator import EmailNotValidError, validate_email

_S = TypeVar("_S", bound=str)
Keys = tuple[str, ...] | None


def show(value: object) -> str:
    """A value as the editor wrote it, for 'expected ..., got ...'."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    return repr(value) if isinstance(value, str) else str(value)


def is_zone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone this machine knows."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


class ConfigTable:
    """One TOML table being read. Problems are recorded, not raised, so all get reported."""

    def __init__(self, out: list[str], file: str, name: str, data: object, known: Keys) -> None:
        """``known=None`` accepts any key (tables keyed by id: sources, newsletters)."""
        self.problems, self.file, self.name = out, file, name
        self.data: dict[str, object] = data if isinstance(data, dict) else {}
        if not isinstance(data, dict):
            self.fail(f"expected a table, got {show(data)}")
        for key in self.data:
            if known is not None and key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                word = "key" if name else "table"
                self.fail(f"unknown {word} {key!r} ({hint}known: {', '.join(known)})")

    def fail(self, message: str) -> None:
        where = f"[{self.name}] " if self.name else ""
        self.problems.append(f"{self.file}: {where}{message}")

    def _get(self, key: str, kinds: tuple[type, ...], what: str) -> object | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            self.fail(f"{key}: expected {what}, got {show(value)}")
            return None
        return value

    def string(self, key: str, default: str | None = None, hint: str = "") -> str:
        """The stripped string; ``default=None`` makes it required and non-blank ("" if not)."""
        value = self._get(key, (str,), "a string")
        if value is None:
            if default is None and key not in self.data:
                self.fail(f"missing required key {key!r}{hint}")
            return default or ""
        text = str(value).strip()
        if default is None and not text:
            self.fail(f"{key} is empty{hint}")
        return text

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key, (bool,), "true or false")
        return value if isinstance(value, bool) else default

    def choice(self, key: str, options: tuple[_S, ...], default: _S | None) -> _S:
        value = self.string(key, default)
        if value in options:
            return options[options.index(value)]
        if value:
            self.fail(f"{key} {value!r} is not one of {', '.join(map(repr, options))}")
        return options[0]

    def integer(self, key: str, default: int, low: int, high: int | None = None) -> int:
        value = self._get(key, (int,), "an integer")
        if not isinstance(value, int):
            return default
        if value < low or (high is not None and value > high):
            allowed = f"from {low} to {high}" if high is not None else f"at least {low}"
            self.fail(f"{key} {value} is out of range: use a whole number {allowed}")
        return value

    def number(self, key: str, default: float, high: float) -> float:
        value = self._get(key, (int, float), "a number")
        if not isinstance(value, int | float):
            return default
        if not value > 0:
            self.fail(f"{key} {value} must be greater than 0")
        elif not value <= high:
            self.fail(
                f"{key} {value} is out of range: use a number greater than 0, at most {high:g}"
            )
        return float(value)

    def table(self, key: str, known: Keys, required: bool = False) -> ConfigTable:
        """The sub-table (an empty one if absent; absence is a problem if required)."""
        name = f"{self.name}.{key}" if self.name else key
        if key not in self.data and required:
            self.fail(f"missing required table [{name}]")
        return ConfigTable(self.problems, self.file, name, self.data.get(key, {}), known)

    def email(self, key: str, required: bool, ascii_local: bool = True) -> str:
        """The address with an IDN domain as A-label (xn--), which needs no SMTPUTF8.

        A non-ASCII local part is refused, unless ``ascii_local=False`` (then it is kept).
        """
        return self._address(key, self.string(key, None if required else ""), ascii_local)

    def emails(self, key: str) -> tuple[str, ...]:
        """A list of addresses, each as :meth:`email` gives it (empty if absent)."""
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.fail(
                f"{key}: expected a list of email addresses, e.g. {key} ="
                f' ["editor@example.org"], got {show(value)}'
            )
            return ()
        if not all(item.strip() for item in value):
            self.fail(f"{key}: an address in the list is empty; remove it")
        found = (self._address(key, item.strip(), ascii_local=True) for item in value)
        return tuple(dict.fromkeys(address for address in found if address))

    def _address(self, key: str, value: str, ascii_local: bool) -> str:
        value = value.removeprefix("mailto:")
        if not value:
            return ""
        try:
            valid = validate_email(value, check_deliverability=False)
        except EmailNotValidError as exc:
            self.fail(f"{key} {value!r} is not a valid email address: {exc}")
            return value
        if valid.ascii_email is None and ascii_local:
            self.fail(
                f"{key} {value!r} needs an ASCII local part (before the @): a non-ASCII one needs"
                " SMTPUTF8, which most relays and mail headers do not carry"
            )
        return valid.ascii_email or valid.normalized

    def zone(self, key: str, default: str) -> str:
        """An IANA zone name; ``default`` (validated where it was given) when absent."""
        name = self.string(key, default)
        if key not in self.data:
            return name
        if not is_zone(name):
            close = difflib.get_close_matches(name, zoneinfo.available_timezones(), n=1)
            example = close[0] if close else "Europe/London"
            self.fail(f"{key} {name!r} is not an IANA time zone (e.g. {example!r})")
        return name

    def path(self, key: str, base: Path, default: Path) -> Path:
        value = self.string(key, "")
        return (base / Path(value).expanduser()).resolve() if value else default
