"""One open SMTP session after its setup: transactions written with RFC 2920 PIPELINING.

aiosmtplib opens, secures and authenticates the connection (``digest.delivery.smtp``);
its protocol then hands the transport to a :class:`Channel`, whose reader keeps every
reply in order, so MAIL FROM, RCPT TO and DATA go out in one write and their three
replies are read back in turn. (aiosmtplib's own protocol expects one reply per write
and would drop a second reply that arrives with the first.) Without PIPELINING the
same commands are written one at a time.
"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass

MAX_REPLY = 32 * 1024  # a reply longer than this is a broken or hostile server


@dataclass(frozen=True, slots=True)
class Reply:
    code: int  # -1 for a malformed reply
    text: str  # lines joined by newlines, codes stripped (as aiosmtplib gives them)


class Disconnected(ConnectionError):
    """The server closed the connection, or did not answer in time."""


class _Replies(asyncio.Protocol):
    """Reads replies into a queue, in order; wakes one waiter at a time."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self._buffer = bytearray()
        self._lines: list[tuple[int, str]] = []
        self._replies: collections.deque[Reply] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._lost: BaseException | None = None
        self._paused = False
        self._drained: asyncio.Future[None] | None = None

    # --- asyncio.Protocol ------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > MAX_REPLY:
                    self.connection_lost(Disconnected("the server sent an overlong reply"))
                    self.transport.abort()
                break
            line = bytes(self._buffer[: end + 1])
            del self._buffer[: end + 1]
            try:
                code = int(line[:3])
            except ValueError:
                code = -1
            self._lines.append((code, line[4:].strip(b" \t\r\n").decode("utf-8", "replace")))
            if line[3:4] != b"-" or code == -1:
                self._replies.append(
                    Reply(self._lines[-1][0], "\n".join(text for _, text in self._lines))
                )
                self._lines.clear()
        self._wake()

    def eof_received(self) -> bool:
        self.connection_lost(None)
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._lost is None:
            self._lost = exc or Disconnected("the server closed the connection")
        self._wake()
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    # --- for Channel -------------------------------------------------------------------
    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def reply(self, within: float) -> Reply:
        while not self._replies:
            if self._lost is not None:
                raise Disconnected(str(self._lost) or "connection lost") from self._lost
            loop = asyncio.get_running_loop()
            self._waiter = loop.create_future()
            timer = loop.call_later(within, self._time_out, self._waiter)
            try:
                await self._waiter
            finally:
                timer.cancel()
                self._waiter = None
        return self._replies.popleft()

    @staticmethod
    def _time_out(waiter: asyncio.Future[None]) -> None:
        if not waiter.done():
            waiter.set_exception(Disconnected("no reply in time"))

    async def drain(self) -> None:
        if self._lost is not None:
            raise Disconnected(str(self._lost) or "connection lost")
        if self._paused:
            self._drained = asyncio.get_running_loop().create_future()
            await self._drained
            if self._lost is not None:
                raise Disconnected(str(self._lost) or "connection lost")


class Channel:
    """An SMTP session ready for transactions, on a transport taken over from aiosmtplib."""

    def __init__(self, transport: asyncio.Transport, *, pipelining: bool, timeout: float) -> None:
        self._replies = _Replies(transport)
        transport.set_protocol(self._replies)
        self._transport = transport
        self.pipelining = pipelining
        self.timeout = timeout

    @property
    def is_open(self) -> bool:
        return not self._transport.is_closing() and self._replies._lost is None

    def write(self, data: bytes) -> None:
        if not self.is_open:
            raise Disconnected("connection lost")
        self._transport.write(data)

    async def reply(self, within: float | None = None) -> Reply:
        return await self._replies.reply(self.timeout if within is None else within)

    async def commands(self, *lines: bytes) -> list[Reply]:
        """Send ``lines`` (each one command with CRLF) and read one reply for each."""
        if self.pipelining:
            self.write(b"".join(lines))
            return [await self.reply() for _ in lines]
        replies = []
        for line in lines:
            self.write(line)
            replies.append(await self.reply())
        return replies

    async def data(self, payload: bytes) -> Reply:
        """Write the message (already dot-stuffed, ending in CRLF.CRLF); read the last reply."""
        self.write(payload)
        await self._replies.drain()
        return await self.reply()

    async def drained(self) -> None:
        """Wait until the transport takes more data (flow control); Disconnected if lost."""
        await self._replies.drain()

    async def reset(self) -> bool:
        """RSET after a refused transaction; False (and closed) if the session is unusable."""
        try:
            reply = (await self.commands(b"RSET\r\n"))[0]
        except Disconnected:
            self.close()
            return False
        if reply.code != 250:
            self.close()
            return False
        return True

    async def quit(self, within: float) -> None:
        try:
            if self.is_open:
                self.write(b"QUIT\r\n")
                await self._replies.reply(within)
        except Disconnected:
            pass  # the server went away first: nothing left to be polite to
        finally:
            self.close()

    def close(self) -> None:
        if not self._transport.is_closing():
            self._transport.close()
