"""A whole digest deployment for end-to-end tests: config file, app, clock, SMTP, web.

Everything is real: the config is a TOML file loaded by ``load_config``, the store a
migrated SQLite file, the mail goes to aiosmtpd on 127.0.0.1 and the web app listens on
a port the OS picked.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from digest.app import App, build_app
from digest.editorial import load_config
from digest.web import create_web_app, listen, serve_on

REPO = Path(__file__).resolve().parents[2]
SAMPLE_POSTS = REPO / "tests" / "fixtures" / "posts"  # a copy: the editor's may change
SECRET_ENV = {"DIGEST_SECRET_KEY": "e2e-secret-" + "x" * 32}


class Clock:
    """An injected clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def write_config(
    folder: Path,
    *,
    smtp_port: int,
    web_port: int,
    posts_dir: Path = SAMPLE_POSTS,
    extra: str = "",
    transport: str = "smtp",
    database_url: str = "",
    concurrency: int = 2,
    delivery: str = "",
    timeout_seconds: float = 5,
    newsletter: str = "",
) -> Path:
    """A config file in ``folder``: SQLite under it (or ``database_url``), SMTP on
    127.0.0.1:``smtp_port``; ``delivery`` adds lines to ``[delivery]``, ``newsletter`` to
    ``[newsletters.daily]``, ``extra`` at the end.
    """
    folder.mkdir(parents=True, exist_ok=True)
    database = f'database_url = "{database_url}"' if database_url else ""
    path = folder / "digest.toml"
    path.write_text(
        f"""
[site]
name = "Transmission"
base_url = "http://127.0.0.1:{web_port}"
postal_address = "Transmission, Vinohradska 12, 120 00 Prague 2, Czechia"
sender_name = "Transmission"
sender_email = "digest@transmission.example.org"
timezone = "Europe/Prague"

[storage]
data_dir = "{folder / "var"}"
{database}

[web]
host = "127.0.0.1"
port = {web_port}

[delivery]
transport = "{transport}"
{delivery}

[delivery.smtp]
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
concurrency = {concurrency}
timeout_seconds = {timeout_seconds}

[sources.posts]
kind = "folder"
path = "{posts_dir}"

[newsletters.daily]
title = "Transmission Daily"
description = "The day's analysis from Transmission."
sources = ["posts"]
max_items = 10
{newsletter}

[newsletters.daily.schedule]
daily = "07:00"
{extra}
""",
        encoding="utf-8",
    )
    return path


@dataclass
class Deployment:
    app: App
    clock: Clock
    base_url: str


@contextlib.asynccontextmanager
async def running_deployment(
    folder: Path,
    *,
    smtp_port: int,
    now: datetime,
    posts_dir: Path = SAMPLE_POSTS,
    newsletter: str = "",
    extra: str = "",
) -> AsyncIterator[Deployment]:
    """Load a config pointing at the SMTP server, build the app, serve its web pages."""
    sock = listen("127.0.0.1", 0)
    port = sock.getsockname()[1]
    config = load_config(
        write_config(
            folder,
            smtp_port=smtp_port,
            web_port=port,
            posts_dir=posts_dir,
            newsletter=newsletter,
            extra=extra,
        )
    )
    clock = Clock(now)
    app = build_app(config, environ=SECRET_ENV, clock=clock)
    web = create_web_app(
        store=app.store,
        secret=app.keys,
        site=config.site,
        newsletters=config.newsletters,
        templates_dir=app.templates_dir / "web",
        clock=clock,
        web=config.web,
        mailer=app.mailer,
    )
    stop = asyncio.Event()
    server = asyncio.create_task(serve_on(web, sock, stop))
    try:
        yield Deployment(app, clock, config.site.base_url)
    finally:
        stop.set()
        await server
        await app.aclose()
