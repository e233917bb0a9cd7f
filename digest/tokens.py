"""Signed, purpose-bound tokens for links in emails (unsubscribe, confirm, preferences).

A token carries a few short fields (opaque ids) and an HMAC-SHA256 over the purpose
and the fields, so a token minted for one purpose is useless for another and no id can
be swapped. Tokens do not expire unless minted with ``issued_at`` and read with
``max_age``: unsubscribe links must keep working long after the send (RFC 8058 readers
and the Gmail/Yahoo rules expect at least 30 days).

Key rotation: tokens are signed with the current key only and read with it or any of
the previous keys (:class:`Keys`), so that links already in readers' inboxes keep
working after the key changes. A token has exactly one accepted spelling: base64 that
decodes to the same bytes from another text (padding, non-canonical trailing bits,
characters the decoder skips) is refused, so a token can be compared as a string.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from digest.errors import InvalidToken

_SEPARATOR = "\x1f"  # unit separator: cannot appear in ids, so fields never run together
_MAC_BYTES = 16


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    """The bytes of ``text``, only if ``text`` is exactly how :func:`_b64` writes them."""
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:
        raise ValueError("not the canonical spelling")
    return data


@dataclass(frozen=True, slots=True)
class Keys:
    """The signing key, and the previous keys still accepted when reading a token."""

    current: bytes
    previous: tuple[bytes, ...] = ()

    @classmethod
    def of(cls, keys: Keys | bytes) -> Keys:
        return keys if isinstance(keys, Keys) else cls(keys)

    @property
    def accepted(self) -> tuple[bytes, ...]:
        """Every key a signature may have been made with: the current one first."""
        return (self.current, *self.previous)


def _mac(secret: bytes, purpose: str, payload: bytes) -> bytes:
    message = purpose.encode() + b"\x00" + payload
    return hmac.digest(secret, message, hashlib.sha256)[:_MAC_BYTES]  # one C call


def sign_token(
    keys: Keys | bytes, purpose: str, *fields: str, issued_at: datetime | None = None
) -> str:
    """Mint a URL-safe token for ``purpose`` carrying ``fields``, with the current key.

    With ``issued_at`` the token also carries its minting time (whole seconds), which
    ``read_token(..., max_age=...)`` checks. The same inputs always give the same token.
    """
    if any(_SEPARATOR in field for field in fields):
        raise ValueError("token fields must not contain the unit separator")
    parts = list(fields)
    if issued_at is not None:
        parts.append(str(int(issued_at.timestamp())))
    payload = _SEPARATOR.join(parts).encode()
    return f"{_b64(payload)}.{_b64(_mac(Keys.of(keys).current, purpose, payload))}"


def read_token(
    keys: Keys | bytes,
    purpose: str,
    token: str,
    *,
    now: datetime | None = None,
    max_age: timedelta | None = None,
) -> tuple[str, ...]:
    """Verify ``token`` for ``purpose`` and return its fields (without the timestamp).

    ``keys`` is the current key and the previous ones (or one key). Raises
    ``InvalidToken`` when it is malformed, not in its one spelling, forged, signed with
    a key not among ``keys``, minted for another purpose, or (with ``max_age`` and
    ``now``) older than ``max_age``.
    """
    ring = Keys.of(keys)
    encoded_payload, dot, encoded_mac = token.partition(".")
    if not dot or not encoded_payload or not encoded_mac:
        raise InvalidToken("this link is incomplete; copy the whole link from the email")
    try:
        payload = _unb64(encoded_payload)
        mac = _unb64(encoded_mac)
    except (binascii.Error, ValueError) as exc:
        raise InvalidToken("this link is damaged; copy the whole link from the email") from exc
    if not any(hmac.compare_digest(mac, _mac(key, purpose, payload)) for key in ring.accepted):
        raise InvalidToken("this link is not valid (wrong signature or purpose)")
    fields = tuple(payload.decode("utf-8", errors="replace").split(_SEPARATOR))
    if max_age is None:
        return fields
    if now is None:
        raise ValueError("read_token needs `now` to check max_age")
    try:
        issued = datetime.fromtimestamp(int(fields[-1]), tz=UTC)
    except ValueError as exc:
        raise InvalidToken("this link carries no valid issue time") from exc
    if now - issued > max_age:
        raise InvalidToken("this link has expired; ask for a new one")
    return fields[:-1]


UNSUBSCRIBE = "unsubscribe"
PREFERENCES = "preferences"
CONFIRM = "confirm"
ADDRESS = "address"
CSRF = "csrf"


def _fields(fields: tuple[str, ...], count: int, what: str) -> tuple[str, ...]:
    if len(fields) != count or not all(fields):
        raise InvalidToken(f"this {what} link is not valid")
    return fields


def unsubscribe_token(keys: Keys | bytes, subscriber_id: str, newsletter_id: str) -> str:
    """The never-expiring token of a reader's unsubscribe link for one newsletter."""
    return sign_token(keys, UNSUBSCRIBE, subscriber_id, newsletter_id)


def read_unsubscribe_token(keys: Keys | bytes, token: str) -> tuple[str, str]:
    """``(subscriber_id, newsletter_id)`` from an unsubscribe token; ``InvalidToken`` if bad."""
    fields = _fields(read_token(keys, UNSUBSCRIBE, token), 2, "unsubscribe")
    return fields[0], fields[1]


def preferences_token(keys: Keys | bytes, subscriber_id: str) -> str:
    """The never-expiring token of a reader's preference center (all their newsletters)."""
    return sign_token(keys, PREFERENCES, subscriber_id)


def read_preferences_token(keys: Keys | bytes, token: str) -> str:
    """The subscriber id of a preferences token; ``InvalidToken`` if bad."""
    return _fields(read_token(keys, PREFERENCES, token), 1, "preferences")[0]


def confirm_token(keys: Keys | bytes, subscriber_id: str, issued_at: datetime) -> str:
    """The token of a sign-up's confirmation link: it expires (see ``read_confirm_token``)."""
    return sign_token(keys, CONFIRM, subscriber_id, issued_at=issued_at)


def read_confirm_token(keys: Keys | bytes, token: str, *, now: datetime, max_age: timedelta) -> str:
    """The subscriber id of a confirmation token at most ``max_age`` old."""
    fields = read_token(keys, CONFIRM, token, now=now, max_age=max_age)
    return _fields(fields, 1, "confirmation")[0]


def address_token(
    keys: Keys | bytes, subscriber_id: str, new_email: str, issued_at: datetime
) -> str:
    """The token of the link, sent to ``new_email``, that moves the reader to it."""
    return sign_token(keys, ADDRESS, subscriber_id, new_email, issued_at=issued_at)


def read_address_token(
    keys: Keys | bytes, token: str, *, now: datetime, max_age: timedelta
) -> tuple[str, str]:
    """``(subscriber_id, new_email)`` of a change-of-address token at most ``max_age`` old."""
    fields = read_token(keys, ADDRESS, token, now=now, max_age=max_age)
    subscriber_id, email = _fields(fields, 2, "change of address")
    return subscriber_id, email


def csrf_token(keys: Keys | bytes, form: str, issued_at: datetime) -> str:
    """A form's anti-forgery value: bound to the form's address and its time."""
    return sign_token(keys, CSRF, form, issued_at=issued_at)


def check_csrf(
    keys: Keys | bytes, value: str, form: str, *, now: datetime, max_age: timedelta
) -> None:
    """``InvalidToken`` unless ``value`` was minted for ``form`` at most ``max_age`` ago."""
    if read_token(keys, CSRF, value, now=now, max_age=max_age) != (form,):
        raise InvalidToken("this form was not made for this page")
