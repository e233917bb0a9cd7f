"""The pipelined SMTP channel against a bare server that proves what the client wrote.

The server below answers MAIL, RCPT and DATA only once all three have arrived: a client
that waited for each reply before the next command (no pipelining) would stall, and the
test would time out. Without PIPELINING in EHLO, it answers each command at once and
records that every command came in a write of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from digest.config import SmtpConfig
from digest.delivery import SmtpMailer
from digest.models import DeliveryStatus, Letter

MESSAGE = b"From: a@example.org\r\nTo: b@example.net\r\nSubject: s\r\n\r\nHello.\r\n"


class BareServer:
    def __init__(self, pipelining: bool) -> None:
        self.pipelining = pipelining
        self.chunks: list[bytes] = []  # what each read() returned, in order
        self.messages = 0


@asynccontextmanager
async def bare_server(pipelining: bool) -> AsyncIterator[tuple[BareServer, int]]:
    state = BareServer(pipelining)

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 bare.test ESMTP\r\n")
        buffer = b""
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                break
            state.chunks.append(chunk)
            buffer += chunk
            while b"\r\n" in buffer:
                if buffer.startswith((b"EHLO", b"HELO")):
                    line, buffer = buffer.split(b"\r\n", 1)
                    extra = b"250-PIPELINING\r\n" if state.pipelining else b""
                    writer.write(b"250-bare.test\r\n" + extra + b"250 8BITMIME\r\n")
                elif buffer.startswith(b"MAIL"):
                    if state.pipelining and buffer.count(b"\r\n") < 3:
                        break  # wait for RCPT and DATA before answering anything
                    for _ in range(3 if state.pipelining else 1):
                        line, buffer = buffer.split(b"\r\n", 1)
                        writer.write(b"354 go on\r\n" if line == b"DATA" else b"250 ok\r\n")
                elif buffer.startswith((b"RCPT", b"DATA", b"RSET")):
                    line, buffer = buffer.split(b"\r\n", 1)
                    writer.write(b"354 go on\r\n" if line == b"DATA" else b"250 ok\r\n")
                elif buffer.startswith(b"QUIT"):
                    writer.write(b"221 bye\r\n")
                    await writer.drain()
                    writer.close()
                    return
                elif b"\r\n.\r\n" in buffer:
                    _, buffer = buffer.split(b"\r\n.\r\n", 1)
                    state.messages += 1
                    writer.write(b"250 2.0.0 queued\r\n")
                else:
                    break
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(session, "127.0.0.1", 0)
    try:
        yield state, server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def send_three(port: int) -> list[DeliveryStatus]:
    config = SmtpConfig(host="127.0.0.1", port=port, tls="none", timeout_seconds=2)
    mailer = SmtpMailer(config, local_hostname="client.test")
    try:
        letters = [Letter("a@example.org", f"r{i}@example.net", MESSAGE) for i in range(3)]
        return [(await mailer.send(letter)).status for letter in letters]
    finally:
        await mailer.aclose()


async def test_mail_rcpt_and_data_go_out_in_one_write_when_the_relay_pipelines() -> None:
    async with bare_server(pipelining=True) as (state, port):
        statuses = await asyncio.wait_for(send_three(port), 5)
    assert statuses == [DeliveryStatus.SENT] * 3
    assert state.messages == 3
    grouped = [chunk for chunk in state.chunks if chunk.startswith(b"MAIL FROM:")]
    assert len(grouped) == 3
    assert all(b"\r\nRCPT TO:<" in chunk and chunk.endswith(b"\r\nDATA\r\n") for chunk in grouped)


async def test_without_pipelining_each_command_waits_for_its_reply() -> None:
    async with bare_server(pipelining=False) as (state, port):
        statuses = await asyncio.wait_for(send_three(port), 5)
    assert statuses == [DeliveryStatus.SENT] * 3
    commands = [c for c in state.chunks if c.startswith((b"MAIL", b"RCPT", b"DATA"))]
    assert all(chunk.count(b"\r\n") == 1 for chunk in commands)
    assert len(commands) == 9


async def test_a_batch_sends_each_message_with_the_next_envelope_in_one_write() -> None:
    async with bare_server(pipelining=True) as (state, port):
        config = SmtpConfig(host="127.0.0.1", port=port, tls="none", timeout_seconds=2)
        mailer = SmtpMailer(config, local_hostname="client.test")
        try:
            letters = [Letter("a@example.org", f"r{i}@example.net", MESSAGE) for i in range(3)]
            results = await asyncio.wait_for(mailer.send_batch(letters), 5)
        finally:
            await mailer.aclose()
    assert [r.status for r in results if not isinstance(r, Exception)] == [DeliveryStatus.SENT] * 3
    assert state.messages == 3
    joined = [c for c in state.chunks if b"\r\n.\r\nMAIL FROM:<a@example.org>" in c]
    assert len(joined) == 2  # messages 1 and 2 each carried the next envelope
