"""Readers' cadences and topics, per-reader marks, edition variants.

Revision ID: 0004
Revises: 0003_source_health
Create Date: 2026-12-01

- ``posts`` gains ``released_at``: when the post became due to readers (the later of its
  date and its first sight), fixed at first sight. Filled from existing posts.
- ``subscribers`` gains ``timezone`` (the reader's own zone, "" when unknown).
- ``subscriptions`` gains ``cadence`` and ``topics`` (NULL: the newsletter's default
  cadence, all topics), the reader's mark (``mark_at``, ``mark_key``: every post released
  up to it has been settled for the reader) and ``last_sent_at``. An existing reader's
  mark is the creation time of the newest edition of the newsletter they have a row in
  (else when they subscribed), so nothing they were offered comes again.
- ``editions`` gains ``cadence``; ``renderings``, ``edition_posts`` and ``deliveries``
  gain ``variant`` (existing rows: variant 0).
- ``newsletter_posts`` is dropped: marks replace it as the referee.
- ``schedule_starts`` records since when each cadence has been scheduled, so a new
  install does not send a slot that passed before it was set up.

Frozen: does not import ``digest.store.tables``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003_source_health"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None

_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("posts") as batch:
        batch.add_column(sa.Column("released_at", _WHEN, nullable=True))
    op.execute(
        "UPDATE posts SET released_at = CASE WHEN published > first_seen"
        " THEN published ELSE first_seen END"
    )
    with op.batch_alter_table("posts") as batch:
        batch.alter_column("released_at", existing_type=_WHEN, nullable=False)
    op.create_index("ix_posts_source_id_released_at", "posts", ["source_id", "released_at"])

    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("timezone", sa.String(), nullable=False, server_default=""))
    with op.batch_alter_table("subscriptions") as batch:
        batch.add_column(sa.Column("cadence", sa.String(), nullable=True))
        batch.add_column(sa.Column("topics", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("mark_at", _WHEN, nullable=True))
        batch.add_column(sa.Column("mark_key", sa.String(), nullable=False, server_default="~"))
        batch.add_column(sa.Column("last_sent_at", _WHEN, nullable=True))
    op.execute(
        "UPDATE subscriptions SET last_sent_at = (SELECT MAX(e.created_at) FROM editions e"
        " JOIN deliveries d ON d.edition_id = e.id WHERE d.subscriber_id ="
        " subscriptions.subscriber_id AND e.newsletter_id = subscriptions.newsletter_id)"
    )
    op.execute("UPDATE subscriptions SET mark_at = COALESCE(last_sent_at, created_at)")
    with op.batch_alter_table("subscriptions") as batch:
        batch.alter_column("mark_at", existing_type=_WHEN, nullable=False)

    with op.batch_alter_table("editions") as batch:
        batch.add_column(sa.Column("cadence", sa.String(), nullable=False, server_default=""))
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("variant", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("renderings") as batch:
        batch.add_column(sa.Column("variant", sa.Integer(), nullable=False, server_default="0"))
        batch.drop_constraint("pk_renderings", type_="primary")
        batch.create_primary_key("pk_renderings", ["edition_id", "variant"])
    with op.batch_alter_table("edition_posts") as batch:
        batch.add_column(sa.Column("variant", sa.Integer(), nullable=False, server_default="0"))
        batch.drop_constraint("pk_edition_posts", type_="primary")
        batch.create_primary_key("pk_edition_posts", ["edition_id", "variant", "position"])
    op.drop_table("newsletter_posts")
    op.create_table(
        "schedule_starts",
        sa.Column("newsletter_id", sa.String(), nullable=False),
        sa.Column("cadence", sa.String(), nullable=False),
        sa.Column("since", _WHEN, nullable=False),
        sa.PrimaryKeyConstraint("newsletter_id", "cadence", name="pk_schedule_starts"),
    )


def downgrade() -> None:
    raise NotImplementedError("0004 cannot be undone: restore the backup taken before upgrading")
