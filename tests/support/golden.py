"""Golden files: compare rendered output with tests/golden/<name>, or rewrite it on request.

Run with ``DIGEST_UPDATE_GOLDEN=1`` to (re)write the golden files from the current output,
then review ``git diff tests/golden`` before committing.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

GOLDEN_DIR = Path(__file__).resolve().parent.parent / "golden"
UPDATE_VARIABLE = "DIGEST_UPDATE_GOLDEN"


def assert_golden(name: str, actual: str) -> None:
    """Fail with a unified diff unless ``actual`` equals tests/golden/``name`` byte for byte."""
    path = GOLDEN_DIR / name
    if os.environ.get(UPDATE_VARIABLE) == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8", newline="") as file:
            file.write(actual)
        return
    if not path.exists():
        pytest.fail(f"{path} is missing; run with {UPDATE_VARIABLE}=1 to create it", pytrace=False)
    with path.open(encoding="utf-8", newline="") as file:
        expected = file.read()
    if actual != expected:
        diff = difflib.unified_diff(
            expected.splitlines(keepends=True),
            actual.splitlines(keepends=True),
            fromfile=f"golden/{name}",
            tofile="actual",
        )
        pytest.fail(
            f"output differs from {path} (run with {UPDATE_VARIABLE}=1 to accept it):\n"
            + "".join(diff),
            pytrace=False,
        )
