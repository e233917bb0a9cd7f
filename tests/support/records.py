"""Small builders of store records shared by the store tests."""

from __future__ import annotations

from datetime import UTC, datetime

from digest.models import Post, SubscriptionStatus
from digest.ports import Readers


def make_post(guid: str, *, source: str = "blog", title: str = "", **fields: object) -> Post:
    """A post of ``source`` with sensible defaults; keyword arguments set other fields."""
    published = fields.pop("published", datetime(2026, 11, 20, 9, 30, tzinfo=UTC))
    return Post(
        source_id=source,
        guid=guid,
        title=title or f"Post {guid}",
        link=f"https://example.org/{source}/{guid}",
        published=published,  # type: ignore[arg-type]
        **fields,  # type: ignore[arg-type]
    )


def subscribe(
    store: Readers,
    email: str,
    now: datetime,
    *,
    newsletter: str = "weekly",
    status: SubscriptionStatus = SubscriptionStatus.CONFIRMED,
    resubscribe: bool = False,
) -> tuple[str, bool]:
    """Subscribe ``email`` (used as both forms); ``(subscriber id, changed)``."""
    subscription, changed = store.add_subscription(
        email=email,
        ascii_email=email,
        newsletter_id=newsletter,
        status=status,
        now=now,
        resubscribe=resubscribe,
    )
    return subscription.subscriber.id, changed
