"""Alembic migration scripts of the store (loaded by Alembic, not imported)."""
