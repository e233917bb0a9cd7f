"""Digests as readers get them: the sample edition and one digest per feed fixture.

Every document in ``tests/fixtures/feeds/`` (format and attack fixtures) and
``tests/fixtures/corpus/`` (one awkward feed per rendering defect class) that reads as a
feed is a corpus digest: its posts rendered with the shipped templates and assembled into
the wire message the sender puts into SMTP DATA (``editions.personal_letter``). A fixture
added to either folder joins the corpus without a change here; the documents the feed
reader refuses (entities, not a feed, malformed) have no digest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from digest.config import NewsletterConfig, SiteConfig
from digest.editions import personal_letter
from digest.errors import SourceError
from digest.message import message_id_for
from digest.models import Post, Rendered
from digest.render import Renderer
from digest.sources.feed import parse_feed

from support.edition import sample_newsletter, sample_posts, sample_site

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "templates" / "email"
FEEDS = REPO / "tests" / "fixtures" / "feeds"
CORPUS = REPO / "tests" / "fixtures" / "corpus"
NOW = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
SECRET = b"corpus-secret-" + b"x" * 32
READER = "ana.novakova@example.net"
EDITION_ID = "0b7d1c2e-5f3a-4c1d-9e8f-1a2b3c4d5e6f"
SUBSCRIBER_ID = "5c0ffee0-0000-4000-8000-00000000a11a"


def corpus_feeds() -> list[Path]:
    """Every file of the two feed fixture folders, in name order."""
    return sorted(
        (path for folder in (FEEDS, CORPUS) for path in folder.iterdir() if path.is_file()),
        key=lambda path: path.name,
    )


def feed_posts(path: Path, now: datetime) -> list[Post]:
    """The posts of a feed fixture, as a fetch reads them; SourceError when it is refused."""
    posts, _ = parse_feed(
        path.read_bytes(),
        source_id="transmission",
        location=str(path),
        base_url="",
        content_type="",
        now=now,
    )
    return posts


def corpus_digests(now: datetime) -> dict[str, list[Post]]:
    """Each fixture that reads as a feed and has posts, by file name: an edition's posts."""
    digests: dict[str, list[Post]] = {}
    for path in corpus_feeds():
        try:
            posts = feed_posts(path, now)
        except SourceError:
            continue
        if posts:  # the newest, as many as an edition holds
            newest = sorted(posts, key=lambda post: post.published, reverse=True)
            digests[path.name] = newest[: sample_newsletter().max_items]
    return digests


def render(
    posts: Sequence[Post],
    now: datetime,
    *,
    site: SiteConfig | None = None,
    newsletter: NewsletterConfig | None = None,
    edition_id: str = EDITION_ID,
) -> Rendered:
    """``posts`` rendered as one edition of the sample newsletter."""
    return Renderer(TEMPLATES).render_edition(
        site=site or sample_site(),
        newsletter=newsletter or sample_newsletter(),
        posts=posts,
        edition_id=edition_id,
        now=now,
    )


def wire_message(
    posts: Sequence[Post],
    now: datetime,
    *,
    site: SiteConfig | None = None,
    newsletter: NewsletterConfig | None = None,
) -> bytes:
    """One reader's digest of ``posts``, byte for byte as the sender hands it to the relay."""
    site = site or sample_site()
    newsletter = newsletter or sample_newsletter()
    rendered = render(posts, now, site=site, newsletter=newsletter)
    return personal_letter(
        rendered,
        site,
        newsletter,
        SECRET,
        subscriber_id=SUBSCRIBER_ID,
        email=READER,
        message_id=message_id_for(SECRET, EDITION_ID, SUBSCRIBER_ID, site.sender_domain),
        now=now,
    ).message


def sample_message(now: datetime) -> bytes:
    """The sample edition (tests/support/edition.py) as one reader's wire message."""
    return wire_message(sample_posts(), now)


# --- the rendering defect corpus, by name ---------------------------------------------


def corpus_names() -> list[str]:
    """The corpus files' names without their suffix, e.g. "lead-images"."""
    return sorted(path.stem for path in CORPUS.glob("*.xml"))


def corpus_posts(name: str, *, source_id: str = "") -> list[Post]:
    """The posts of corpus file ``name``, as a fetch would store them."""
    data = (CORPUS / f"{name}.xml").read_bytes()
    posts, _ = parse_feed(
        data,
        source_id=source_id or name,
        location=f"{name}.xml",
        base_url="",
        content_type="application/rss+xml",
        now=NOW,
    )
    return posts


def render_corpus(
    name: str, *, renderer: Renderer | None = None, newsletter: NewsletterConfig | None = None
) -> Rendered:
    """Corpus file ``name`` rendered as one digest of the sample newsletter."""
    posts = corpus_posts(name)
    chosen = newsletter or replace(sample_newsletter(), source_ids=(name,))
    return (renderer or Renderer(TEMPLATES)).render_edition(
        site=sample_site(),
        newsletter=chosen,
        posts=posts,
        edition_id=f"corpus-{name}",
        now=NOW,
    )
