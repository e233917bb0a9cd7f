"""The edition use cases against a real SMTP server and a real SQLite ledger."""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime, timedelta
from email.parser import BytesParser
from pathlib import Path

import pytest

from digest import editions
from digest.app import App
from digest.delivery_rules import RetryPolicy
from digest.errors import DigestError
from digest.models import DeliveryStatus, Edition, EditionStatus, Letter, Outcome, SendResult
from digest.ports import Mailer
from digest.subscriptions import add_subscriber, unsubscribe

from support.deployment import SAMPLE_POSTS, Deployment, running_deployment
from support.smtpd import closed_port, running_smtpd

NOW = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
READERS = ("ana@example.net", "ben@example.org", "cy@example.com")
RETRY = RetryPolicy()


def message_id(data: bytes) -> str:
    return str(BytesParser().parsebytes(data)["Message-ID"])


async def open_with_readers(deployment: Deployment) -> tuple[App, Edition]:
    app = deployment.app
    for address in READERS:
        add_subscriber(app.store, address, "daily", app.config.newsletters, NOW)
    await app.fetch(None, NOW)
    opened = editions.open_edition(
        app.store,
        app.renderer,
        app.config.site,
        app.newsletter("daily"),
        app.secret,
        "2026-11-27T07:00",
        NOW,
    )
    assert opened.created
    assert opened.recipients == 3
    assert opened.renderings is not None
    return app, opened.edition


async def test_resume_after_a_crash_sends_only_unconfirmed_rows(tmp_path: Path) -> None:
    async with (
        running_smtpd() as smtpd,
        running_deployment(tmp_path, smtp_port=smtpd.port, now=NOW) as deployment,
    ):
        app, edition = await open_with_readers(deployment)
        ledger = app.store.list_deliveries(edition.id)
        assert [row.status for row in ledger] == [DeliveryStatus.PENDING] * 3
        # A previous process confirmed the first send, then died.
        [claimed] = app.store.claim_batch(edition.id, "dead", NOW, NOW, 1).rows
        app.store.record_batch(
            edition.id, "dead", [Outcome(claimed.subscriber_id, DeliveryStatus.SENT)], NOW
        )

        reports = await app.resume()

        left = sorted(row.email for row in ledger if row.subscriber_id != claimed.subscriber_id)
        assert sorted(m.recipients[0] for m in smtpd.messages) == left
        assert reports[0].edition.status is EditionStatus.SENT
        sent_ids = {message_id(m.data) for m in smtpd.messages}
        assert sent_ids == {r.message_id for r in ledger if r.email in left}  # stored before


async def test_transport_fault_pauses_then_resumes_without_blaming_readers(
    tmp_path: Path,
) -> None:
    dead = closed_port()
    async with running_deployment(tmp_path / "a", smtp_port=dead, now=NOW) as deployment:
        app, edition = await open_with_readers(deployment)
        report = await app.send_edition(edition.id)
        assert f"127.0.0.1:{dead}" in report.paused
        assert report.edition.status is EditionStatus.PAUSED
        rows = app.store.list_deliveries(edition.id)
        assert {(row.status, row.attempts) for row in rows} == {(DeliveryStatus.PENDING, 0)}
        database = app.config.database_url

    # The relay is back (same database, a new process pointing at a live server).
    async with (
        running_smtpd() as smtpd,
        running_deployment(tmp_path / "a", smtp_port=smtpd.port, now=NOW) as deployment,
    ):
        assert deployment.app.config.database_url == database
        [report] = await deployment.app.resume()
        assert report.edition.status is EditionStatus.SENT
        assert len(smtpd.messages) == 3


async def test_rejections_are_recorded_per_reader(tmp_path: Path) -> None:
    async with (
        running_smtpd() as smtpd,
        running_deployment(tmp_path, smtp_port=smtpd.port, now=NOW) as deployment,
    ):
        smtpd.faults.reject_recipients = {
            "ben@example.org": "550 5.1.1 no such user",
            "cy@example.com": "451 4.2.0 mailbox busy",
        }
        app, edition = await open_with_readers(deployment)
        report = await app.send_edition(edition.id)
        by_email = {row.email: row for row in app.store.list_deliveries(edition.id)}
        assert by_email["ana@example.net"].status is DeliveryStatus.SENT
        assert by_email["ben@example.org"].status is DeliveryStatus.FAILED
        assert "no such user" in by_email["ben@example.org"].reply
        assert by_email["cy@example.com"].status is DeliveryStatus.DEFERRED
        assert report.edition.status is EditionStatus.SENDING  # the deferred one is owed
        assert report.unfinished == 1
        statuses = {s.subscriber.email: s.status for s in app.store.list_subscriptions()}
        assert statuses["ben@example.org"] == "bounced"  # never mailed again

        smtpd.faults.reject_recipients = {}
        [early] = await app.resume()
        assert early.edition.status is EditionStatus.SENDING  # the backoff is not over yet
        deployment.clock.now = NOW + RETRY.retry_after
        [again] = await app.resume()
        assert again.edition.status is EditionStatus.SENT
        assert again.counts[DeliveryStatus.SENT] == 2
        assert [m.recipients[0] for m in smtpd.messages].count("cy@example.com") == 1


async def test_deferred_too_often_expires(tmp_path: Path) -> None:
    async with (
        running_smtpd() as smtpd,
        running_deployment(tmp_path, smtp_port=smtpd.port, now=NOW) as deployment,
    ):
        smtpd.faults.reject_recipients = {"cy@example.com": "451 4.2.0 mailbox busy"}
        app, edition = await open_with_readers(deployment)
        for attempt in range(RETRY.max_attempts):
            deployment.clock.now = NOW + timedelta(days=attempt)  # past every backoff
            await app.resume()
        row = next(r for r in app.store.list_deliveries(edition.id) if r.email == "cy@example.com")
        assert row.status is DeliveryStatus.EXPIRED
        assert row.attempts == RETRY.max_attempts
        assert app.store.get_edition(edition.id).status is EditionStatus.SENT


async def test_reader_who_left_before_their_turn_is_suppressed(tmp_path: Path) -> None:
    async with (
        running_smtpd() as smtpd,
        running_deployment(tmp_path, smtp_port=smtpd.port, now=NOW) as deployment,
    ):
        app, edition = await open_with_readers(deployment)
        leaving = app.store.list_deliveries(edition.id)[0]
        unsubscribe(app.store, leaving.subscriber_id, "daily", NOW)
        report = await app.send_edition(edition.id)
        assert report.counts[DeliveryStatus.SUPPRESSED] == 1
        assert leaving.email not in [m.recipients[0] for m in smtpd.messages]
        assert len(smtpd.messages) == 2


async def test_no_readers_skips_the_firing_but_keeps_the_posts(tmp_path: Path) -> None:
    async with (
        running_smtpd() as smtpd,
        running_deployment(tmp_path, smtp_port=smtpd.port, now=NOW) as deployment,
    ):
        app = deployment.app
        empty = await app.run_newsletter("daily", "2026-11-27T07:00", NOW)
        assert empty.edition.status is EditionStatus.SKIPPED
        assert empty.edition.error == editions.NO_READERS
        assert empty.edition.post_keys == ()

        add_subscriber(app.store, "ana@example.net", "daily", ["daily"], NOW)
        later = NOW + timedelta(days=1)
        report = await app.run_newsletter("daily", "2026-11-28T07:00", later)
        assert report.edition.status is EditionStatus.SENT
        assert len(report.edition.post_keys) == 3  # the catch-up holds the sample posts
        assert len(smtpd.messages) == 1


async def test_a_firing_in_readers_zones_with_nobody_due_does_nothing(tmp_path: Path) -> None:
    async with (
        running_smtpd() as smtpd,
        running_deployment(tmp_path, smtp_port=smtpd.port, now=NOW) as deployment,
    ):
        app = deployment.app
        sub, _ = add_subscriber(app.store, "ana@example.net", "daily", ["daily"], NOW)
        app.store.set_timezone(sub.subscriber.id, "Asia/Tokyo")
        asked: list[tuple[str, object]] = []

        def nobody(zone: str, last_sent: datetime | None) -> bool:
            asked.append((zone, last_sent))
            return False

        assert await app.run_newsletter("daily", "daily@t1", NOW, due=nobody) is None
        assert asked == [("Asia/Tokyo", None)]
        assert app.store.list_editions("daily") == []  # no skipped edition either
        assert app.store.get_source_health("posts") is None  # and nothing was fetched

        report = await app.run_newsletter("daily", "daily@t2", NOW, due=lambda z, s: True)
        assert report is not None
        assert report.edition.status is EditionStatus.SENT
        assert [m.recipients[0] for m in smtpd.messages] == ["ana@example.net"]


async def test_an_edition_is_never_sent_twice_at_once_by_one_process(tmp_path: Path) -> None:
    async with (
        running_smtpd() as smtpd,
        running_deployment(tmp_path, smtp_port=smtpd.port, now=NOW) as deployment,
    ):
        app, edition = await open_with_readers(deployment)
        # A firing and the resume loop reach the same edition at the same moment.
        first, _resumed = await asyncio.gather(app.send_edition(edition.id), app.resume())
        assert first.counts[DeliveryStatus.SENT] == 3
        assert sorted(m.recipients[0] for m in smtpd.messages) == sorted(READERS)


async def test_two_processes_sending_one_edition_never_double_send(tmp_path: Path) -> None:
    async with (
        running_smtpd() as smtpd,
        running_deployment(tmp_path / "a", smtp_port=smtpd.port, now=NOW) as first,
    ):
        _, edition = await open_with_readers(first)
        # A second process (its own engine, store and mailer) on the same database.
        async with running_deployment(tmp_path / "a", smtp_port=smtpd.port, now=NOW) as second:
            assert second.app is not first.app
            assert second.app.owner != first.app.owner
            await asyncio.gather(first.app.send_edition(edition.id), second.app.resume())
        assert sorted(m.recipients[0] for m in smtpd.messages) == sorted(READERS)
        rows = first.app.store.list_deliveries(edition.id)
        assert [(row.attempts, row.duplicate) for row in rows] == [(1, False)] * 3
        assert first.app.store.get_edition(edition.id).status is EditionStatus.SENT


async def test_two_send_nows_at_once_never_send_a_post_twice(tmp_path: Path) -> None:
    """The double-send bug: two `digest send-now` at the same moment made two editions."""
    async with (
        running_smtpd() as smtpd,
        running_deployment(tmp_path / "a", smtp_port=smtpd.port, now=NOW) as first,
    ):
        for address in READERS:
            add_subscriber(first.app.store, address, "daily", ["daily"], NOW)
        async with running_deployment(tmp_path / "a", smtp_port=smtpd.port, now=NOW) as second:
            reports = await asyncio.gather(
                first.app.send_now("daily"), second.app.send_now("daily")
            )
        with_posts = {r.edition.id for r in reports if r.edition.post_keys}
        assert len(with_posts) == 1  # one edition took the posts
        assert sorted(m.recipients[0] for m in smtpd.messages) == sorted(READERS)


async def test_send_now_resumes_the_unfinished_edition_first(tmp_path: Path) -> None:
    async with (
        running_smtpd() as smtpd,
        running_deployment(tmp_path, smtp_port=smtpd.port, now=NOW) as deployment,
    ):
        app, edition = await open_with_readers(deployment)  # opened, then "interrupted"
        report = await app.send_now("daily")
        assert report.resumed
        assert report.edition.id == edition.id
        assert report.edition.status is EditionStatus.SENT
        assert len(smtpd.messages) == 3
        nothing_new = await app.send_now("daily")
        assert not nothing_new.resumed
        assert nothing_new.edition.status is EditionStatus.SKIPPED


async def test_the_operator_pauses_resumes_cancels_and_resends(tmp_path: Path) -> None:
    async with (
        running_smtpd() as smtpd,
        running_deployment(tmp_path, smtp_port=smtpd.port, now=NOW) as deployment,
    ):
        app, edition = await open_with_readers(deployment)
        editions.hold(app.store, edition.id)
        held = await app.send_edition(edition.id)
        assert (held.edition.status, len(smtpd.messages)) == (EditionStatus.HELD, 0)
        assert await app.resume() == []  # the resume loop leaves a held edition alone
        with pytest.raises(DigestError, match="is held: only a sending"):
            editions.hold(app.store, edition.id)
        editions.release(app.store, edition.id)
        smtpd.faults.reject_recipients = {"ben@example.org": "550 5.1.1 no such user"}
        sent = await app.send_edition(edition.id)
        assert sent.edition.status is EditionStatus.SENT
        with pytest.raises(DigestError, match="is sent: only an unfinished edition"):
            editions.cancel(app.store, edition.id, NOW)

        smtpd.faults.reject_recipients = {}
        reopened, count = editions.reopen(app.store, edition.id, editions.RESEND_FAILED)
        assert (reopened.status, count) == (EditionStatus.SENDING, 1)
        again = await app.send_edition(edition.id)
        assert again.counts == {DeliveryStatus.SENT: 3}
        assert [m.recipients[0] for m in smtpd.messages].count("ben@example.org") == 1


async def test_cancel_stops_an_edition_and_keeps_what_was_sent(tmp_path: Path) -> None:
    async with (
        running_smtpd() as smtpd,
        running_deployment(tmp_path, smtp_port=smtpd.port, now=NOW) as deployment,
    ):
        app, edition = await open_with_readers(deployment)
        cancelled, count = editions.cancel(app.store, edition.id, NOW)
        assert (cancelled.status, count) == (EditionStatus.CANCELLED, 3)
        report = await app.send_edition(edition.id)
        assert report.counts == {DeliveryStatus.CANCELLED: 3}
        assert smtpd.messages == []


class ExplodingMailer:
    """The real SMTP mailer, with a bug injected for one address."""

    def __init__(self, inner: Mailer, bad: str) -> None:
        self.inner, self.bad = inner, bad

    async def send(self, letter: Letter) -> SendResult:
        if letter.recipient == self.bad:
            raise RuntimeError("boom")
        return await self.inner.send(letter)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_an_unexpected_error_pauses_and_gives_the_row_back(tmp_path: Path) -> None:
    async with (
        running_smtpd() as smtpd,
        running_deployment(tmp_path, smtp_port=smtpd.port, now=NOW) as deployment,
    ):
        app, edition = await open_with_readers(deployment)
        app._mailer = ExplodingMailer(app.mailer(), "ana@example.net")
        report = await app.send_edition(edition.id)
        assert report.edition.status is EditionStatus.PAUSED
        assert "unexpected RuntimeError: boom" in report.paused
        await asyncio.sleep(0.2)  # nothing keeps sending in the background
        assert len(smtpd.messages) < 3
        by_email = {row.email: row for row in app.store.list_deliveries(edition.id)}
        ana = by_email["ana@example.net"]
        assert (ana.status, ana.attempts) == (DeliveryStatus.PENDING, 0)  # no lease to wait

        app._mailer = None
        [resumed] = await app.resume()
        assert resumed.edition.status is EditionStatus.SENT
        assert sorted(m.recipients[0] for m in smtpd.messages) == sorted(READERS)


async def test_rows_waiting_for_a_retry_do_not_hold_back_new_posts(tmp_path: Path) -> None:
    posts = tmp_path / "posts"
    shutil.copytree(SAMPLE_POSTS, posts)
    async with (
        running_smtpd() as smtpd,
        running_deployment(
            tmp_path / "site", smtp_port=smtpd.port, now=NOW, posts_dir=posts
        ) as deployment,
    ):
        app = deployment.app
        for address in READERS:
            add_subscriber(app.store, address, "daily", ["daily"], NOW)
        smtpd.faults.reject_recipients = {"cy@example.com": "452 4.2.2 mailbox full"}
        first = await app.send_now("daily")
        assert (first.edition.status, first.unfinished) == (EditionStatus.SENDING, 1)

        (posts / "2026-11-27-new.md").write_text(
            "---\ntitle: A New Post\ndate: 2026-11-27T05:00:00Z\n---\nFresh analysis.\n",
            encoding="utf-8",
        )
        deployment.clock.now = NOW + timedelta(minutes=5)
        second = await app.send_now("daily")
        assert not second.resumed  # the deferred row waits; the new post goes out now
        assert second.edition.id != first.edition.id
        assert second.counts == {DeliveryStatus.SENT: 2, DeliveryStatus.DEFERRED: 1}
        assert app.store.get_edition(first.edition.id).status is EditionStatus.SENDING
        assert [e.id for e in app.unfinished("daily")] == [first.edition.id, second.edition.id]
