"""The send use case against a real SMTP server and a real SQLite ledger."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email.parser import BytesParser
from pathlib import Path

from digest import editions
from digest.models import DeliveryStatus, EditionStatus, SendResult
from digest.ports import Mailer
from digest.subscriptions import add_subscriber, unsubscribe

from support.deployment import running_deployment
from support.smtpd import closed_port, running_smtpd

NOW = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
READERS = ("ana@example.net", "ben@example.org", "cy@example.com")


def message_id(data: bytes) -> str:
    return str(BytesParser().parsebytes(data)["Message-ID"])


async def open_with_readers(deployment: object) -> tuple[object, editions.Edition]:
    app = deployment.app  # type: ignore[attr-defined]
    for address in READERS:
        add_subscriber(app.store, address, "daily", app.config.newsletters, NOW)
    await app.fetch(None, NOW)
    edition, created = editions.open_edition(
        app.store,
        app.renderer,
        app.config.site,
        app.newsletter("daily"),
        app.secret,
        "2026-11-27T07:00",
        NOW,
    )
    assert created
    return app, edition


async def test_resume_after_a_crash_sends_only_unconfirmed_rows(tmp_path: Path) -> None:
    async with (
        running_smtpd() as smtpd,
        running_deployment(tmp_path, smtp_port=smtpd.port, now=NOW) as deployment,
    ):
        app, edition = await open_with_readers(deployment)
        store = app.store  # type: ignore[attr-defined]
        ledger = store.list_deliveries(edition.id)
        assert [row.status for row in ledger] == [DeliveryStatus.PENDING] * 3
        # A previous process confirmed the first send, then died.
        store.record_delivery(
            edition.id, ledger[0].subscriber_id, SendResult(DeliveryStatus.SENT), NOW
        )

        reports = await app.resume()  # type: ignore[attr-defined]

        assert sorted(m.recipients[0] for m in smtpd.messages) == list(READERS[1:])
        assert reports[0].edition.status is EditionStatus.SENT
        sent_ids = {message_id(m.data) for m in smtpd.messages}
        assert sent_ids == {row.message_id for row in ledger[1:]}  # stored before sending


async def test_transport_fault_pauses_then_resumes_without_blaming_readers(
    tmp_path: Path,
) -> None:
    dead = closed_port()
    async with running_deployment(tmp_path / "a", smtp_port=dead, now=NOW) as deployment:
        app, edition = await open_with_readers(deployment)
        report = await app._send(edition.id, None)  # type: ignore[attr-defined]
        assert report.paused
        assert f"127.0.0.1:{dead}" in report.paused
        assert report.edition.status is EditionStatus.PAUSED
        assert {row.status for row in app.store.list_deliveries(edition.id)} == {  # type: ignore[attr-defined]
            DeliveryStatus.PENDING
        }
        database = app.config.database_url  # type: ignore[attr-defined]

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
        report = await app._send(edition.id, None)  # type: ignore[attr-defined]
        by_email = {row.email: row for row in app.store.list_deliveries(edition.id)}  # type: ignore[attr-defined]
        assert by_email["ana@example.net"].status is DeliveryStatus.SENT
        assert by_email["ben@example.org"].status is DeliveryStatus.FAILED
        assert "no such user" in by_email["ben@example.org"].reply
        assert by_email["cy@example.com"].status is DeliveryStatus.DEFERRED
        assert report.edition.status is EditionStatus.SENDING  # the deferred one is pending

        smtpd.faults.reject_recipients = {}
        [early] = await app.resume()  # type: ignore[attr-defined]
        assert early.edition.status is EditionStatus.SENDING  # the backoff is not over yet
        deployment.clock.now = NOW + editions.RETRY_AFTER
        [again] = await app.resume()  # type: ignore[attr-defined]
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
        for attempt in range(editions.MAX_ATTEMPTS):
            deployment.clock.now = NOW + timedelta(days=attempt)  # past every backoff
            await app.resume()  # type: ignore[attr-defined]
        row = next(
            r
            for r in app.store.list_deliveries(edition.id)
            if r.email == "cy@example.com"  # type: ignore[attr-defined]
        )
        assert row.status is DeliveryStatus.EXPIRED
        assert row.attempts == editions.MAX_ATTEMPTS
        assert app.store.get_edition(edition.id).status is EditionStatus.SENT  # type: ignore[attr-defined]


async def test_reader_who_left_before_their_turn_is_suppressed(tmp_path: Path) -> None:
    async with (
        running_smtpd() as smtpd,
        running_deployment(tmp_path, smtp_port=smtpd.port, now=NOW) as deployment,
    ):
        app, edition = await open_with_readers(deployment)
        leaving = app.store.list_deliveries(edition.id)[0]  # type: ignore[attr-defined]
        unsubscribe(app.store, leaving.subscriber_id, "daily", NOW)  # type: ignore[attr-defined]
        report = await app._send(edition.id, None)  # type: ignore[attr-defined]
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


async def test_an_edition_is_never_sent_twice_at_once_by_one_process(tmp_path: Path) -> None:
    async with (
        running_smtpd() as smtpd,
        running_deployment(tmp_path, smtp_port=smtpd.port, now=NOW) as deployment,
    ):
        app, edition = await open_with_readers(deployment)
        # A firing and the resume loop reach the same edition at the same moment.
        first, _resumed = await asyncio.gather(app._send(edition.id, None), app.resume())  # type: ignore[attr-defined]
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
            await asyncio.gather(first.app._send(edition.id, None), second.app.resume())
        assert sorted(m.recipients[0] for m in smtpd.messages) == sorted(READERS)
        rows = first.app.store.list_deliveries(edition.id)
        assert [row.attempts for row in rows] == [1, 1, 1]
        assert first.app.store.get_edition(edition.id).status is EditionStatus.SENT


class ExplodingMailer:
    """The real SMTP mailer, with a bug injected for one address."""

    def __init__(self, inner: Mailer, bad: str) -> None:
        self.inner, self.bad = inner, bad

    async def send(self, *, sender: str, recipient: str, message: bytes) -> SendResult:
        if recipient == self.bad:
            raise RuntimeError("boom")
        return await self.inner.send(sender=sender, recipient=recipient, message=message)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_an_unexpected_error_pauses_without_orphaning_the_rest(tmp_path: Path) -> None:
    async with (
        running_smtpd() as smtpd,
        running_deployment(tmp_path, smtp_port=smtpd.port, now=NOW) as deployment,
    ):
        app, edition = await open_with_readers(deployment)
        app._mailer = ExplodingMailer(app.mailer(), "ana@example.net")  # type: ignore[attr-defined]
        report = await app._send(edition.id, None)  # type: ignore[attr-defined]
        assert report.edition.status is EditionStatus.PAUSED
        assert "unexpected RuntimeError: boom" in report.paused
        await asyncio.sleep(0.2)  # nothing keeps sending in the background
        sent_before = len(smtpd.messages)
        assert sent_before < 3
        by_email = {row.email: row for row in app.store.list_deliveries(edition.id)}  # type: ignore[attr-defined]
        assert by_email["ana@example.net"].status is DeliveryStatus.SENDING  # waits its lease

        app._mailer = None  # type: ignore[attr-defined]
        deployment.clock.now = NOW + editions.LEASE + timedelta(seconds=1)
        [resumed] = await app.resume()  # type: ignore[attr-defined]
        assert resumed.edition.status is EditionStatus.SENT
        assert sorted(m.recipients[0] for m in smtpd.messages) == sorted(READERS)
