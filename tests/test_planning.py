"""Planning an edition: one selection per reader state, one rendering per variant."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from digest.config import TopicConfig
from digest.models import Rendered
from digest.planning import plan_edition, split_variant_id, variant_edition_id
from digest.render import Renderer

from support.edition import sample_newsletter, sample_site
from support.memory import MemoryStore
from support.records import make_post, open_for_all, subscribe

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "email"
NOW = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
TOPICS = (TopicConfig("europe", "Europe", ("europe",)), TopicConfig("asia", "Asia", ("asia",)))


def test_premailer_runs_once_per_variant_never_per_reader(premailer_calls: list[int]) -> None:
    store = MemoryStore()
    newsletter = replace(sample_newsletter(), source_ids=("blog",), topics=TOPICS)
    yesterday = NOW - timedelta(days=1)
    readers = {
        f"r{i}@x.org": subscribe(store, f"r{i}@x.org", yesterday, newsletter="daily")[0]
        for i in range(6)
    }
    store.set_preferences(readers["r0@x.org"], "daily", cadence=None, topics=["asia"], now=NOW)
    store.set_preferences(readers["r1@x.org"], "daily", cadence=None, topics=["asia"], now=NOW)
    store.set_preferences(readers["r2@x.org"], "daily", cadence=None, topics=["europe"], now=NOW)
    posts = [
        make_post("eu", categories=("Europe",), published=NOW - timedelta(hours=3)),
        make_post("as", categories=("Asia",), published=NOW - timedelta(hours=2)),
    ]
    store.upsert_posts(posts, NOW - timedelta(hours=1))
    # Every reader had yesterday's digest: no catch-up, so only topics tell them apart.
    sent = open_for_all(
        store,
        newsletter_id="daily",
        period_key="yesterday",
        now=yesterday,
        post_keys=("old",),
        rendered=Rendered("S", "<p>old</p>", "old"),
        message_id=lambda sid: f"<{sid}@example.org>",
        edition_id="e0",
    )
    assert sent is not None
    assert sent[1] == 6
    plan = plan_edition(
        store,
        Renderer(TEMPLATES),
        sample_site(),
        newsletter,
        newsletter.default_cadence,
        NOW,
        edition_id="e1",
    )
    variants = plan.draft.variants
    assert sorted(tuple(sorted(v.post_keys)) for v in variants) == sorted(
        [(posts[1].key,), (posts[0].key,), tuple(sorted((posts[0].key, posts[1].key)))]
    )
    assert len(premailer_calls) == len(variants) == 3  # six readers, three variants


def test_a_variant_id_has_one_spelling() -> None:
    assert variant_edition_id("e1", 0) == "e1"
    assert split_variant_id(variant_edition_id("e1", 2)) == ("e1", 2)
    assert split_variant_id("e1") == ("e1", 0)
    for wrong in ("e1.0", "e1.01", "e1.x", "e1."):
        assert split_variant_id(wrong) is None
