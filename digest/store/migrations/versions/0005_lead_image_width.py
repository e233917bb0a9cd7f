"""Posts remember how wide their lead image is declared, so the email never stretches it.

Revision ID: 0005_lead_image_width
Revises: 0004
Create Date: 2026-12-02

- ``posts`` gains ``image_width``: the lead image's width in pixels as the source declared
  it (media:content, an ``<img width>``), 0 when it declared none. Existing posts: 0.

Frozen: does not import ``digest.store.tables``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005_lead_image_width"
down_revision: str | None = "0004"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    with op.batch_alter_table("posts") as batch:
        batch.add_column(sa.Column("image_width", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("posts") as batch:
        batch.drop_column("image_width")
