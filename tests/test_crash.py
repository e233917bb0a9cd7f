"""SIGKILL a sending `digest send-now` at random points; restart it; nobody is lost.

The SMTP server's own record is the referee: every reader received the edition, the
duplicates stay within the bound the sender states (in flight + unflushed outcomes, per
kill), and every reader who got two copies is marked as a possible duplicate in the
ledger, with the same Message-ID on both copies. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.parser import BytesParser
from pathlib import Path

import pytest

from digest.app import App, build_app
from digest.editorial import load_config
from digest.models import DeliveryStatus, EditionStatus
from digest.sending import SendPolicy
from digest.subscriptions import ImportReport, import_csv

from support.databases import BACKENDS, database_url
from support.deployment import SECRET_ENV
from support.deployment import write_config as write_deployment_config
from support.smtpd import RecordingServer, running_smtpd

DIGEST = [sys.executable, "-m", "digest.cli"]
READERS = 2000
KILLS = 3
CONCURRENCY = 8
LEASE_SECONDS = 1


@contextmanager
def smtpd_in_a_thread() -> Iterator[RecordingServer]:
    """The recording SMTP server on its own event loop, so subprocesses can reach it."""
    ready = threading.Event()
    box: dict[str, object] = {}

    def serve() -> None:
        async def main() -> None:
            async with running_smtpd() as server:
                server.pipelining = True
                box["server"], box["stop"] = server, asyncio.Event()
                box["loop"] = asyncio.get_running_loop()
                ready.set()
                await box["stop"].wait()  # type: ignore[attr-defined]

        asyncio.run(main())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield box["server"]  # type: ignore[misc]
    finally:
        loop: asyncio.AbstractEventLoop = box["loop"]  # type: ignore[assignment]
        loop.call_soon_threadsafe(box["stop"].set)  # type: ignore[attr-defined]
        thread.join(10)


def seed_readers(app: App, emails: list[str]) -> ImportReport:
    text = "\n".join(emails)
    return import_csv(
        app.store, text, ["daily"], app.config.newsletters, datetime.now(UTC), secret=app.secret
    )


def write_config(
    folder: Path,
    *,
    smtp_port: int,
    database: str,
    concurrency: int = CONCURRENCY,
    delivery: str = "",
) -> Path:
    return write_deployment_config(
        folder,
        smtp_port=smtp_port,
        web_port=9,  # never served: these processes only send
        database_url=database,
        concurrency=concurrency,
        delivery=f"lease_seconds = {LEASE_SECONDS}\n{delivery}",
    )


def send_now(config: Path, *, errors: int = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "digest.cli", "--config", str(config), "send-now", "daily"],
        env={**os.environ, **SECRET_ENV, "COLUMNS": "80"},
        stdout=subprocess.DEVNULL,
        stderr=errors,
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigkill_during_an_edition_loses_nobody_and_marks_every_duplicate(
    backend: str, tmp_path: Path
) -> None:
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    with database_url(backend, tmp_path) as url, smtpd_in_a_thread() as smtpd:
        config_path = write_config(tmp_path / "site", smtp_port=smtpd.port, database=url)
        app = build_app(load_config(config_path), environ=SECRET_ENV)
        emails = [f"reader{i:05}@example.net" for i in range(READERS)]
        assert seed_readers(app, emails).added == READERS

        app.store.close()  # the subprocesses work; this one only reads between kills
        bound = SendPolicy(concurrency=CONCURRENCY).duplicate_bound
        thresholds = sorted(rng.sample(range(50, READERS - 200), KILLS))
        owed_again: set[str] = set()  # received, but not recorded sent: will go twice
        worst = 0
        for threshold in thresholds:  # each kill lands somewhere in the middle of a run
            process = send_now(config_path)
            deadline = time.monotonic() + 60
            while len(smtpd.messages) < threshold and process.poll() is None:
                assert time.monotonic() < deadline, f"seed {seed}: no progress"
                time.sleep(0.002)
            process.send_signal(signal.SIGKILL)
            process.wait(10)
            # What this kill left to be sent twice is within the bound the sender printed.
            [edition] = [s.edition for s in app.store.list_editions("daily")]
            rows = app.store.iter_deliveries(edition.id, status=DeliveryStatus.SENT)
            recorded = {row.email for row in rows}
            unrecorded = {m.recipients[0] for m in smtpd.messages} - recorded
            left = len(unrecorded - owed_again)
            assert left <= bound, f"seed {seed}: kill at {threshold} left {left} to go twice"
            worst, owed_again = max(worst, left), unrecorded
        for _ in range(10):  # restarts until done; the dead senders' leases run out meanwhile
            time.sleep(LEASE_SECONDS + 0.2)
            process = send_now(config_path, errors=subprocess.PIPE)
            _, err = process.communicate(timeout=120)
            assert process.returncode == 0, err.decode()
            [edition] = [s.edition for s in app.store.list_editions("daily")]
            if edition.status is EditionStatus.SENT:
                break
        assert edition.status is EditionStatus.SENT, f"seed {seed}"

        received = Counter(m.recipients[0] for m in smtpd.messages)
        assert set(received) == set(emails), f"seed {seed}: someone was lost"
        duplicates = sum(count - 1 for count in received.values())
        assert duplicates <= KILLS * bound, f"seed {seed}: {duplicates} duplicates"
        rows = {row.email: row for row in app.store.iter_deliveries(edition.id)}
        twice = [email for email, count in received.items() if count > 1]
        assert all(rows[email].duplicate for email in twice), f"seed {seed}: unmarked"
        for message in smtpd.messages:
            parsed = BytesParser().parsebytes(message.data, headersonly=True)
            assert parsed["Message-ID"] == rows[message.recipients[0]].message_id
        summary = app.store.edition_summary(edition.id)
        app.store.close()
        assert summary.duplicates >= len(twice)
        print(
            f"seed {seed}: {KILLS} kills, {duplicates} duplicate(s), at most {worst} from one"
            f" kill (bound {bound} per kill)"
        )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_mid_edition_records_what_went_out_and_gives_the_rest_back(
    signum: signal.Signals, tmp_path: Path
) -> None:
    with smtpd_in_a_thread() as smtpd:
        smtpd.faults.data_delay = 0.01  # a relay slow enough to interrupt mid-edition
        url = f"sqlite:///{tmp_path / 'digest.db'}"
        config_path = write_config(tmp_path / "site", smtp_port=smtpd.port, database=url)
        app = build_app(load_config(config_path), environ=SECRET_ENV)
        emails = [f"reader{i:03}@example.net" for i in range(300)]
        seed_readers(app, emails)
        app.store.close()
        process = subprocess.Popen(
            [sys.executable, "-m", "digest.cli", "--config", str(config_path), "send-now", "daily"],
            env={**os.environ, **SECRET_ENV, "COLUMNS": "80"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while len(smtpd.messages) < 40:
            assert time.monotonic() < deadline
            assert process.poll() is None
            time.sleep(0.005)
        process.send_signal(signum)
        out, err = process.communicate(timeout=30)
        assert process.returncode == 130, err.decode()
        text = out.decode()
        assert "stopped: in-flight messages were recorded" in text
        assert "Traceback" not in err.decode()

        [summary] = app.store.list_editions("daily")
        rows = list(app.store.iter_deliveries(summary.edition.id))
        received = {m.recipients[0] for m in smtpd.messages}
        sent = {row.email for row in rows if row.status == "sent"}
        assert sent == received  # every message that went out is recorded, nothing more
        rest = {(row.status, row.attempts) for row in rows if row.email not in sent}
        assert rest == {("pending", 0)}  # given back at once: no lease to wait out
        assert 40 <= len(sent) < len(emails)

        smtpd.faults.data_delay = 0
        again = send_now(config_path, errors=subprocess.PIPE)
        _, err = again.communicate(timeout=60)
        assert again.returncode == 0, err.decode()
        received = Counter(m.recipients[0] for m in smtpd.messages)
        assert set(received) == set(emails)
        assert max(received.values()) == 1  # a clean stop makes no duplicate
        app.store.close()


def test_send_now_with_worker_processes_shares_the_edition_without_a_double_send(
    tmp_path: Path,
) -> None:
    with smtpd_in_a_thread() as smtpd:
        smtpd.faults.data_delay = 0.01  # slow enough for the workers to join in
        url = f"sqlite:///{tmp_path / 'digest.db'}"
        config_path = write_config(
            tmp_path / "site",
            smtp_port=smtpd.port,
            database=url,
            concurrency=2,
            delivery="batch_size = 10",
        )
        app = build_app(load_config(config_path), environ=SECRET_ENV)
        emails = [f"reader{i:03}@example.net" for i in range(400)]
        seed_readers(app, emails)
        app.store.close()
        done = subprocess.run(
            [*DIGEST, "--config", str(config_path), "send-now", "daily", "--workers", "3"],
            env={**os.environ, **SECRET_ENV, "COLUMNS": "80"},
            capture_output=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr.decode()
        assert "edition" in done.stdout.decode()
        assert "400 recipient(s); sent: 400" in done.stdout.decode()
        received = Counter(m.recipients[0] for m in smtpd.messages)
        assert set(received) == set(emails)
        assert max(received.values()) == 1
        # Each process opens at most 2 connections: more means the workers took part.
        assert len({m.connection for m in smtpd.messages}) > 2
