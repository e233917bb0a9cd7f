"""Readers' names, the suppression list, and ledger rows that outlive their reader.

Revision ID: 0006_readers
Revises: 0005_lead_image_width
Create Date: 2026-12-10

- ``subscribers`` gains ``name`` (as an import gave it, "" when unknown).
- ``suppressions`` holds one keyed hash per removed address and when it was removed, so
  that an import or an editor's add never brings an erased reader back.
- ``deliveries`` loses its foreign key to ``subscribers``: a removed reader's ledger rows
  stay (anonymized) so that past editions keep their counts and the rate limits keep
  counting what was sent.

Frozen: does not import ``digest.store.tables``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006_readers"
down_revision: str | None = "0005_lead_image_width"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("name", sa.String(), nullable=False, server_default=""))
    op.create_table(
        "suppressions",
        sa.Column("address_key", sa.String(), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("address_key", name="pk_suppressions"),
    )
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_constraint("fk_deliveries_subscriber_id_subscribers", type_="foreignkey")


def downgrade() -> None:
    raise NotImplementedError("0005 cannot be undone: restore the backup taken before upgrading")
