"""``OffloadedLedger``: the async ``Ledger`` port over a synchronous store, off the loop.

The one place where database work leaves the event loop. On SQLite a single worker
thread runs every call in order, so one process never contends with itself for the
write lock (claims, group commits and lease renewals queue up instead of racing). A
server database takes concurrent transactions: there a claim need not wait behind a
group commit, so two threads serve it.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TypeVar

from digest.models import Claimed, EditionStatus, EditionSummary, Outcome, Quota
from digest.ports import Ledger, Store

T = TypeVar("T")


class OffloadedLedger:
    """A :class:`digest.ports.Ledger` running ``store``'s methods on ``threads`` threads."""

    def __init__(self, store: Store, *, threads: int = 1) -> None:
        self._store = store
        self._executor = ThreadPoolExecutor(
            max_workers=max(1, threads), thread_name_prefix="digest-ledger"
        )

    async def _run(self, function: Callable[..., T], *args: object, **kwargs: object) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, functools.partial(function, *args, **kwargs)
        )

    def close(self) -> None:
        """Let queued calls finish, then stop the worker thread."""
        self._executor.shutdown(wait=True)

    async def claim_batch(
        self,
        edition_id: str,
        owner: str,
        now: datetime,
        lease_until: datetime,
        limit: int,
        quotas: Sequence[Quota] = (),
    ) -> Claimed:
        return await self._run(
            self._store.claim_batch, edition_id, owner, now, lease_until, limit, quotas
        )

    async def record_batch(
        self, edition_id: str, owner: str, outcomes: Sequence[Outcome], now: datetime
    ) -> int:
        return await self._run(self._store.record_batch, edition_id, owner, outcomes, now)

    async def renew_leases(self, edition_id: str, owner: str, lease_until: datetime) -> int:
        return await self._run(self._store.renew_leases, edition_id, owner, lease_until)

    async def edition_summary(self, edition_id: str) -> EditionSummary:
        return await self._run(self._store.edition_summary, edition_id)

    async def set_edition_status(
        self,
        edition_id: str,
        status: EditionStatus,
        error: str = "",
        *,
        only_from: Sequence[EditionStatus] | None = None,
    ) -> bool:
        return await self._run(
            self._store.set_edition_status, edition_id, status, error, only_from=only_from
        )


def _implements_the_port(ledger: OffloadedLedger) -> Ledger:
    """Never called: makes mypy prove that ``OffloadedLedger`` satisfies ``Ledger``."""
    return ledger
