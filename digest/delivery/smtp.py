"""The SMTP mailer: one relay, a small pool of reused connections, one recipient per transaction.

Each send is one transaction (MAIL FROM, RCPT TO, DATA) on a pooled aiosmtplib
connection, so the reply for the recipient is never hidden behind another's. The
outcome follows :mod:`digest.delivery.replies`; faults of the site itself (cannot connect,
TLS, AUTH, greeting/EHLO/MAIL FROM refused, 421, relaying denied) raise ``TransportError``.

The DATA phase is driven here rather than through ``aiosmtplib.SMTP.data`` so that a
connection lost *before* the message bytes were written (nothing sent: retry) is told
apart from one lost *after* the final dot (the server may have it: ``UNCERTAIN``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import ssl
from collections.abc import Mapping

import aiosmtplib

from digest.config import DeliveryConfig, SmtpConfig
from digest.delivery.outbox import OutboxMailer
from digest.delivery.replies import THROTTLED, classify_reply, format_reply, raise_for_site_refusal
from digest.errors import ConfigError, TransportError
from digest.models import DeliveryStatus, SendResult
from digest.ports import Mailer

_LINE_ENDINGS = re.compile(rb"\r\n|\n|\r")
_LEADING_DOT = re.compile(rb"(?m)^\.")
_QUIT_TIMEOUT = 5.0


def normalize_line_endings(message: bytes) -> bytes:
    """``message`` with CRLF line endings and a final CRLF, as it travels in DATA."""
    data = _LINE_ENDINGS.sub(b"\r\n", message)
    return data if data.endswith(b"\r\n") else data + b"\r\n"


def dot_stuff(data: bytes) -> bytes:
    """The DATA payload for normalized ``data``: leading dots doubled, final dot added."""
    return _LEADING_DOT.sub(b"..", data) + b".\r\n"


def _is_loopback(host: str) -> bool:
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _has_control(address: str) -> bool:
    return any(ord(char) < 0x20 or ord(char) == 0x7F for char in address)


class _Stale(Exception):
    """A reused connection broke before any message data was written: safe to retry."""


class SmtpMailer:
    """A :class:`digest.ports.Mailer` that relays through one SMTP server.

    At most ``config.concurrency`` connections exist; they are opened lazily and reused
    across sends (which also bounds the concurrency of ``send``). TLS is required as
    configured (``"tls"``: implicit TLS, ``"starttls"``: STARTTLS or fail, never a
    plaintext fallback; ``"none"``: plaintext, for a relay on localhost). AUTH is used
    when ``config.username`` is set, with ``password``.
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
        if config.username and config.tls == "none" and not _is_loopback(config.host):
            raise ConfigError(
                f'[delivery.smtp] tls = "none" would send the password of {config.username!r}'
                f' in clear text to {where}: use tls = "starttls" or "tls" (plaintext is only'
                " for a relay on this machine)"
            )
        self._config = config
        self._password = password
        self._local_hostname = local_hostname
        self._tls_context = tls_context
        self._where = where
        self._slots = asyncio.Semaphore(config.concurrency)
        self._idle: list[aiosmtplib.SMTP] = []
        self._closed = False

    @property
    def where(self) -> str:
        """``host:port`` of the relay, as error messages name it."""
        return self._where

    async def send(self, *, sender: str, recipient: str, message: bytes) -> SendResult:
        """Hand ``message`` to the relay for ``recipient`` alone, envelope from ``sender``.

        Returns ``SENT`` (2xx to the final dot), ``DEFERRED`` (4xx to RCPT, DATA or the
        final dot), ``FAILED`` (5xx to those; a recipient not writable on an SMTP line or
        needing SMTPUTF8 the relay lacks) or ``UNCERTAIN`` (no reply to the final dot),
        with the server's reply as one line. Raises ``TransportError`` naming
        ``host:port`` for faults of the site: connect, TLS, EHLO or AUTH failures, a
        refused greeting or MAIL FROM, 421 at any stage, 530 or "relaying denied" (see
        ``replies.raise_for_site_refusal``), a new connection lost before the data.
        """
        if self._closed:
            raise RuntimeError("SmtpMailer.send called after aclose()")
        if _has_control(sender):
            raise TransportError(
                f"the envelope sender {sender!r} contains a line break or control character;"
                " fix [site] sender_email"
            )
        if _has_control(recipient):
            return SendResult(
                DeliveryStatus.FAILED,
                f"invalid recipient address {recipient!r}: it contains a control character",
            )
        async with self._slots:
            client, reused = await self._checkout()
            try:
                return await self._send_on(client, reused, sender, recipient, message)
            except _Stale:
                pass
            # A connection we had kept open broke or went silent before any data was sent
            # (servers drop idle sessions; NATs forget them): reconnect once and retry.
            client = await self._connect()
            return await self._send_on(client, False, sender, recipient, message)

    async def aclose(self) -> None:
        """QUIT and close the idle connections; those in use close when their send ends."""
        self._closed = True
        idle, self._idle = self._idle, []
        await asyncio.gather(*(self._quit(client) for client in idle))

    # --- connections ------------------------------------------------------------------
    async def _checkout(self) -> tuple[aiosmtplib.SMTP, bool]:
        while self._idle:
            client = self._idle.pop()
            if client.is_connected:
                return client, True
            client.close()
        return await self._connect(), False

    def _checkin(self, client: aiosmtplib.SMTP) -> None:
        if self._closed or not client.is_connected:
            client.close()
        else:
            self._idle.append(client)

    async def _quit(self, client: aiosmtplib.SMTP) -> None:
        try:
            if client.is_connected:
                await client.quit(timeout=min(_QUIT_TIMEOUT, self._config.timeout_seconds))
        except (aiosmtplib.SMTPException, OSError):
            pass  # the server went away first: nothing left to be polite to
        finally:
            client.close()

    async def _connect(self) -> aiosmtplib.SMTP:
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
                await client.login(config.username, self._password or "")
        except TransportError:
            client.close()
            raise
        except (aiosmtplib.SMTPException, OSError) as exc:  # ssl.SSLError is an OSError
            client.close()
            raise self._connect_error(stage, exc) from exc
        except BaseException:
            client.close()
            raise
        return client

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
        return TransportError(f"{what} {hint}")

    # --- one transaction --------------------------------------------------------------
    async def _send_on(
        self,
        client: aiosmtplib.SMTP,
        reused: bool,
        sender: str,
        recipient: str,
        message: bytes,
    ) -> SendResult:
        try:
            result = await self._transaction(client, reused, sender, recipient, message)
        except BaseException:
            client.close()
            raise
        self._checkin(client)
        return result

    async def _transaction(
        self,
        client: aiosmtplib.SMTP,
        reused: bool,
        sender: str,
        recipient: str,
        message: bytes,
    ) -> SendResult:
        data = normalize_line_endings(message)
        smtputf8 = not (sender.isascii() and recipient.isascii())
        options: list[str] = []
        if smtputf8:
            if not client.supports_extension("smtputf8"):
                if not sender.isascii():
                    raise TransportError(
                        f"the envelope sender {sender!r} is not ASCII and {self._where}"
                        " does not offer SMTPUTF8; use an ASCII [site] sender_email"
                    )
                return SendResult(
                    DeliveryStatus.FAILED,
                    f"{recipient} needs SMTPUTF8 (non-ASCII local part)"
                    f" and the relay {self._where} does not offer it",
                )
            options.append("SMTPUTF8")
        if client.supports_extension("size"):
            options.append(f"SIZE={len(data)}")
        if not data.isascii() and client.supports_extension("8bitmime"):
            options.append("BODY=8BITMIME")
        encoding = "utf-8" if smtputf8 else "ascii"

        stage = "MAIL FROM"
        try:
            try:
                await client.mail(sender, options=options, encoding=encoding)
            except aiosmtplib.SMTPSenderRefused as exc:
                if exc.code == aiosmtplib.SMTPStatus.domain_unavailable and reused:
                    raise _Stale from exc  # 421: the server is closing this old channel
                raise_for_site_refusal(exc.code, exc.message, stage=stage, where=self._where)
                raise TransportError(
                    f"{self._where} refused the envelope sender <{sender}> (MAIL FROM):"
                    f" {format_reply(exc.code, exc.message)}. Check that [site] sender_email"
                    " may send through this relay (and [delivery.smtp] username)."
                ) from exc
            except ValueError as exc:
                raise TransportError(
                    f"the envelope sender {sender!r} cannot be sent over SMTP: {exc};"
                    " fix [site] sender_email"
                ) from exc

            stage = "RCPT TO"
            try:
                await client.rcpt(recipient, encoding=encoding)
            except aiosmtplib.SMTPRecipientRefused as exc:
                raise_for_site_refusal(exc.code, exc.message, stage=stage, where=self._where)
                await self._reset(client)
                return classify_reply(exc.code, exc.message, after_data=False)
            except ValueError as exc:
                await self._reset(client)
                return SendResult(DeliveryStatus.FAILED, f"invalid recipient address: {exc}")

            stage = "DATA"
            reply = await client.execute_command(b"DATA")
            if reply.code != aiosmtplib.SMTPStatus.start_input:
                raise_for_site_refusal(reply.code, reply.message, stage=stage, where=self._where)
                await self._reset(client)
                return classify_reply(reply.code, reply.message, after_data=False)
            protocol = client.protocol
            if protocol is None:
                raise aiosmtplib.SMTPServerDisconnected("Connection lost")
            protocol.write(dot_stuff(data))
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError) as exc:
            client.close()
            if reused:
                raise _Stale from exc
            raise TransportError(
                f"the connection to {self._where} broke at {stage} before the message was"
                f" sent ({exc}). Check the relay's logs and [delivery.smtp] timeout_seconds."
            ) from exc

        # From here on the server may have the message. RFC 5321 (4.5.3.2.6) lets it take
        # 10 minutes to answer the final dot; we wait timeout_seconds like for any command
        # and record UNCERTAIN past that (a single retry with the same Message-ID is safe).
        try:
            reply = await protocol.read_response(timeout=self._config.timeout_seconds)
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError) as exc:
            client.close()
            return SendResult(
                DeliveryStatus.UNCERTAIN,
                f"no reply from {self._where} after the final dot ({exc}):"
                " the server may have accepted the message",
            )
        except aiosmtplib.SMTPResponseException as exc:  # a malformed reply
            client.close()
            return classify_reply(exc.code, exc.message, after_data=True)
        raise_for_site_refusal(reply.code, reply.message, stage="the final dot", where=self._where)
        return classify_reply(reply.code, reply.message, after_data=True)

    @staticmethod
    async def _reset(client: aiosmtplib.SMTP) -> None:
        """RSET after a refused transaction, so the connection can be reused."""
        if not client.is_connected:
            return
        try:
            await client.rset()
        except (aiosmtplib.SMTPException, OSError):
            client.close()


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
