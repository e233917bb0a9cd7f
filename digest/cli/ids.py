"""Edition ids on the command line: shown by their shortest unique prefix, taken by any.

Every command that takes an edition id resolves it here, so that a prefix works the
same everywhere and an ambiguous one is refused with the editions it could mean.
"""

from __future__ import annotations

from collections.abc import Iterable
from zoneinfo import ZoneInfo

from digest import display
from digest.app import App
from digest.errors import NotFound

CANDIDATES_SHOWN = 10


def short_ids(app: App, edition_ids: Iterable[str]) -> dict[str, str]:
    """Each id's shortest prefix (8 characters or more) that no other edition shares."""
    return display.unique_prefixes(edition_ids, among=app.store.edition_ids())


def short_id(app: App, edition_id: str) -> str:
    return short_ids(app, [edition_id])[edition_id]


def resolve_edition(app: App, prefix: str) -> str:
    """The id of the edition ``prefix`` names: the only one starting with it, or the one
    spelled in full; ``NotFound`` naming the candidates otherwise."""
    found = display.match(prefix, app.store.edition_ids(prefix) if prefix else [])
    if found.one is not None:
        return found.one
    if not found.found:
        raise NotFound(f"no edition with id {prefix!r}: see `digest editions`")
    zone = ZoneInfo(app.config.site.timezone)
    shown = display.unique_prefixes(found.found, minimum=len(prefix) + 1)
    lines = []
    for edition_id in found.found[:CANDIDATES_SHOWN]:
        edition = app.store.get_edition(edition_id)
        created = display.local_time(edition.created_at, zone)
        lines.append(f"  {shown[edition_id]}  {edition.newsletter_id}  {created}  {edition.status}")
    more = len(found.found) - CANDIDATES_SHOWN
    if more > 0:
        lines.append(f"  … and {more} more")
    raise NotFound(
        f"edition id {prefix!r} is ambiguous: {len(found.found)} editions start with it;"
        " give more characters of one of them:\n" + "\n".join(lines)
    )
