"""The sender against a fault-injecting SMTP server (aiosmtpd) and the in-memory store.

Every reply class the sender must tell apart, the circuit breaker, fencing, rate limits
with an injected clock, and a stop in the middle of an edition.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.parser import BytesParser

import pytest

from digest import editions
from digest.config import SmtpConfig
from digest.delivery.smtp import SmtpMailer
from digest.delivery_rules import RetryPolicy
from digest.models import DeliveryStatus, EditionStatus, Letter, Rendered, SendResult
from digest.ports import Mailer
from digest.render import UNSUBSCRIBE_URL
from digest.sending import RateLimits, SendPolicy
from digest.store import OffloadedLedger

from support.edition import sample_newsletter, sample_site
from support.memory import MemoryStore
from support.records import open_for_all, subscribe
from support.smtpd import RecordingServer, running_smtpd

NOW = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
SECRET = b"sending-test-secret-" + b"x" * 32
SITE = sample_site()
NEWSLETTER = sample_newsletter()
RENDERED = Rendered(
    "Transmission Daily: a test",
    f'<html><body><p>Hello</p><a href="{UNSUBSCRIBE_URL}">Unsubscribe</a></body></html>\n',
    f"Hello\n\nUnsubscribe: {UNSUBSCRIBE_URL}\n",
)
FAST = SendPolicy(
    concurrency=4,
    batch_size=5,
    flush_every=0.01,
    flush_size=3,
    throttle_backoff=0.01,
    throttle_max_backoff=0.02,
    breaker_threshold=5,
)


class Clock:
    """A clock the test moves; ``step`` advances it on every reading."""

    def __init__(self, now: datetime, step: timedelta = timedelta(0)) -> None:
        self.now, self.step = now, step

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now


@dataclass
class Bench:
    store: MemoryStore
    smtpd: RecordingServer
    mailer: Mailer
    clock: Clock
    edition_id: str
    emails: list[str]

    async def send(self, policy: SendPolicy = FAST, **options: object) -> editions.SendReport:
        ledger = OffloadedLedger(self.store)
        try:
            return await editions.send_edition(
                self.store,
                ledger,
                options.pop("mailer", self.mailer),  # type: ignore[arg-type]
                SITE,
                NEWSLETTER,
                SECRET,
                self.store.get_edition(self.edition_id),
                self.clock,
                owner=str(options.pop("owner", "sender-a")),
                policy=policy,
                **options,  # type: ignore[arg-type]
            )
        finally:
            ledger.close()

    def rows(self) -> dict[str, tuple[DeliveryStatus, int, bool]]:
        return {
            r.email: (r.status, r.attempts, r.duplicate)
            for r in self.store.list_deliveries(self.edition_id)
        }

    def received(self) -> list[str]:
        return sorted(m.recipients[0] for m in self.smtpd.messages)


@asynccontextmanager
async def bench(readers: int = 12, clock: Clock | None = None) -> AsyncIterator[Bench]:
    store = MemoryStore()
    emails = [f"r{i:03}@example.net" for i in range(readers)]
    for email in emails:
        subscribe(store, email, NOW, newsletter=NEWSLETTER.id)
    opened = open_for_all(
        store,
        newsletter_id=NEWSLETTER.id,
        period_key="p",
        now=NOW,
        post_keys=["k1"],
        rendered=RENDERED,
        message_id=lambda sid: f"<{sid}@example.org>",
        edition_id="e1",
        no_readers="none",
    )
    assert opened is not None
    async with running_smtpd() as smtpd:
        config = SmtpConfig(host=smtpd.host, port=smtpd.port, tls="none", timeout_seconds=2)
        mailer = SmtpMailer(config, local_hostname="client.test")
        try:
            yield Bench(store, smtpd, mailer, clock or Clock(NOW), "e1", emails)
        finally:
            await mailer.aclose()


async def test_everyone_gets_one_letter_with_their_own_link_and_message_id() -> None:
    async with bench() as b:
        report = await b.send()
        assert report.edition.status is EditionStatus.SENT
        assert report.counts == {DeliveryStatus.SENT: 12}
        assert b.received() == b.emails
        by_email = {r.email: r for r in b.store.list_deliveries("e1")}
        for message in b.smtpd.messages:
            parsed = BytesParser().parsebytes(message.data)
            row = by_email[message.recipients[0]]
            assert parsed["Message-ID"] == row.message_id
            url = editions.unsubscribe_url(SITE, SECRET, row.subscriber_id, NEWSLETTER.id)
            assert parsed["List-Unsubscribe"] == f"<{url}>"
        assert report.duplicate_bound == FAST.concurrency + FAST.max_unflushed


@pytest.mark.parametrize(
    ("fault", "reply"),
    [
        ("rcpt", "554 5.7.1 Service unavailable; Client host [203.0.113.5] blocked using zen"),
        ("rcpt", "550 5.7.1 Sender address rejected: not owned by user"),
        ("rcpt", "550 Message rejected: your IP is listed at b.barracudacentral.org"),
        ("data", "550 5.7.1 Message rejected as spam by Content Filtering"),
        ("data", "554 5.7.26 Unauthenticated email is not accepted (DMARC policy)"),
    ],
)
async def test_a_refusal_of_the_site_pauses_without_blaming_readers(fault: str, reply: str) -> None:
    async with bench() as b:
        if fault == "rcpt":
            b.smtpd.faults.rcpt_script = ["250 ok", "250 ok", reply]
        else:
            b.smtpd.faults.data_script = ["250 ok", "250 ok", reply]
        report = await b.send(replace(FAST, concurrency=1))
        assert report.edition.status is EditionStatus.PAUSED
        assert "refused the site" in report.paused
        statuses = [status for status, _, _ in b.rows().values()]
        assert statuses.count(DeliveryStatus.SENT) == 2
        assert DeliveryStatus.FAILED not in statuses
        unsent = [attempts for status, attempts, _ in b.rows().values() if status != "sent"]
        assert unsent == [0] * 10  # every reader kept their attempts
        assert {s.status for s in b.store.list_subscriptions()} == {"confirmed"}


async def test_throttling_slows_down_and_never_uses_up_attempts() -> None:
    async with bench() as b:
        b.smtpd.faults.rcpt_script = ["451 4.7.1 Rate limited, slow down"] * 3
        report = await b.send()
        assert report.edition.status is EditionStatus.SENT
        assert report.run.throttled == 3
        assert b.received() == b.emails
        assert {attempts for _, attempts, _ in b.rows().values()} == {1}


async def test_a_relay_that_keeps_throttling_pauses_the_edition() -> None:
    async with bench() as b:
        b.smtpd.faults.reject_recipients = dict.fromkeys(b.emails, "421 4.7.0 Try again later")
        policy = replace(FAST, throttle_give_up=timedelta(seconds=0.05))
        report = await b.send(policy)
        assert report.edition.status is EditionStatus.PAUSED
        assert "throttling" in report.paused
        assert {(s, a) for s, a, _ in b.rows().values()} == {(DeliveryStatus.PENDING, 0)}


async def test_a_drop_after_the_final_dot_is_retried_once_with_the_same_message_id() -> None:
    async with bench(readers=3) as b:
        b.smtpd.faults.drop_after_data_once = {b.emails[1]}
        first = await b.send()
        assert b.rows()[b.emails[1]] == (DeliveryStatus.UNCERTAIN, 1, False)
        assert first.edition.status is EditionStatus.SENDING  # owed its one retry
        assert first.unfinished == 1
        b.clock.now = NOW + RetryPolicy().uncertain_retry_after + timedelta(seconds=1)
        second = await b.send()
        assert second.edition.status is EditionStatus.SENT
        assert b.rows()[b.emails[1]] == (DeliveryStatus.SENT, 2, True)
        assert second.duplicates == 1
        copies = [m for m in b.smtpd.messages if m.recipients[0] == b.emails[1]]
        ids = {BytesParser().parsebytes(m.data)["Message-ID"] for m in copies}
        assert (len(copies), len(ids)) == (2, 1)  # the server got it twice, one Message-ID


async def test_partial_failures_within_a_batch_are_recorded_per_reader() -> None:
    async with bench() as b:
        gone = {b.emails[2]: "550 5.1.1 no such user", b.emails[7]: "552 5.2.2 mailbox full"}
        busy = {b.emails[4]: "450 4.2.1 mailbox busy"}
        b.smtpd.faults.reject_recipients = gone | busy
        report = await b.send()
        rows = b.rows()
        assert [e for e, (s, _, _) in rows.items() if s is DeliveryStatus.FAILED] == sorted(gone)
        assert rows[b.emails[4]][:2] == (DeliveryStatus.DEFERRED, 1)
        assert report.counts[DeliveryStatus.SENT] == 9
        bounced = {
            s.subscriber.email for s in b.store.list_subscriptions() if s.status == "bounced"
        }
        assert bounced == set(gone)


async def test_the_circuit_breaker_trips_on_equal_failures_and_gives_the_rows_back() -> None:
    async with bench(readers=12) as b:
        reply = "550 5.3.0 Other mail system problem"
        b.smtpd.faults.reject_recipients = dict.fromkeys(b.emails, reply)
        report = await b.send(replace(FAST, concurrency=1, breaker_threshold=5))
        assert report.edition.status is EditionStatus.PAUSED
        assert "5 readers in a row" in report.paused
        assert {s for s, _, _ in b.rows().values()} == {DeliveryStatus.PENDING}
        assert {a for _, a, _ in b.rows().values()} == {0}
        assert {s.status for s in b.store.list_subscriptions()} == {"confirmed"}


async def test_a_run_of_unknown_mailboxes_is_bounces_not_a_refusal_of_the_site() -> None:
    """A resend of failed rows is all dead addresses: the breaker must not trip on them."""
    async with bench(readers=12) as b:
        b.smtpd.faults.reject_recipients = dict.fromkeys(b.emails, "550 5.1.1 User unknown")
        report = await b.send(replace(FAST, concurrency=1, breaker_threshold=5))
        assert report.edition.status is EditionStatus.SENT
        assert report.counts == {DeliveryStatus.FAILED: 12}


async def test_a_streak_broken_by_a_success_is_real_bounces() -> None:
    async with bench(readers=8) as b:
        bad = b.emails[:4]
        b.smtpd.faults.reject_recipients = dict.fromkeys(bad, "550 5.3.0 Other problem")
        report = await b.send(replace(FAST, concurrency=1, breaker_threshold=5))
        assert report.edition.status is EditionStatus.SENT
        assert [e for e, (s, _, _) in b.rows().items() if s is DeliveryStatus.FAILED] == bad


class GatedMailer:
    """Holds every send until ``gate`` opens (to let another sender take the rows over)."""

    def __init__(self, inner: Mailer, holding: int) -> None:
        self.inner, self.gate, self.waiting = inner, asyncio.Event(), 0
        self.holding, self.all_held = holding, asyncio.Event()

    async def send(self, letter: Letter) -> SendResult:
        self.waiting += 1
        if self.waiting == self.holding:
            self.all_held.set()
        await self.gate.wait()
        return await self.inner.send(letter)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_sender_whose_lease_was_taken_over_cannot_overwrite_the_result() -> None:
    async with bench(readers=2) as b:
        slow = GatedMailer(b.mailer, holding=2)
        policy = replace(FAST, concurrency=2, batch_size=2, pipeline_depth=1)
        first = asyncio.create_task(b.send(policy, mailer=slow, owner="stalled"))
        await asyncio.wait_for(slow.all_held.wait(), 5)
        # The stalled sender's lease runs out (it stopped renewing); another takes over.
        b.clock.now = NOW + policy.lease + timedelta(seconds=1)
        b.smtpd.faults.reject_recipients = {}
        taken = await b.send(policy, owner="successor")
        assert taken.edition.status is EditionStatus.SENT
        b.smtpd.faults.reject_recipients = dict.fromkeys(b.emails, "550 5.1.1 late and wrong")
        slow.gate.set()
        stale = await first
        assert stale.run.fenced == 2  # both late results were refused by the ledger
        assert {status for status, _, _ in b.rows().values()} == {DeliveryStatus.SENT}
        assert {dup for _, _, dup in b.rows().values()} == {True}  # counted as duplicates


def sent_times(b: Bench) -> list[datetime]:
    return sorted(
        r.updated_at
        for r in b.store.list_deliveries("e1")
        if r.status is DeliveryStatus.SENT and r.updated_at is not None
    )


async def test_messages_per_second_never_exceed_the_limit() -> None:
    clock = Clock(NOW, step=timedelta(milliseconds=20))
    async with bench(readers=15, clock=clock) as b:
        policy = replace(FAST, limits=RateLimits(per_second=4), quota_poll=0.001)
        report = await b.send(policy)
        assert report.edition.status is EditionStatus.SENT
        times = sent_times(b)
        assert len(times) == 15
        for t in times:
            in_window = [u for u in times if t - timedelta(seconds=1) < u <= t]
            assert len(in_window) <= 4
        assert times[-1] - times[0] >= timedelta(seconds=3)


async def test_a_daily_quota_holds_across_runs_and_waits_for_the_window() -> None:
    clock = Clock(NOW)
    async with bench(readers=10, clock=clock) as b:
        policy = replace(FAST, limits=RateLimits(per_day=4))
        first = await b.send(policy)
        assert first.counts[DeliveryStatus.SENT] == 4
        assert "daily quota (4 messages) is used up" in first.run.waiting
        again = await b.send(policy, owner="restarted")  # a restart cannot exceed it
        assert again.counts[DeliveryStatus.SENT] == 4
        clock.now = NOW + timedelta(days=1, seconds=1)
        later = await b.send(policy)
        assert later.counts[DeliveryStatus.SENT] == 8
        assert len(b.smtpd.messages) == 8


class StoppingMailer:
    """Sets ``stop`` after ``after`` letters went out, as a SIGTERM in mid-edition would."""

    def __init__(self, inner: Mailer, stop: asyncio.Event, after: int) -> None:
        self.inner, self.stop, self.after, self.sent = inner, stop, after, 0

    async def send(self, letter: Letter) -> SendResult:
        result = await self.inner.send(letter)
        self.sent += 1
        if self.sent == self.after:
            self.stop.set()
        return result


@pytest.mark.parametrize("after", [1, 5])
async def test_a_stop_lets_in_flight_sends_finish_and_gives_the_rest_back(after: int) -> None:
    async with bench(readers=30) as b:
        stop = asyncio.Event()
        mailer = StoppingMailer(b.mailer, stop, after)
        report = await b.send(mailer=mailer, stop=stop)
        assert report.run.interrupted
        assert report.edition.status is EditionStatus.SENDING
        rows = b.rows()
        sent = [e for e, (s, _, _) in rows.items() if s is DeliveryStatus.SENT]
        assert sorted(sent) == b.received()  # every letter that went out is recorded
        assert after <= len(sent) <= after + FAST.concurrency
        rest = {(s, a) for e, (s, a, _) in rows.items() if e not in sent}
        assert rest == {(DeliveryStatus.PENDING, 0)}  # given back, not left claimed
        finished = await b.send()
        assert finished.edition.status is EditionStatus.SENT
        assert b.received() == b.emails


async def test_a_stop_ends_pipelined_batches_at_once() -> None:
    async with bench(readers=200) as b:
        stop = asyncio.Event()
        b.smtpd.faults.data_delay = 0.002

        async def stop_after(count: int) -> None:
            for _ in range(10_000):
                if len(b.smtpd.messages) >= count:
                    break
                await asyncio.sleep(0.001)
            stop.set()

        watcher = asyncio.create_task(stop_after(10))
        report = await b.send(replace(FAST, batch_size=50, pipeline_depth=16), stop=stop)
        await watcher
        assert report.run.interrupted
        sent = [e for e, (s, _, _) in b.rows().items() if s is DeliveryStatus.SENT]
        assert sorted(sent) == b.received()
        assert len(sent) <= 10 + 2 * FAST.concurrency  # not the rest of 16-letter batches
        rest = {(s, a) for e, (s, a, _) in b.rows().items() if e not in sent}
        assert rest == {(DeliveryStatus.PENDING, 0)}
