"""classify_reply and reply normalization (pure)."""

from __future__ import annotations

import pytest

from digest.delivery.replies import (
    MAX_REPLY_LENGTH,
    classify_reply,
    format_reply,
    one_line,
    raise_for_site_refusal,
)
from digest.errors import TransportError
from digest.models import DeliveryStatus


@pytest.mark.parametrize(
    ("code", "after_data", "status"),
    [
        (250, True, DeliveryStatus.SENT),
        (250, False, DeliveryStatus.DEFERRED),  # nothing was transferred yet
        (421, True, DeliveryStatus.DEFERRED),
        (451, False, DeliveryStatus.DEFERRED),
        (550, False, DeliveryStatus.FAILED),
        (554, True, DeliveryStatus.FAILED),
        (354, True, DeliveryStatus.UNCERTAIN),
        (-1, True, DeliveryStatus.UNCERTAIN),  # aiosmtplib's code for a malformed reply
        (-1, False, DeliveryStatus.DEFERRED),
    ],
)
def test_classify_reply_by_code_and_phase(
    code: int, after_data: bool, status: DeliveryStatus
) -> None:
    assert classify_reply(code, "text", after_data=after_data).status is status


def test_the_reply_is_kept_as_one_line() -> None:
    result = classify_reply(550, "5.1.1 user unknown", after_data=False)
    assert result.reply == "550 5.1.1 user unknown"

    multi = classify_reply(
        550, "5.1.1 The email account does not exist.\n5.1.1 Try again.", after_data=False
    )
    assert multi.reply == "550 5.1.1 The email account does not exist. Try again."


def test_format_reply_without_a_valid_code() -> None:
    assert format_reply(-1, "Malformed SMTP response line: wat") == (
        "Malformed SMTP response line: wat"
    )
    assert format_reply(-1, "") == "malformed reply"


def test_one_line_removes_controls_bidi_and_caps_length() -> None:
    assert one_line("a\r\n\tb\x00c\u202ed\u200be \udcff") == "a bcde"
    long = one_line("x" * 2000)
    assert len(long) == MAX_REPLY_LENGTH
    assert long.endswith("…")


@pytest.mark.parametrize(
    ("code", "message", "stage", "expected"),
    [
        (421, "4.7.0 slow down", "RCPT TO", "throttling"),
        (421, "4.7.0 slow down", "the final dot", "throttling"),
        (451, "4.3.2 busy", "MAIL FROM", "throttling"),
        (452, "4.3.1 insufficient storage", "MAIL FROM", "throttling"),
        (530, "5.7.0 Authentication required", "RCPT TO", "refused to relay"),
        (554, "5.7.1 <a@example.net>: Relay access denied", "RCPT TO", "refused to relay"),
        (550, "5.7.1 Relaying denied", "DATA", "refused to relay"),
        (550, "relay not permitted", "RCPT TO", "refused to relay"),
        (550, "5.7.54 SMTP; Unable to relay recipient in non-accepted domain", "RCPT TO", "relay"),
        # about the reader: classify_reply decides
        (451, "4.2.0 mailbox busy", "RCPT TO", None),
        (452, "4.2.2 mailbox full", "DATA", None),
        (550, "5.1.1 user unknown", "RCPT TO", None),
        (550, "5.1.1 <relay@example.net>: relay recipient table says unknown", "RCPT TO", None),
        (550, "<relay@example.net>: user unknown", "RCPT TO", None),
        (554, "5.7.1 message rejected as spam", "the final dot", None),
        (554, "5.7.1 relayed spam rejected", "the final dot", None),
    ],
)
def test_site_refusals_are_told_from_the_readers(
    code: int, message: str, stage: str, expected: str | None
) -> None:
    if expected is None:
        raise_for_site_refusal(code, message, stage=stage, where="relay.example:587")
        return
    with pytest.raises(TransportError, match=expected) as caught:
        raise_for_site_refusal(code, message, stage=stage, where="relay.example:587")
    assert str(caught.value).startswith("relay.example:587 ")
    assert format_reply(code, message) in str(caught.value)
