"""The archive page of an edition cut to its size budget lists every post of the edition."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from starlette.exceptions import StarletteDeprecationWarning

from digest.models import Post, Rendered
from digest.render import Renderer
from digest.store import SqlStore
from digest.web import create_web_app

from support.databases import migrated_engine
from support.edition import long_posts, sample_newsletter, sample_posts, sample_site
from support.pagetext import glued_words, visible_text
from support.records import open_for_all, subscribe

with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore", "Using `httpx` with `starlette.testclient`", StarletteDeprecationWarning
    )
    from starlette.testclient import TestClient

REPO = Path(__file__).resolve().parent.parent
SECRET = b"archive-test-secret-0123456789ab"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    with migrated_engine("sqlite", tmp_path) as engine:
        yield SqlStore(engine)


def archived(store: SqlStore, posts: list[Post], now: datetime, edition_id: str) -> str:
    """The archive page of an edition of ``posts``, opened for one reader."""
    store.upsert_posts(posts, now)
    rendered: Rendered = Renderer(REPO / "templates" / "email").render_edition(
        site=sample_site(),
        newsletter=sample_newsletter(),
        posts=posts,
        edition_id=edition_id,
        now=now,
    )
    subscribe(store, "reader@example.org", now, newsletter="daily")
    opened = open_for_all(
        store,
        newsletter_id="daily",
        period_key=edition_id,
        now=now,
        post_keys=[post.key for post in posts],
        rendered=rendered,
        message_id=lambda sid: f"<{sid}.{edition_id}@example.org>",
        edition_id=edition_id,
    )
    assert opened is not None
    app = create_web_app(
        store=store,
        secret=SECRET,
        site=sample_site(),
        newsletters={"daily": sample_newsletter()},
        templates_dir=REPO / "templates" / "web",
        clock=lambda: now,
    )
    with TestClient(app) as client:
        response = client.get(f"/e/{edition_id}")
    assert response.status_code == 200
    return response.text


def test_the_page_of_a_cut_edition_lists_all_its_posts(store: SqlStore, now: datetime) -> None:
    posts = long_posts(101)
    page = archived(store, posts, now, "big-edition")
    assert re.search(r"\d+ more posts in this edition:", page)
    listing = page[page.index('id="all-posts"') :]
    assert "All 101 posts in this edition" in listing
    items = re.findall(r'<li><a href="([^"]+)">([^<]+)</a>', listing)
    assert [(link, title) for link, title in items] == [(p.link, p.title) for p in posts]
    assert listing.count('class="all-posts-date"') == 101
    assert "26 November 2026" in listing  # the newest post, in the newsletter's zone
    assert listing.index("</section>") < listing.index("</body>")
    newest = f"{posts[0].title} 26 November 2026"  # the title and its date, apart
    assert newest in visible_text(listing)
    assert glued_words(listing) == []


def test_the_page_of_an_edition_in_full_has_no_list(store: SqlStore, now: datetime) -> None:
    page = archived(store, sample_posts(), now, "small-edition")
    assert "all-posts" not in page
    assert "more posts" not in page
