"""classify_reply and reply normalization (pure)."""

from __future__ import annotations

import pytest

from digest.delivery.replies import MAX_REPLY_LENGTH, classify_reply, format_reply, one_line
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
