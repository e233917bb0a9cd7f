from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from digest.errors import InvalidToken
from digest.tokens import (
    Keys,
    address_token,
    check_csrf,
    confirm_token,
    csrf_token,
    preferences_token,
    read_address_token,
    read_confirm_token,
    read_preferences_token,
    read_token,
    read_unsubscribe_token,
    sign_token,
    unsubscribe_token,
)

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


# --- key rotation ---------------------------------------------------------------------------
OLD = b"o" * 32
OLDER = b"p" * 32


def test_a_token_minted_with_a_previous_key_works_after_rotation() -> None:
    token = unsubscribe_token(OLD, "sub-1", "daily")
    rotated = Keys(SECRET, (OLD, OLDER))
    assert read_unsubscribe_token(rotated, token) == ("sub-1", "daily")
    assert read_unsubscribe_token(Keys(SECRET, (OLDER, OLD)), token) == ("sub-1", "daily")
    with pytest.raises(InvalidToken):
        read_unsubscribe_token(SECRET, token)  # the old key was dropped from the list


def test_new_tokens_are_signed_with_the_current_key_only() -> None:
    rotated = Keys(SECRET, (OLD,))
    token = unsubscribe_token(rotated, "sub-1", "daily")
    assert token == unsubscribe_token(SECRET, "sub-1", "daily")
    with pytest.raises(InvalidToken):
        read_unsubscribe_token(OLD, token)


def test_a_token_minted_with_an_unknown_key_is_refused() -> None:
    token = unsubscribe_token(b"u" * 32, "sub-1", "daily")
    with pytest.raises(InvalidToken, match="not valid"):
        read_unsubscribe_token(Keys(SECRET, (OLD, OLDER)), token)


# --- one spelling per token -----------------------------------------------------------------
def spellings(token: str) -> list[str]:
    """Other texts that base64 decoders take for the same bytes."""
    payload, _, mac = token.partition(".")
    last = mac[-1]
    # A 16-byte MAC is 22 characters: the last one carries 4 bits that decode to nothing.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    index = alphabet.index(last)
    same_bits = alphabet[(index & ~0b1111) | ((index + 1) & 0b1111)]
    return [
        f"{payload}.{mac}==",  # padding
        f"{payload}.{mac[:-1]}{same_bits}",  # non-canonical trailing bits
        f"{payload}.{mac[:5]}!{mac[5:]}",  # a character the decoder skips
        f"{payload}.{mac[:5]}\n{mac[5:]}",
        f"{payload}=.{mac}",
        f"{payload}.{mac}.{mac}",
    ]


def test_every_other_spelling_of_a_token_is_refused() -> None:
    token = unsubscribe_token(SECRET, "sub-1", "daily")
    for other in spellings(token):
        assert other != token
        with pytest.raises(InvalidToken):
            read_unsubscribe_token(SECRET, other)
    assert read_unsubscribe_token(SECRET, token) == ("sub-1", "daily")


def test_the_trailing_bits_really_decode_alike() -> None:
    # What the refusal guards against: the plain decoder accepts the altered spelling.
    token = unsubscribe_token(SECRET, "sub-1", "daily")
    mac = token.partition(".")[2]
    altered = spellings(token)[1].partition(".")[2]
    assert base64.urlsafe_b64decode(mac + "==") == base64.urlsafe_b64decode(altered + "==")


# --- purposes and bindings ------------------------------------------------------------------
def test_each_purpose_reads_only_its_own_tokens() -> None:
    now = datetime(2026, 11, 27, tzinfo=UTC)
    day = timedelta(days=1)
    tokens = {
        "unsubscribe": unsubscribe_token(SECRET, "sub-1", "daily"),
        "preferences": preferences_token(SECRET, "sub-1"),
        "confirm": confirm_token(SECRET, "sub-1", now),
        "address": address_token(SECRET, "sub-1", "new@example.org", now),
    }
    readers = {
        "unsubscribe": lambda t: read_unsubscribe_token(SECRET, t),
        "preferences": lambda t: read_preferences_token(SECRET, t),
        "confirm": lambda t: read_confirm_token(SECRET, t, now=now, max_age=day),
        "address": lambda t: read_address_token(SECRET, t, now=now, max_age=day),
    }
    for purpose, token in tokens.items():
        assert readers[purpose](token)
        for other, read in readers.items():
            if other != purpose:
                with pytest.raises(InvalidToken):
                    read(token)
    assert read_address_token(SECRET, tokens["address"], now=now, max_age=day) == (
        "sub-1",
        "new@example.org",
    )
    with pytest.raises(InvalidToken, match="expired"):
        read_confirm_token(SECRET, tokens["confirm"], now=now + 2 * day, max_age=day)


def test_an_unsubscribe_token_is_bound_to_its_newsletter() -> None:
    daily = unsubscribe_token(SECRET, "sub-1", "daily")
    weekly = unsubscribe_token(SECRET, "sub-1", "weekly")
    payload_weekly = weekly.partition(".")[0]
    with pytest.raises(InvalidToken):
        read_unsubscribe_token(SECRET, payload_weekly + "." + daily.partition(".")[2])


def test_csrf_values_are_bound_to_their_form_and_expire() -> None:
    now = datetime(2026, 11, 27, tzinfo=UTC)
    value = csrf_token(SECRET, "/p/abc", now)
    check_csrf(SECRET, value, "/p/abc", now=now, max_age=timedelta(hours=1))
    with pytest.raises(InvalidToken):
        check_csrf(SECRET, value, "/p/other", now=now, max_age=timedelta(hours=1))
    with pytest.raises(InvalidToken, match="expired"):
        check_csrf(
            SECRET, value, "/p/abc", now=now + timedelta(hours=2), max_age=timedelta(hours=1)
        )
