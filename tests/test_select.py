"""Selection by what each reader has been offered: unit cases and a property over histories."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from digest.config import TopicConfig
from digest.models import Mark, Post, Reader, StoredPost, release_order
from digest.select import CAUGHT_UP, INCLUDED, Rules, in_topics, select_for

NOW = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
TOPICS = (
    TopicConfig("europe", "Europe", ("europe", "eu")),
    TopicConfig("asia", "Asia", ("asia",)),
)


def stored(
    guid: str,
    published: datetime,
    first_seen: datetime | None = None,
    categories: tuple[str, ...] = (),
    source: str = "s",
) -> StoredPost:
    post = Post(
        source,
        guid,
        f"Post {guid}",
        f"https://example.org/{guid}",
        published,
        categories=categories,
    )
    seen = first_seen or published
    return StoredPost(post, seen, max(seen, published))


def reader(at: datetime, topics: set[str] | None = None, first: bool = False) -> Reader:
    return Reader(Mark(at), None if topics is None else frozenset(topics), first)


def test_owed_posts_oldest_first_up_to_max_items_and_the_rest_carries_over() -> None:
    posts = [stored(f"p{i}", NOW - timedelta(hours=10 - i)) for i in range(5)]
    selection = select_for(reader(NOW - timedelta(days=1)), posts, now=NOW, rules=Rules(3))
    assert [p.guid for p in selection.posts] == ["p2", "p1", "p0"]  # shown newest first
    assert selection.mark == Mark(posts[2].released_at, release_order(posts[2]))
    carried = [c.reason for c in selection.candidates if not c.included]
    assert carried == ["over max_items (3): carried over to the next digest"] * 2
    # Next time the carried posts go first.
    later = select_for(Reader(selection.mark), posts, now=NOW, rules=Rules(3))
    assert [p.guid for p in later.posts] == ["p4", "p3"]
    assert later.mark == Mark(NOW)


def test_a_post_published_before_the_send_but_fetched_after_it_comes_next_time() -> None:
    mark = Mark(NOW)  # the 07:00 digest went out
    late = stored("late", NOW - timedelta(seconds=1), first_seen=NOW + timedelta(minutes=5))
    selection = select_for(Reader(mark), [late], now=NOW + timedelta(days=1), rules=Rules())
    assert [p.guid for p in selection.posts] == ["late"]


def test_a_post_released_at_the_send_instant_goes_now_and_only_now() -> None:
    at = stored("at", NOW)
    first = select_for(reader(NOW - timedelta(days=1)), [at], now=NOW, rules=Rules())
    assert [p.guid for p in first.posts] == ["at"]
    again = select_for(Reader(first.mark), [at], now=NOW + timedelta(days=1), rules=Rules())
    assert again.posts == ()


def test_future_dated_posts_wait_for_their_date() -> None:
    future = stored("f", NOW + timedelta(hours=2), first_seen=NOW - timedelta(hours=1))
    selection = select_for(reader(NOW - timedelta(days=1)), [future], now=NOW, rules=Rules())
    assert selection.posts == ()
    assert selection.mark == Mark(NOW)
    assert selection.candidates[0].reason.startswith("dated in the future")
    later = select_for(
        Reader(selection.mark), [future], now=NOW + timedelta(hours=3), rules=Rules()
    )
    assert [p.guid for p in later.posts] == ["f"]


def test_topics_filter_and_posts_in_no_topic_go_to_everyone() -> None:
    europe = stored("eu", NOW - timedelta(hours=3), categories=("EU",))
    asia = stored("as", NOW - timedelta(hours=2), categories=("Asia",))
    general = stored("gen", NOW - timedelta(hours=1), categories=("Opinion",))
    rules = Rules(topics=TOPICS)
    selection = select_for(
        reader(NOW - timedelta(days=1), {"asia"}), [europe, asia, general], now=NOW, rules=rules
    )
    assert [p.guid for p in selection.posts] == ["gen", "as"]
    reasons = {c.post.guid: c.reason for c in selection.candidates}
    assert reasons["eu"] == "not in the reader's topics"
    assert in_topics(europe.post, None, TOPICS)


def test_posts_of_one_fetch_go_oldest_first_and_the_newest_carry_over() -> None:
    # One fetch brought 12 posts: all released at the same instant, in no date order.
    fetched = NOW - timedelta(hours=1)
    dates = [NOW - timedelta(days=2, hours=h) for h in (5, 11, 2, 9, 0, 7, 3, 10, 1, 8, 4, 6)]
    posts = [stored(f"p{d:%d%H}", d, first_seen=fetched) for d in dates]
    first = select_for(reader(NOW - timedelta(days=3)), posts, now=NOW, rules=Rules(5))
    oldest = sorted(posts, key=lambda s: s.post.published)
    assert [p.guid for p in first.posts] == [s.post.guid for s in oldest[:5]][::-1]
    second = select_for(Reader(first.mark), posts, now=NOW, rules=Rules(5))
    assert [p.guid for p in second.posts] == [s.post.guid for s in oldest[5:10]][::-1]
    third = select_for(Reader(second.mark), posts, now=NOW, rules=Rules(5))
    assert [p.guid for p in third.posts] == [s.post.guid for s in oldest[10:]][::-1]
    assert select_for(Reader(third.mark), posts, now=NOW, rules=Rules(5)).posts == ()


def test_a_new_readers_older_posts_beyond_the_catch_up_say_why() -> None:
    posts = [stored(f"p{i}", NOW - timedelta(days=10 - i)) for i in range(5)]
    selection = select_for(
        reader(NOW - timedelta(hours=1), first=True), posts, now=NOW, rules=Rules(catch_up=2)
    )
    assert [p.guid for p in selection.posts] == ["p4", "p3"]
    reasons = {c.post.guid: c.reason for c in selection.candidates if not c.included}
    assert set(reasons) == {"p0", "p1", "p2"}
    assert set(reasons.values()) == {
        "from before the reader signed up: a first digest catches up on the newest 2 only"
    }


def test_a_mark_set_before_dates_ordered_a_fetch_still_compares_by_post_key() -> None:
    fetched = NOW - timedelta(hours=1)
    posts = [
        stored(f"p{i}", NOW - timedelta(days=2, hours=i), first_seen=fetched) for i in range(4)
    ]
    by_key = sorted(posts, key=lambda s: s.post.key)
    legacy = Mark(fetched, by_key[1].post.key)  # a bare post key, as marks once held
    assert [legacy.covers(s) for s in by_key] == [True, True, False, False]
    selection = select_for(Reader(legacy), posts, now=NOW, rules=Rules())
    assert sorted(p.guid for p in selection.posts) == sorted(s.post.guid for s in by_key[2:])


def test_a_post_outside_the_readers_topics_says_so_whatever_else_holds() -> None:
    # Already behind the reader's mark, and outside their topics: the topic is the reason
    # they will never get it, so that is what preview says.
    old = stored("old-eu", NOW - timedelta(days=3), categories=("EU",))
    new = stored("new-as", NOW - timedelta(hours=1), categories=("Asia",))
    selection = select_for(
        reader(NOW - timedelta(days=1), {"asia"}), [old, new], now=NOW, rules=Rules(topics=TOPICS)
    )
    reasons = {c.post.guid: c.reason for c in selection.candidates}
    assert reasons == {"old-eu": "not in the reader's topics", "new-as": INCLUDED}


def test_min_items_holds_until_enough_or_the_oldest_waited_max_wait() -> None:
    rules = Rules(min_items=3, max_wait=timedelta(days=2))
    posts = [stored("a", NOW - timedelta(hours=5)), stored("b", NOW - timedelta(hours=4))]
    held = select_for(reader(NOW - timedelta(days=1)), posts, now=NOW, rules=rules)
    assert held.held
    assert held.posts == ()
    assert held.mark == Mark(NOW - timedelta(days=1))
    assert all(c.reason.startswith("held for min_items (2 of 3 owed") for c in held.candidates)
    waited = select_for(Reader(held.mark), posts, now=NOW + timedelta(days=2), rules=rules)
    assert not waited.held
    assert len(waited.posts) == 2


def test_a_new_readers_first_digest_catches_up_with_the_newest_posts() -> None:
    old = [stored(f"o{i}", NOW - timedelta(days=10 - i)) for i in range(5)]
    selection = select_for(reader(NOW, first=True), old, now=NOW, rules=Rules(3, catch_up=2))
    assert [p.guid for p in selection.posts] == ["o4", "o3"]
    assert {c.reason for c in selection.candidates if c.included} == {CAUGHT_UP}
    nothing = select_for(Reader(selection.mark), old, now=NOW + timedelta(days=1), rules=Rules())
    assert nothing.posts == ()


def test_back_catalogue_of_a_new_source_is_not_owed_but_its_new_posts_are() -> None:
    joined = NOW - timedelta(hours=1)
    old = stored("old", NOW - timedelta(days=30), first_seen=joined, source="new")
    fresh = stored("fresh", NOW - timedelta(hours=5), first_seen=joined, source="new")
    selection = select_for(
        reader(NOW - timedelta(days=1)),
        [old, fresh],
        now=NOW,
        rules=Rules(),
        sources_started={"new": joined},
    )
    assert [p.guid for p in selection.posts] == ["fresh"]
    assert INCLUDED in {c.reason for c in selection.candidates}


# --- the property: every matching (reader, post) pair exactly once, no other pair ever ----

HOURS = st.integers(min_value=0, max_value=24 * 6)


@st.composite
def histories(draw: st.DrawFn) -> dict[str, object]:
    posts = [
        (
            draw(HOURS),  # published, hours after the start
            draw(st.integers(min_value=-48, max_value=12)),  # fetch lag (negative: future-dated)
            draw(st.sampled_from([(), ("eu",), ("asia",), ("eu", "asia"), ("misc",)])),
        )
        for _ in range(draw(st.integers(min_value=0, max_value=25)))
    ]
    sends = sorted(set(draw(st.lists(HOURS, min_size=1, max_size=12))))
    switches = draw(
        st.lists(
            st.sampled_from([None, frozenset({"europe"}), frozenset({"asia"})]),
            min_size=len(sends),
            max_size=len(sends),
        )
    )
    return {
        "posts": posts,
        "sends": sends,
        "switches": switches,
        "max_items": draw(st.integers(min_value=1, max_value=4)),
        "min_items": draw(st.integers(min_value=1, max_value=3)),
    }


@settings(max_examples=300, deadline=None)
@given(histories())
def test_every_matching_pair_is_sent_exactly_once(history: dict[str, object]) -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    raw = history["posts"]
    assert isinstance(raw, list)
    items = []
    for number, (published_h, lag_h, categories) in enumerate(raw):
        published = start + timedelta(hours=published_h)
        first_seen = max(start, published + timedelta(hours=lag_h))
        items.append((first_seen, stored(f"g{number}", published, first_seen, categories)))
    rules = Rules(
        max_items=int(history["max_items"]),  # type: ignore[call-overload]
        min_items=int(history["min_items"]),  # type: ignore[call-overload]
        max_wait=timedelta(hours=30),
        catch_up=0,
        topics=TOPICS,
    )
    state = Reader(Mark(start - timedelta(seconds=1)))  # subscribed just before the first post
    sent: list[str] = []
    offered_under: dict[str, frozenset[str] | None] = {}
    sends = history["sends"]
    switches = history["switches"]
    assert isinstance(sends, list)
    assert isinstance(switches, list)
    for hour, topics in zip(sends, switches, strict=True):
        now = start + timedelta(hours=hour)
        state = replace(state, topics=topics)  # the reader changes topics between editions
        known = [item for seen, item in items if seen <= now]
        selection = select_for(state, known, now=now, rules=rules)
        for post in selection.posts:
            sent.append(post.guid)
            offered_under[post.guid] = topics
            assert in_topics(post, topics, TOPICS), "a post outside the reader's topics"
        state = Reader(selection.mark, topics)
    assert len(sent) == len(set(sent)), "a post was sent twice"
    # Drain: with no more posts arriving, far later, every post still owed goes out, and
    # every post that never went out was passed over as outside the reader's topics then.
    final = start + timedelta(days=60)
    while True:
        selection = select_for(state, [i for _, i in items], now=final, rules=replace(rules))
        if not selection.posts:
            break
        sent += [p.guid for p in selection.posts]
        state = Reader(selection.mark, state.topics)
    assert len(sent) == len(set(sent)), "a post was sent twice"
    for _, item in items:
        if item.post.guid not in sent:
            assert any(not in_topics(item.post, topics, TOPICS) for topics in switches), (
                f"{item.post.guid} matched every choice of the reader and was never sent"
            )
