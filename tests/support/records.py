"""Small builders of store records shared by the store tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from digest.models import (
    CadenceReaders,
    Draft,
    Edition,
    Mark,
    Post,
    Rendered,
    SubscriptionStatus,
    Variant,
    Verdict,
)
from digest.ports import Readers, Store


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


def open_for_all(
    store: Store,
    *,
    newsletter_id: str,
    period_key: str,
    now: datetime,
    post_keys: Sequence[str],
    rendered: Rendered | None,
    message_id: Callable[[str], str],
    edition_id: str,
    no_readers: str = "",
) -> tuple[Edition, int] | None:
    """Open an edition giving every confirmed reader of the newsletter the same variant."""
    readers = CadenceReaders("daily", ("daily",), default=True)
    variants = (Variant(tuple(post_keys), rendered),) if rendered is not None and post_keys else ()
    verdicts = {
        reader: Verdict(0 if variants else None, Mark(now))
        for reader, _ in store.reader_groups(newsletter_id, readers)
    }
    draft = Draft(edition_id, newsletter_id, readers, period_key, now, (), 0, variants, verdicts)
    return store.open_edition(draft, message_id=message_id, no_readers=no_readers)
