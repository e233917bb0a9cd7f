"""Benchmark: digest's real SMTP send path against Postfix's smtp-source, the practical ceiling.

Run: .venv/bin/python benchmarks/send.py [--readers 20000 [100000 ...]] [--quick]
         [--database postgresql+psycopg://postgres@127.0.0.1:5432/test] [--naive 300]

Starts Postfix's smtp-sink (a C server that accepts mail and throws it away) on 127.0.0.1
and, in one run, measures sending one digest edition (~12 KB, rendered by digest from
config/posts) to it by
  smtp-source: Postfix's C client, N messages over 20 sessions: the ceiling of this
               machine; run before and after digest (noise on small machines is large);
  digest:      ``app.send_now("daily")`` in a fresh subprocess (clean peak RSS), from a
               config file with ``transport = "smtp"``, concurrency 20 and N confirmed
               readers seeded first (seeding is timed apart and not counted);
  naive:       per reader Jinja2 + premailer + EmailMessage + smtplib, one connection,
and prints messages/s, CPU ms per message, peak RSS, the ratios digest / smtp-source
(the faster of its two runs) and digest / naive, the RSS growth from the smallest to the
largest N (target < 50 MB), premailer calls per edition (target 1) and the bound on
duplicates after a crash, if the send report has one. Numbers are wall-clock on this
machine: compare the ratios, not the absolute values, across machines.

When smtp-sink or smtp-source is missing, Debian's postfix package is installed (as
root) with "No configuration" and a policy-rc.d that forbids starting services, so no
Postfix MTA runs. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import secrets
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import create_engine, text

import digest.render
from digest.app import App, build_app, utc_now
from digest.editions import SendReport, personal_letter
from digest.editorial import load_config
from digest.message import message_id_for
from digest.render import Rendered, Renderer
from digest.sources.folder import read_folder
from digest.subscriptions import import_csv
from digest.workers import send_now_with_workers

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the test deployment's config writer
from support.deployment import write_config as deployment_config  # noqa: E402

POSTS = ROOT / "config" / "posts"
TEMPLATES = ROOT / "templates" / "email"
HOST = "127.0.0.1"
SECRET_ENV = {"DIGEST_SECRET_KEY": "benchmark-secret-" + "x" * 40}
SENDER = "digest@transmission.example.org"
QUICK_READERS = 2000
SINK_MAX_SESSIONS = 256
SINK_BACKLOG = 1024
POLICY_RC = Path("/usr/sbin/policy-rc.d")
POSTFIX_MASTER = "/usr/lib/postfix/sbin/master"
TOOL_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin", "/sbin"])


# --- setup: Postfix's test tools, never its MTA ---------------------------------------
@dataclass(frozen=True)
class Tools:
    sink: str
    source: str


def find_tools() -> Tools | None:
    sink = shutil.which("smtp-sink", path=TOOL_PATH)
    source = shutil.which("smtp-source", path=TOOL_PATH)
    return Tools(sink, source) if sink and source else None


def postfix_masters() -> list[int]:
    """Pids of running Postfix master processes (pgrep, or /proc when procps is absent)."""
    if shutil.which("pgrep"):
        found = subprocess.run(
            ["pgrep", "-f", f"^{POSTFIX_MASTER}"], capture_output=True, text=True, check=False
        )
        return [int(pid) for pid in found.stdout.split()]
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "cmdline").read_bytes().startswith(POSTFIX_MASTER.encode()):
                    pids.append(int(entry.name))
    return pids


def install_postfix() -> None:
    """apt-get install postfix with "No configuration", no service started during it."""
    if os.geteuid() != 0:
        raise SystemExit(
            "smtp-sink/smtp-source not found: run as root to install Debian's postfix"
            " package, or install it yourself (apt-get install postfix)"
        )
    print("installing Debian's postfix package for smtp-sink/smtp-source (MTA not started)")
    selections = b"postfix postfix/main_mailer_type select No configuration\n"
    subprocess.run(["debconf-set-selections"], input=selections, check=True)
    saved = (POLICY_RC.read_bytes(), POLICY_RC.stat().st_mode) if POLICY_RC.exists() else None
    POLICY_RC.write_text("#!/bin/sh\n# digest benchmarks/send.py: start no service\nexit 101\n")
    POLICY_RC.chmod(0o755)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "postfix"]
    try:
        if subprocess.run(install, env=env, check=False).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, check=True)
            subprocess.run(install, env=env, check=True)
    finally:
        if saved is None:
            POLICY_RC.unlink()
        else:
            POLICY_RC.write_bytes(saved[0])
            POLICY_RC.chmod(saved[1])
    if postfix_masters():
        subprocess.run(["postfix", "stop"], check=False)
        time.sleep(1)
    if running := postfix_masters():
        raise SystemExit(f"a Postfix master process still runs after the install: {running}")


def ensure_tools() -> Tools:
    tools = find_tools()
    if tools is None:
        install_postfix()
        tools = find_tools()
    if tools is None:
        raise SystemExit("postfix is installed but smtp-sink/smtp-source are not on the PATH")
    return tools


# --- smtp-sink ------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class Sink:
    """smtp-sink on 127.0.0.1: PIPELINING and 8BITMIME announced, counting messages (-c)."""

    def __init__(self, tools: Tools, folder: Path) -> None:
        self.port = free_port()
        self._counter = folder / "sink-counter.txt"
        command = [tools.sink, "-c", "-m", str(SINK_MAX_SESSIONS)]
        if os.geteuid() == 0:
            command += ["-u", "nobody"]  # required of root: drop privileges after bind
        command += [f"{HOST}:{self.port}", str(SINK_BACKLOG)]
        with self._counter.open("wb") as out:
            self._process = subprocess.Popen(command, stdout=out, stderr=subprocess.PIPE)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                error = self._process.stderr.read().decode() if self._process.stderr else ""
                raise SystemExit(f"smtp-sink exited at start: {error.strip()}")
            with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), 1):
                break
            time.sleep(0.05)
        with smtplib.SMTP(HOST, self.port, local_hostname="localhost", timeout=10) as smtp:
            smtp.ehlo()
            missing = [ext for ext in ("pipelining", "8bitmime") if not smtp.has_extn(ext)]
        if missing:
            raise SystemExit(f"smtp-sink does not announce {', '.join(missing)}")

    def received(self) -> int:
        """Messages received so far (the last "mesg=" of smtp-sink's running counter)."""
        with self._counter.open("rb") as counter:
            counter.seek(max(0, self._counter.stat().st_size - 200))
            found = re.findall(rb"mesg=(\d+)", counter.read())
        return int(found[-1]) if found else 0

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stderr:
            self._process.stderr.close()


# --- the message: one digest edition, rendered by digest ------------------------------
def write_config(
    folder: Path, *, port: int, concurrency: int, database_url: str | None = None
) -> Path:
    """A digest config file sending the edition of config/posts to the sink."""
    return deployment_config(
        folder,
        smtp_port=port,
        web_port=8000,  # never served here
        posts_dir=POSTS,
        database_url=database_url or "",
        concurrency=concurrency,
        timeout_seconds=60,
    )


class MessageMaker:
    """Digest's per-reader message for the edition of config/posts, as its sender builds it."""

    def __init__(self, config_path: Path) -> None:
        self.config = load_config(config_path)
        self.newsletter = self.config.newsletters["daily"]
        self.renderer = Renderer(TEMPLATES)
        self.now = datetime.now(UTC)
        source = self.config.sources["posts"]
        assert source.path is not None
        posts, _ = read_folder("posts", source.path, now=self.now, max_bytes=source.max_bytes)
        self.posts = sorted(posts, key=lambda post: post.published, reverse=True)
        self.secret = SECRET_ENV["DIGEST_SECRET_KEY"].encode()

    def render(self) -> Rendered:
        return self.renderer.render_edition(
            site=self.config.site,
            newsletter=self.newsletter,
            posts=self.posts,
            edition_id="benchmark",
            now=self.now,
        )

    def message(self, rendered: Rendered, reader: int) -> bytes:
        site = self.config.site
        return personal_letter(
            rendered,
            site,
            self.newsletter,
            self.secret,
            subscriber_id=str(reader),
            email=reader_address(reader),
            message_id=message_id_for(self.secret, "benchmark", str(reader), site.sender_domain),
            now=self.now,
        ).message


def reader_address(reader: int) -> str:
    return f"reader{reader}@example.net"


# --- measurements ---------------------------------------------------------------------
@dataclass
class Result:
    label: str
    messages: int
    seconds: float
    cpu_seconds: float
    rss_mib: float | None = None
    child: dict[str, Any] | None = None

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms(self) -> float:
        return self.cpu_seconds * 1000 / self.messages if self.messages else 0.0


def cpu_of(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def expect_received(sink: Sink, before: int, expected: int, what: str) -> None:
    got = sink.received() - before
    if got != expected:
        raise SystemExit(f"{what}: smtp-sink counted {got} messages, expected {expected}")


def run_smtp_source(
    tools: Tools, sink: Sink, message_file: Path, count: int, sessions: int, label: str
) -> Result:
    """smtp-source: ``count`` copies of the message file, ``sessions`` reused connections."""
    command = [
        tools.source,
        "-s", str(sessions),
        "-m", str(count),
        "-d",  # reuse each session's connection, as digest's pool does
        "-M", "localhost",
        "-f", SENDER,
        "-t", reader_address(0),
        "-F", str(message_file),
        f"{HOST}:{sink.port}",
    ]  # fmt: skip
    before = sink.received()
    cpu = cpu_of(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True)
    seconds = time.perf_counter() - started
    cpu = cpu_of(resource.RUSAGE_CHILDREN) - cpu
    expect_received(sink, before, count, "smtp-source")
    return Result(label, count, seconds, cpu)


def run_naive(sink: Sink, maker: MessageMaker, readers: int) -> Result:
    """Per reader: Jinja2 + premailer, EmailMessage, smtplib on one reused connection."""
    before = sink.received()
    cpu = cpu_of(resource.RUSAGE_SELF)
    started = time.perf_counter()
    with smtplib.SMTP(HOST, sink.port, local_hostname="localhost", timeout=60) as smtp:
        for reader in range(readers):
            message = maker.message(maker.render(), reader)
            smtp.sendmail(SENDER, [reader_address(reader)], message)
    seconds = time.perf_counter() - started
    cpu = cpu_of(resource.RUSAGE_SELF) - cpu
    expect_received(sink, before, readers, "naive baseline")
    return Result(f"naive N={readers:,} 1 conn", readers, seconds, cpu)


def run_digest(
    sink: Sink, readers: int, sessions: int, database: str | None, workers: int = 1
) -> Result:
    """digest's send in a child process (see ``child``); its JSON report on the last line."""
    command = [sys.executable, __file__, "--child", str(readers), "--sink-port", str(sink.port)]
    command += ["--sessions", str(sessions), "--workers", str(workers)]
    if database:
        command += ["--database", database]
    before = sink.received()
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    sent = report["counts"].get("sent", 0)
    received = sink.received() - before
    if report["paused"] or sent != readers or received != sent:
        print(
            f"warning: digest N={readers}: {report['counts']}, smtp-sink received {received};"
            f" paused: {report['paused'] or 'no'}"
        )
    return Result(
        f"digest N={readers:,}" + (f", {workers} procs" if workers > 1 else ""),
        sent,
        report["send_seconds"],
        report["send_cpu_seconds"],
        report["peak_rss_kb_after"] / 1024,
        report,
    )


# --- the child: digest's real send path, in a process of its own ----------------------
@contextlib.contextmanager
def database_for(url: str | None) -> Iterator[str | None]:
    """SQLite by default (None); for PostgreSQL a fresh schema on the search path, dropped."""
    if not url or not url.startswith("postgresql"):
        yield url
        return
    schema = f"digest_bench_{secrets.token_hex(6)}"
    admin = create_engine(url)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        separator = "&" if "?" in url else "?"
        try:
            yield f"{url}{separator}options={quote(f'-csearch_path={schema}')}"
        finally:
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


def count_calls(module: Any, name: str) -> Callable[[], int]:
    """Wrap ``module.name`` with a counter; returns a function reading the count."""
    original = getattr(module, name)
    calls = 0

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return original(*args, **kwargs)

    setattr(module, name, counting)
    return lambda: calls


def child(
    readers: int, port: int, sessions: int, database: str | None, workers: int = 1
) -> dict[str, Any]:
    """Seed ``readers`` confirmed readers, then time ``app.send_now("daily")`` to the sink.

    With ``workers`` > 1, `send-now --workers` does it: this process and ``workers`` - 1
    `digest worker` processes share the ``sessions`` connections.
    """
    with tempfile.TemporaryDirectory(prefix="digest-send-") as tmp, database_for(database) as url:
        concurrency = max(1, sessions // workers)
        path = write_config(Path(tmp), port=port, concurrency=concurrency, database_url=url)
        app = build_app(load_config(path), environ=SECRET_ENV)
        try:
            return seed_and_send(app, readers, workers)
        finally:
            app.store.close()


def seed_and_send(app: App, readers: int, workers: int = 1) -> dict[str, Any]:
    csv_text = "email\n" + "".join(f"{reader_address(n)}\n" for n in range(readers))
    print(f"digest: seeding {readers:,} readers (import_csv) ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    imported = import_csv(
        app.store, csv_text, ["daily"], app.config.newsletters, utc_now(), secret=app.secret
    )
    seed_seconds = time.perf_counter() - started
    if imported.added != readers or imported.errors:
        raise SystemExit(f"seeding: {imported.added} added, errors {imported.errors[:3]}")
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    premailer_calls = count_calls(digest.render.premailer, "transform")
    print(f"digest: seeded in {seed_seconds:.1f} s; sending ...", file=sys.stderr, flush=True)

    async def send() -> tuple[SendReport, float]:
        started = time.perf_counter()
        try:
            report = await send_now_with_workers(
                app,
                "daily",
                workers=workers,
                config_path=app.config.path,
                environ={**os.environ, **SECRET_ENV},
            )
            return report, time.perf_counter() - started
        finally:
            await app.aclose()  # QUIT the pooled connections (not timed)

    def cpu_now() -> float:  # all threads, and any helper process that ended
        return cpu_of(resource.RUSAGE_SELF) + cpu_of(resource.RUSAGE_CHILDREN)

    cpu = cpu_now()
    report, seconds = asyncio.run(send())
    cpu = cpu_now() - cpu
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    counts = {str(status): n for status, n in report.counts.items()}
    return {
        "readers": readers,
        "seed_seconds": seed_seconds,
        "send_seconds": seconds,
        "messages_per_second": counts.get("sent", 0) / seconds,
        "send_cpu_seconds": cpu,
        "peak_rss_kb_before": rss_before,
        "peak_rss_kb_after": rss_after,
        "premailer_calls": premailer_calls(),
        "counts": counts,
        "recipients": report.recipients,
        "paused": report.paused,
        "duplicate_bound": report.duplicate_bound,
    }


# --- output ---------------------------------------------------------------------------
def print_results(
    sources: list[Result],
    digests: list[Result],
    naive: Result,
    message_size: int,
    database: str,
    sessions: int,
) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console(width=80)
    ceiling = max(source.rate for source in sources)
    best = digests[-1]
    table = Table(box=box.SIMPLE_HEAD, title="send one edition to smtp-sink on 127.0.0.1")
    for header in ("run", "msgs/s", "÷ source", "÷ naive", "CPU ms/msg", "RSS MiB"):
        table.add_column(header, justify="left" if header == "run" else "right", no_wrap=True)
    for source in sources:
        table.add_row(source.label, f"{source.rate:,.0f}", "", "", f"{source.cpu_ms:.2f}", "")
    for run in digests:
        table.add_row(
            run.label,
            f"{run.rate:,.0f}",
            f"{run.rate / ceiling:.3f}x",
            f"{run.rate / naive.rate:.1f}x",
            f"{run.cpu_ms:.2f}",
            f"{run.rss_mib:.0f}",
        )
    table.add_row(
        naive.label, f"{naive.rate:,.0f}", f"{naive.rate / ceiling:.3f}x", "", f"{naive.cpu_ms:.2f}"
    )
    console.print(table)

    checks = Table(box=box.SIMPLE_HEAD, title="digest's send: bounds")
    for header in ("check", "value", "target"):
        checks.add_column(header)
    singles = [run for run in digests if "procs" not in run.label] or digests
    first, last = singles[0], singles[-1]
    assert first.rss_mib is not None
    assert last.rss_mib is not None
    growth = (
        f"{last.rss_mib - first.rss_mib:+.1f} MiB ({first.messages:,} → {last.messages:,})"
        if len(singles) > 1
        else "n/a (one N)"
    )
    checks.add_row("peak RSS growth", growth, "< 50 MB")
    calls = ", ".join(str(run.child["premailer_calls"]) for run in digests if run.child)
    checks.add_row("premailer calls per edition", calls, "1")
    bound = best.child["duplicate_bound"] if best.child else None
    checks.add_row(
        "duplicates after a crash",
        "n/a" if bound is None else str(bound),
        "≤ in flight",
    )
    console.print(checks)
    for run in digests:
        info = run.child or {}
        console.print(
            f"{run.label}: seeding {info['seed_seconds']:.1f} s (not counted); peak RSS"
            f" {info['peak_rss_kb_before'] / 1024:.0f} MiB after seeding,"
            f" {info['peak_rss_kb_after'] / 1024:.0f} after the send; {info['counts']}"
        )
    console.print(
        f"{os.cpu_count()} cores (os.cpu_count()); message {message_size:,} bytes; digest on"
        f" {database}, concurrency {sessions}; smtp-source: {sources[0].messages:,} messages"
        f" over {sessions} sessions; ÷ source is against its faster run ({ceiling:,.0f} msgs/s)"
    )


# --- main -----------------------------------------------------------------------------
def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--readers",
        type=int,
        nargs="+",
        default=[20_000],
        metavar="N",
        help="readers per edition; several give one digest run each (default: 20000)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke test: --readers {QUICK_READERS} (overrides --readers)",
    )
    parser.add_argument(
        "--database",
        metavar="URL",
        help="digest's database (default: SQLite in a temp dir); a postgresql+psycopg://"
        " URL gets a fresh schema, dropped afterwards",
    )
    parser.add_argument(
        "--naive", type=int, default=300, metavar="N", help="readers of the naive baseline (300)"
    )
    parser.add_argument(
        "--sessions",
        type=int,
        default=20,
        metavar="S",
        help="smtp-source sessions and digest's [delivery.smtp] concurrency (default: 20)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1],
        metavar="W",
        help="digest sender processes (`send-now --workers`); several give one run each,"
        " sharing the --sessions connections (default: 1)",
    )
    internal = parser.add_argument_group("internal (the digest subprocess)")
    internal.add_argument(
        "--child", type=int, metavar="N", help="seed N readers, send once, print JSON"
    )
    internal.add_argument(
        "--sink-port", type=int, metavar="PORT", help="the smtp-sink port, for --child"
    )
    args = parser.parse_args()
    if args.child is not None and args.sink_port is None:
        parser.error("--child needs --sink-port")
    if min([*args.readers, args.naive, args.sessions, *args.workers]) < 1:
        parser.error("--readers, --naive, --sessions and --workers must be at least 1")
    return args


def main() -> None:
    args = parse_args()
    if args.child is not None:
        result = child(args.child, args.sink_port, args.sessions, args.database, args.workers[0])
        print(json.dumps(result))
        return
    readers = [QUICK_READERS] if args.quick else sorted(set(args.readers))
    tools = ensure_tools()
    with tempfile.TemporaryDirectory(prefix="digest-bench-") as tmp:
        folder = Path(tmp)
        sink = Sink(tools, folder)
        try:
            maker = MessageMaker(write_config(folder / "message", port=sink.port, concurrency=1))
            message = maker.message(maker.render(), 0)
            message_file = folder / "message.eml"  # smtp-source appends CRLF to each line
            message_file.write_bytes(message.replace(b"\r\n", b"\n"))
            count, sessions = max(readers), args.sessions
            print(f"smtp-sink on {HOST}:{sink.port}; smtp-source: {count:,} messages ...")
            label = "smtp-source, %s"
            before = run_smtp_source(tools, sink, message_file, count, sessions, label % "before")
            print(f"naive baseline: {args.naive} readers ...")
            naive = run_naive(sink, maker, args.naive)
            digests = [
                run_digest(sink, n, sessions, args.database, workers)
                for workers in sorted(set(args.workers))
                for n in readers
            ]
            print("smtp-source again ...")
            after = run_smtp_source(tools, sink, message_file, count, sessions, label % "after")
        finally:
            sink.stop()
    database = "PostgreSQL" if (args.database or "").startswith("postgresql") else "SQLite"
    print_results([before, after], digests, naive, len(message), database, sessions)


if __name__ == "__main__":
    main()
