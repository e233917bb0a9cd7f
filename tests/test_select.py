from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from digest.models import Post, StoredPost
from digest.select import INCLUDED, select_posts

NOW = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)


def stored(n: int, *, published: datetime, first_seen: datetime | None = None) -> StoredPost:
    post = Post(
        source_id="s", guid=f"g{n}", title=f"Post {n}", link=f"https://x/{n}", published=published
    )
    return StoredPost(post, first_seen or published)


def titles(selection: object) -> list[str]:
    return [p.title for p in selection.posts]  # type: ignore[attr-defined]


def test_newest_first_and_capped_in_first_edition() -> None:
    posts = [stored(i, published=NOW - timedelta(hours=i)) for i in range(1, 6)]
    selection = select_posts(posts, now=NOW, max_items=3, started_at=None)
    assert titles(selection) == ["Post 1", "Post 2", "Post 3"]
    reasons = {c.post.title: c.reason for c in selection.candidates}
    assert "first edition: not sent" in reasons["Post 5"]


def test_future_posts_wait() -> None:
    posts = [
        stored(1, published=NOW + timedelta(hours=2)),
        stored(2, published=NOW - timedelta(hours=1)),
    ]
    selection = select_posts(posts, now=NOW, max_items=10, started_at=None)
    assert titles(selection) == ["Post 2"]
    assert "future" in next(c.reason for c in selection.candidates if not c.included)


def test_back_catalogue_known_before_first_edition_never_goes_out() -> None:
    started = NOW - timedelta(days=1)
    old = stored(1, published=NOW - timedelta(days=30), first_seen=started - timedelta(minutes=1))
    new = stored(2, published=NOW - timedelta(days=40), first_seen=started + timedelta(hours=1))
    selection = select_posts([old, new], now=NOW, max_items=10, started_at=started)
    # A post first seen after the newsletter started goes out even with an old date
    # (feeds backdate); one known before the start does not.
    assert titles(selection) == ["Post 2"]
    assert "first edition" in next(c.reason for c in selection.candidates if not c.included)


def test_overflow_after_the_first_edition_carries_over() -> None:
    started = NOW - timedelta(days=7)
    posts = [stored(i, published=NOW - timedelta(hours=i)) for i in range(1, 4)]
    selection = select_posts(posts, now=NOW, max_items=2, started_at=started)
    assert titles(selection) == ["Post 1", "Post 2"]
    assert [c.reason for c in selection.candidates][-1] == "over max_items (2): carried over"
    assert [c.reason for c in selection.candidates][:2] == [INCLUDED, INCLUDED]


def test_nothing_new_gives_an_empty_selection() -> None:
    assert select_posts([], now=NOW, max_items=5, started_at=None).posts == ()


def test_max_items_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_items"):
        select_posts([], now=NOW, max_items=0, started_at=None)


def test_a_post_that_waited_for_its_date_is_not_back_catalogue() -> None:
    started = NOW - timedelta(days=3)
    # Known since before the first edition, but dated after it: it waited, now it goes.
    waited = stored(1, published=NOW - timedelta(hours=1), first_seen=started - timedelta(days=1))
    selection = select_posts([waited], now=NOW, max_items=5, started_at=started)
    assert titles(selection) == ["Post 1"]


def test_a_source_added_later_sends_only_what_is_new_since_the_last_edition() -> None:
    started = NOW - timedelta(days=10)
    previous = NOW - timedelta(days=1)
    joined = NOW - timedelta(hours=2)  # the new source's first fetch

    def from_new_source(n: int, published: datetime, first_seen: datetime) -> StoredPost:
        post = Post(
            source_id="new",
            guid=f"n{n}",
            title=f"New {n}",
            link=f"https://n/{n}",
            published=published,
        )
        return StoredPost(post, first_seen)

    archive = from_new_source(1, NOW - timedelta(days=400), joined)
    fresh = from_new_source(2, NOW - timedelta(hours=5), joined)
    later = from_new_source(3, NOW - timedelta(days=30), joined + timedelta(hours=1))
    old_source = stored(4, published=NOW - timedelta(hours=3))
    selection = select_posts(
        [archive, fresh, later, old_source],
        now=NOW,
        max_items=10,
        started_at=started,
        sources_started={"new": joined, "s": started - timedelta(days=1)},
        previous_at=previous,
    )
    assert titles(selection) == ["Post 4", "New 2", "New 3"]
    [skipped] = [c for c in selection.candidates if not c.included]
    assert skipped.post.title == "New 1"
    assert "back catalogue of a source added later" in skipped.reason
