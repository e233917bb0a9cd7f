"""The store: the only code that touches the database (SQLAlchemy Core + Alembic).

Other modules use ``create_engine_for``, ``migrate``/``check_schema`` and ``SqlStore``
(which implements ``digest.ports.Store``) and never import SQLAlchemy themselves.
"""

from __future__ import annotations

from digest.store.engine import create_engine_for, masked
from digest.store.migrate import check_schema, migrate
from digest.store.offload import OffloadedLedger
from digest.store.sql import SqlStore

__all__ = ["OffloadedLedger", "SqlStore", "check_schema", "create_engine_for", "masked", "migrate"]
