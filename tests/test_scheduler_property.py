"""The property of digest.scheduler's firings through editions and the store: every
(reader, post) pair that matches is delivered exactly once, and no other pair ever is.

Through ``DigestScheduler.fire_newsletter`` (period keys, late_after_hours),
``editions.open_edition`` (planning, variants, marks) and the store (``MemoryStore``, the
SQL store's mirror, claimed and recorded as the sender does), with random schedules in
Berlin, New York and UTC across Berlin's spring-forward, publish times, fetch lags
(future-dated posts too), categories, subscriptions, cadence and topic switches, and
firings on time, late, too late, skipped or doubled.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.config import (
    CadenceConfig,
    Config,
    DeliveryConfig,
    NewsletterConfig,
    ScheduleConfig,
    SourceConfig,
    TopicConfig,
)
from digest.editions import open_edition
from digest.models import DeliveryStatus, Outcome, Post, SubscriptionStatus
from digest.ports import Due
from digest.render import Renderer
from digest.scheduler import DigestScheduler, next_fire_time
from digest.select import in_topics

from support.deployment import Clock
from support.edition import sample_site
from support.memory import MemoryStore

SECRET = b"k" * 32

PROPERTY_START = datetime(2099, 3, 25, tzinfo=UTC)  # Berlin springs forward on the 29th
PROPERTY_DAYS = 8
MINUTES = st.integers(min_value=1, max_value=PROPERTY_DAYS * 24 * 60)
CHOICES = (None, frozenset({"europe"}), frozenset({"asia"}))
CATEGORIES = ((), ("Europe",), ("Asia",), ("Europe", "Asia"), ("Opinion",))
FATES = ("on time", "late", "too late", "skipped", "twice")
PROPERTY_TOPICS = (
    TopicConfig("europe", "Europe", ("europe",)),
    TopicConfig("asia", "Asia", ("asia",)),
)
LIGHT_TEMPLATES = {
    "digest.html": "<p>{% for post in posts %}<a href='{{ post.link }}'>{{ post.title }}</a>"
    "{% endfor %}<a href='{{ unsubscribe_url }}'>Unsubscribe</a></p>",
    "digest.txt": "{% for post, excerpt in entries %}{{ post.link }}\n{% endfor %}"
    "{{ unsubscribe_url }}\n",
    "email.css": "p { margin: 0; }\n",
    "_more.html": "<p>{{ more_posts }} more</p>",
}


@pytest.fixture(scope="module")
def light_renderer(tmp_path_factory: pytest.TempPathFactory) -> Renderer:
    """The real renderer over a two-line template: the property is about who gets what."""
    folder = tmp_path_factory.mktemp("templates")
    for name, text in LIGHT_TEMPLATES.items():
        (folder / name).write_text(text, encoding="utf-8")
    return Renderer(folder)


@st.composite
def newsletters(draw: st.DrawFn) -> NewsletterConfig:
    zone = draw(st.sampled_from(["Europe/Berlin", "America/New_York", "UTC"]))
    times = st.sampled_from(["01:30", "02:30", "07:00", "23:59"])
    daily = ScheduleConfig(kind="daily", timezone=zone, time=draw(times))
    weekly = ScheduleConfig(
        kind="weekly",
        timezone=zone,
        time=draw(times),
        weekday=draw(st.sampled_from(["sun", "wed"])),
    )
    max_items = draw(st.integers(min_value=1, max_value=4))
    return NewsletterConfig(
        id="daily",
        title="Daily",
        description="",
        source_ids=("posts",),
        cadences=(
            CadenceConfig("daily", "Daily", daily),
            CadenceConfig("weekly", "Weekly", weekly),
        ),
        max_items=max_items,
        topics=PROPERTY_TOPICS,
        min_items=draw(st.integers(min_value=1, max_value=min(2, max_items))),
        max_wait_hours=48,
        catch_up_items=0,  # a first digest adds nothing the reader was not owed
    )


def property_config(newsletter: NewsletterConfig) -> Config:
    return Config(
        path=Path("/etc/digest/digest.toml"),
        site=sample_site(),
        delivery=DeliveryConfig(transport="outbox", outbox_dir=Path("/var/digest/outbox")),
        data_dir=Path("/var/digest"),
        database_url="sqlite:////var/digest/digest.db",
        sources={"posts": SourceConfig(id="posts", kind="folder", path=Path("/srv/posts"))},
        newsletters={"daily": newsletter},
    )


@settings(max_examples=40, deadline=None)
@given(newsletter=newsletters(), data=st.data())
async def test_every_matching_pair_is_delivered_exactly_once_through_the_scheduler(
    light_renderer: Renderer, newsletter: NewsletterConfig, data: st.DataObject
) -> None:
    draw = data.draw
    store, clock = MemoryStore(), Clock(PROPERTY_START)
    config = property_config(newsletter)
    # A first fetch before anyone subscribes: the source's back catalogue is that one post.
    seed = Post("posts", "seed", "Seed", "https://example.org/p/seed/", PROPERTY_START)
    store.upsert_posts([seed], PROPERTY_START)
    at = lambda minutes: PROPERTY_START + timedelta(minutes=minutes)  # noqa: E731
    events: list[tuple[datetime, int, object]] = []  # (when, order at one instant, what)
    for number in range(draw(st.integers(min_value=0, max_value=20), label="posts")):
        published = at(draw(MINUTES))
        lag = timedelta(minutes=draw(st.integers(min_value=-600, max_value=600)))
        post = Post(
            "posts",
            f"p{number}",
            f"Post {number}",
            f"https://example.org/p/p{number}/",
            published,
            categories=draw(st.sampled_from(CATEGORIES)),
        )
        events.append((max(at(1), published + lag), 0, post))
    readers = [f"r{n}@example.net" for n in range(3)]
    for reader in readers:
        choice = (draw(st.sampled_from(["daily", "weekly"])), draw(st.sampled_from(CHOICES)))
        events.append((at(draw(MINUTES) // 2), 1, (reader, True, choice)))
    for _ in range(draw(st.integers(min_value=0, max_value=6), label="switches")):
        reader = draw(st.sampled_from(readers))
        choice = (draw(st.sampled_from(["daily", "weekly"])), draw(st.sampled_from(CHOICES)))
        events.append((at(draw(MINUTES)), 1, (reader, False, choice)))
    grace = timedelta(hours=newsletter.late_after_hours)
    end = at(PROPERTY_DAYS * 24 * 60)
    for cadence in newsletter.cadences:
        fire = next_fire_time(cadence.schedule, PROPERTY_START)
        while fire <= end:
            fate = draw(st.sampled_from(FATES))
            late = timedelta(minutes=draw(st.integers(min_value=1, max_value=360)))
            instants = {
                "on time": [fire],
                "late": [fire + late],  # within late_after_hours: sent late
                "too late": [fire + grace + late],  # folds into the next slot
                "skipped": [],  # the service was down
                "twice": [fire, fire + late],  # a restart, a second scheduler
            }[fate]
            events += [(when, 2, cadence.id) for when in instants]
            fire = next_fire_time(cadence.schedule, fire + timedelta(seconds=1))

    ids: dict[str, str] = {}
    chosen: dict[str, tuple[str, frozenset[str] | None]] = {}
    since: dict[str, datetime] = {}
    delivered: Counter[tuple[str, str]] = Counter()
    offered_under: list[tuple[str, Post, frozenset[str] | None]] = []
    history: dict[str, list[frozenset[str] | None]] = {}
    posts = {seed.guid: (seed, PROPERTY_START)}

    async def on_newsletter(
        newsletter_id: str, cadence_id: str, period_key: str, now: datetime, due: Due | None
    ) -> None:
        opened = open_edition(
            store, light_renderer, config.site, newsletter, SECRET, period_key, now,
            cadence=newsletter.cadence(cadence_id), due=due,
        )  # fmt: skip
        if not opened.created or opened.renderings is None:
            return
        by_id = {sid: email for email, sid in ids.items()}
        claimed = store.claim_batch(opened.edition.id, "test", now, now + timedelta(hours=1), 999)
        for row in claimed.rows:
            email = by_id[row.subscriber_id]
            assert chosen[email][0] == cadence_id, "a reader got another cadence's edition"
            for guid in re.findall(r"/p/(\w+)/", opened.renderings[row.variant].text):
                delivered[(email, guid)] += 1
                offered_under.append((email, posts[guid][0], chosen[email][1]))
        outcomes = [Outcome(row.subscriber_id, DeliveryStatus.SENT) for row in claimed.rows]
        store.record_batch(opened.edition.id, "test", outcomes, now)

    async def on_fetch(source_id: str, now: datetime) -> None:
        raise AssertionError("no poll in this test")

    scheduler = DigestScheduler(
        config=config, clock=clock, on_newsletter=on_newsletter, on_fetch=on_fetch
    )

    def choose(email: str, choice: tuple[str, frozenset[str] | None]) -> None:
        chosen[email] = choice
        history.setdefault(email, []).append(choice[1])
        topics = None if choice[1] is None else sorted(choice[1])
        store.set_preferences(ids[email], "daily", cadence=choice[0], topics=topics, now=clock())

    for when, _, what in sorted(events, key=lambda e: (e[0], e[1])):
        clock.now = when
        if isinstance(what, Post):
            store.upsert_posts([what], when)
            posts[what.guid] = (what, max(what.published, when))
        elif isinstance(what, tuple):
            email, new, choice = what
            if not new and email not in ids:
                continue  # not subscribed yet
            if new:
                subscription, _ = store.add_subscription(
                    email=email, ascii_email=email, newsletter_id="daily",
                    status=SubscriptionStatus.CONFIRMED, now=when,
                )  # fmt: skip
                ids[email], since[email] = subscription.subscriber.id, when
            choose(email, choice)
        else:
            await scheduler.fire_newsletter("daily", str(what))
    # Then no more posts: on the daily cadence, everything still owed goes out.
    for email in ids:
        choose(email, ("daily", chosen[email][1]))
    fire = end
    for _ in range(30):
        fire = clock.now = next_fire_time(
            newsletter.cadence("daily").schedule, fire + timedelta(seconds=1)
        )
        await scheduler.fire_newsletter("daily", "daily")

    assert all(count == 1 for count in delivered.values()), "a pair was delivered twice"
    for email, post, topics in offered_under:
        assert in_topics(post, topics, PROPERTY_TOPICS), "a post outside the reader's topics"
        assert posts[post.guid][1] > since[email], "a post from before the reader subscribed"
    for email in ids:
        for guid, (post, released) in posts.items():
            owed = released > since[email] and all(
                in_topics(post, topics, PROPERTY_TOPICS) for topics in history[email]
            )
            if owed:
                assert delivered[(email, guid)] == 1, f"{guid} never reached {email}"
