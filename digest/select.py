"""Which posts go into a newsletter's next edition, and why each other one does not.

Pure: every input is an argument. The rules (what Mailchimp RSS and Buttondown users
expect, adapted so that nothing is silently lost):

* a post goes out at most once per newsletter (the store only offers posts that are in
  no edition of the newsletter yet);
* posts dated in the future wait for their date;
* the first edition of a newsletter is a catch-up: the newest ``max_items`` posts. Older
  posts that were already known when the newsletter started never go out, otherwise a
  feed's whole back catalogue would trickle into later digests;
* likewise for a source added to a running newsletter: of its first fetch, only posts
  published since the newsletter's previous edition go out;
* afterwards every new post goes out; if more arrived than ``max_items``, the newest go
  now and the rest carry over to the next edition;
* newest first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from digest.models import Post, StoredPost

INCLUDED = "included"


@dataclass(frozen=True, slots=True)
class Candidate:
    """One post considered for an edition, with the verdict shown by `digest preview`."""

    post: Post
    first_seen: datetime
    included: bool
    reason: str


@dataclass(frozen=True, slots=True)
class Selection:
    candidates: tuple[Candidate, ...]

    @property
    def posts(self) -> tuple[Post, ...]:
        """The posts of the edition, newest first."""
        return tuple(c.post for c in self.candidates if c.included)


def select_posts(
    stored: Sequence[StoredPost],
    *,
    now: datetime,
    max_items: int,
    started_at: datetime | None,
    sources_started: Mapping[str, datetime] | None = None,
    previous_at: datetime | None = None,
) -> Selection:
    """Choose the posts of the next edition.

    ``stored`` are the posts in no edition of this newsletter yet; ``started_at`` is
    when the newsletter's first edition was made (None: this is the first edition);
    ``sources_started`` when each source's first posts were seen; ``previous_at`` when
    the newsletter's previous edition was made.
    """
    sources_started = sources_started or {}
    if max_items < 1:
        raise ValueError("max_items must be at least 1")
    ordered = sorted(stored, key=lambda s: (s.post.published, s.post.key), reverse=True)
    verdicts: list[Candidate] = []
    taken = 0
    for item in ordered:
        post = item.post
        if post.published > now:
            reason = f"dated in the future ({post.published:%Y-%m-%d %H:%M} UTC): waits"
        elif started_at is not None and max(item.first_seen, post.published) <= started_at:
            # (a post that waited for its date is new when the date comes, not back catalogue)
            reason = "known before the newsletter's first edition: not sent"
        elif _back_catalogue_of_a_new_source(item, started_at, sources_started, previous_at):
            reason = "back catalogue of a source added later (published before the last edition)"
        elif taken >= max_items:
            reason = (
                f"over max_items ({max_items}): carried over"
                if started_at is not None
                else f"over max_items ({max_items}) in the first edition: not sent"
            )
        else:
            taken += 1
            verdicts.append(Candidate(post, item.first_seen, True, INCLUDED))
            continue
        verdicts.append(Candidate(post, item.first_seen, False, reason))
    return Selection(tuple(verdicts))


def _back_catalogue_of_a_new_source(
    item: StoredPost,
    started_at: datetime | None,
    sources_started: Mapping[str, datetime],
    previous_at: datetime | None,
) -> bool:
    source_start = sources_started.get(item.post.source_id)
    return (
        started_at is not None
        and previous_at is not None
        and source_start is not None
        and source_start > started_at  # the source joined after the newsletter began
        and item.first_seen <= source_start  # ... and this post came with its first fetch
        and item.post.published <= previous_at  # ... dated before the last digest
    )
