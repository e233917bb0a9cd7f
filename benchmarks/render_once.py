"""Benchmark: the per-subscriber cost of a digest, render-once vs render-per-subscriber.

Run: .venv/bin/python benchmarks/render_once.py [--readers 300] [--posts 10]

Prints, side by side, the time and peak memory of
  baseline:   premailer per subscriber (what a naive sender does), then the message;
  digest:     premailer once per edition, then per subscriber only string substitution
              of the unsubscribe link and the message headers (digest's send path),
and the ratio baseline / digest. Numbers are wall-clock on this machine: compare the
ratio, not the absolute values, across machines.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from digest.config import NewsletterConfig, ScheduleConfig, SiteConfig, one_cadence
from digest.editions import personal_letter
from digest.message import message_id_for
from digest.models import Post
from digest.render import Rendered, Renderer

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
SECRET = b"benchmark-secret-" + b"x" * 32
SITE = SiteConfig(
    name="Transmission",
    base_url="https://transmission.example.org/digest",
    postal_address="Vinohradska 12, Prague",
    sender_name="Transmission",
    sender_email="digest@transmission.example.org",
    timezone="Europe/Prague",
)
NEWSLETTER = NewsletterConfig(
    id="daily",
    title="Transmission Daily",
    description="The day's analysis.",
    source_ids=("posts",),
    cadences=one_cadence(ScheduleConfig(kind="daily", timezone="Europe/Prague")),
)


def sample_posts(count: int) -> list[Post]:
    body = "<p>" + "Analysis of the day's events in the region. " * 20 + "</p>"
    return [
        Post(
            source_id="posts",
            guid=f"post-{n}",
            title=f"Strains Visible In CIS Military Alliance, part {n}",
            link=f"https://transmission.example.org/2026/11/post-{n}",
            published=NOW - timedelta(hours=n),
            author="Bruce Pannier",
            summary_html=body,
            content_html=body * 3,
            image_url=f"https://transmission.example.org/images/{n}.jpg",
            image_caption="Belarusian Alyaksandr Lukashenka at the CSTO meeting last week",
        )
        for n in range(count)
    ]


def message_for(rendered: Rendered, reader: int) -> bytes:
    """The production send path's per-reader step (digest.editions.personal_letter)."""
    return personal_letter(
        rendered,
        SITE,
        NEWSLETTER,
        SECRET,
        subscriber_id=str(reader),
        email=f"reader{reader}@example.net",
        message_id=message_id_for(SECRET, "edition", str(reader), SITE.sender_domain),
        now=NOW,
    ).message


def render(renderer: Renderer, posts: list[Post]) -> Rendered:
    return renderer.render_edition(
        site=SITE, newsletter=NEWSLETTER, posts=posts, edition_id="e", now=NOW
    )


def baseline(renderer: Renderer, posts: list[Post], readers: int) -> int:
    return sum(len(message_for(render(renderer, posts), reader)) for reader in range(readers))


def render_once(renderer: Renderer, posts: list[Post], readers: int) -> int:
    rendered = render(renderer, posts)
    return sum(len(message_for(rendered, reader)) for reader in range(readers))


def measure(run: Callable[[], int]) -> tuple[float, int, int]:
    tracemalloc.start()
    started = time.perf_counter()
    size = run()
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return elapsed, peak, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=300)
    parser.add_argument("--posts", type=int, default=10)
    args = parser.parse_args()
    renderer = Renderer(ROOT / "templates" / "email")
    posts = sample_posts(args.posts)
    render_once(renderer, posts, 2)  # warm caches (templates, CSS parse) for both runs
    base = measure(lambda: baseline(renderer, posts, args.readers))
    ours = measure(lambda: render_once(renderer, posts, args.readers))
    assert base[2] == ours[2], "both paths must produce messages of the same total size"
    print(f"{args.readers} readers, {args.posts} posts per digest")
    print(f"{'':28}{'baseline':>12}{'digest':>12}{'ratio':>8}")
    print(
        f"{'time per reader (ms)':28}{base[0] * 1000 / args.readers:12.2f}"
        f"{ours[0] * 1000 / args.readers:12.2f}{base[0] / ours[0]:8.1f}x"
    )
    mib = 2**20
    print(
        f"{'peak memory (MiB)':28}{base[1] / mib:12.1f}{ours[1] / mib:12.1f}"
        f"{base[1] / ours[1]:8.1f}x"
    )


if __name__ == "__main__":
    main()
