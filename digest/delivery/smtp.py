"""The SMTP mailer: one relay, a pool of reused connections, one recipient per transaction.

Each send is one transaction (MAIL FROM, RCPT TO, DATA) on a pooled connection, so the
reply for the recipient is never hidden behind another's. aiosmtplib connects, secures
and authenticates; the transaction itself is pipelined on a :class:`Channel` (MAIL, RCPT
and DATA in one write when the relay offers PIPELINING). The outcome follows
:mod:`digest.delivery.replies`; faults of the site itself (cannot connect, TLS, AUTH,
greeting/EHLO/MAIL FROM refused, relaying denied) raise ``TransportError``, throttling
``Throttled`` and refusals of the site by policy ``SiteRefused``.

A connection lost *before* the message bytes were written (nothing sent: retry) is told
apart from one lost *after* them (the server may have it: ``UNCERTAIN``).
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence

import aiosmtplib

from digest.config import DeliveryConfig, SmtpConfig, is_loopback_host
from digest.delivery.channel import Channel, Disconnected
from digest.delivery.envelope import has_control, refuse_controls
from digest.delivery.outbox import OutboxMailer
from digest.delivery.replies import (
    THROTTLED,
    classify_reply,
    format_reply,
    raise_for_policy_refusal,
    raise_for_site_refusal,
    raise_for_throttling,
)
from digest.errors import ConfigError, NotSent, Throttled, TransportError
from digest.models import DeliveryStatus, Letter, SendResult
from digest.ports import Mailer
from digest.settings import Secret

_LEADING_DOT = re.compile(rb"(?m)^\.")
_QUIT_TIMEOUT = 5.0
_END_OF_DATA = b".\r\n"


def dot_stuff(data: bytes) -> bytes:
    """The DATA payload for normalized ``data``: leading dots doubled, final dot added."""
    return _LEADING_DOT.sub(b"..", data) + _END_OF_DATA


def data_payload(letter: Letter) -> tuple[bytes, int]:
    """What follows the 354, and the message size for SIZE= (RFC 1870: without the
    dot-stuffing and the final dot). A wire-ready letter goes as it is; others are
    normalized and stuffed here."""
    data = letter.data
    if letter.wire_ready:
        return data + _END_OF_DATA, len(data)
    return dot_stuff(data), len(data)


def judge(code: int, message: str, *, stage: str, where: str, after_data: bool) -> SendResult:
    """The outcome of a reply that ends a transaction; raises for faults of the site.

    ``TransportError`` when the relay refuses digest itself (530, relaying denied),
    ``Throttled`` when it asks to slow down, ``SiteRefused`` when it refuses the site
    by policy; otherwise the reader's outcome (:func:`classify_reply`).
    """
    if after_data and 200 <= code <= 299:  # the common case: accepted
        return SendResult(DeliveryStatus.SENT, format_reply(code, message))
    raise_for_site_refusal(code, message, stage=stage, where=where)
    raise_for_throttling(code, message, stage=stage, where=where)
    raise_for_policy_refusal(code, message, stage=stage, where=where)
    return classify_reply(code, message, after_data=after_data)


class _Stale(Exception):
    """A reused connection broke before any message data was written: safe to retry."""


class _Between(Exception):
    """The connection ended between two transactions of a batch: the rest was not sent."""


class SmtpMailer:
    """A :class:`digest.ports.Mailer` that relays through one SMTP server.

    At most ``config.concurrency`` connections exist; they are opened lazily and reused
    across sends (which also bounds the concurrency of ``send``). TLS is required as
    configured (``"tls"``: implicit TLS, ``"starttls"``: STARTTLS or fail, never a
    plaintext fallback; ``"none"``: plaintext, for a relay on localhost). AUTH is used
    when ``config.username`` is set, with ``password``. aiosmtplib opens, secures and
    authenticates each connection; its transactions then run on a :class:`Channel`,
    pipelined when the relay offers PIPELINING.
    """

    def __init__(
        self,
        config: SmtpConfig,
        *,
        password: str | None = None,
        local_hostname: str | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        if config.username and password is None:
            raise ConfigError(
                f"[delivery.smtp] username is set but no password was given: set the"
                f" environment variable {config.password_env} ([delivery.smtp] password_env)"
            )
        if config.concurrency < 1:
            raise ConfigError("[delivery.smtp] concurrency must be at least 1")
        host = f"[{config.host}]" if ":" in config.host else config.host
        where = f"{host}:{config.port}"
        if config.username and config.tls == "none" and not is_loopback_host(config.host):
            raise ConfigError(
                f'[delivery.smtp] tls = "none" would send the password of {config.username!r}'
                f' in clear text to {where}: use tls = "starttls" or "tls" (plaintext is only'
                " for a relay on this machine)"
            )
        self._config = config
        self._password = Secret((password or "").encode())  # never in a repr or traceback
        self._local_hostname = local_hostname
        self._tls_context = tls_context
        self._where = where
        self._slots = asyncio.Semaphore(config.concurrency)
        self._idle: list[_Session] = []
        self._closed = False

    def __repr__(self) -> str:
        return f"SmtpMailer({self._where}, user={self._config.username!r}, password=***)"

    async def send(self, letter: Letter) -> SendResult:
        """Hand ``letter`` to the relay for its recipient alone, envelope from its sender.

        Returns ``SENT`` (2xx to the final dot), ``DEFERRED`` (4xx to RCPT, DATA or the
        final dot), ``FAILED`` (5xx to those; a recipient not writable on an SMTP line or
        needing SMTPUTF8 the relay lacks) or ``UNCERTAIN`` (no reply to the final dot),
        with the server's reply as one line. Raises ``TransportError`` naming
        ``host:port`` for faults of the site: connect, TLS, EHLO or AUTH failures, a
        refused greeting or MAIL FROM, 530 or "relaying denied"; its subclass
        ``Throttled`` for 421, 4.7.x and rate-limit replies, and ``SiteRefused`` for a
        refusal of the site by policy (block lists, sender rejected, spam), at any stage.
        """
        if self._closed:
            raise RuntimeError("SmtpMailer.send called after aclose()")
        refused = refuse_controls(letter)  # before any connection is opened
        if refused is not None:
            return refused
        [result] = await self.send_batch([letter])
        if isinstance(result, Exception):
            raise result
        return result

    async def send_batch(
        self, letters: Sequence[Letter], on_result: ResultHook | None = None
    ) -> list[SendResult | Exception]:
        """Send ``letters`` in turn on one connection, pipelined across transactions.

        With PIPELINING, one letter's message goes out in the same write as the next
        letter's MAIL, RCPT and DATA (RFC 2920 lets the message content begin a group),
        so each message costs one write and one wait for replies. One result per letter,
        in order: a ``SendResult``; the ``TransportError`` (or ``Throttled``,
        ``SiteRefused``) that ended the batch at that letter; or ``NotSent`` for the
        letters after it, of which nothing was transmitted. ``on_result(index, result)``
        is awaited as soon as each result is known, so the caller can record it at once;
        when it returns False the batch ends there (the rest is ``NotSent``).
        """
        if self._closed:
            raise RuntimeError("SmtpMailer.send_batch called after aclose()")
        async with self._slots:
            session, reused = await self._checkout()
            try:
                results = await self._batch_on(session, reused, letters, on_result)
            except _Stale:
                # A connection we had kept open broke or went silent before any data was
                # sent (servers drop idle sessions; NATs forget them): reconnect once.
                session = await self._connect()
                results = await self._batch_on(session, False, letters, on_result)
        return results

    async def _batch_on(
        self,
        session: _Session,
        reused: bool,
        letters: Sequence[Letter],
        on_result: ResultHook | None,
    ) -> list[SendResult | Exception]:
        results = _Results(on_result)
        channel = session.channel
        ahead: tuple[bytes, bytes] | None = None  # the letter whose commands went out early
        try:
            for index, letter in enumerate(letters):
                if not channel.is_open:
                    break  # e.g. a failed RSET closed it: the rest is sent again later
                refused = refuse_controls(letter)
                if refused is not None:
                    await results.push(refused)
                    continue
                if ahead is None:
                    prepared = self._envelope(session, letter)
                    if isinstance(prepared, SendResult):
                        await results.push(prepared)
                        continue
                    commands, payload = prepared
                    if channel.pipelining:
                        channel.write(commands)
                    opened = await self._opened(
                        session,
                        letter,
                        None if channel.pipelining else commands,
                        reused=reused and index == 0,
                        between=index > 0,
                    )
                else:
                    payload, ahead = ahead[1], None
                    opened = await self._opened(session, letter, None, between=True)
                if opened is not None:
                    await results.push(opened)
                    continue
                following = letters[index + 1] if index + 1 < len(letters) else None
                if channel.pipelining and following is not None and _plain(following):
                    upcoming = self._envelope(session, following)
                    if isinstance(upcoming, tuple):
                        ahead = upcoming
                channel.write(payload + (ahead[0] if ahead is not None else b""))
                await results.push(await self._final(session))
                if not channel.is_open:
                    break
        except _Between:
            pass  # what follows was not sent; the caller sends it again
        except _Halt:
            channel.close()  # an envelope may have gone out ahead: drop it with the session
        except TransportError as exc:
            channel.close()  # replies may still be owed for commands sent ahead
            await results.add(exc)
        except BaseException:
            channel.close()
            raise
        while len(results.done) < len(letters):
            await results.add(NotSent())
        self._checkin(session)
        return results.done

    async def aclose(self) -> None:
        """QUIT and close the idle connections; those in use close when their send ends."""
        self._closed = True
        idle, self._idle = self._idle, []
        timeout = min(_QUIT_TIMEOUT, self._config.timeout_seconds)
        await asyncio.gather(*(session.channel.quit(within=timeout) for session in idle))

    # --- connections ------------------------------------------------------------------
    async def _checkout(self) -> tuple[_Session, bool]:
        while self._idle:
            session = self._idle.pop()
            if session.channel.is_open:
                return session, True
            session.channel.close()
        return await self._connect(), False

    def _checkin(self, session: _Session) -> None:
        if self._closed or not session.channel.is_open:
            session.channel.close()
        else:
            self._idle.append(session)

    async def _connect(self) -> _Session:
        config = self._config
        client = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.port,
            local_hostname=self._local_hostname,
            timeout=config.timeout_seconds,
            use_tls=config.tls == "tls",
            start_tls=False,  # done below, so that a missing STARTTLS is an error
            tls_context=self._tls_context,
        )
        stage = "connect"
        try:
            await client.connect()
            stage = "EHLO"
            await client.ehlo()
            if config.tls == "starttls":
                stage = "STARTTLS"
                if not client.supports_extension("starttls"):
                    raise TransportError(
                        f"{self._where} does not offer STARTTLS, and [delivery.smtp] tls ="
                        ' "starttls" requires it (digest never falls back to plaintext).'
                        ' Use tls = "tls" if the relay expects TLS from the start (port 465),'
                        ' or tls = "none" only for a relay on this machine.'
                    )
                await client.starttls()
                stage = "EHLO"
                await client.ehlo()
            if config.username:
                stage = "AUTH"
                if not client.supports_extension("auth"):
                    raise TransportError(
                        f"{self._where} does not offer AUTH, and [delivery.smtp] username is"
                        " set. Check [delivery.smtp] tls (relays offer AUTH only over TLS)"
                        " and port, or remove username."
                    )
                await client.login(config.username, self._password.reveal().decode())
            transport = client.transport
            if not isinstance(transport, asyncio.Transport) or transport.is_closing():
                raise aiosmtplib.SMTPServerDisconnected("Connection lost")
        except TransportError:
            client.close()
            raise
        except (aiosmtplib.SMTPException, OSError) as exc:  # ssl.SSLError is an OSError
            client.close()
            raise self._connect_error(stage, exc) from exc
        except BaseException:
            client.close()
            raise
        extensions = {name: value for name, value in client.esmtp_extensions.items()}
        channel = Channel(
            transport,
            pipelining="pipelining" in extensions,
            timeout=config.timeout_seconds,
        )
        return _Session(channel, extensions)

    def _connect_error(self, stage: str, exc: Exception) -> TransportError:
        config = self._config
        hints = {
            "connect": (
                "Check [delivery.smtp] host and port, that the relay is running, and tls"
                ' ("tls" is usually port 465, "starttls" port 587).'
            ),
            "EHLO": "Check that the relay accepts mail from this host.",
            "STARTTLS": "Check [delivery.smtp] tls and the relay's TLS certificate.",
            "AUTH": (
                f"Check [delivery.smtp] username ({config.username!r}) and the password in"
                f" the environment variable {config.password_env}."
            ),
        }
        hint = hints[stage]
        if isinstance(exc, aiosmtplib.SMTPResponseException):
            reply = format_reply(exc.code, exc.message)
            what = f"{self._where} refused {stage}: {reply}."
            if stage == "connect":
                what = f"{self._where} refused the session in its greeting: {reply}."
            if 400 <= exc.code <= 499:
                hint = THROTTLED  # a busy or rate-limiting relay, not a wrong setting
        elif isinstance(exc, aiosmtplib.SMTPTimeoutError):
            what = f"{self._where} did not answer ({stage}) within {config.timeout_seconds} s."
        elif isinstance(exc, ssl.SSLError):
            what = f"TLS with {self._where} failed ({stage}): {exc}."
        elif stage == "connect":
            what = f"cannot connect to {self._where}: {exc}."
        else:
            what = f"{stage} with {self._where} failed: {exc}."
        if isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code == 421:
            return Throttled(f"{what} {hint}")
        return TransportError(f"{what} {hint}")

    # --- one transaction --------------------------------------------------------------
    def _envelope(self, session: _Session, letter: Letter) -> tuple[bytes, bytes] | SendResult:
        """MAIL FROM, RCPT TO and DATA for ``letter`` in one write, and its DATA payload."""
        sender, recipient, where = letter.sender, letter.recipient, self._where
        options: list[str] = []
        if not (sender.isascii() and recipient.isascii()):
            if "smtputf8" not in session.extensions:
                if not sender.isascii():
                    raise TransportError(
                        f"the envelope sender {sender!r} is not ASCII and {where}"
                        " does not offer SMTPUTF8; use an ASCII [site] sender_email"
                    )
                return SendResult(
                    DeliveryStatus.FAILED,
                    f"{recipient} needs SMTPUTF8 (non-ASCII local part)"
                    f" and the relay {where} does not offer it",
                )
            options.append("SMTPUTF8")
        payload, size = data_payload(letter)
        if "size" in session.extensions:
            options.append(f"SIZE={size}")
        if not payload.isascii() and "8bitmime" in session.extensions:
            options.append("BODY=8BITMIME")
        mail = " ".join([f"MAIL FROM:<{sender}>", *options]).encode() + b"\r\n"
        rcpt = f"RCPT TO:<{recipient}>\r\n".encode()
        return mail + rcpt + b"DATA\r\n", payload

    async def _opened(
        self,
        session: _Session,
        letter: Letter,
        commands: bytes | None,
        *,
        reused: bool = False,
        between: bool = False,
    ) -> SendResult | None:
        """Send ``commands`` (MAIL, RCPT, DATA; None: already written) and read their
        replies: None when the server waits for the data, the reader's outcome when it
        refused them, or raise. ``between``: a transaction after another on this
        connection, whose loss before the data means only "not sent" (``_Between``)."""
        channel, where = session.channel, self._where
        stage = "MAIL FROM"
        try:
            if commands is None:
                replies = [await channel.reply() for _ in range(3)]
            else:
                replies = await channel.commands(*commands.splitlines(keepends=True))
        except Disconnected as exc:
            channel.close()
            if between:
                raise _Between from exc
            if reused:
                raise _Stale from exc
            raise TransportError(
                f"the connection to {where} broke at {stage} before the message was"
                f" sent ({exc}). Check the relay's logs and [delivery.smtp] timeout_seconds."
            ) from exc
        mail_reply, rcpt_reply, data_reply = replies
        if mail_reply.code == 421 and (reused or between):
            channel.close()
            raise _Between if between else _Stale  # the server is closing this channel
        refused = mail_reply.code != 250 or rcpt_reply.code not in (250, 251)
        if data_reply.code == 354 and refused:  # the server opened the data anyway
            await self._abandon_data(channel)
        if mail_reply.code != 250:
            await channel.reset()
            raise_for_site_refusal(mail_reply.code, mail_reply.text, stage=stage, where=where)
            raise TransportError(
                f"{where} refused the envelope sender <{letter.sender}> (MAIL FROM):"
                f" {format_reply(mail_reply.code, mail_reply.text)}. Check that [site]"
                " sender_email may send through this relay (and [delivery.smtp] username)."
            )
        if rcpt_reply.code not in (250, 251):
            await channel.reset()
            return judge(
                rcpt_reply.code, rcpt_reply.text, stage="RCPT TO", where=where, after_data=False
            )
        if data_reply.code != 354:
            await channel.reset()
            return judge(
                data_reply.code, data_reply.text, stage="DATA", where=where, after_data=False
            )
        return None

    async def _final(self, session: _Session) -> SendResult:
        """The reply to the final dot (the payload was written): the reader's outcome."""
        # From here on the server may have the message. RFC 5321 (4.5.3.2.6) lets it take
        # 10 minutes to answer the final dot; we wait timeout_seconds like for any command
        # and record UNCERTAIN past that (a single retry with the same Message-ID is safe).
        channel, where = session.channel, self._where
        try:
            await channel.drained()
            final = await channel.reply()
        except Disconnected as exc:
            channel.close()
            return SendResult(
                DeliveryStatus.UNCERTAIN,
                f"no reply from {where} after the final dot ({exc}):"
                " the server may have accepted the message",
            )
        return judge(final.code, final.text, stage="the final dot", where=where, after_data=True)

    @staticmethod
    async def _abandon_data(channel: Channel) -> None:
        """A server that answered DATA with 354 after refusing MAIL or RCPT gets an empty
        message (RFC 2920 section 3.1), whose reply is read and ignored."""
        try:
            await channel.data(_END_OF_DATA)
        except Disconnected:
            channel.close()


ResultHook = Callable[[int, SendResult | Exception], Awaitable[bool]]


class _Halt(Exception):
    """The caller's hook asked to stop the batch (a signal, a fault): the rest is unsent."""


class _Results:
    """A batch's results in order, each handed to the hook as soon as it is known.

    The hook returns False to end the batch there; letters after it are not sent.
    """

    def __init__(self, hook: ResultHook | None) -> None:
        self.done: list[SendResult | Exception] = []
        self._hook = hook

    async def add(self, result: SendResult | Exception) -> bool:
        """Record ``result``; False when the hook wants the batch to end."""
        self.done.append(result)
        return self._hook is None or await self._hook(len(self.done) - 1, result)

    async def push(self, result: SendResult | Exception) -> None:
        """Record ``result`` and end the batch (``_Halt``) when the hook says so."""
        if not await self.add(result):
            raise _Halt


def _plain(letter: Letter) -> bool:
    return not (has_control(letter.sender) or has_control(letter.recipient))


class _Session:
    """A pooled connection: its channel and the extensions the relay offered."""

    __slots__ = ("channel", "extensions")

    def __init__(self, channel: Channel, extensions: dict[str, str]) -> None:
        self.channel = channel
        self.extensions = extensions


def build_mailer(delivery: DeliveryConfig, environ: Mapping[str, str]) -> Mailer:
    """The mailer ``[delivery]`` asks for; the SMTP password comes from ``environ``.

    Raises ``ConfigError`` naming the variable when ``[delivery.smtp] username`` is set
    and the variable named by ``password_env`` is unset or empty.
    """
    if delivery.transport == "outbox":
        return OutboxMailer(delivery.outbox_dir)
    smtp = delivery.smtp
    if smtp is None:
        raise ConfigError('[delivery] transport = "smtp" needs a [delivery.smtp] table')
    password: str | None = None
    if smtp.username:
        password = environ.get(smtp.password_env, "")
        if not password:
            raise ConfigError(
                f"[delivery.smtp] username is set, so the SMTP password must be in the"
                f" environment variable {smtp.password_env} ([delivery.smtp] password_env),"
                " which is unset or empty"
            )
    return SmtpMailer(smtp, password=password)
