"""What an SMTP reply means for one delivery: sent, deferred, failed or uncertain (pure).

The rules are those of the road for senders (Postfix's reading of RFC 5321): a 2xx
reply to the final dot means the server took responsibility for the message; 4xx is
temporary (retry with backoff); 5xx for this recipient or this message is permanent.
Replies that are none of these (a 3xx where a final reply was due, a malformed line)
leave the outcome open after the data was sent and mean "try again" before it.

Some replies refuse the sending site rather than the reader, whatever command they
answer: :func:`raise_for_site_refusal` turns those into ``TransportError``, so that no
reader is deferred, failed or suppressed for a fault of the relay or of its settings.
"""

from __future__ import annotations

import re
import unicodedata

from digest.errors import SiteRefused, Throttled, TransportError
from digest.models import DeliveryStatus, SendResult

MAX_REPLY_LENGTH = 500
"""Longest reply text kept in the ledger; relays sometimes send a page of prose."""

THROTTLED = (
    "The relay is throttling or temporarily refusing mail: digest slows down and retries"
    " later, without counting an attempt against any reader."
)
"""What a site-level temporary refusal (421, 4.7.x, rate limits, 4xx to MAIL FROM) means."""

SITE_REFUSED = (
    "The refusal is about the sending site, not the reader: the edition is paused and no"
    " reader is marked as failed. Check the relay's and the receiving side's policy for"
    " this host, [site] sender_email, SPF/DKIM/DMARC and block lists before resuming."
)
"""What a permanent refusal of the site (blocklisted, policy, spam) means."""

# Refusals of the client, the sender or the message as spam, whichever command they answer
# (as Postfix's and the big providers' replies word them).
_SITE_WORDS = re.compile(
    r"client host|blocked|block ?list|black ?list|listed (?:at|by|in|on)|spamhaus|\brbl\b"
    r"|dnsbl|reputation|sender address rejected|sender (?:is )?rejected|sender verify"
    r"|\bspf\b|\bdmarc\b|\bdkim\b|not authorized|unauthenticated",
    re.IGNORECASE,
)
_SPAM = re.compile(r"\bspam\b|\bjunk\b|unsolicited", re.IGNORECASE)
_THROTTLE_WORDS = re.compile(
    r"rate.?limit|too many|throttl|slow down|exceeded|try again later|temporarily deferred",
    re.IGNORECASE,
)
_MAILBOX_WORDS = re.compile(
    r"mailbox|user unknown|no such user|does not exist|unknown user|recipient address rejected"
    r"|account|inactive|disabled|\buser\b|recipient",
    re.IGNORECASE,
)

_WHITESPACE = re.compile(r"\s+")
_ENHANCED_CODE = re.compile(r"[245]\.\d{1,3}\.\d{1,3}\s")
_ADDRESS = re.compile(r"\S*@\S*")
_RELAY = re.compile(r"\brelay(?:ing)?\b", re.IGNORECASE)


def one_line(text: str, *, limit: int = MAX_REPLY_LENGTH) -> str:
    """``text`` as one printable line: line breaks and runs of space collapsed,
    control and format characters (bidi overrides, zero-width) removed, capped at
    ``limit`` characters with an ellipsis.
    """
    if text.isascii() and text.isprintable() and "  " not in text and len(text) <= limit:
        return text.strip()  # the common reply: nothing to clean
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

    Site-level refusals (greeting, EHLO, AUTH, MAIL FROM, and the replies
    :func:`raise_for_site_refusal` knows) are not classified here: the SMTP mailer
    raises ``TransportError`` for those before asking.
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


def enhanced_code(message: str) -> str:
    """The RFC 3463 enhanced status code at the start of a reply's text, or ""."""
    found = _ENHANCED_CODE.match(message.strip() + " ")
    return found.group().strip() if found else ""


def failure_kind(reply: str) -> str:
    """What a circuit breaker compares: the code and enhanced code, e.g. ``"550 5.7.1"``."""
    code, _, rest = reply.partition(" ")
    return f"{code} {enhanced_code(rest)}".strip()


def raise_for_throttling(code: int, message: str, *, stage: str, where: str) -> None:
    """Raise ``Throttled`` if a reply to RCPT, DATA or the final dot asks us to slow down.

    421 (closing, busy), a 4xx with enhanced code 4.7.x (policy, rate), and a 4xx that
    speaks of rates or of too many connections, messages or recipients.
    """
    if code == 421 or (
        400 <= code <= 499
        and (enhanced_code(message).startswith("4.7.") or _THROTTLE_WORDS.search(message))
    ):
        raise Throttled(f"{where} answered {stage} with {format_reply(code, message)}. {THROTTLED}")


def raise_for_policy_refusal(code: int, message: str, *, stage: str, where: str) -> None:
    """Raise ``SiteRefused`` if a 5xx to RCPT or the final dot refuses the site.

    The client host, the sender address, a block list, SPF/DKIM/DMARC, a 5.7.x policy
    code (unless the text is about the mailbox), and "spam" at the end of the data: the
    same refusal would meet every reader, so no reader is failed for it.
    """
    if not 500 <= code <= 599:
        return
    text = _ADDRESS.sub(" ", message)
    policy = enhanced_code(message).startswith("5.7.") and not _MAILBOX_WORDS.search(text)
    spam = stage == "the final dot" and _SPAM.search(text) is not None
    if policy or spam or _SITE_WORDS.search(text):
        raise SiteRefused(
            f"{where} refused the site at {stage}: {format_reply(code, message)}. {SITE_REFUSED}"
        )


def raise_for_site_refusal(code: int, message: str, *, stage: str, where: str) -> None:
    """Raise ``TransportError`` if this reply refuses the sending site rather than the reader.

    ``stage`` names the command answered ("MAIL FROM", "RCPT TO", "DATA", "the final dot"),
    ``where`` the relay as ``host:port``. Site refusals are:

    - 421 at any stage, and any 4xx to MAIL FROM: the relay is throttling or busy for
      now (the edition pauses and is resumed later; no reader's attempt is used up);
    - 530 (authentication required), and a 5xx that says relaying is denied (enhanced
      code 5.7.x, or none, and "relay" in the text outside any address, e.g.
      "554 5.7.1 Relay access denied"): digest may not send through this relay, which
      would otherwise turn every reader into a hard bounce.

    Other 4xx and 5xx replies to RCPT or DATA are about the reader: :func:`classify_reply`.
    """
    reply = format_reply(code, message)
    if code == 421 or (stage == "MAIL FROM" and 400 <= code <= 499):
        raise Throttled(f"{where} answered {stage} with {reply}. {THROTTLED}")
    if code == 530 or (500 <= code <= 599 and _relay_denied(message)):
        raise TransportError(
            f"{where} refused to relay mail from digest: it answered {stage} with {reply}."
            " Check [delivery.smtp] username and password_env (the relay may require AUTH),"
            " or the relay's permissions for this host and [site] sender_email."
        )


def _relay_denied(message: str) -> bool:
    enhanced = enhanced_code(message)
    if enhanced and not enhanced.startswith("5.7."):
        return False  # e.g. 5.1.1: a reader's mailbox, whatever the prose says
    return _RELAY.search(_ADDRESS.sub(" ", message.strip())) is not None
