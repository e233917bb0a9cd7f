"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, recording what it receives, with faults.

The server runs on the test's own event loop, on a port the OS picks::

    from support.smtpd import running_smtpd

    async with running_smtpd() as server:
        mailer = SmtpMailer(
            SmtpConfig(host=server.host, port=server.port, tls="none"),
            local_hostname="client.test",
        )
        result = await mailer.send(sender="news@example.org", recipient="a@example.net",
                                   message=raw_bytes)
        await mailer.aclose()
    assert server.messages[0].data == raw_bytes      # CRLF line endings, as sent
    assert server.messages[0].recipients == ("a@example.net",)

The server advertises PIPELINING (``server.pipelining = False`` turns it off), so the
mailer's pipelined path is what the tests drive. ``server.faults`` holds the fault
switches (reject a recipient, refuse MAIL or the DATA command, answer the final dot with
451/554, scripted replies to the next RCPTs or final dots, drop the connection on MAIL
or after the data, stall after the data); change them between sends.
``server.connections`` counts accepted connections (to prove reuse),
``server.peak_connections`` the most open at once, and ``server.drop_connections()``
closes every open session as an idle timeout would. ``running_smtpd(credentials=("user",
"pw"))`` requires AUTH before MAIL; ``tls="starttls"`` or ``tls="tls"`` serves STARTTLS
or implicit TLS with aiosmtpd's self-signed test certificate (``client_tls_context()``
trusts it).
Leaving the ``async with`` closes every connection and waits for the sessions to end,
so no ResourceWarning or pending task outlives the test.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import socket
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

HOST = "127.0.0.1"
SERVER_HOSTNAME = "smtpd.test"


@dataclass(frozen=True)
class ReceivedMessage:
    """One message the server accepted (or, with ``drop_after_data``, swallowed)."""

    sender: str
    recipients: tuple[str, ...]
    data: bytes  # as on the wire: CRLF line endings, dot-unstuffed, final dot removed
    mail_options: tuple[str, ...]
    login: str | None  # the AUTH user of the session, if it authenticated
    connection: int  # 1-based number of the connection it came over


@dataclass
class Faults:
    """Switches read on every command; tests may change them between sends."""

    reject_recipients: dict[str, str] = field(default_factory=dict)
    """RCPT address -> reply line, e.g. ``{"gone@example.net": "550 5.1.1 user unknown"}``."""
    mail_reply: str | None = None
    """Reply to every MAIL FROM instead of 250 (e.g. ``"451 4.3.2 try later"``)."""
    data_command_reply: str | None = None
    """Reply to the DATA command instead of 354 (e.g. ``"421 4.7.0 slow down"``)."""
    data_reply: str | None = None
    """Reply to the final dot instead of 250; the message is not recorded."""
    drop_after_data: bool = False
    """Record the message, then close the connection without replying to the final dot."""
    stall_after_data: bool = False
    """Record the message, then never reply (the client's timeout must end it)."""
    drop_on_mail: int = 0
    """Close the connection without replying on the next N MAIL commands."""
    rcpt_script: list[str] = field(default_factory=list)
    """Replies for the next RCPT commands, one each, in order (then the usual rules)."""
    data_script: list[str] = field(default_factory=list)
    """Replies to the next final dots, one each, in order; the message is not recorded."""
    data_delay: float = 0.0
    """Seconds to wait before answering each final dot (a slow relay)."""
    drop_after_data_once: set[str] = field(default_factory=set)
    """Recipients whose next message is recorded, then the connection dropped unanswered."""


class _Session(SMTP):
    """aiosmtpd's SMTP protocol, numbered so messages can say which connection they used."""

    number: int = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        recorder = self.event_handler
        recorder.peak_connections = max(recorder.peak_connections, recorder.open_connections)

    async def smtp_DATA(self, arg: str) -> None:
        reply = self.event_handler.faults.data_command_reply
        if reply is not None and self.envelope is not None and self.envelope.rcpt_tos:
            await self.push(reply)
            return
        await super().smtp_DATA(arg)


class RecordingServer:
    """A running test SMTP server; see the module docstring. Build it with running_smtpd."""

    def __init__(self, credentials: tuple[str, str] | None) -> None:
        self.host = HOST
        self.port = 0
        self.messages: list[ReceivedMessage] = []
        self.faults = Faults()
        self.credentials = credentials
        self.connections = 0
        self.peak_connections = 0
        self.pipelining = True  # advertise RFC 2920 PIPELINING (False: one command a write)
        self._sessions: list[_Session] = []

    @property
    def open_connections(self) -> int:
        return sum(1 for session in self._sessions if session.transport is not None)

    def drop_connections(self) -> None:
        """Close every open session from the server side, as an idle timeout would."""
        for session in self._sessions:
            if session.transport is not None:
                session.transport.close()

    # --- aiosmtpd handler hooks -------------------------------------------------------
    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        if self.pipelining:  # aiosmtpd reads pipelined commands in order; it just never says so
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.faults.drop_on_mail > 0:
            self.faults.drop_on_mail -= 1
            await _hang_up(server)
        if self.credentials is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        if self.faults.mail_reply is not None:
            return self.faults.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.faults.rcpt_script:
            scripted = self.faults.rcpt_script.pop(0)
            if not scripted.startswith("250"):
                return scripted
        reply = self.faults.reject_recipients.get(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.faults.data_reply is not None:
            return self.faults.data_reply
        if self.faults.data_script:
            scripted = self.faults.data_script.pop(0)
            if not scripted.startswith("250"):
                return scripted
        auth = session.auth_data
        self.messages.append(
            ReceivedMessage(
                sender=envelope.mail_from or "",
                recipients=tuple(envelope.rcpt_tos),
                data=bytes(envelope.original_content or b""),
                mail_options=tuple(envelope.mail_options),
                login=auth.login.decode() if isinstance(auth, LoginPassword) else None,
                connection=getattr(server, "number", 0),
            )
        )
        drop_once = set(envelope.rcpt_tos) & self.faults.drop_after_data_once
        if self.faults.drop_after_data or drop_once:
            self.faults.drop_after_data_once -= drop_once
            await _hang_up(server)
        if self.faults.data_delay:
            await asyncio.sleep(self.faults.data_delay)
        if self.faults.stall_after_data:
            await asyncio.Event().wait()  # cancelled when the client gives up and closes
        return f"250 2.0.0 OK queued as {len(self.messages)}"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword) and self.credentials is not None:
            user, password = self.credentials
            if data.login == user.encode() and data.password == password.encode():
                return AuthResult(success=True, auth_data=data)
        return AuthResult(success=False, handled=False)

    # --- lifecycle --------------------------------------------------------------------
    def _new_session(self, tls_context: ssl.SSLContext | None) -> _Session:
        self.connections += 1
        session = _Session(
            self,
            hostname=SERVER_HOSTNAME,
            ident="digest-test-smtpd",
            tls_context=tls_context,
            authenticator=self.authenticate,
            auth_require_tls=False,
            loop=asyncio.get_running_loop(),
        )
        session.number = self.connections
        self._sessions.append(session)
        return session

    async def _close_sessions(self) -> None:
        for session in self._sessions:
            # The raw socket transport too: after a failed STARTTLS handshake, closing
            # only the TLS layer can leave the socket (and the session task) waiting.
            for transport in (session._original_transport, session.transport):
                if transport is not None:
                    transport.abort()  # type: ignore[attr-defined]
        tasks = [s._handler_coroutine for s in self._sessions if s._handler_coroutine]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(0)  # let the aborted transports run connection_lost


async def _hang_up(server: SMTP) -> None:
    """Close the connection without a reply; the session task is cancelled meanwhile."""
    assert server.transport is not None
    server.transport.close()
    await asyncio.Event().wait()


def certificate_paths() -> tuple[Path, Path]:
    """(certificate, key) of aiosmtpd's self-signed test certificate (CN "aes")."""
    certs = Path(str(importlib.resources.files("aiosmtpd"))) / "tests" / "certs"
    return certs / "server.crt", certs / "server.key"


def server_tls_context() -> ssl.SSLContext:
    cert, key = certificate_paths()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def client_tls_context() -> ssl.SSLContext:
    """A client context that trusts only the test certificate (which names no host)."""
    cert, _ = certificate_paths()
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    return context


@asynccontextmanager
async def running_smtpd(
    *,
    credentials: tuple[str, str] | None = None,
    tls: Literal["none", "starttls", "tls"] = "none",
) -> AsyncIterator[RecordingServer]:
    """Run a :class:`RecordingServer` on 127.0.0.1 for the duration of the block."""
    recorder = RecordingServer(credentials)
    starttls_context = server_tls_context() if tls == "starttls" else None
    implicit_context = server_tls_context() if tls == "tls" else None
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: recorder._new_session(starttls_context), HOST, 0, ssl=implicit_context
    )
    recorder.port = server.sockets[0].getsockname()[1]
    try:
        yield recorder
    finally:
        server.close()
        await recorder._close_sessions()
        await server.wait_closed()


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port


@asynccontextmanager
async def greeting_server(reply: str) -> AsyncIterator[int]:
    """A server on 127.0.0.1 that answers every connection with ``reply`` and hangs up.

    For site-level faults at the greeting (``"554 5.3.2 no service"``). Yields the port.
    """

    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(reply.encode() + b"\r\n")
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(greet, HOST, 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()
