"""The sender: a fixed pool of tasks over batch claims, with group-committed outcomes.

One claimer takes batches of ledger rows for this sender's ``owner`` name under a lease
and feeds a bounded queue; ``concurrency`` workers, one per connection, take up to
``pipeline_depth`` rows at a time, turn each into a letter (a few string joins on the
edition's template) and hand them to the mailer, which pipelines them across
transactions (``BatchMailer``); each result is handed back as soon as it is known. A
recorder writes the outcomes in group commits (every ``flush_every`` or ``flush_size``
outcomes; workers wait only when ``max_unflushed`` are pending); a renewer extends the
lease while the sender lives. Memory holds at most a queue, the pool and the unflushed outcomes,
whatever the number of readers.

**Duplicate bound.** A crash can re-send only messages that went out without their
outcome being committed: at most one per connection in flight plus ``max_unflushed``
recorded but not flushed (:attr:`SendPolicy.duplicate_bound`). Those rows are taken
over once their lease runs out, and marked as possible duplicates in the ledger.

Faults of the site (``TransportError``, ``SiteRefused``), a tripped circuit breaker or a
relay that keeps throttling stop the claims, give unsent rows back without counting an
attempt, and pause the edition; throttling alone first slows everyone down.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from digest.delivery_rules import Breaker, RetryPolicy, outcome_for
from digest.errors import DigestError, NotSent, Throttled, TransportError
from digest.models import (
    ClaimedRow,
    DeliveryStatus,
    EditionStatus,
    Letter,
    Outcome,
    Quota,
    SendResult,
)
from digest.ports import BatchMailer, Clock, Ledger, Mailer

log = logging.getLogger("digest.sending")

LetterFor = Callable[[ClaimedRow, datetime], Letter]


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Messages per second, per rolling hour and per rolling day for one relay (0: none).

    Enforced through the ledger at every claim, so they hold across connections,
    processes and restarts.
    """

    per_second: int = 0
    per_hour: int = 0
    per_day: int = 0

    def quotas(self, now: datetime) -> list[Quota]:
        windows = [
            ("second", timedelta(seconds=1), self.per_second),
            ("hour", timedelta(hours=1), self.per_hour),
            ("day", timedelta(days=1), self.per_day),
        ]
        return [Quota(name, now - span, limit) for name, span, limit in windows if limit > 0]


@dataclass(frozen=True, slots=True)
class SendPolicy:
    """How a sender works; the defaults suit a relay on the same network."""

    concurrency: int = 20  # SMTP connections in use at once
    pipeline_depth: int = 16  # letters a connection sends in turn, pipelined (RFC 2920)
    batch_size: int = 200  # rows per claim transaction
    lease: timedelta = timedelta(seconds=60)  # a dead sender's rows are free after this
    flush_every: float = 0.1  # seconds between group commits of outcomes
    flush_size: int = 100  # outcomes that trigger a commit at once
    throttle_backoff: float = 1.0  # first pause after a throttling reply; doubles
    throttle_max_backoff: float = 60.0
    throttle_give_up: timedelta = timedelta(minutes=15)  # then pause the edition
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    breaker_threshold: int = 10  # equal failures in a row, for different readers
    limits: RateLimits = field(default_factory=RateLimits)
    quota_poll: float = 0.05  # seconds between claims while a quota is used up

    @property
    def max_unflushed(self) -> int:
        return 2 * self.flush_size

    @property
    def duplicate_bound(self) -> int:
        """Most messages a crash can make readers receive twice: those sent whose outcome
        is not committed, one per connection in flight plus the recorder's unflushed."""
        return self.concurrency + self.max_unflushed


@dataclass
class SendRun:
    """What one run of the sender did (counts of this run; the ledger has the totals)."""

    outcomes: dict[DeliveryStatus, int] = field(default_factory=dict)
    suppressed: int = 0
    fenced: int = 0  # outcomes not written: the row had been taken over meanwhile
    fault: str = ""  # why the edition was paused, if it was
    waiting: str = ""  # why rows are left for later (a used-up daily quota)
    interrupted: bool = False  # stopped by a signal; unsent rows were given back
    throttled: int = 0  # throttling replies seen

    @property
    def sent(self) -> int:
        return self.outcomes.get(DeliveryStatus.SENT, 0)


class _Recorder:
    """Collects outcomes and writes them in group commits."""

    def __init__(
        self, ledger: Ledger, edition_id: str, owner: str, policy: SendPolicy, clock: Clock
    ) -> None:
        self._ledger, self._edition, self._owner = ledger, edition_id, owner
        self._policy, self._clock = policy, clock
        self._pending: list[Outcome] = []
        self._flushing = 0  # outcomes being written right now: still unflushed
        self.lock = asyncio.Lock()  # one group commit (or lease renewal) at a time
        self._due = asyncio.Event()  # flush_size outcomes wait: the recorder task goes now
        self.written = 0
        self.fenced = 0
        self.on_written: Callable[[int], None] | None = None

    async def add(self, outcome: Outcome) -> None:
        # Backpressure keeps the duplicate bound: never more than max_unflushed outcomes
        # sent but not committed, counting those being written. Below it, the recorder
        # task writes them, so no connection waits for the database.
        while len(self._pending) + self._flushing >= self._policy.max_unflushed:
            await self.flush()
        self._pending.append(outcome)
        if len(self._pending) >= self._policy.flush_size:
            self._due.set()

    async def flush(self) -> None:
        async with self.lock:
            batch, self._pending = self._pending, []
            if not batch:
                return
            self._flushing = len(batch)
            try:
                written = await self._ledger.record_batch(
                    self._edition, self._owner, batch, self._clock()
                )
            finally:
                self._flushing = 0
            self.written += written
            self.fenced += len(batch) - written
            if self.on_written is not None:
                # Progress is readers served: rows given back unsent do not count.
                self.on_written(sum(o.status is not DeliveryStatus.PENDING for o in batch))

    async def run(self, done: asyncio.Event) -> None:
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._due.wait(), self._policy.flush_every)
            self._due.clear()
            if self._pending:
                await self.flush()


class Sender:
    """Sends one edition's rows until none is claimable now; see the module docstring."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        mailer: Mailer,
        letter_for: LetterFor,
        edition_id: str,
        owner: str,
        clock: Clock,
        policy: SendPolicy,
        stop: asyncio.Event | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        self._ledger, self._mailer, self._letter_for = ledger, mailer, letter_for
        self._edition, self._owner, self._clock, self._policy = edition_id, owner, clock, policy
        self._stop = stop or asyncio.Event()
        self._halt = asyncio.Event()  # set on a fault, a tripped breaker or a signal
        self._queue: asyncio.Queue[ClaimedRow | None] = asyncio.Queue(2 * policy.batch_size)
        self._recorder = _Recorder(ledger, edition_id, owner, policy, clock)
        self._recorder.on_written = on_progress
        self._breaker = Breaker(policy.breaker_threshold)
        self._run = SendRun()
        self._throttle_until = 0.0
        self._throttle_since: float | None = None
        self._backoff = policy.throttle_backoff

    async def run(self) -> SendRun:
        """Claim, send and record until nothing is claimable now, a fault, or ``stop``."""
        finished = asyncio.Event()
        workers = [
            asyncio.create_task(self._worker()) for _ in range(max(1, self._policy.concurrency))
        ]
        recorder = asyncio.create_task(self._recorder.run(finished))
        renewer = asyncio.create_task(self._renew(finished))
        watcher = asyncio.create_task(self._watch_stop())
        try:
            await self._claim()
            for _ in workers:
                await self._queue.put(None)
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            finished.set()
            watcher.cancel()
            await asyncio.gather(recorder, renewer, watcher, return_exceptions=True)
            await self._give_back(self._breaker.drain(tripped=bool(self._run.fault)))
            await self._recorder.flush()
        self._run.fenced = self._recorder.fenced
        if self._run.fault:
            await self._ledger.set_edition_status(
                self._edition,
                EditionStatus.PAUSED,
                self._run.fault,
                only_from=[EditionStatus.SENDING],
            )
        return self._run

    @property
    def _halted(self) -> bool:
        if self._stop.is_set() and not self._halt.is_set():
            self._run.interrupted = True
            self._halt.set()
        return self._halt.is_set()

    # --- the parts ---------------------------------------------------------------------
    async def _claim(self) -> None:
        policy = self._policy
        while not self._halted:
            now = self._clock()
            claimed = await self._ledger.claim_batch(
                self._edition,
                self._owner,
                now,
                now + policy.lease,
                policy.batch_size,
                policy.limits.quotas(now),
            )
            self._run.suppressed += claimed.suppressed
            if claimed.blocked_by == "day":
                self._run.waiting = (
                    f"the relay's daily quota ({policy.limits.per_day} messages) is used up:"
                    " the rest goes out as the rolling day allows (`digest run` resumes it)"
                )
                return
            if claimed.blocked_by:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._halt.wait(), policy.quota_poll)
                continue
            if not claimed.rows and not claimed.suppressed:
                return
            for row in claimed.rows:
                await self._queue.put(row)

    async def _worker(self) -> None:
        while True:
            row = await self._queue.get()
            if row is None:
                return
            rows = [row]
            while len(rows) < self._policy.pipeline_depth and not self._queue.empty():
                more = self._queue.get_nowait()
                if more is None:  # the end: leave the sentinel for this worker's next turn
                    self._queue.put_nowait(None)
                    break
                rows.append(more)
            if self._halted:
                await self._give_back(rows)
                continue
            unrecorded = list(rows)
            try:
                await self._send(unrecorded)
            except Exception as exc:  # even a bug must pause the edition, not orphan rows
                known = isinstance(exc, DigestError)
                self._fault(str(exc) if known else f"unexpected {type(exc).__name__}: {exc}")
                await self._give_back(unrecorded)

    async def _send(self, pending: list[ClaimedRow]) -> None:
        """Send ``pending`` (a few rows, in turn on one connection); record each outcome as
        soon as it is known and take it off the list, so that whatever is left on a bug is
        given back, and no more than one message per connection is ever unrecorded."""
        while pending:
            if self._throttle_until:
                await self._wait_out_throttling()
            if self._halted:
                rows, pending[:] = list(pending), []
                await self._give_back(rows)
                return
            batch = list(pending)
            again: list[ClaimedRow] = []
            settle = functools.partial(self._settle_one, batch, pending, again)
            letters = [self._letter_for(row, self._clock()) for row in batch]
            await self._transmit(letters, settle)
            pending.extend(again)

    async def _settle_one(
        self,
        batch: list[ClaimedRow],
        pending: list[ClaimedRow],
        again: list[ClaimedRow],
        index: int,
        result: SendResult | Exception,
    ) -> bool:
        """What one result of a batch means for its row (``again``: send it once more).

        False when the batch should end here: a stop, a fault, throttling.
        """
        row = batch[index]
        pending.remove(row)
        if isinstance(result, SendResult):
            await self._settle(row, result)
        elif isinstance(result, Throttled):
            self._throttled(str(result))
            again.append(row)  # the same row again, after the pause
        elif isinstance(result, NotSent):
            again.append(row)
        elif isinstance(result, TransportError):  # includes SiteRefused: ours, not theirs
            self._fault(str(result))
            await self._give_back([row])
        else:
            pending.append(row)
            raise result
        throttling = self._throttle_until > asyncio.get_running_loop().time()
        return not (self._halted or throttling)

    async def _transmit(
        self,
        letters: list[Letter],
        settle: Callable[[int, SendResult | Exception], Awaitable[bool]],
    ) -> None:
        """Each letter's result to ``settle`` (see ``BatchMailer``), from any mailer."""
        if len(letters) > 1 and isinstance(self._mailer, BatchMailer):
            await self._mailer.send_batch(letters, settle)
            return
        go_on = True
        for index, letter in enumerate(letters):
            if not go_on:  # a stop, a fault or throttling: the rest goes back unsent
                await settle(index, NotSent())
                continue
            try:
                result: SendResult | Exception = await self._mailer.send(letter)
            except TransportError as exc:
                result = exc
            go_on = await settle(index, result) and not isinstance(result, TransportError)

    async def _settle(self, row: ClaimedRow, result: SendResult) -> None:
        self._throttle_since = None
        self._backoff = self._policy.throttle_backoff
        outcome = outcome_for(row, result, self._clock(), self._policy.retry)
        self._run.outcomes[outcome.status] = self._run.outcomes.get(outcome.status, 0) + 1
        released = self._breaker.observe(row, outcome)
        if self._breaker.tripped and not self._run.fault:
            self._fault(self._breaker.reason())
        for confirmed in released:
            await self._recorder.add(confirmed)

    async def _wait_out_throttling(self) -> None:
        loop = asyncio.get_running_loop()
        while (delay := self._throttle_until - loop.time()) > 0 and not self._halt.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._halt.wait(), delay)

    def _throttled(self, reason: str) -> None:
        loop = asyncio.get_running_loop()
        self._run.throttled += 1
        now = loop.time()
        if self._throttle_since is None:
            self._throttle_since = now
        elif now - self._throttle_since >= self._policy.throttle_give_up.total_seconds():
            self._fault(reason)
            return
        if self._throttle_until <= now:  # one pause per wave, not one per worker
            self._throttle_until = now + self._backoff
            self._backoff = min(self._backoff * 2, self._policy.throttle_max_backoff)
            log.warning("throttled; pausing %.1f s: %s", self._throttle_until - now, reason)

    def _fault(self, reason: str) -> None:
        if not self._run.fault and not self._run.interrupted:
            self._run.fault = reason
        self._halt.set()

    async def _give_back(self, rows: list[ClaimedRow] | list[Outcome]) -> None:
        """Unsent rows go back to ``pending`` through the recorder (fenced like any record)."""
        for row in rows:
            if isinstance(row, Outcome):
                await self._recorder.add(row)
            else:
                await self._recorder.add(
                    Outcome(row.subscriber_id, DeliveryStatus.PENDING, "", count_attempt=False)
                )

    async def _renew(self, finished: asyncio.Event) -> None:
        every = self._policy.lease.total_seconds() / 3
        while not finished.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(finished.wait(), every)
            if not finished.is_set():
                # Never beside a group commit: both update this owner's rows, and two
                # transactions locking the same rows in another order could deadlock.
                async with self._recorder.lock:
                    now = self._clock()
                    await self._ledger.renew_leases(
                        self._edition, self._owner, now + self._policy.lease
                    )

    async def _watch_stop(self) -> None:
        await self._stop.wait()
        self._run.interrupted = True
        self._halt.set()
