from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from digest.errors import InvalidToken
from digest.tokens import read_token, read_unsubscribe_token, sign_token, unsubscribe_token

SECRET = b"k" * 32


def test_round_trip_and_determinism() -> None:
    token = sign_token(SECRET, "p", "abc", "daily")
    assert token == sign_token(SECRET, "p", "abc", "daily")
    assert read_token(SECRET, "p", token) == ("abc", "daily")
    assert all(c.isalnum() or c in "-_." for c in token)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
        lambda t: t.split(".")[0],
        lambda t: "!!!." + t.split(".")[1],
        lambda t: "",
    ],
)
def test_tampered_tokens_are_refused(mangle: object) -> None:
    token = sign_token(SECRET, "p", "abc")
    with pytest.raises(InvalidToken):
        read_token(SECRET, "p", mangle(token))  # type: ignore[operator]


def test_purpose_and_secret_are_bound() -> None:
    token = sign_token(SECRET, "unsubscribe", "abc", "daily")
    with pytest.raises(InvalidToken):
        read_token(SECRET, "confirm", token)
    with pytest.raises(InvalidToken):
        read_token(b"other" * 8, "unsubscribe", token)


def test_swapping_fields_breaks_the_signature() -> None:
    token = sign_token(SECRET, "p", "alice", "daily")
    forged_payload = sign_token(b"attacker", "p", "mallory", "daily").split(".")[0]
    with pytest.raises(InvalidToken):
        read_token(SECRET, "p", forged_payload + "." + token.split(".")[1])


def test_expiry_only_when_asked() -> None:
    issued = datetime(2026, 1, 1, tzinfo=UTC)
    token = sign_token(SECRET, "confirm", "abc", issued_at=issued)
    later = issued + timedelta(days=2)
    assert read_token(SECRET, "confirm", token, now=later, max_age=timedelta(days=3)) == ("abc",)
    with pytest.raises(InvalidToken, match="expired"):
        read_token(SECRET, "confirm", token, now=later, max_age=timedelta(days=1))


def test_unsubscribe_helpers() -> None:
    token = unsubscribe_token(SECRET, "sub-1", "daily")
    assert read_unsubscribe_token(SECRET, token) == ("sub-1", "daily")
    with pytest.raises(InvalidToken):
        read_unsubscribe_token(SECRET, sign_token(SECRET, "unsubscribe", "only-one"))
