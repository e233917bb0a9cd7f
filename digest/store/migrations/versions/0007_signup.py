"""Sign-up through the web: consent records and shared rate limits.

Revision ID: 0007_signup
Revises: 0006_readers
Create Date: 2026-12-10

- ``consents`` holds one row per sign-up request: the reader, the newsletter, when, the
  page or endpoint, the client's IP address, the exact text agreed to, and when the
  confirmation link was used.
- ``rate_limits`` counts the uses of a key (a keyed hash of an address or a client, or
  the whole site) since the start of its window, for every process on the database.

Frozen: does not import ``digest.store.tables``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007_signup"
down_revision: str | None = "0006_readers"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None

_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "consents",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("subscriber_id", sa.String(), nullable=False),
        sa.Column("newsletter_id", sa.String(), nullable=False),
        sa.Column("given_at", _WHEN, nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("ip", sa.String(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("confirmed_at", _WHEN, nullable=True),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name="fk_consents_subscriber_id_subscribers",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_consents"),
    )
    op.create_index("ix_consents_subscriber_id", "consents", ["subscriber_id"])
    op.create_table(
        "rate_limits",
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("since", _WHEN, nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_rate_limits"),
    )


def downgrade() -> None:
    op.drop_table("rate_limits")
    op.drop_index("ix_consents_subscriber_id", table_name="consents")
    op.drop_table("consents")
