"""Which posts a reader gets in their next digest, and why each other post does not.

Pure: every input is an argument. Selection is by what each reader has already been
offered, not by time windows, so no post is dropped or repeated when it is published
right before a send, when an edition is late or skipped, or when a reader changes cadence
or topics. Each subscription keeps a :class:`Mark`: every post *released* at or before it
(released = the later of its date and the moment digest first saw it; frozen when first
seen) has been settled for that reader - sent, or passed over because it was not in the
reader's topics. The rules (what Mailchimp RSS and Buttondown users expect):

* a reader is owed every post released after their mark that is in their topics (a post
  in none of the newsletter's topics is for everyone); posts dated in the future wait;
* oldest first up to ``max_items``; the rest carry over and go first next time;
* fewer than ``min_items`` owed: held, unless the oldest has waited ``max_wait``;
* the back catalogue a source brings with its first fetch is not owed (only its posts
  dated after the reader's mark are);
* a reader's first digest may add a catch-up: the newest posts they were not owed, so
  that a new reader does not wait for the next post to see what the newsletter is;
* readers with the same mark, topics and first-ness get the same digest (one variant).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from digest.config import NewsletterConfig, TopicConfig
from digest.models import Mark, Post, Reader, StoredPost, release_order

INCLUDED = "included"
CAUGHT_UP = "included: catch-up for a new reader"


@dataclass(frozen=True, slots=True)
class Rules:
    max_items: int = 10
    min_items: int = 1
    max_wait: timedelta = timedelta(days=7)
    catch_up: int = 10
    topics: tuple[TopicConfig, ...] = ()

    @classmethod
    def of(cls, newsletter: NewsletterConfig) -> Rules:
        return cls(
            max_items=newsletter.max_items,
            min_items=newsletter.min_items,
            max_wait=timedelta(hours=newsletter.max_wait_hours),
            catch_up=newsletter.catch_up,
            topics=newsletter.topics,
        )


def post_topics(post: Post, topics: Sequence[TopicConfig]) -> frozenset[str]:
    """The ids of the topics whose categories the post carries (case-insensitive)."""
    categories = {category.casefold() for category in post.categories}
    return frozenset(topic.id for topic in topics if categories.intersection(topic.categories))


def in_topics(post: Post, chosen: frozenset[str] | None, topics: Sequence[TopicConfig]) -> bool:
    """Whether a reader who chose ``chosen`` gets ``post`` (a post in no topic: everyone)."""
    if chosen is None or not topics:
        return True
    found = post_topics(post, topics)
    return not found or bool(found & chosen)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One post considered for a reader, with the verdict shown by `digest preview`."""

    post: Post
    first_seen: datetime
    included: bool
    reason: str


@dataclass(frozen=True, slots=True)
class Selection:
    """A reader's next digest: the verdict on every candidate, and the reader's new mark."""

    candidates: tuple[Candidate, ...]
    mark: Mark  # the reader's mark once this digest is sent (unchanged when held)
    held: bool = False

    @property
    def posts(self) -> tuple[Post, ...]:
        """The posts of the digest, newest first."""
        chosen = [c.post for c in self.candidates if c.included]
        return tuple(sorted(chosen, key=lambda p: (p.published, p.key), reverse=True))


def select_for(
    reader: Reader,
    stored: Sequence[StoredPost],
    *,
    now: datetime,
    rules: Rules,
    sources_started: Mapping[str, datetime] | None = None,
) -> Selection:
    """Choose one reader's next digest from ``stored`` (the newsletter's recent posts).

    ``sources_started`` is when each source's first posts were seen (its back catalogue
    came with that fetch).
    """
    if rules.max_items < 1:
        raise ValueError("max_items must be at least 1")
    started = sources_started or {}
    verdicts: dict[str, Candidate] = {}
    owed: list[StoredPost] = []
    spare: list[StoredPost] = []  # not owed, in the reader's topics: catch-up material
    orders = {id(item): release_order(item) for item in stored}  # computed once each
    for item in sorted(stored, key=lambda s: (s.released_at, orders[id(s)])):
        post = item.post
        matches = in_topics(post, reader.topics, rules.topics)
        if item.released_at > now:
            reason = f"dated in the future ({post.published:%Y-%m-%d %H:%M} UTC): waits"
        elif not matches:  # first: whatever else holds, the reader's choice rules it out
            reason = "not in the reader's topics"
        elif reader.mark.covers(item, orders[id(item)]):
            reason = (
                f"from before the reader signed up: a first digest catches up on the newest"
                f" {rules.catch_up} only"
                if reader.first
                else "already received, or passed over, in an earlier digest"
            )
            spare.append(item)
        elif _back_catalogue(item, started) and (
            post.published <= reader.mark.at or not post.dated
        ):
            reason = (
                "back catalogue of the source's first fetch (dated before the reader's last"
                " digest or sign-up)"
            )
            spare.append(item)
        else:
            owed.append(item)
            continue
        verdicts[post.key] = Candidate(post, item.first_seen, False, reason)
    taken, carried = owed[: rules.max_items], owed[rules.max_items :]
    for item in carried:
        reason = f"over max_items ({rules.max_items}): carried over to the next digest"
        verdicts[item.post.key] = Candidate(item.post, item.first_seen, False, reason)
    mark = Mark(taken[-1].released_at, orders[id(taken[-1])]) if carried else Mark(now)
    caught: list[StoredPost] = []
    if reader.first and rules.catch_up:
        room = min(rules.catch_up, rules.max_items - len(taken))
        newest = sorted(spare, key=lambda s: (s.post.published, s.post.key), reverse=True)
        caught = [s for s in newest if s.post.published <= now][: max(room, 0)]
    chosen = taken + caught
    waited = bool(taken) and taken[0].released_at <= now - rules.max_wait
    held = bool(chosen) and len(chosen) < rules.min_items and not waited
    held_reason = f"held for min_items ({len(chosen)} of {rules.min_items} owed" + (
        f"; goes by {taken[0].released_at + rules.max_wait:%Y-%m-%d %H:%M} UTC at the latest)"
        if taken
        else ")"
    )
    owed_keys = {item.post.key for item in taken}
    for item in chosen:
        reason = held_reason if held else INCLUDED if item.post.key in owed_keys else CAUGHT_UP
        verdicts[item.post.key] = Candidate(item.post, item.first_seen, not held, reason)
    ordered = sorted(verdicts.values(), key=lambda c: (c.post.published, c.post.key), reverse=True)
    return Selection(tuple(ordered), reader.mark if held else mark, held)


def _back_catalogue(item: StoredPost, started: Mapping[str, datetime]) -> bool:
    """Whether the post came with its source's first fetch."""
    first = started.get(item.post.source_id)
    return first is not None and item.first_seen <= first
