"""What an SMTP reply means for one delivery: sent, deferred, failed or uncertain (pure).

The rules are those of the road for senders (Postfix's reading of RFC 5321): a 2xx
reply to the final dot means the server took responsibility for the message; 4xx is
temporary (retry with backoff); 5xx for this recipient or this message is permanent.
Replies that are none of these (a 3xx where a final reply was due, a malformed line)
leave the outcome open after the data was sent and mean "try again" before it.
"""

from __future__ import annotations

import re
import unicodedata

from digest.models import DeliveryStatus, SendResult

MAX_REPLY_LENGTH = 500
"""Longest reply text kept in the ledger; relays sometimes send a page of prose."""

_WHITESPACE = re.compile(r"\s+")
_ENHANCED_CODE = re.compile(r"[245]\.\d{1,3}\.\d{1,3}\s")


def one_line(text: str, *, limit: int = MAX_REPLY_LENGTH) -> str:
    """``text`` as one printable line: line breaks and runs of space collapsed,
    control and format characters (bidi overrides, zero-width) removed, capped at
    ``limit`` characters with an ellipsis.
    """
    cleaned = "".join(
        " " if char.isspace() else char
        for char in text
        if char.isspace() or unicodedata.category(char)[0] != "C"
    )
    cleaned = _WHITESPACE.sub(" ", cleaned).strip()
    if len(cleaned) > limit:
        cleaned = cleaned[: limit - 1].rstrip() + "…"
    return cleaned


def format_reply(code: int, message: str) -> str:
    """The reply as the ledger stores it: ``"550 5.1.1 user unknown"``, one line.

    aiosmtplib hands over multi-line replies with the codes stripped and the lines
    joined by newlines; they become one line separated by spaces, and an enhanced
    status code repeated on every line is kept once. A code that is not a reply code
    (aiosmtplib uses -1 for a malformed reply) is left out.
    """
    first, *rest = message.splitlines() or [""]
    enhanced = _ENHANCED_CODE.match(first)
    if enhanced:
        rest = [line.removeprefix(enhanced.group()) for line in rest]
    text = one_line(" ".join([first, *rest]))
    if 100 <= code <= 599:
        return f"{code} {text}".rstrip()
    return text or "malformed reply"


def classify_reply(code: int, message: str, *, after_data: bool) -> SendResult:
    """Map one SMTP reply that ends a transaction to the outcome of the delivery.

    ``after_data`` says whether the reply answers the final dot (the message was
    transferred) or an earlier command (RCPT, DATA) that refused the transaction.

    - 2xx: ``SENT`` after the data; before it, a 2xx cannot end a transaction, so the
      message was not transferred: ``DEFERRED``.
    - 4xx: ``DEFERRED`` (temporary).
    - 5xx: ``FAILED`` (permanent for this recipient or message; the reply is kept).
    - anything else: ``UNCERTAIN`` after the data (the server may have the message),
      ``DEFERRED`` before it.

    Site-level refusals (greeting, EHLO, AUTH, 5xx on MAIL FROM) are not classified
    here: the SMTP mailer raises ``TransportError`` for those.
    """
    reply = format_reply(code, message)
    if 200 <= code <= 299:
        status = DeliveryStatus.SENT if after_data else DeliveryStatus.DEFERRED
    elif 400 <= code <= 499:
        status = DeliveryStatus.DEFERRED
    elif 500 <= code <= 599:
        status = DeliveryStatus.FAILED
    else:
        status = DeliveryStatus.UNCERTAIN if after_data else DeliveryStatus.DEFERRED
    return SendResult(status=status, reply=reply)
