"""Signed, purpose-bound tokens for links in emails (unsubscribe, later confirm).

A token carries a few short fields (opaque ids) and an HMAC-SHA256 over the purpose
and the fields, so a token minted for one purpose is useless for another and no id can
be swapped. Tokens do not expire unless minted with ``issued_at`` and read with
``max_age``: unsubscribe links must keep working long after the send (RFC 8058 readers
and the Gmail/Yahoo rules expect at least 30 days).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

from digest.errors import InvalidToken

_SEPARATOR = "\x1f"  # unit separator: cannot appear in ids, so fields never run together
_MAC_BYTES = 16


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, purpose: str, payload: bytes) -> bytes:
    message = purpose.encode() + b"\x00" + payload
    return hmac.digest(secret, message, hashlib.sha256)[:_MAC_BYTES]  # one C call


def sign_token(secret: bytes, purpose: str, *fields: str, issued_at: datetime | None = None) -> str:
    """Mint a URL-safe token for ``purpose`` carrying ``fields``.

    With ``issued_at`` the token also carries its minting time (whole seconds), which
    ``read_token(..., max_age=...)`` checks. The same inputs always give the same token.
    """
    if any(_SEPARATOR in field for field in fields):
        raise ValueError("token fields must not contain the unit separator")
    parts = list(fields)
    if issued_at is not None:
        parts.append(str(int(issued_at.timestamp())))
    payload = _SEPARATOR.join(parts).encode()
    return f"{_b64(payload)}.{_b64(_mac(secret, purpose, payload))}"


def read_token(
    secret: bytes,
    purpose: str,
    token: str,
    *,
    now: datetime | None = None,
    max_age: timedelta | None = None,
) -> tuple[str, ...]:
    """Verify ``token`` for ``purpose`` and return its fields (without the timestamp).

    Raises ``InvalidToken`` when it is malformed, forged, minted for another purpose,
    or (with ``max_age`` and ``now``) older than ``max_age``.
    """
    encoded_payload, dot, encoded_mac = token.partition(".")
    if not dot or not encoded_payload or not encoded_mac:
        raise InvalidToken("this link is incomplete; copy the whole link from the email")
    try:
        payload = _unb64(encoded_payload)
        mac = _unb64(encoded_mac)
    except (binascii.Error, ValueError) as exc:
        raise InvalidToken("this link is damaged; copy the whole link from the email") from exc
    if not hmac.compare_digest(mac, _mac(secret, purpose, payload)):
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


def unsubscribe_token(secret: bytes, subscriber_id: str, newsletter_id: str) -> str:
    """The never-expiring token of a reader's unsubscribe link for one newsletter."""
    return sign_token(secret, UNSUBSCRIBE, subscriber_id, newsletter_id)


def read_unsubscribe_token(secret: bytes, token: str) -> tuple[str, str]:
    """``(subscriber_id, newsletter_id)`` from an unsubscribe token; ``InvalidToken`` if bad."""
    fields = read_token(secret, UNSUBSCRIBE, token)
    if len(fields) != 2:
        raise InvalidToken("this unsubscribe link is not valid")
    return fields[0], fields[1]
