"""Reads the editor's ``config/digest.toml`` into validated, immutable :mod:`digest.config` values.

Every problem names file, TOML table and key and says what to do; all problems found are
reported together, one per line. Everything is checked here, so that no caller can
forget a part: local feed files and post folders must exist, and every schedule must be
one the scheduler can run (``digest.scheduler.check_schedule``, the one judge of cron
expressions, asked as each schedule is read).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from urllib.parse import urlsplit

from digest.config import (
    Config,
    DeliveryConfig,
    NewsletterConfig,
    SiteConfig,
    SmtpConfig,
    SourceConfig,
    SourceKind,
    TlsMode,
    TransportKind,
    WebConfig,
    is_loopback_host,
)
from digest.config_table import ConfigTable
from digest.editorial_newsletters import NEWSLETTER_KEYS, check_id, newsletter
from digest.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("config/digest.toml")

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_SQLITE_URL = re.compile(r"(sqlite(?:\+\w+)?:///)([^?]*)(\?.*)?\Z")
_MAX_TIMEOUT = 600.0  # seconds; RFC 5321 lets a relay take 10 minutes over the final dot
_MINUTES_PER_YEAR = 525_600

_ROOT_KEYS = ("site", "storage", "web", "delivery", "sources", "newsletters")
_SITE_KEYS = tuple(f.name for f in fields(SiteConfig))
_SMTP_KEYS = tuple(f.name for f in fields(SmtpConfig))
_SOURCE_KEYS = tuple(f.name for f in fields(SourceConfig) if f.name != "id")
_TRANSPORTS: tuple[TransportKind, ...] = ("outbox", "smtp")
_TLS_MODES: tuple[TlsMode, ...] = ("starttls", "tls", "none")
_SOURCE_KINDS: tuple[SourceKind, ...] = ("feed", "folder")

_POSTAL_HINT = (
    ": digest refuses to send without a physical postal address (required by CAN-SPAM; every "
    'footer carries it), e.g. postal_address = "Transmission, 1 Example Street, Prague, Czechia"'
)


def default_config_path(environ: Mapping[str, str]) -> Path:
    """``$DIGEST_CONFIG`` if set and not blank, else ``config/digest.toml`` (relative to cwd)."""
    value = environ.get("DIGEST_CONFIG", "").strip()
    return Path(value) if value else DEFAULT_CONFIG_PATH


def _http_url(table: ConfigTable, key: str, url: str, example: str) -> None:
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        table.fail(f"{key} {url!r} is not an http:// or https:// URL (e.g. {example!r})")


def _base_url(t: ConfigTable) -> str:
    """``base_url`` as it can go into a header and a link: an IDN host becomes its A-label."""
    url = t.string("base_url", hint=": the public URL of digest's web app").rstrip("/")
    if not url:
        return url
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if not host.isascii():
            user = parts.netloc.rpartition("@")[0]
            netloc = (f"{user}@" if user else "") + host.encode("idna").decode("ascii")
            netloc += f":{parts.port}" if parts.port is not None else ""
            url = parts._replace(netloc=netloc).geturl()
    except ValueError as exc:  # UnicodeError (IDNA) is a ValueError
        t.fail(f"base_url {url!r}: its host is not a valid domain name ({exc}); fix the host")
        return url
    _http_url(t, "base_url", url, "https://digest.example.org")
    if not all("!" <= char <= "~" for char in url):
        t.fail(
            f"base_url {url!r} must be printable ASCII without spaces: percent-encode the path"
            " (e.g. %20 for a space)"
        )
    return url


def _site(root: ConfigTable) -> SiteConfig:
    t = root.table("site", _SITE_KEYS, required=True)
    name = t.string("name")
    return SiteConfig(
        name=name,
        base_url=_base_url(t),
        postal_address=t.string("postal_address", hint=_POSTAL_HINT),
        sender_name=t.string("sender_name", name),
        sender_email=t.email("sender_email", required=True),
        reply_to=t.email("reply_to", required=False, ascii_local=False),
        unsubscribe_mailto=t.email("unsubscribe_mailto", required=False),
        timezone=t.zone("timezone", "UTC"),
        editors=t.emails("editors"),
    )


def _web(root: ConfigTable) -> WebConfig:
    t = root.table("web", tuple(f.name for f in fields(WebConfig)))
    return WebConfig(
        host=t.string("host", "127.0.0.1"),
        port=t.integer("port", 8000, 1, 65535),
        confirm_window_hours=t.number("confirm_window_hours", 24.0, 24.0 * 365),
        confirmations_per_client_hour=t.integer("confirmations_per_client_hour", 10, 1),
        confirmations_per_hour=t.integer("confirmations_per_hour", 500, 1),
        pending_expiry_hours=t.number("pending_expiry_hours", 168.0, 24.0 * 365),
        honeypot=t.boolean("honeypot", True),
        archive_page_size=t.integer("archive_page_size", 20, 1, 200),
    )


def _database_url(t: ConfigTable, base: Path, data_dir: Path) -> str:
    url = t.string("database_url", "")
    if not url:
        return f"sqlite:///{data_dir / 'digest.db'}"
    if "://" not in url:
        example = "postgresql+psycopg://digest@db/digest"
        t.fail(f"database_url {url!r} is not a database URL (e.g. {example!r})")
    match = _SQLITE_URL.match(url)
    if match and match[2] and match[2] != ":memory:" and not match[2].startswith("/"):
        return f"{match[1]}{(base / match[2]).resolve()}{match[3] or ''}"
    return url


def _delivery(root: ConfigTable, base: Path, data_dir: Path) -> DeliveryConfig:
    t = root.table("delivery", ("transport", "outbox_dir", "smtp", "lease_seconds", "batch_size"))
    transport = t.choice("transport", _TRANSPORTS, "outbox")
    outbox_dir = t.path("outbox_dir", base, data_dir / "outbox")
    smtp: SmtpConfig | None = None
    if "smtp" in t.data:
        s = t.table("smtp", _SMTP_KEYS)
        if "password" in s.data:
            s.fail("never put the password here: password_env names the variable that holds it")
        tls = s.choice("tls", _TLS_MODES, "starttls")
        password_env = s.string("password_env", "DIGEST_SMTP_PASSWORD")
        if not _ENV_NAME.match(password_env):
            s.fail(f"password_env {password_env!r} is not an environment variable name")
        smtp = SmtpConfig(
            host=s.string("host", hint=': the relay\'s host name, e.g. host = "smtp.example.org"'),
            port=s.integer("port", 465 if tls == "tls" else 587, 1, 65535),
            tls=tls,
            username=s.string("username", ""),
            password_env=password_env,
            timeout_seconds=s.number("timeout_seconds", 60.0, _MAX_TIMEOUT),
            concurrency=s.integer("concurrency", 10, 1, 256),
            max_per_second=s.integer("max_per_second", 0, 0),
            max_per_hour=s.integer("max_per_hour", 0, 0),
            max_per_day=s.integer("max_per_day", 0, 0),
        )
        if smtp.username and smtp.tls == "none" and not is_loopback_host(smtp.host):
            s.fail(
                f'tls = "none" would send the password of {smtp.username!r} in clear text to'
                f' {smtp.host}: use tls = "starttls" or "tls" (plaintext is only for a relay on'
                " this machine)"
            )
    elif transport == "smtp":
        t.fail('transport = "smtp" needs a [delivery.smtp] table with at least host = "..."')
    return DeliveryConfig(
        transport=transport,
        outbox_dir=outbox_dir,
        smtp=smtp,
        lease_seconds=t.number("lease_seconds", 60.0, 3600.0),
        batch_size=t.integer("batch_size", 200, 1, 5000),
    )


def _source(t: ConfigTable, ident: str, base: Path) -> SourceConfig:
    kind = t.choice("kind", _SOURCE_KINDS, None)
    url, path = t.string("url", ""), t.string("path", "")
    if kind == "folder" and url:
        t.fail('url is only for feeds: a folder source takes path = "posts"')
    elif kind == "feed" and url and path:
        t.fail("give either url (a feed on the web) or path (a local feed file), not both")
    elif not url and not path:
        wanted = "'path'" if kind == "folder" else "'url' (or 'path' for a local feed file)"
        t.fail(f"missing required key {wanted}")
    if url:
        _http_url(t, "url", url, "https://example.org/feed.xml")
    allow_private = t.boolean("allow_private_addresses", False)
    if allow_private and not url:
        t.fail("allow_private_addresses is for a feed fetched from a url; remove it here")
    base_url = t.string("base_url", "")
    if base_url and (kind != "feed" or not path):
        t.fail(
            'base_url is for a local feed file (kind = "feed" with path): a feed from a url'
            " resolves its links against that url, a folder post against its link"
        )
    elif base_url:
        _http_url(t, "base_url", base_url, "https://transmission.example.org/")
    resolved = (base / Path(path).expanduser()).resolve() if path else None
    if resolved is not None and t.data.get("kind") in _SOURCE_KINDS:
        _check_source_path(t, kind, path, resolved)
    return SourceConfig(
        id=ident,
        kind=kind,
        url=url,
        path=resolved,
        title=t.string("title", ""),
        timeout_seconds=t.number("timeout_seconds", 20.0, _MAX_TIMEOUT),
        max_bytes=t.integer("max_bytes", 5_000_000, 1),
        fetch_every_minutes=t.integer("fetch_every_minutes", 30, 1, _MINUTES_PER_YEAR),
        allow_private_addresses=allow_private,
        base_url=base_url,
        alert_after_failures=t.integer("alert_after_failures", 3, 1, 1000),
        stale_after_days=t.integer("stale_after_days", 0, 0, 3650),
    )


def _check_source_path(t: ConfigTable, kind: SourceKind, given: str, resolved: Path) -> None:
    """A folder source's folder, or a local feed file, must be there when digest starts."""
    shown = f"path {given!r}" + (f" ({resolved})" if given != str(resolved) else "")
    relative = f" (relative to the folder of {t.file})"
    if Path(given).expanduser().is_absolute():
        relative = ""
    if kind == "folder":
        if resolved.is_dir():
            return
        if resolved.exists():
            t.fail(
                f"{shown} is not a folder: a folder source reads the *.md and *.html posts in"
                ' a folder; point path at it, or use kind = "feed" for a feed file'
            )
        else:
            t.fail(
                f"{shown}: no such folder; create it for the posts (*.md, *.html), or fix"
                f" path{relative}"
            )
    elif resolved.is_dir():
        t.fail(
            f'{shown} is a folder, not a feed file: use kind = "folder" for a folder of posts,'
            " or point path at the feed file"
        )
    elif not resolved.is_file():
        t.fail(
            f'{shown}: no such feed file; fix path{relative}, or give url = "https://..."'
            " for a feed on the web"
        )


def _read(path: Path) -> dict[str, object]:
    try:
        return tomllib.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: configuration file not found; copy config/digest.toml (the commented "
            "example) to this path and edit it, or pass --config (or set DIGEST_CONFIG) to "
            "point at yours"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}; fix the syntax there") from None


def load_config(path: Path) -> Config:
    """Read and validate the configuration at ``path``.

    Relative paths in the file (``data_dir``, ``outbox_dir``, source ``path``s, SQLite URLs)
    resolve against the file's directory; the database defaults to
    ``sqlite:///<data_dir>/digest.db``. Raises :class:`ConfigError` listing every problem.
    """
    problems: list[str] = []
    file, base = str(path), path.resolve().parent
    root = ConfigTable(problems, file, "", _read(path), _ROOT_KEYS)
    site = _site(root)
    storage = root.table("storage", ("data_dir", "database_url"))
    data_dir = storage.path("data_dir", base, (base / "var").resolve())
    database_url = _database_url(storage, base, data_dir)
    web = _web(root)
    delivery = _delivery(root, base, data_dir)

    sources: dict[str, SourceConfig] = {}
    for ident, data in root.table("sources", None).data.items():
        t = ConfigTable(problems, file, f"sources.{ident}", data, _SOURCE_KEYS)
        check_id(t, "source", ident)
        sources[ident] = _source(t, ident, base)

    newsletters: dict[str, NewsletterConfig] = {}
    for ident, data in root.table("newsletters", None).data.items():
        t = ConfigTable(problems, file, f"newsletters.{ident}", data, NEWSLETTER_KEYS)
        check_id(t, "newsletter", ident)
        newsletters[ident] = newsletter(t, ident, sources, site.timezone, base)
    if not newsletters:
        root.fail("no newsletter defined: add a [newsletters.<id>] table (see the example)")
    config = Config(
        path.resolve(), site, delivery, data_dir, database_url, web, sources, newsletters
    )
    if problems:
        raise ConfigError("\n".join(problems))
    return config
