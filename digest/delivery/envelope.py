"""What every transport refuses in an envelope: addresses no SMTP line can carry."""

from __future__ import annotations

import re

from digest.errors import TransportError
from digest.models import DeliveryStatus, Letter, SendResult

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def has_control(address: str) -> bool:
    """Whether ``address`` holds a line break or another control character."""
    return _CONTROL.search(address) is not None


def refuse_controls(letter: Letter) -> SendResult | None:
    """A letter no SMTP line can carry: the sender's fault raises ``TransportError`` (a
    site problem), the reader's is ``FAILED`` (such an address can never be delivered)."""
    if has_control(letter.sender):
        raise TransportError(
            f"the envelope sender {letter.sender!r} contains a line break or control"
            " character; fix [site] sender_email"
        )
    if has_control(letter.recipient):
        return SendResult(
            DeliveryStatus.FAILED,
            f"invalid recipient address {letter.recipient!r}: it contains a control character",
        )
    return None
