"""Pure rules of the sender: what a reply means for a row, and the circuit breaker.

- :func:`outcome_for` turns a mailer's answer for one claimed row into the ``Outcome``
  the ledger records: a 4xx defers the row with exponential backoff until
  ``max_attempts``, then expires it; a first ``uncertain`` answer is retried once,
  later, with the same Message-ID (the retry is a possible duplicate); a second one is
  final.
- :class:`Breaker` holds back ``failed`` outcomes while they come in a streak of the
  same kind (``"550 5.3.0"``) for different readers; codes about one mailbox
  (:data:`MAILBOX_CODES`) are genuine bounces and never held. A success or another kind lets the
  streak through as genuine bounces; ``threshold`` in a row trips the breaker, and the
  held rows go back to their readers unblamed: a relay rejecting everyone alike is
  refusing the site, whatever its words.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from digest.delivery.replies import failure_kind
from digest.models import ClaimedRow, DeliveryStatus, Outcome, SendResult

# RFC 3463 codes that speak of one mailbox (unknown, moved, disabled, full): a run of
# them is a run of bounces (a resend of failed rows is all of them), not a refusal of
# the site, so the breaker lets them through.
MAILBOX_CODES = frozenset({"5.1.1", "5.1.6", "5.1.10", "5.2.1", "5.2.2"})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 8  # temporary failures before a row expires (about 21 h in all)
    retry_after: timedelta = timedelta(minutes=10)  # doubles after each temporary failure
    uncertain_retry_after: timedelta = timedelta(minutes=10)

    def next_try(self, attempts: int, now: datetime) -> datetime:
        """When a row deferred for the ``attempts``-th time may be tried again."""
        wait: timedelta = self.retry_after * 2 ** max(0, attempts - 1)
        return now + wait


def outcome_for(row: ClaimedRow, result: SendResult, now: datetime, policy: RetryPolicy) -> Outcome:
    """The ledger's record of ``result`` for ``row`` (see the module docstring)."""
    attempts = row.attempts + 1
    if result.status is DeliveryStatus.DEFERRED:
        if attempts >= policy.max_attempts:
            return Outcome(
                row.subscriber_id,
                DeliveryStatus.EXPIRED,
                f"gave up after {attempts} attempts: {result.reply}",
            )
        return Outcome(
            row.subscriber_id, result.status, result.reply, policy.next_try(attempts, now)
        )
    if result.status is DeliveryStatus.UNCERTAIN and not row.duplicate:
        return Outcome(
            row.subscriber_id,
            result.status,
            f"{result.reply}; retried once later with the same Message-ID",
            now + policy.uncertain_retry_after,
        )
    return Outcome(row.subscriber_id, result.status, result.reply)


class Breaker:
    """Holds a streak of equal failures until it proves genuine or trips; see above."""

    def __init__(self, threshold: int) -> None:
        self.threshold = max(1, threshold)
        self.tripped = False
        self._kind = ""
        self._held: list[Outcome] = []

    def observe(self, row: ClaimedRow, outcome: Outcome) -> list[Outcome]:
        """Take one outcome; returns the outcomes that may be recorded now."""
        if self.tripped:
            if outcome.status is DeliveryStatus.FAILED:
                return [self._unblamed(outcome)]
            return [outcome]
        if outcome.status is not DeliveryStatus.FAILED:
            return [*self._release(), outcome]
        kind = failure_kind(outcome.reply)
        if kind.partition(" ")[2] in MAILBOX_CODES:  # about this reader's mailbox alone
            return [*self._release(), outcome]
        released = self._release() if kind != self._kind else []
        self._kind = kind
        self._held.append(outcome)
        if len(self._held) >= self.threshold:
            self.tripped = True
        return released

    def drain(self, *, tripped: bool) -> list[Outcome]:
        """What is still held, at the end: genuine failures, or given back if ``tripped``."""
        held, self._held = self._held, []
        if tripped or self.tripped:
            return [self._unblamed(outcome) for outcome in held]
        return held

    def reason(self) -> str:
        return (
            f"{self.threshold} readers in a row were refused with the same reply"
            f" ({self._held[-1].reply if self._held else self._kind}): the relay is refusing"
            " the site, not the readers. The edition is paused and those readers were not"
            " marked as bounced; check the relay before resuming."
        )

    def _release(self) -> list[Outcome]:
        held, self._held = self._held, []
        self._kind = ""
        return held

    @staticmethod
    def _unblamed(outcome: Outcome) -> Outcome:
        return Outcome(
            outcome.subscriber_id,
            DeliveryStatus.PENDING,
            f"held back by the circuit breaker: {outcome.reply}",
            count_attempt=False,
        )
