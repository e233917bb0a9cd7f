"""Alembic revisions, applied in order by ``digest migrate``."""
