"""Source health: one row per source with its last fetch, failures in a row and churn.

Revision ID: 0003_source_health
Revises: 0002
Create Date: 2026-12-08

- ``source_health`` holds what ``digest sources`` shows and what the fetcher's backoff
  and the editors' alerts are decided on (``digest.models.SourceHealth``). It starts
  empty: every source begins its record at its next fetch.

Frozen: does not import ``digest.store.tables``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003_source_health"
down_revision: str | None = "0002"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "source_health",
        sa.Column("source_id", sa.String(), nullable=False),
        sa.Column("last_fetch", _utc(), nullable=True),
        sa.Column("last_success", _utc(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("failing_since", _utc(), nullable=True),
        sa.Column("undated", sa.Integer(), nullable=False),
        sa.Column("churn", sa.Integer(), nullable=False),
        sa.Column("churn_total", sa.Integer(), nullable=False),
        sa.Column("newest_post", _utc(), nullable=True),
        sa.PrimaryKeyConstraint("source_id", name="pk_source_health"),
    )


def downgrade() -> None:
    op.drop_table("source_health")
