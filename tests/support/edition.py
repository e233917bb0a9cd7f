"""A fixed sample edition (site, newsletter, three posts) for render and message tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from digest.config import NewsletterConfig, ScheduleConfig, SiteConfig, one_cadence
from digest.models import Post

SEED_TITLE = "Strains Visible In CIS Military Alliance"
SEED_CAPTION = "Belarusian Alyaksandr Lukashenka at the CSTO meeting last week"
SPECIAL_TITLE = 'Russia & "Allies" <analysis>'


def sample_site(**changes: str) -> SiteConfig:
    """The broadcaster's site, in Europe/Prague; keyword arguments override fields."""
    fields = {
        "name": "Transmission",
        "base_url": "https://digest.example.org",
        "postal_address": "RFE/RL\nVinohradská 159a\n110 00 Prague 10, Czech Republic",
        "sender_name": "Transmission Digest",
        "sender_email": "digest@example.org",
        "timezone": "Europe/Prague",
    }
    return SiteConfig(**(fields | changes))


def sample_newsletter(**changes: str) -> NewsletterConfig:
    """The daily newsletter with the default subject; keyword arguments override fields."""
    fields = {
        "id": "daily",
        "title": "Transmission Daily",
        "language": "en-GB",  # dates as "27 November 2026"
        "description": (
            "The day's posts from Transmission: news, comment and the odd silly dictator story."
        ),
    }
    return NewsletterConfig(
        **(fields | changes),
        source_ids=("transmission",),
        cadences=one_cadence(ScheduleConfig(kind="daily", timezone="Europe/Prague")),
    )


def sample_posts() -> list[Post]:
    """The seed post (author, image, caption), one bare post, one with HTML specials."""
    seed = Post(
        source_id="transmission",
        guid="https://transmission.example.org/a/strains-visible-in-cis-military-alliance",
        title=SEED_TITLE,
        link="https://transmission.example.org/a/strains-visible-in-cis-military-alliance",
        # 00:30 on 27 November in Prague: the byline must show the site's day, not UTC's.
        published=datetime(2026, 11, 26, 23, 30, tzinfo=UTC),
        author="Bruce Pannier",
        summary_html=(
            "<p>Belarus is proving again that the CIS Collective Security Treaty Organization "
            "(CSTO) is not exactly a cohesive military alliance.</p>"
            "<p>The CSTO was back in the news last week when, at a summit, the leaders spoke "
            "about the group's rapid reaction force in "
            '<a href="https://en.wikipedia.org/wiki/Central_Asia">Central Asia</a>.</p>'
        ),
        image_url="https://transmission.example.org/img/lukashenka-csto.jpg?w=600&h=400",
        image_caption=SEED_CAPTION,
    )
    bare = Post(
        source_id="transmission",
        guid="bureau-notes",
        title="Notes From The Prague Bureau",
        link="",
        published=datetime(2026, 11, 26, 9, 15, tzinfo=UTC),
        summary_html="<p>A short item with neither author nor image, and no link.</p>",
    )
    special = Post(
        source_id="transmission",
        guid="russia-allies",
        title=SPECIAL_TITLE,
        link="https://transmission.example.org/a/russia-allies?part=1&lang=en",
        published=datetime(2026, 11, 25, 14, 0, tzinfo=UTC),
        author="Ed Editor & Co",
        summary_html="<p>Why 5 &lt; 6 &amp; what &quot;allies&quot; means.</p>",
    )
    return [seed, bare, special]


LONG_PARAGRAPH = (
    "The committee met again to discuss the pipeline, the dam and the calendar, and it agreed"
    " on nothing except the date of its next meeting, which is itself a kind of progress in a"
    " region where meetings are the main export and communiqués the main import. "
)


def long_posts(count: int) -> list[Post]:
    """``count`` long posts, newest first, an hour apart: long titles and links, an author,
    a lead image with a caption, and four paragraphs with links each (a busy day's feed)."""
    newest = datetime(2026, 11, 26, 22, 0, tzinfo=UTC)
    posts = []
    for n in range(count):
        slug = f"2026/11/{n:03}-the-committee-met-again-to-discuss-the-pipeline-the-dam-and-more"
        paragraphs = "".join(
            f"<p>{LONG_PARAGRAPH * 2}See <a href='https://transmission.example.org/{slug}"
            f"#note-{k}'>note {k}</a>.</p>"
            for k in range(4)
        )
        posts.append(
            Post(
                source_id="transmission",
                guid=f"long-{n:03}",
                title=f"Post {n}: the committee met again to discuss the pipeline, the dam,"
                " the calendar and the date of its next meeting",
                link=f"https://transmission.example.org/{slug}",
                published=newest - timedelta(hours=n),
                author="Bruce Pannier and the Central Asia desk",
                summary_html=paragraphs,
                image_url=f"https://transmission.example.org/images/{slug}.jpg?w=1200",
                image_caption="The committee's meeting room, before the meeting, with coffee",
                image_width=1200,
            )
        )
    return posts
