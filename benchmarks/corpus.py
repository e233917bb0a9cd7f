"""Benchmark: what the awkward and hostile feed corpus costs to read and render.

Run: .venv/bin/python benchmarks/corpus.py [--repeat 3]

For every feed of the test corpus (tests/fixtures/feeds and tests/fixtures/corpus: the
defect classes, the attack classes; tests/fixtures/limits: oversized fields, too many
items), one row: the time to parse
it as a fetch does, the time to render its digest (premailer once), the peak memory of
both (tracemalloc), the size of the HTML part, and each against the same measure for the
sample feed (the baseline: a well-behaved broadcaster's feed). A hostile feed should cost
about what a normal one does: field caps and bounded patterns keep a 4 MB title or a
billion-laughs prolog from costing more than its capped size. Compare the ratios, not the
absolute numbers, across machines.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from string import Template
from typing import TypeVar

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the corpus helpers live with the fixtures

from digest.errors import SourceError  # noqa: E402
from digest.models import Post  # noqa: E402

from support.corpus import NOW, corpus_feeds, feed_posts, render  # noqa: E402

BASELINE = "transmission.xml"
_T = TypeVar("_T")


def measured(work: Callable[[], _T], repeat: int) -> tuple[_T, float, int]:
    """``work()``'s result, its best time in seconds over ``repeat`` runs, its peak bytes."""
    best = float("inf")
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - start)
    tracemalloc.start()
    work()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return result, best, peak  # type: ignore[return-value]


def filled(path: Path, folder: Path) -> Path:
    """A limits fixture with its ``${items}`` placeholder filled (5,000 items), as a file."""
    text = path.read_text(encoding="utf-8")
    if "${items}" not in text:
        return path
    items = "".join(
        f"<item><title>Episode {n}</title><link>https://transmission.example.org/e/{n}</link>"
        f"<guid>e-{n}</guid><description>Episode {n} of the archive.</description></item>"
        for n in range(5_000, 0, -1)
    )
    out = folder / path.name
    out.write_text(Template(text).substitute(items=items), encoding="utf-8")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs (3)")
    args = parser.parse_args()
    rows: list[tuple[str, str, float, int, float, int, int]] = []
    limits = sorted((ROOT / "tests" / "fixtures" / "limits").glob("*.xml"))
    scratch = Path(tempfile.mkdtemp(prefix="digest-corpus-"))
    for path in [*corpus_feeds(), *(filled(p, scratch) for p in limits)]:

        def parse(p: Path = path) -> list[Post]:
            try:
                return feed_posts(p, NOW)
            except SourceError:
                return []

        posts, parse_s, parse_peak = measured(parse, args.repeat)
        if not posts:
            rows.append((path.name, "refused", parse_s, parse_peak, 0.0, 0, 0))
            continue
        rendered, render_s, render_peak = measured(lambda ps=posts: render(ps, NOW), args.repeat)
        html_bytes = len(rendered.html.encode("utf-8"))
        rows.append(
            (path.name, str(len(posts)), parse_s, parse_peak, render_s, render_peak, html_bytes)
        )
    base = next(row for row in rows if row[0] == BASELINE)

    def ratio(value: float, baseline: float) -> str:
        return f"{value / baseline:.1f}x" if value and baseline else "-"

    table = Table(
        "feed",
        "posts",
        "parse ms",
        "÷ base",
        "render ms",
        "÷ base",
        "peak MiB",
        "÷ base",
        "HTML KB",
        title="the feed corpus: parse and render, against the sample feed",
    )
    for name, posts, parse_s, parse_peak, render_s, render_peak, html_bytes in rows:
        peak = max(parse_peak, render_peak)
        table.add_row(
            name,
            posts,
            f"{parse_s * 1000:.1f}" if parse_s else "-",
            ratio(parse_s, base[2]),
            f"{render_s * 1000:.1f}" if render_s else "-",
            ratio(render_s, base[4]),
            f"{peak / 2**20:.1f}" if peak else "-",
            ratio(peak, max(base[3], base[5])),
            f"{html_bytes / 1000:.1f}" if html_bytes else "-",
        )
    Console(width=120).print(table)
    worst_render = max(row[4] for row in rows)
    worst_peak = max(max(row[3], row[5]) for row in rows)
    print(
        f"worst: render {worst_render * 1000:.0f} ms ({ratio(worst_render, base[4])} the sample),"
        f" peak {worst_peak / 2**20:.1f} MiB ({ratio(worst_peak, max(base[3], base[5]))});"
        f" baseline {BASELINE}, best of {args.repeat}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
