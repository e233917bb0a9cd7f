"""The database schema as SQLAlchemy Core tables: what the store's queries are built from.

Migrations ``0001_initial``, ``0002_delivery_engine``, ``0003_source_health``,
``0004_reader_choices``, ``0005_lead_image_width``, ``0006_readers`` and ``0007_signup``
create exactly this schema; ``tests/test_store.py`` compares a migrated database with this
metadata, so a change here needs a new migration.
Newsletters and sources live in the editor's configuration, not in the database:
``newsletter_id`` and ``source_id`` are plain strings without a foreign key.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime in, an aware UTC datetime out, on every backend.

    PostgreSQL stores ``timestamp with time zone``; SQLite has no time zones, so the
    value is stored as naive UTC text and tagged UTC again on the way out.
    Naive datetimes are refused: their meaning depends on the machine's clock.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given: pass an aware UTC one")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utc_for_driver(dialect: Dialect, moment: datetime | None) -> object:
    """``moment`` as the driver itself takes it for a ``UtcDateTime`` column, for the
    few statements that bypass SQLAlchemy's type processing: naive UTC text in
    SQLAlchemy's SQLite storage format, the aware datetime for PostgreSQL."""
    if moment is None:
        return None
    value = UtcDateTime().process_bind_param(moment, dialect)
    if dialect.name == "sqlite" and value is not None:
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


metadata = MetaData(naming_convention=NAMING_CONVENTION)

sources = Table(
    "sources",
    metadata,
    Column("source_id", String, primary_key=True),
    Column("etag", Text, nullable=False, default=""),
    Column("last_modified", Text, nullable=False, default=""),
    Column("last_fetched", UtcDateTime, nullable=True),
    Column("last_error", Text, nullable=False, default=""),
)

# How each source has been doing (``digest.models.SourceHealth``); one row per source.
source_health = Table(
    "source_health",
    metadata,
    Column("source_id", String, primary_key=True),
    Column("last_fetch", UtcDateTime, nullable=True),
    Column("last_success", UtcDateTime, nullable=True),
    Column("last_error", Text, nullable=False),
    Column("failures", Integer, nullable=False),
    Column("failing_since", UtcDateTime, nullable=True),
    Column("undated", Integer, nullable=False),
    Column("churn", Integer, nullable=False),
    Column("churn_total", Integer, nullable=False),
    Column("newest_post", UtcDateTime, nullable=True),
)

posts = Table(
    "posts",
    metadata,
    Column("key", String, primary_key=True),
    Column("source_id", String, nullable=False),
    Column("guid", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("link", Text, nullable=False),
    Column("author", Text, nullable=False),
    Column("published", UtcDateTime, nullable=False),
    Column("summary_html", Text, nullable=False),
    Column("content_html", Text, nullable=False),
    Column("image_url", Text, nullable=False),
    Column("image_caption", Text, nullable=False),
    Column("image_width", Integer, nullable=False, default=0),  # declared px; 0: unknown
    Column("categories", JSON, nullable=False),
    Column("first_seen", UtcDateTime, nullable=False),
    Column("dated", Boolean, nullable=False, default=True),
    # When the post became due to readers: max(published, first_seen) at first sight.
    Column("released_at", UtcDateTime, nullable=False),
    UniqueConstraint("source_id", "guid"),
    Index("ix_posts_source_id_first_seen", "source_id", "first_seen"),
    Index("ix_posts_source_id_released_at", "source_id", "released_at"),
)

subscribers = Table(
    "subscribers",
    metadata,
    Column("id", String, primary_key=True),
    Column("email", String, nullable=False),
    Column("ascii_email", String, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("timezone", String, nullable=False, default=""),  # the reader's IANA zone, or ""
    Column("name", String, nullable=False, default=""),  # as an import gave it, or ""
    UniqueConstraint("email"),
)

# Addresses removed on request, as keyed hashes (``digest.subscriptions.suppression_key``):
# an import or an add of one is refused. Nothing here names a person.
suppressions = Table(
    "suppressions",
    metadata,
    Column("address_key", String, primary_key=True),
    Column("removed_at", UtcDateTime, nullable=False),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("subscriber_id", String, ForeignKey("subscribers.id"), nullable=False),
    Column("newsletter_id", String, nullable=False),
    Column("status", String, nullable=False),
    Column("changed_at", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("cadence", String, nullable=True),  # NULL: the newsletter's default cadence
    Column("topics", JSON, nullable=True),  # sorted topic ids; NULL: all topics
    # The reader's mark: every post released up to (mark_at, mark_key) is settled for them.
    Column("mark_at", UtcDateTime, nullable=False),
    Column("mark_key", String, nullable=False, default="~"),
    Column("last_sent_at", UtcDateTime, nullable=True),
    PrimaryKeyConstraint("subscriber_id", "newsletter_id"),
    # Opening an edition reads a newsletter's confirmed readers in id order, page by page.
    Index(
        "ix_subscriptions_newsletter_id_status_subscriber_id",
        "newsletter_id",
        "status",
        "subscriber_id",
    ),
)

editions = Table(
    "editions",
    metadata,
    Column("id", String, primary_key=True),
    Column("newsletter_id", String, nullable=False),
    Column("period_key", String, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("status", String, nullable=False),
    Column("subject", Text, nullable=False),
    Column("error", Text, nullable=False),
    Column("cadence", String, nullable=False, default=""),
    UniqueConstraint("newsletter_id", "period_key"),
)

edition_posts = Table(
    "edition_posts",
    metadata,
    Column("edition_id", String, nullable=False),
    Column("variant", Integer, nullable=False, default=0, autoincrement=False),
    Column("position", Integer, nullable=False, autoincrement=False),
    Column("post_key", String, nullable=False),
    PrimaryKeyConstraint("edition_id", "variant", "position"),
    ForeignKeyConstraint(["edition_id"], ["editions.id"], ondelete="CASCADE"),
    Index("ix_edition_posts_post_key", "post_key"),
)

renderings = Table(
    "renderings",
    metadata,
    Column("edition_id", String, nullable=False),
    Column("variant", Integer, nullable=False, default=0, autoincrement=False),
    Column("subject", Text, nullable=False),
    Column("html", Text, nullable=False),
    Column("text", Text, nullable=False),
    PrimaryKeyConstraint("edition_id", "variant"),
    ForeignKeyConstraint(["edition_id"], ["editions.id"], ondelete="CASCADE"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("edition_id", String, nullable=False),
    # No foreign key: the rows of a removed reader stay, anonymized, for the edition's counts.
    Column("subscriber_id", String, nullable=False),
    Column("email", String, nullable=False),
    Column("message_id", Text, nullable=False),
    Column("status", String, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("reply", Text, nullable=False),
    Column("updated_at", UtcDateTime, nullable=True),
    # The sender holding a ``sending`` row and until when; records are fenced on owner.
    Column("owner", String, nullable=True),
    Column("lease_until", UtcDateTime, nullable=True),
    # Earliest next attempt of a ``deferred`` row, or of an ``uncertain`` one's one retry.
    Column("not_before", UtcDateTime, nullable=True),
    Column("duplicate", Boolean, nullable=False, default=False),
    Column("variant", Integer, nullable=False, default=0),
    PrimaryKeyConstraint("edition_id", "subscriber_id"),
    ForeignKeyConstraint(["edition_id"], ["editions.id"], ondelete="CASCADE"),
    Index("ix_deliveries_edition_id_status", "edition_id", "status"),
    Index("ix_deliveries_status_updated_at", "status", "updated_at"),
    Index("ix_deliveries_edition_id_email", "edition_id", "email", "subscriber_id"),
)

# Since when each cadence of a newsletter has been scheduled: a slot that passed before
# is never caught up (a new install must not send at once).
schedule_starts = Table(
    "schedule_starts",
    metadata,
    Column("newsletter_id", String, nullable=False),
    Column("cadence", String, nullable=False),
    Column("since", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("newsletter_id", "cadence"),
)

# What each reader agreed to, when and how (double opt-in), one row per sign-up request.
consents = Table(
    "consents",
    metadata,
    Column("id", String, primary_key=True),
    Column("subscriber_id", String, ForeignKey("subscribers.id"), nullable=False),
    Column("newsletter_id", String, nullable=False),
    Column("given_at", UtcDateTime, nullable=False),
    Column("source", Text, nullable=False),
    Column("ip", String, nullable=False),
    Column("text", Text, nullable=False),
    Column("confirmed_at", UtcDateTime, nullable=True),
    Index("ix_consents_subscriber_id", "subscriber_id"),
)

# Rate limits shared by every process: uses of a key since the start of its window.
# Keys are keyed hashes, never an address in clear.
rate_limits = Table(
    "rate_limits",
    metadata,
    Column("key", String, primary_key=True),
    Column("since", UtcDateTime, nullable=False),
    Column("uses", Integer, nullable=False),
)
