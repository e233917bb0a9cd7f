"""SmtpMailer against a real aiosmtpd server on 127.0.0.1 (tests/support/smtpd.py)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path
from typing import Any

import pytest

from digest.config import DeliveryConfig, SmtpConfig
from digest.delivery.outbox import OutboxMailer
from digest.delivery.smtp import SmtpMailer, build_mailer, dot_stuff
from digest.errors import ConfigError, NotSent, Throttled, TransportError
from digest.models import DeliveryStatus, Letter, SendResult, normalize_line_endings

from support.smtpd import (
    RecordingServer,
    client_tls_context,
    closed_port,
    greeting_server,
    running_smtpd,
)

SENDER = "news@example.org"
READER = "reader@example.net"
FAILED = DeliveryStatus.FAILED
THROTTLED = r"throttling or temporarily refusing.*digest slows down and retries"


def make_message(
    recipient: str = READER, body: str = "Hello.\n.a line with a leading dot\n"
) -> bytes:
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["From"] = f"News <{SENDER}>"
    msg["To"] = recipient
    msg["Subject"] = "This week"
    msg["Message-ID"] = "<e1.r1@example.org>"
    msg.set_content(body)
    return msg.as_bytes()


@asynccontextmanager
async def smtp_mailer(
    server: RecordingServer, *, password: str | None = None, **overrides: Any
) -> AsyncIterator[SmtpMailer]:
    settings: dict[str, Any] = {"tls": "none", "timeout_seconds": 5.0, "concurrency": 2}
    settings.update(overrides)
    tls_context = settings.pop("tls_context", None)
    config = SmtpConfig(host=server.host, port=server.port, **settings)
    mailer = SmtpMailer(
        config, password=password, local_hostname="client.test", tls_context=tls_context
    )
    try:
        yield mailer
    finally:
        await mailer.aclose()


async def test_message_arrives_byte_for_byte_with_the_envelope() -> None:
    message = make_message()
    async with running_smtpd() as server, smtp_mailer(server) as mailer:
        result = await mailer.send(Letter(SENDER, READER, message))

    assert result.status is DeliveryStatus.SENT
    assert result.reply == "250 2.0.0 OK queued as 1"
    [received] = server.messages
    assert received.data == message  # leading dot un-stuffed again by the server
    assert received.sender == SENDER
    assert received.recipients == (READER,)
    assert f"SIZE={len(message)}" in received.mail_options


async def test_line_endings_become_crlf_and_8bit_bodies_are_declared() -> None:
    message = "Subject: café\n\nBonjour\r\nà bientôt\rfin".encode()
    async with running_smtpd() as server, smtp_mailer(server) as mailer:
        result = await mailer.send(Letter(SENDER, READER, message))

    assert result.status is DeliveryStatus.SENT
    assert (
        server.messages[0].data == "Subject: café\r\n\r\nBonjour\r\nà bientôt\r\nfin\r\n".encode()
    )
    assert "BODY=8BITMIME" in server.messages[0].mail_options


def test_data_framing_stuffs_leading_dots_and_ends_with_the_final_dot() -> None:
    data = normalize_line_endings(b".first\n..second\nmid.dle\n.")
    assert data == b".first\r\n..second\r\nmid.dle\r\n.\r\n"
    assert dot_stuff(data) == b"..first\r\n...second\r\nmid.dle\r\n..\r\n.\r\n"


async def test_sends_reuse_connections_and_never_exceed_the_concurrency() -> None:
    recipients = [f"r{i}@example.net" for i in range(10)]
    async with running_smtpd() as server, smtp_mailer(server, concurrency=2) as mailer:
        results = await asyncio.gather(
            *(mailer.send(Letter(SENDER, r, make_message(r))) for r in recipients)
        )

    assert [r.status for r in results] == [DeliveryStatus.SENT] * 10
    assert server.connections == 2  # both slots were used, and each connection reused
    assert server.peak_connections == 2
    assert sorted(m.recipients[0] for m in server.messages) == sorted(recipients)
    assert all(len(m.recipients) == 1 for m in server.messages)


async def test_sequential_sends_share_one_connection() -> None:
    async with running_smtpd() as server, smtp_mailer(server, concurrency=4) as mailer:
        for i in range(3):
            await mailer.send(Letter(SENDER, f"r{i}@example.net", make_message()))
    assert server.connections == 1
    assert len(server.messages) == 3


@pytest.mark.parametrize(
    ("reply", "status"),
    [
        ("550 5.1.1 user unknown", DeliveryStatus.FAILED),
        ("550 5.1.1 <relay@example.net>: user unknown in relay recipient table", FAILED),
        ("553 5.7.1 <gone@example.net>: sender is not allowed to mail this user", FAILED),
        ("451 4.2.0 mailbox busy, try later", DeliveryStatus.DEFERRED),
    ],
)
async def test_a_refused_recipient_keeps_the_reply_and_the_connection(
    reply: str, status: DeliveryStatus
) -> None:
    async with running_smtpd() as server, smtp_mailer(server) as mailer:
        server.faults.reject_recipients["gone@example.net"] = reply
        refused = await mailer.send(Letter(SENDER, "gone@example.net", b"x"))
        after = await mailer.send(Letter(SENDER, READER, make_message()))

    assert refused.status is status
    assert refused.reply == reply
    assert after.status is DeliveryStatus.SENT  # RSET left the connection usable
    assert server.connections == 1
    assert [m.recipients for m in server.messages] == [(READER,)]


@pytest.mark.parametrize(
    ("reply", "status"),
    [
        ("451 4.3.0 queue full", DeliveryStatus.DEFERRED),
        ("552-5.3.4 message rejected\r\n552 5.3.4 too big for this mailbox", DeliveryStatus.FAILED),
    ],
)
async def test_a_refusal_of_the_data_is_deferred_or_failed(
    reply: str, status: DeliveryStatus
) -> None:
    async with running_smtpd() as server, smtp_mailer(server) as mailer:
        server.faults.data_reply = reply
        result = await mailer.send(Letter(SENDER, READER, make_message()))
    assert result.status is status
    assert result.reply == reply.replace("-", " ").replace("\r\n552 5.3.4", "")


async def test_connection_dropped_after_the_final_dot_is_uncertain() -> None:
    async with running_smtpd() as server, smtp_mailer(server) as mailer:
        server.faults.drop_after_data = True
        result = await mailer.send(Letter(SENDER, READER, make_message()))
        server.faults.drop_after_data = False
        again = await mailer.send(Letter(SENDER, READER, make_message()))

    assert result.status is DeliveryStatus.UNCERTAIN
    assert f"{server.host}:{server.port}" in result.reply
    assert again.status is DeliveryStatus.SENT  # a new connection replaced the broken one
    assert server.connections == 2
    assert len(server.messages) == 2  # the server did have the first one


async def test_no_reply_to_the_final_dot_within_the_timeout_is_uncertain() -> None:
    async with running_smtpd() as server, smtp_mailer(server, timeout_seconds=0.3) as mailer:
        server.faults.stall_after_data = True
        result = await mailer.send(Letter(SENDER, READER, make_message()))
    assert result.status is DeliveryStatus.UNCERTAIN
    assert "final dot" in result.reply


async def test_a_closed_port_is_a_transport_error_naming_host_and_port() -> None:
    port = closed_port()
    config = SmtpConfig(host="127.0.0.1", port=port, tls="none", timeout_seconds=5.0)
    mailer = SmtpMailer(config, local_hostname="client.test")
    with pytest.raises(TransportError, match=rf"127\.0\.0\.1:{port}.*\[delivery\.smtp\] host"):
        await mailer.send(Letter(SENDER, READER, b"x"))
    await mailer.aclose()


async def test_a_5xx_greeting_is_a_transport_error() -> None:
    async with greeting_server("554 5.3.2 no service here") as port:
        config = SmtpConfig(host="127.0.0.1", port=port, tls="none", timeout_seconds=5.0)
        mailer = SmtpMailer(config, local_hostname="client.test")
        with pytest.raises(TransportError, match=r"greeting: 554 5\.3\.2 no service here"):
            await mailer.send(Letter(SENDER, READER, b"x"))
        await mailer.aclose()


async def test_any_refusal_of_mail_from_is_a_transport_error() -> None:
    # A 4xx to MAIL FROM says nothing about the reader: the relay throttles the site. Were it
    # DEFERRED, every reader's attempts would run out while the relay cools down.
    async with running_smtpd() as server, smtp_mailer(server) as mailer:
        server.faults.mail_reply = "451 4.3.2 system busy"
        with pytest.raises(TransportError) as throttled:
            await mailer.send(Letter(SENDER, READER, b"x"))
        server.faults.mail_reply = "553 5.7.1 sender not allowed"
        with pytest.raises(TransportError, match=r"MAIL FROM.*553 5\.7\.1 sender not allowed"):
            await mailer.send(Letter(SENDER, READER, b"x"))
    where = f"{server.host}:{server.port}"
    assert str(throttled.value).startswith(f"{where} answered MAIL FROM with 451 4.3.2 system busy")
    assert re.search(THROTTLED, str(throttled.value))
    assert server.messages == []


@pytest.mark.parametrize("stage", ["MAIL FROM", "RCPT TO", "DATA", "the final dot"])
async def test_421_at_any_stage_pauses_instead_of_deferring_the_reader(stage: str) -> None:
    reply = "421 4.7.0 too many messages, slow down"
    async with running_smtpd() as server, smtp_mailer(server) as mailer:
        faults = server.faults
        if stage == "MAIL FROM":
            faults.mail_reply = reply
        elif stage == "RCPT TO":
            faults.reject_recipients[READER] = reply
        elif stage == "DATA":
            faults.data_command_reply = reply
        else:
            faults.data_reply = reply
        with pytest.raises(TransportError, match=THROTTLED) as caught:
            await mailer.send(Letter(SENDER, READER, make_message()))
        server.faults = type(faults)()  # the relay has cooled down
        after = await mailer.send(Letter(SENDER, READER, make_message()))

    where = f"{server.host}:{server.port}"
    assert str(caught.value).startswith(f"{where} answered {stage} with {reply}.")
    assert after.status is DeliveryStatus.SENT
    assert server.connections == 2  # the refused connection was not put back in the pool


@pytest.mark.parametrize(
    "reply",
    [
        "530 5.7.0 Authentication required",
        "554 5.7.1 <reader@example.net>: Relay access denied",
        "550 5.7.1 Relaying denied",
        "550 relay not permitted",  # Exim's default: no enhanced status code
    ],
)
async def test_a_relay_refusing_us_at_rcpt_fails_no_reader(reply: str) -> None:
    async with running_smtpd() as server, smtp_mailer(server) as mailer:
        server.faults.reject_recipients[READER] = reply
        with pytest.raises(TransportError) as caught:
            await mailer.send(Letter(SENDER, READER, make_message()))
    message = str(caught.value)
    assert message.startswith(f"{server.host}:{server.port} refused to relay mail from digest")
    assert f"RCPT TO with {reply}" in message
    assert "[delivery.smtp] username and password_env" in message
    assert "relay's permissions" in message
    assert server.messages == []


async def test_a_4xx_greeting_is_throttling_not_a_wrong_setting() -> None:
    async with greeting_server("421 4.3.2 too many connections from your host") as port:
        config = SmtpConfig(host="127.0.0.1", port=port, tls="none", timeout_seconds=5.0)
        mailer = SmtpMailer(config, local_hostname="client.test")
        with pytest.raises(TransportError, match=rf"greeting: 421 4\.3\.2 .*{THROTTLED}"):
            await mailer.send(Letter(SENDER, READER, b"x"))
        await mailer.aclose()


async def test_auth_with_the_right_password_sends() -> None:
    async with (
        running_smtpd(credentials=("digest", "s3cret")) as server,
        smtp_mailer(server, username="digest", password="s3cret") as mailer,
    ):
        result = await mailer.send(Letter(SENDER, READER, make_message()))
    assert result.status is DeliveryStatus.SENT
    assert server.messages[0].login == "digest"


async def test_auth_with_a_wrong_password_is_a_transport_error() -> None:
    async with (
        running_smtpd(credentials=("digest", "s3cret")) as server,
        smtp_mailer(server, username="digest", password="wrong") as mailer,
    ):
        with pytest.raises(TransportError, match=r"AUTH.*535.*DIGEST_SMTP_PASSWORD"):
            await mailer.send(Letter(SENDER, READER, b"x"))
    assert server.messages == []


async def test_no_auth_where_the_server_requires_it_is_a_transport_error() -> None:
    async with running_smtpd(credentials=("digest", "s3cret")) as server, smtp_mailer(server) as m:
        with pytest.raises(TransportError, match=r"530 5\.7\.0 Authentication required"):
            await m.send(Letter(SENDER, READER, b"x"))


async def test_starttls_is_required_never_a_plaintext_fallback() -> None:
    async with running_smtpd() as server, smtp_mailer(server, tls="starttls") as mailer:
        with pytest.raises(TransportError, match=r"does not offer STARTTLS"):
            await mailer.send(Letter(SENDER, READER, make_message()))
    assert server.messages == []


@pytest.mark.parametrize("tls", ["starttls", "tls"])
async def test_tls_modes_deliver_over_tls(tls: str) -> None:
    async with (
        running_smtpd(tls=tls, credentials=("digest", "s3cret")) as server,  # type: ignore[arg-type]
        smtp_mailer(
            server, tls=tls, username="digest", password="s3cret", tls_context=client_tls_context()
        ) as mailer,
    ):
        result = await mailer.send(Letter(SENDER, READER, make_message()))
    assert result.status is DeliveryStatus.SENT
    assert server.messages[0].data == make_message()


async def test_an_untrusted_certificate_is_a_transport_error() -> None:
    async with running_smtpd(tls="starttls") as server, smtp_mailer(server, tls="starttls") as m:
        with pytest.raises(TransportError, match=r"TLS with .*certificate"):
            await m.send(Letter(SENDER, READER, b"x"))
    assert server.messages == []


async def test_a_pooled_connection_closed_by_the_server_is_replaced() -> None:
    async with running_smtpd() as server, smtp_mailer(server) as mailer:
        await mailer.send(Letter(SENDER, "a@example.net", make_message()))
        server.drop_connections()  # an idle timeout on the server side
        await asyncio.sleep(0.05)
        result = await mailer.send(Letter(SENDER, "b@example.net", b"x"))
    assert result.status is DeliveryStatus.SENT
    assert server.connections == 2
    assert [m.connection for m in server.messages] == [1, 2]


async def test_a_stale_connection_found_broken_at_mail_is_retried_once_on_a_new_one() -> None:
    async with running_smtpd() as server, smtp_mailer(server) as mailer:
        await mailer.send(Letter(SENDER, "a@example.net", make_message()))
        server.faults.drop_on_mail = 1  # the client only learns it when MAIL gets no reply
        result = await mailer.send(Letter(SENDER, "b@example.net", b"x"))
    assert result.status is DeliveryStatus.SENT
    assert server.connections == 2
    assert [m.recipients for m in server.messages] == [("a@example.net",), ("b@example.net",)]


async def test_a_new_connection_dropped_at_mail_is_a_transport_error() -> None:
    async with running_smtpd() as server, smtp_mailer(server) as mailer:
        server.faults.drop_on_mail = 5
        with pytest.raises(TransportError, match=r"broke at MAIL FROM before the message was sent"):
            await mailer.send(Letter(SENDER, READER, b"x"))
    assert server.connections == 1
    assert server.messages == []


async def test_a_utf8_recipient_without_smtputf8_fails_without_a_transaction() -> None:
    async with running_smtpd() as server, smtp_mailer(server) as mailer:
        result = await mailer.send(Letter(SENDER, "jürgen@example.net", b"x"))
        after = await mailer.send(Letter(SENDER, READER, b"x"))
    assert result.status is DeliveryStatus.FAILED
    assert "SMTPUTF8" in result.reply
    assert after.status is DeliveryStatus.SENT


async def test_a_recipient_with_a_line_break_fails_and_sends_nothing() -> None:
    async with running_smtpd() as server, smtp_mailer(server) as mailer:
        result = await mailer.send(Letter(SENDER, "a@example.net\r\nRCPT TO:<b@x>", b"x"))
    assert result.status is DeliveryStatus.FAILED
    assert server.connections == 0


async def test_aclose_quits_idle_connections_and_ends_the_mailer() -> None:
    async with running_smtpd() as server:
        async with smtp_mailer(server) as mailer:
            await mailer.send(Letter(SENDER, READER, b"x"))
            assert server.open_connections == 1
        await asyncio.sleep(0.05)
        assert server.open_connections == 0
        with pytest.raises(RuntimeError, match="aclose"):
            await mailer.send(Letter(SENDER, READER, b"x"))


def test_build_mailer_picks_the_configured_transport(tmp_path: Path) -> None:
    outbox = build_mailer(DeliveryConfig(transport="outbox", outbox_dir=tmp_path), {})
    assert isinstance(outbox, OutboxMailer)

    smtp = SmtpConfig(host="relay.example.org", username="digest", password_env="RELAY_PW")
    delivery = DeliveryConfig(transport="smtp", outbox_dir=tmp_path, smtp=smtp)
    assert isinstance(build_mailer(delivery, {"RELAY_PW": "pw"}), SmtpMailer)
    with pytest.raises(ConfigError, match=r"RELAY_PW.*\[delivery\.smtp\] password_env"):
        build_mailer(delivery, {})

    anonymous = DeliveryConfig(
        transport="smtp", outbox_dir=tmp_path, smtp=SmtpConfig(host="localhost", tls="none")
    )
    assert isinstance(build_mailer(anonymous, {}), SmtpMailer)
    with pytest.raises(ConfigError, match=r"\[delivery\.smtp\]"):
        build_mailer(DeliveryConfig(transport="smtp", outbox_dir=tmp_path), {})


def test_auth_over_plaintext_is_refused_unless_the_relay_is_local() -> None:
    remote = SmtpConfig(host="relay.example.org", port=25, tls="none", username="digest")
    with pytest.raises(ConfigError, match=r"clear text to relay\.example\.org:25"):
        SmtpMailer(remote, password="pw")
    for host in ("localhost", "127.0.0.1", "::1"):
        SmtpMailer(SmtpConfig(host=host, tls="none", username="digest"), password="pw")
    SmtpMailer(SmtpConfig(host="relay.example.org", tls="none"))  # no password to leak


# --- batches: one connection, pipelined across transactions -------------------------------


def batch(count: int) -> list[Letter]:
    return [
        Letter(SENDER, f"r{i}@example.net", make_message(f"r{i}@example.net")) for i in range(count)
    ]


@pytest.mark.parametrize("pipelining", [True, False])
async def test_a_batch_sends_every_letter_on_one_connection(pipelining: bool) -> None:
    async with running_smtpd() as server, smtp_mailer(server) as mailer:
        server.pipelining = pipelining
        results = await mailer.send_batch(batch(5))
    assert [r.status for r in results if isinstance(r, SendResult)] == [DeliveryStatus.SENT] * 5
    assert [m.recipients[0] for m in server.messages] == [f"r{i}@example.net" for i in range(5)]
    assert server.connections == 1
    assert all(m.data == make_message(m.recipients[0]) for m in server.messages)


async def test_a_refused_reader_in_a_batch_does_not_stop_the_others() -> None:
    async with running_smtpd() as server, smtp_mailer(server) as mailer:
        server.faults.reject_recipients = {"r1@example.net": "550 5.1.1 no such user"}
        server.faults.data_script = ["250 ok", "250 ok", "452 4.2.2 mailbox full"]
        results = await mailer.send_batch(batch(5))
    statuses = [r.status if isinstance(r, SendResult) else r for r in results]
    assert statuses == [
        DeliveryStatus.SENT,
        DeliveryStatus.FAILED,
        DeliveryStatus.SENT,
        DeliveryStatus.DEFERRED,
        DeliveryStatus.SENT,
    ]


async def test_a_drop_after_a_final_dot_mid_batch_is_uncertain_and_the_rest_not_sent() -> None:
    async with running_smtpd() as server, smtp_mailer(server) as mailer:
        server.faults.drop_after_data_once = {"r1@example.net"}
        results = await mailer.send_batch(batch(4))
        again = await mailer.send_batch(batch(1))
    assert isinstance(results[0], SendResult)
    assert results[0].status is DeliveryStatus.SENT
    assert isinstance(results[1], SendResult)
    assert results[1].status is DeliveryStatus.UNCERTAIN
    assert all(isinstance(r, NotSent) for r in results[2:])
    # Nothing of r2 and r3 went out; a new connection carried the next batch (r0 again).
    received = [m.recipients[0] for m in server.messages]
    assert received == ["r0@example.net", "r1@example.net", "r0@example.net"]
    assert isinstance(again[0], SendResult)


async def test_throttling_mid_batch_ends_it_with_the_rest_not_sent() -> None:
    async with running_smtpd() as server, smtp_mailer(server) as mailer:
        server.faults.rcpt_script = ["250 ok", "421 4.7.0 too many messages, slow down"]
        results = await mailer.send_batch(batch(4))
    assert isinstance(results[0], SendResult)
    assert isinstance(results[1], Throttled)
    assert all(isinstance(r, NotSent) for r in results[2:])
    assert [m.recipients[0] for m in server.messages] == ["r0@example.net"]
