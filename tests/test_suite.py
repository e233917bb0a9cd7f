"""The test suite itself: it reads its own fixtures, never the editor's content.

``config/posts/`` and ``config/feeds/`` are the editor's: adding, editing or removing a
post there must never break ``make test``. Tests use the copies in ``tests/fixtures/``;
only ``config/digest.toml`` itself is validated, and that without counting posts.
"""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
# "config" / "posts", "config/feeds/...", REPO / "config" / "feeds": any path into them.
_EDITORS_CONTENT = re.compile(r"""config["']?\s*[/,]\s*["']?(posts|feeds)\b""")


def test_no_test_reads_the_editors_posts_or_feeds() -> None:
    readers = [
        f"{path.relative_to(TESTS)}:{number}: {line.strip()}"
        for path in sorted(TESTS.rglob("*.py"))
        if path != Path(__file__).resolve()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if _EDITORS_CONTENT.search(line)
    ]
    assert readers == [], "use a copy in tests/fixtures/ instead"
