"""The delivery engine: leases with owners, retry times, duplicate marks, posts per newsletter.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

- ``deliveries`` gains ``owner`` and ``lease_until`` (batch claims fenced by owner),
  ``not_before`` (when a deferred or uncertain row may be tried again) and ``duplicate``
  (the reader may have received two copies); indexes for the per-day quota and
  for listing an edition's rows by address; an index to read a newsletter's confirmed
  readers in order when an edition opens.
- ``posts`` gains ``dated``: an item without a date keeps its first-seen time.
- ``newsletter_posts`` records which edition took each post for a newsletter; its
  primary key makes a second edition holding the same post impossible. It is filled
  from existing editions, the oldest edition keeping a post that was sent twice.

Frozen: does not import ``digest.store.tables``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("owner", sa.String(), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("not_before", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("duplicate", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("posts") as batch:
        batch.add_column(
            sa.Column("dated", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    op.create_index("ix_deliveries_status_updated_at", "deliveries", ["status", "updated_at"])
    op.create_index(
        "ix_deliveries_edition_id_email", "deliveries", ["edition_id", "email", "subscriber_id"]
    )
    op.create_index(
        "ix_subscriptions_newsletter_id_status_subscriber_id",
        "subscriptions",
        ["newsletter_id", "status", "subscriber_id"],
    )
    op.create_table(
        "newsletter_posts",
        sa.Column("newsletter_id", sa.String(), nullable=False),
        sa.Column("post_key", sa.String(), nullable=False),
        sa.Column("edition_id", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("newsletter_id", "post_key", name="pk_newsletter_posts"),
        sa.ForeignKeyConstraint(
            ["edition_id"],
            ["editions.id"],
            name="fk_newsletter_posts_edition_id_editions",
            ondelete="CASCADE",
        ),
    )
    op.execute(
        "INSERT INTO newsletter_posts (newsletter_id, post_key, edition_id)"
        " SELECT e.newsletter_id, p.post_key, MIN(e.id)"
        " FROM edition_posts p JOIN editions e ON e.id = p.edition_id"
        " WHERE e.created_at = (SELECT MIN(e2.created_at) FROM edition_posts p2"
        "   JOIN editions e2 ON e2.id = p2.edition_id"
        "   WHERE e2.newsletter_id = e.newsletter_id AND p2.post_key = p.post_key)"
        " GROUP BY e.newsletter_id, p.post_key"
    )


def downgrade() -> None:
    op.drop_table("newsletter_posts")
    with op.batch_alter_table("posts") as batch:
        batch.drop_column("dated")
    op.drop_index("ix_subscriptions_newsletter_id_status_subscriber_id", "subscriptions")
    op.drop_index("ix_deliveries_edition_id_email", "deliveries")
    op.drop_index("ix_deliveries_status_updated_at", "deliveries")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("duplicate")
        batch.drop_column("not_before")
        batch.drop_column("lease_until")
        batch.drop_column("owner")
