"""Benchmark: importing and listing a reader list of 100,000, against the code paths before.

Run: .venv/bin/python benchmarks/import.py [--rows 100000] [--sample 5000]
         [--database postgresql+psycopg://postgres@127.0.0.1:5432/test]

Import, each on a fresh database, of a Mailchimp-like export (address, first and last name):
  per reader: one transaction per reader (``add_subscriber`` row after row), how
              ``subscribers import`` wrote readers when 100,000 took 203 s; on --sample rows;
  before:     the import as it was before this change (frozen below: the whole file read
              into memory, 1,000 subscriptions a transaction, no names, no choices, no
              suppression list), in this process, on --rows of a one-column ``email`` file
              (it could not read Mailchimp's "Email Address");
  digest:     the import now (the file read twice: once to check it, once to import;
              batches of 5,000), in this process, and ``digest subscribers import FILE`` in
              a subprocess (start-up included), on --rows;
then the list of those --rows readers, each in a subprocess (wall time, peak RSS by wait4):
  before:     the list command before this change (every subscription into a rich Table);
  digest:     ``subscribers list``, ``list --json`` and ``export``, streamed.
Prints rows/s, seconds, MB and the ratios digest / before (and / per reader). Output goes to
/dev/null. Compare ratios across machines, not absolute numbers.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, text

from digest import reader_csv
from digest.app import build_app
from digest.cli import main as digest_main
from digest.editorial import load_config
from digest.errors import InvalidAddress, NotFound
from digest.models import SubscriptionStatus
from digest.ports import Store
from digest.subscriptions import ImportDefaults, add_subscriber, import_readers, normalize_address

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the test deployment's config writer
from support.deployment import write_config  # noqa: E402

SECRET_ENV = {"DIGEST_SECRET_KEY": "benchmark-secret-" + "x" * 40}
DIGEST = [sys.executable, "-m", "digest.cli"]


def write_export(path: Path, rows: int, *, mailchimp: bool) -> None:
    """Mailchimp's columns, or the one ``email`` column the import before could read."""
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        if not mailchimp:
            writer.writerow(["email"])
            writer.writerows([f"Reader.{n:06}@Example.net"] for n in range(rows))
            return
        writer.writerow(["Email Address", "First Name", "Last Name", "OPTIN_TIME", "TAGS"])
        for n in range(rows):
            writer.writerow([f"Reader.{n:06}@Example.net", "Reader", f"Nº {n}", "2024-03-01", ""])


def before_import(store: Store, text: str, now: datetime) -> int:
    """``digest.subscriptions.import_csv`` before this change, frozen (its report aside)."""
    rows = list(csv.reader(io.StringIO(text)))
    header = [cell.strip().lower() for cell in rows[0]]
    email_col = header.index("email")
    added = 0
    batch: list[tuple[str, str, str]] = []
    for number, row in enumerate(rows, start=1):
        if number == 1 or not any(cell.strip() for cell in row):
            continue
        try:
            email, ascii_email = normalize_address(row[email_col])
        except (InvalidAddress, NotFound):
            continue
        batch.append((email, ascii_email, "daily"))
        if len(batch) >= 1000:
            added += store.add_subscriptions(list(dict.fromkeys(batch)), CONFIRMED, now)
            batch.clear()
    added += store.add_subscriptions(list(dict.fromkeys(batch)), CONFIRMED, now)
    return added


CONFIRMED = SubscriptionStatus.CONFIRMED


def before_list(config: Path) -> None:
    """``digest subscribers list`` before this change (run with --before-list CONFIG)."""
    app = build_app(load_config(config), environ=SECRET_ENV)
    out = Console(highlight=False, markup=False)
    table = Table("email", "newsletter", "status", "since")
    rows = app.store.list_subscriptions(None)
    for sub in rows:
        table.add_row(
            sub.subscriber.email, sub.newsletter_id, str(sub.status), f"{sub.changed_at:%Y-%m-%d}"
        )
    out.print(table)
    out.print(f"{len(rows)} subscription(s)")


def child(argv: Sequence[str]) -> tuple[float, float]:
    """Run ``digest ARGV`` (or ``--before-list CONFIG``) in a fresh process with output to
    /dev/null: (seconds, peak RSS in MB).

    The peak is the child's own VmHWM: what ``wait4`` reports would include this
    process's size, which Linux carries over into a child's maximum at fork.
    """
    env = {**os.environ, **SECRET_ENV, "COLUMNS": "80"}
    command = [sys.executable, str(Path(__file__).resolve()), "--measured", *argv]
    started = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    seconds = time.perf_counter() - started
    errors = done.stderr.decode()
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {errors}")
    peak_kb = int(errors.rsplit("peak-rss-kb ", 1)[1])
    return seconds, peak_kb / 1024


def measured(argv: list[str]) -> None:
    """In the child: run the command, then write its peak RSS (VmHWM) last on stderr."""
    if argv[0] == "--before-list":
        before_list(Path(argv[1]))
    else:
        code = digest_main(argv)
        if code:
            raise SystemExit(code)
    status = Path("/proc/self/status").read_text().splitlines()
    peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    sys.stdout.flush()
    sys.stderr.write(f"\npeak-rss-kb {peak}\n")


def fresh_site(folder: Path, database: str) -> Path:
    url = ""
    if database:
        schema = f"bench_import_{os.getpid()}_{len(list(folder.parent.iterdir()))}"
        with create_engine(database).begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        separator = "&" if "?" in database else "?"
        url = f"{database}{separator}options={quote(f'-csearch_path={schema}')}"
    config = write_config(
        folder, smtp_port=2525, web_port=8000, transport="outbox", database_url=url
    )
    subprocess.run([*DIGEST, "--config", str(config), "migrate"], check=True, capture_output=True)
    return config


def rate(rows: int, seconds: float) -> str:
    return f"{rows / seconds:>9,.0f} rows/s ({seconds:6.1f} s)"


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=5_000, help="rows for the per-reader path")
    parser.add_argument("--database", default="", help="a PostgreSQL URL (default: SQLite)")
    args = parser.parse_args(argv)
    backend = "PostgreSQL" if args.database else "SQLite"
    print(f"import and list of {args.rows:,} readers on {backend}")
    with tempfile.TemporaryDirectory(prefix="digest-import-") as tmp:
        export, plain = Path(tmp) / "mailchimp.csv", Path(tmp) / "plain.csv"
        write_export(export, args.rows, mailchimp=True)
        write_export(plain, args.rows, mailchimp=False)
        now = datetime.now(UTC)

        config = fresh_site(Path(tmp) / "per-reader", args.database)
        app = build_app(load_config(config), environ=SECRET_ENV)
        addresses = [f"reader.{n:06}@example.net" for n in range(args.sample)]
        started = time.perf_counter()
        for address in addresses:
            add_subscriber(app.store, address, "daily", ["daily"], now)
        per_reader = args.sample / (time.perf_counter() - started)
        app.store.close()

        config = fresh_site(Path(tmp) / "before", args.database)
        app = build_app(load_config(config), environ=SECRET_ENV)
        started = time.perf_counter()
        added = before_import(app.store, plain.read_text(encoding="utf-8"), now)
        before_seconds = time.perf_counter() - started
        app.store.close()
        assert added == args.rows, added

        config = fresh_site(Path(tmp) / "in-process", args.database)
        app = build_app(load_config(config), environ=SECRET_ENV)
        started = time.perf_counter()
        layout = reader_csv.scan(export)
        report = import_readers(
            app.store,
            reader_csv.read_rows(export, layout),
            defaults=ImportDefaults(("daily",)),
            newsletters=app.config.newsletters,
            secret=app.secret,
            now=now,
        )
        in_process_seconds = time.perf_counter() - started
        app.store.close()
        assert report.added == args.rows, report

        config = fresh_site(Path(tmp) / "digest", args.database)
        digest_seconds, import_rss = child(
            ["--config", str(config), "subscribers", "import", str(export)]
        )
        print(f"  per reader  {per_reader:>9,.0f} rows/s (on {args.sample:,} rows:"
              f" {args.rows / per_reader:,.0f} s for {args.rows:,})")  # fmt: skip
        print(f"  before      {rate(args.rows, before_seconds)}")
        print(f"  digest      {rate(args.rows, in_process_seconds)}  (in this process, as before)")
        print(f"  digest CLI  {rate(args.rows, digest_seconds)}  peak RSS {import_rss:.0f} MB"
              "  (`subscribers import`: start-up included)")  # fmt: skip
        digest_rate = args.rows / digest_seconds
        print(f"  ratio digest CLI / per reader {digest_rate / per_reader:.1f}x;"
              f" digest / before {before_seconds / in_process_seconds:.2f}x")  # fmt: skip

        print(f"list of {args.rows:,} subscriptions (output to /dev/null)")
        listing: dict[str, tuple[float, float]] = {}
        listing["before (rich Table)"] = child(["--before-list", str(config)])
        for name, command in (
            ("digest list", ["list"]),
            ("digest list --json", ["list", "--json"]),
            ("digest export", ["export"]),
        ):
            listing[name] = child(["--config", str(config), "subscribers", *command])
        base_seconds, base_rss = listing["before (rich Table)"]
        for name, (seconds, rss) in listing.items():
            ratios = f"{seconds / base_seconds:.2f}x time, {rss / base_rss:.2f}x memory of before"
            print(f"  {name:<20} {seconds:6.1f} s  peak RSS {rss:5.0f} MB  ({ratios})")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--measured"]:
        measured(sys.argv[2:])
    else:
        main()
