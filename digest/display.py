"""Pure helpers for what the command line shows: short ids, times, counts, JSON values.

Tables show an id by its shortest unique prefix (git-style, at least ``MIN_PREFIX``
characters) and a time in the editor's zone; JSON shows full ids, exact ISO-8601 UTC
times and enums by their string values. Nothing here prints.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from os import PathLike, fspath
from typing import TypeAlias, TypeVar
from zoneinfo import ZoneInfo

MIN_PREFIX = 8

Status = TypeVar("Status", bound=enum.Enum)
Json: TypeAlias = bool | int | float | str | list["Json"] | dict[str, "Json"] | None


def unique_prefixes(
    ids: Iterable[str], *, among: Iterable[str] = (), minimum: int = MIN_PREFIX
) -> dict[str, str]:
    """Each of ``ids`` mapped to its shortest prefix, of at least ``minimum`` characters,
    that no other id of ``ids`` or ``among`` starts with (the whole id if none is)."""
    wanted = set(ids)
    ordered = sorted(wanted | set(among))
    prefixes: dict[str, str] = {}
    for index, current in enumerate(ordered):
        if current not in wanted:
            continue
        # In sorted order the ids sharing the longest prefix with this one are its neighbours.
        neighbours = ordered[max(index - 1, 0) : index] + ordered[index + 1 : index + 2]
        shared = max((_common_length(current, other) for other in neighbours), default=0)
        prefixes[current] = current[: max(minimum, shared + 1)]
    return prefixes


def _common_length(left: str, right: str) -> int:
    length = 0
    for a, b in zip(left, right, strict=False):
        if a != b:
            break
        length += 1
    return length


@dataclass(frozen=True, slots=True)
class Match:
    """What a prefix given on the command line picks out of the known ids."""

    prefix: str
    found: tuple[str, ...]

    @property
    def one(self) -> str | None:
        """The id meant: the only one starting with the prefix, or one spelled in full."""
        if self.prefix in self.found:
            return self.prefix
        return self.found[0] if len(self.found) == 1 and self.prefix else None


def match(prefix: str, ids: Iterable[str]) -> Match:
    """The ids (sorted) that start with ``prefix``; an empty prefix matches nothing."""
    return Match(prefix, tuple(sorted(i for i in ids if prefix and i.startswith(prefix))))


def shorten_middle(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, its middle given up for "…" (both ends of
    an address say more than its middle: "ana.novakova…@example.org")."""
    if len(text) <= width:
        return text
    keep = max(width - 1, 2)
    tail = min(len(text) - text.rfind("@"), keep // 2) if "@" in text else keep // 2
    return f"{text[: keep - tail]}…{text[len(text) - tail :]}"


def iso_utc(moment: datetime | None) -> str | None:
    """The exact instant for machines: ISO-8601 in UTC (``...+00:00``); None stays None."""
    return moment.astimezone(UTC).isoformat() if moment is not None else None


def local_time(moment: datetime | None, zone: ZoneInfo, *, with_zone: bool = False) -> str:
    """``2026-12-01 15:05`` in ``zone`` (plus ``CET`` with ``with_zone``); "-" for never."""
    if moment is None:
        return "-"
    local = moment.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M %Z}" if with_zone else f"{local:%Y-%m-%d %H:%M}"


def local_and_utc(moment: datetime | None, zone: ZoneInfo) -> str:
    """``2026-12-01 15:05 CET (14:05 UTC)``: the editor's time and the log's; "-" for never."""
    if moment is None:
        return "-"
    utc = moment.astimezone(UTC)
    if zone.key == "UTC":
        return f"{utc:%Y-%m-%d %H:%M} UTC"
    day = "" if utc.date() == moment.astimezone(zone).date() else f"{utc:%Y-%m-%d} "
    return f"{local_time(moment, zone, with_zone=True)} ({day}{utc:%H:%M} UTC)"


def age(moment: datetime | None, now: datetime) -> str:
    """How long ago, in one unit: "now", "12m", "5h", "3d"; "-" for never."""
    if moment is None:
        return "-"
    seconds = (now - moment).total_seconds()
    if seconds < 60:
        return "now"  # or a moment ahead, by another machine's clock
    size, unit = next(u for u in ((86_400, "d"), (3_600, "h"), (60, "m")) if seconds >= u[0])
    return f"{int(seconds // size)}{unit}"


def counts(numbers: Mapping[Status, int], *, skip: Iterable[Status] = ()) -> str:
    """``sent: 3, failed: 1``: the non-zero counts in the enum's order, statuses as words."""
    left_out = set(skip)
    ordered = sorted(numbers.items(), key=lambda item: _position(item[0]))
    return ", ".join(f"{status}: {n}" for status, n in ordered if n and status not in left_out)


def _position(member: enum.Enum) -> int:
    members: list[enum.Enum] = list(type(member))
    return members.index(member)


def plain(value: object) -> Json:
    """``value`` as JSON values: times as ISO-8601 UTC, enums as their values, paths as
    text, mappings (keys as text) and sequences item by item."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, PathLike):
        return str(fspath(value))
    if isinstance(value, Mapping):
        return {str(plain(key)): plain(item) for key, item in value.items()}
    if isinstance(value, Iterable):
        return [plain(item) for item in value]
    raise TypeError(f"no JSON form for {type(value).__name__}")
