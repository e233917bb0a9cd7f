"""The initial schema: sources, posts, subscribers, subscriptions, editions, deliveries.

Revision ID: 0001
Revises:
Create Date: 2026-11-27

Frozen: this file must keep creating the schema as it was at revision 0001, so it
does not import ``digest.store.tables``. Constraint names follow the naming
convention in ``tables.py``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sources",
        sa.Column("source_id", sa.String(), nullable=False),
        sa.Column("etag", sa.Text(), nullable=False),
        sa.Column("last_modified", sa.Text(), nullable=False),
        sa.Column("last_fetched", _utc(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("source_id", name="pk_sources"),
    )
    op.create_table(
        "posts",
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("source_id", sa.String(), nullable=False),
        sa.Column("guid", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("link", sa.Text(), nullable=False),
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("published", _utc(), nullable=False),
        sa.Column("summary_html", sa.Text(), nullable=False),
        sa.Column("content_html", sa.Text(), nullable=False),
        sa.Column("image_url", sa.Text(), nullable=False),
        sa.Column("image_caption", sa.Text(), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("first_seen", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_posts"),
        sa.UniqueConstraint("source_id", "guid", name="uq_posts_source_id_guid"),
    )
    op.create_index("ix_posts_source_id_first_seen", "posts", ["source_id", "first_seen"])
    op.create_table(
        "subscribers",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("email", sa.String(), nullable=False),
        sa.Column("ascii_email", sa.String(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_subscribers"),
        sa.UniqueConstraint("email", name="uq_subscribers_email"),
    )
    op.create_table(
        "subscriptions",
        sa.Column("subscriber_id", sa.String(), nullable=False),
        sa.Column("newsletter_id", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("changed_at", _utc(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("subscriber_id", "newsletter_id", name="pk_subscriptions"),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name="fk_subscriptions_subscriber_id_subscribers",
        ),
    )
    op.create_table(
        "editions",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("newsletter_id", sa.String(), nullable=False),
        sa.Column("period_key", sa.String(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_editions"),
        sa.UniqueConstraint(
            "newsletter_id", "period_key", name="uq_editions_newsletter_id_period_key"
        ),
    )
    op.create_table(
        "edition_posts",
        sa.Column("edition_id", sa.String(), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("post_key", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("edition_id", "position", name="pk_edition_posts"),
        sa.ForeignKeyConstraint(
            ["edition_id"],
            ["editions.id"],
            name="fk_edition_posts_edition_id_editions",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_edition_posts_post_key", "edition_posts", ["post_key"])
    op.create_table(
        "renderings",
        sa.Column("edition_id", sa.String(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("edition_id", name="pk_renderings"),
        sa.ForeignKeyConstraint(
            ["edition_id"],
            ["editions.id"],
            name="fk_renderings_edition_id_editions",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "deliveries",
        sa.Column("edition_id", sa.String(), nullable=False),
        sa.Column("subscriber_id", sa.String(), nullable=False),
        sa.Column("email", sa.String(), nullable=False),
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("reply", sa.Text(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=True),
        sa.PrimaryKeyConstraint("edition_id", "subscriber_id", name="pk_deliveries"),
        sa.ForeignKeyConstraint(
            ["edition_id"],
            ["editions.id"],
            name="fk_deliveries_edition_id_editions",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name="fk_deliveries_subscriber_id_subscribers",
        ),
    )
    op.create_index("ix_deliveries_edition_id_status", "deliveries", ["edition_id", "status"])


def downgrade() -> None:
    op.drop_table("deliveries")
    op.drop_table("renderings")
    op.drop_table("edition_posts")
    op.drop_table("editions")
    op.drop_table("subscriptions")
    op.drop_table("subscribers")
    op.drop_table("posts")
    op.drop_table("sources")
