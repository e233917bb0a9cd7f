"""The public archive: past editions per newsletter, one edition as sent, the Atom feed;
none of them with a reader's link, and no script from a feed."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from xml.etree import ElementTree

from digest.models import Rendered
from digest.render import Renderer
from digest.sanitize import clean_html
from digest.store import SqlStore

from support.edition import sample_posts, sample_site
from support.records import open_for_all, subscribe
from support.webapp import Clock, Web, newsletters, running_web, store, web

EMAIL_TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "email"
ATOM = "{http://www.w3.org/2005/Atom}"
HOSTILE = (
    "<p>Before<script>alert('x')</script> after.</p>"
    '<p><img src="https://example.org/a.png" onerror="alert(1)" alt="a">'
    '<a href="javascript:alert(1)" onclick="steal()">click</a>'
    '<a href="JaVaScRiPt&#58;alert(2)">again</a></p>'
    '<svg onload="alert(3)"><circle r="1"></circle></svg>'
)


def publish(
    store: SqlStore,
    now: datetime,
    edition_id: str,
    rendered: Rendered,
    *,
    newsletter: str = "daily",
    post_keys: Sequence[str] = ("k1",),
) -> None:
    subscribe(store, "reader@example.org", now, newsletter=newsletter)
    opened = open_for_all(
        store,
        newsletter_id=newsletter,
        period_key=edition_id,
        now=now,
        post_keys=post_keys,
        rendered=rendered,
        message_id=lambda sid: f"<{sid}.{edition_id}@example.org>",
        edition_id=edition_id,
    )
    assert opened is not None


def rendered_edition(edition_id: str, now: datetime, **post: str) -> Rendered:
    newsletter = newsletters()["daily"]
    posts = [replace(sample_posts()[0], **post)] if post else sample_posts()
    return Renderer(EMAIL_TEMPLATES).render_edition(
        site=sample_site(), newsletter=newsletter, posts=posts, edition_id=edition_id, now=now
    )


def test_archived_html_of_a_hostile_post_carries_no_script(
    web: Web, store: SqlStore, now: datetime
) -> None:
    assert "<script" in HOSTILE
    assert "onerror=" in HOSTILE
    assert "javascript:" in HOSTILE
    summary = clean_html(HOSTILE, "https://transmission.example.org/a/1")  # as every fetch does
    publish(store, now, "ed-x", rendered_edition("ed-x", now, summary_html=summary))
    response = web.client.get("/e/ed-x")
    assert response.status_code == 200
    page = response.text.lower()
    assert "before" in page  # the text is kept
    assert "after." in page
    assert "<script" not in page
    assert "<svg" not in page
    assert re.search(r"\son[a-z]+\s*=", page) is None
    assert "javascript:" not in page
    assert "javascript&#58;" not in page
    assert "sandbox" in response.headers["content-security-policy"]
    assert "script-src" not in response.headers["content-security-policy"]


def test_an_edition_page_has_no_readers_link(web: Web, store: SqlStore, now: datetime) -> None:
    publish(store, now, "ed-1", rendered_edition("ed-1", now))
    page = web.client.get("/e/ed-1").text
    assert "%%" not in page  # no placeholder left
    assert "/u/" not in page
    assert "/p/" not in page
    assert ">Unsubscribe</a>" not in page  # a visitor's footer instead of the reader's
    assert ">Preferences</a>" not in page
    assert "You receive this because" not in page
    assert 'href="#"' not in page
    assert 'href="https://digest.example.org/">Subscribe</a>' in page
    assert 'href="https://digest.example.org/archive/daily">Past editions</a>' in page


def test_the_archive_lists_past_editions_newest_first_a_page_at_a_time(
    store: SqlStore, now: datetime, tmp_path: Path
) -> None:

    for number in range(3):
        subject = Rendered(f"Edition {number}", "<p>x</p>", "x\n")
        publish(store, now + timedelta(days=number), f"ed-{number}", subject)
    for paged in running_web(store, Clock(now), tmp_path / "outbox", archive_page_size=2):
        first = paged.client.get("/archive/daily")
        assert first.status_code == 200
        assert first.headers["x-robots-tag"] == "all"
        text = first.text
        assert text.index("Edition 2") < text.index("Edition 1")
        assert "Edition 0" not in text
        assert 'href="https://digest.example.org/e/ed-2"' in text
        assert '<time datetime="2026-11-29T07:00:00+00:00">29 November 2026</time>' in text
        assert 'href="https://digest.example.org/archive/daily?page=2" rel="next"' in text
        assert 'type="application/atom+xml"' in text
        assert "/u/" not in text
        assert "/p/" not in text
        second = paged.client.get("/archive/daily?page=2").text
        assert "Edition 0" in second
        assert "Edition 1" not in second
        assert 'href="https://digest.example.org/archive/daily" rel="prev"' in second
        for bad in ("?page=3", "?page=0", "?page=x", "?page=%C2%B2"):
            assert paged.client.get(f"/archive/daily{bad}").status_code == 404
        assert paged.client.get("/archive/staff").status_code == 404  # not public
        assert paged.client.get("/archive/nonesuch").status_code == 404
        empty = paged.client.get("/archive/weekly")
        assert empty.status_code == 200
        assert "No edition has gone out yet." in empty.text


def test_the_atom_feed_lists_the_editions(web: Web, store: SqlStore, now: datetime) -> None:
    publish(store, now, "ed-1", rendered_edition("ed-1", now))
    publish(store, now + timedelta(days=1), "ed-2", Rendered("Second & last", "<p>x</p>", "x\n"))
    response = web.client.get("/archive/daily/feed.atom")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/atom+xml")
    feed = ElementTree.fromstring(response.content)
    assert feed.tag == f"{ATOM}feed"
    assert feed.findtext(f"{ATOM}title") == "Transmission Daily"
    assert feed.findtext(f"{ATOM}updated") == "2026-11-28T07:00:00+00:00"
    entries = feed.findall(f"{ATOM}entry")
    assert [e.findtext(f"{ATOM}title") for e in entries] == [
        "Second & last",
        "Transmission Daily: Strains Visible In CIS Military Alliance (+2 more)",
    ]
    assert [e.find(f"{ATOM}link").get("href") for e in entries] == [  # type: ignore[union-attr]
        "https://digest.example.org/e/ed-2",
        "https://digest.example.org/e/ed-1",
    ]
    assert b"/u/" not in response.content
    assert web.client.get("/archive/staff/feed.atom").status_code == 404


ENTRY_CHILDREN = ["id", "title", "published", "updated", "link", "summary"]


def test_each_feed_entry_has_a_summary_of_its_posts_and_its_dates(
    web: Web, store: SqlStore, now: datetime
) -> None:
    posts = sample_posts()
    store.upsert_posts(posts, now)
    keys = [post.key for post in posts]
    publish(store, now, "ed-posts", rendered_edition("ed-posts", now), post_keys=keys)
    later = now + timedelta(days=1)
    publish(store, later, "ed-gone", Rendered("Posts since purged", "<p>x</p>", "x\n"))
    feed = ElementTree.fromstring(web.client.get("/archive/daily/feed.atom").content)

    # RFC 4287: the feed's own id, title, updated and author; each entry's id, title,
    # updated and a summary (it has no content), each element once.
    for tag in ("id", "title", "updated", "author"):
        assert len(feed.findall(f"{ATOM}{tag}")) == 1, tag
    assert feed.findtext(f"{ATOM}author/{ATOM}name") == "Transmission"
    newest, oldest = feed.findall(f"{ATOM}entry")
    for entry in (newest, oldest):
        assert [child.tag for child in entry] == [f"{ATOM}{tag}" for tag in ENTRY_CHILDREN]
        for tag in ("published", "updated"):
            stamp = datetime.fromisoformat(entry.findtext(f"{ATOM}{tag}") or "")
            assert stamp.utcoffset() is not None  # RFC 3339: with its offset
        summary = entry.find(f"{ATOM}summary")
        assert summary is not None
        assert summary.get("type") == "text"
    assert oldest.findtext(f"{ATOM}published") == "2026-11-27T07:00:00+00:00"
    assert oldest.findtext(f"{ATOM}summary") == " · ".join(post.title for post in posts)
    assert newest.findtext(f"{ATOM}published") == "2026-11-28T07:00:00+00:00"
    assert newest.findtext(f"{ATOM}summary") == "Posts since purged"  # no post: the subject


__all__ = ["store", "web"]  # fixtures
