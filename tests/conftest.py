"""Shared fixtures. Area-specific helpers live in tests/support/."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from support.browser import browser  # noqa: F401  (a fixture of the browser tests)


@pytest.fixture
def now() -> datetime:
    """A fixed, aware UTC instant: the clock every pure-core test passes in."""
    return datetime(2026, 11, 27, 7, 0, tzinfo=UTC)


@pytest.fixture
def premailer_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the real premailer's runs (each still runs)."""
    # Imported here: digest.render must import premailer first (it sizes its cache).
    import premailer

    calls: list[int] = []
    real = premailer.transform

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(premailer, "transform", counting)
    return calls
