"""The web app on a migrated SQLite store with an outbox for its mail, for TestClient tests."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.exceptions import StarletteDeprecationWarning

from digest.config import CadenceConfig, NewsletterConfig, ScheduleConfig, TopicConfig, WebConfig
from digest.delivery import OutboxMailer
from digest.store import SqlStore
from digest.tokens import Keys
from digest.web import create_web_app

from support.databases import migrated_engine
from support.edition import sample_newsletter, sample_site

# Starlette 1.10's TestClient wants the httpx2 package and warns once, on import, when it
# falls back to httpx (which the project has). Only that warning is silenced, only here.
with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore", "Using `httpx` with `starlette.testclient`", StarletteDeprecationWarning
    )
    from starlette.testclient import TestClient

SECRET = b"web-test-secret-0123456789abcdef"
TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates" / "web"
LINK = re.compile(r"https://digest\.example\.org/[^\s\"<>]+")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def newsletters() -> dict[str, NewsletterConfig]:
    """Two public newsletters (the weekly one with topics and two cadences) and a private one."""
    weekly = sample_newsletter(
        id="weekly", title="Transmission Weekly", description="The week's analysis."
    )
    zone = "Europe/Prague"
    return {
        "daily": sample_newsletter(public=True),  # type: ignore[arg-type]
        "weekly": replace(
            weekly,
            public=True,
            cadences=(
                CadenceConfig("weekly", "Every Monday", ScheduleConfig("weekly", zone)),
                CadenceConfig("monthly", "Once a month", ScheduleConfig("monthly", zone)),
            ),
            topics=(
                TopicConfig("asia", "Central Asia", ("asia",)),
                TopicConfig("europe", "Europe", ("europe",)),
            ),
        ),
        "staff": sample_newsletter(id="staff", title="Staff Notes", description="Internal."),
    }


@dataclass
class Web:
    """A TestClient on the app, its store, its clock and its outbox."""

    client: TestClient
    store: SqlStore
    clock: Clock
    outbox: Path
    app: Starlette
    read: set[str] = field(default_factory=set)

    def messages(self) -> list[EmailMessage]:
        """Every message in the outbox, oldest first."""
        folder = self.outbox / "new"
        files = (
            sorted(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)
            if folder.exists()
            else []
        )
        parser = BytesParser(policy=policy.default)
        return [parser.parsebytes(path.read_bytes()) for path in files]  # type: ignore[misc]

    def links_in(self, message: EmailMessage) -> list[str]:
        body = message.get_body(("plain",))
        assert body is not None
        return LINK.findall(str(body.get_content()))


def web_app(
    store: SqlStore,
    clock: Clock,
    outbox: Path,
    *,
    keys: Keys | bytes = SECRET,
    **rules: Any,
) -> Starlette:
    mailer = OutboxMailer(outbox)
    return create_web_app(
        store=store,
        secret=keys,
        site=sample_site(),
        newsletters=newsletters(),
        templates_dir=TEMPLATES_DIR,
        clock=clock,
        web=WebConfig(**rules),
        mailer=lambda: mailer,
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    """A migrated SQLite store (import this fixture with ``web``)."""
    with migrated_engine("sqlite", tmp_path) as engine:
        yield SqlStore(engine)


@pytest.fixture
def web(store: SqlStore, now: datetime, tmp_path: Path) -> Iterator[Web]:
    """The web app on ``store``, its clock at ``now``, its mail in an outbox."""
    yield from running_web(store, Clock(now), tmp_path / "outbox")


def running_web(store: SqlStore, clock: Clock, outbox: Path, **rules: Any) -> Iterator[Web]:
    app = web_app(store, clock, outbox, **rules)
    with TestClient(app, follow_redirects=False) as client:
        yield Web(client, store, clock, outbox, app)
