"""Plan one edition of one cadence: every reader state's selection, and one rendering per
variant (premailer runs once per variant, never per reader).

Readers with the same mark, topics and first-ness get the same selection; selections
with the same posts share a variant. Nothing is recorded: ``editions.open_edition``
writes the resulting :class:`~digest.models.Draft` in one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from digest.config import CadenceConfig, NewsletterConfig, SiteConfig
from digest.models import CadenceReaders, Draft, Mark, Reader, Rendered, Variant, Verdict
from digest.ports import Store
from digest.render import Renderer
from digest.select import Rules, Selection, select_for

CATCH_UP_POOL = 200  # newest posts read for new readers' catch-up (topics may filter many)
RESOLUTION = timedelta(microseconds=1)  # of stored times: "after at - this" is "at or after at"


def variant_edition_id(edition_id: str, variant: int) -> str:
    """The id a variant is rendered and archived under: "<edition>" or "<edition>.<n>"."""
    return edition_id if variant == 0 else f"{edition_id}.{variant}"


def split_variant_id(text: str) -> tuple[str, int] | None:
    """``(edition, variant)`` of a :func:`variant_edition_id`; None if it is not one."""
    edition_id, dot, number = text.partition(".")
    if not dot:
        return edition_id, 0
    if number.isdigit() and number == str(int(number)) and int(number) > 0:
        return edition_id, int(number)
    return None


def cadence_readers(newsletter: NewsletterConfig, cadence: CadenceConfig) -> CadenceReaders:
    """The subscriptions an edition of ``cadence`` is for."""
    return CadenceReaders(
        cadence_id=cadence.id,
        offered=tuple(c.id for c in newsletter.cadences),
        default=cadence.id == newsletter.default_cadence.id,
    )


@dataclass(frozen=True, slots=True)
class Plan:
    """An edition as it would be opened now: the draft, and each reader state's selection."""

    draft: Draft
    selections: Mapping[Reader, Selection]

    def rendered(self, variant: int = 0) -> Rendered | None:
        variants = self.draft.variants
        return variants[variant].rendered if variant < len(variants) else None


def plan_edition(
    store: Store,
    renderer: Renderer,
    site: SiteConfig,
    newsletter: NewsletterConfig,
    cadence: CadenceConfig,
    now: datetime,
    *,
    edition_id: str = "preview",
    period_key: str = "preview",
    only: Reader | None = None,
) -> Plan:
    """Select for every reader state of the cadence and render each variant once.

    ``only`` plans for that one reader state instead (a preview for one reader, or for
    a new reader when nobody has subscribed yet).
    """
    readers = cadence_readers(newsletter, cadence)
    source_ids = newsletter.source_ids
    groups = (
        [only] if only is not None else [r for r, _ in store.reader_groups(newsletter.id, readers)]
    )
    # The count first: a post released after it makes the opening transaction refuse.
    released = store.released_count(source_ids, now)
    oldest = min((reader.mark.at for reader in groups), default=now)
    # The newest posts are read only for a catch-up, which only a first digest has.
    pool = CATCH_UP_POOL if newsletter.catch_up and any(r.first for r in groups) else 0
    # A mark that stops inside one release instant (max_items cut between posts one fetch
    # saw together) still owes the rest of that instant: read it too, not only after it.
    stored = store.recent_posts(source_ids, released_after=oldest - RESOLUTION, newest=pool)
    started = store.sources_started(source_ids)
    rules = Rules.of(newsletter)
    selections = {
        reader: select_for(reader, stored, now=now, rules=rules, sources_started=started)
        for reader in groups
    }
    numbers: dict[tuple[str, ...], int] = {}
    variants: list[Variant] = []
    verdicts: dict[Reader, Verdict] = {}
    for reader, selection in selections.items():
        posts = selection.posts
        keys = tuple(post.key for post in posts)
        number: int | None = None
        if posts and not selection.held:
            number = numbers.get(keys)
            if number is None:
                number = numbers[keys] = len(variants)
                rendered = renderer.render_edition(
                    site=site,
                    newsletter=newsletter,
                    posts=posts,
                    edition_id=variant_edition_id(edition_id, number),
                    now=now,
                )
                variants.append(Variant(keys, rendered))
        verdicts[reader] = Verdict(number, selection.mark)
    draft = Draft(
        edition_id=edition_id,
        newsletter_id=newsletter.id,
        readers=readers,
        period_key=period_key,
        now=now,
        source_ids=source_ids,
        released=released,
        variants=tuple(variants),
        verdicts=verdicts,
    )
    return Plan(draft, selections)


def new_reader(now: datetime) -> Reader:
    """The state of a reader subscribing now (for a preview when nobody has yet)."""
    return Reader(mark=Mark(now), topics=None, first=True)
