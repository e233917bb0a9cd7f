"""The corpus of awkward feeds (tests/fixtures/corpus/, one file per defect class), parsed
and rendered as one digest each, for the render tests and the browser tests."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from digest.config import NewsletterConfig
from digest.models import Post, Rendered
from digest.render import Renderer
from digest.sources.feed import parse_feed

from support.edition import sample_newsletter, sample_site

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "corpus"
TEMPLATES = Path(__file__).resolve().parent.parent.parent / "templates" / "email"
NOW = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)


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
