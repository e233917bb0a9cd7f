"""Running `digest` in-process on a deployment's config, as the CLI tests do."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.cli import main

from support import deployment

# A second newsletter with two cadences, one in another zone: the columns a listing needs
# for several newsletters and cadences.
WEEKLY_REVIEW = """
[newsletters.weekly-review]
title = "Transmission Weekly Review"
description = "The week's analysis."
sources = ["posts"]

[newsletters.weekly-review.cadences.weekly]
title = "Every Monday"
weekly = "mon 07:30"

[newsletters.weekly-review.cadences.monthly]
title = "On the first"
monthly = "1 08:00"
timezone = "America/New_York"
"""


def write_config(folder: Path, extra: str = "") -> Path:
    """The deployment's config (outbox, the `daily` newsletter) plus `weekly-review`."""
    return deployment.write_config(
        folder, smtp_port=1, web_port=1, transport="outbox", extra=WEEKLY_REVIEW + extra
    )


def terminal(monkeypatch: pytest.MonkeyPatch, columns: int = 80) -> None:
    """A terminal this wide (rich reads COLUMNS), the deployment's key, no DIGEST_CONFIG."""
    monkeypatch.setenv("COLUMNS", str(columns))
    monkeypatch.setenv("DIGEST_SECRET_KEY", deployment.SECRET_ENV["DIGEST_SECRET_KEY"])
    monkeypatch.delenv("DIGEST_CONFIG", raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of one `digest` command."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def widest(text: str) -> int:
    return max(map(len, text.splitlines()), default=0)
