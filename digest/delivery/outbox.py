"""The outbox mailer: every message becomes a ``.eml`` file in a Maildir folder.

It is the default transport until an SMTP relay is configured, and what tests and
``digest send-test`` inspect. The folder is a valid Maildir (``tmp/``, ``new/``,
``cur/``) that ``mailbox.Maildir``, mutt or Dovecot can read. Files are written the
way the Maildir spec says: into ``tmp/`` under a unique name, flushed to disk, then
renamed into ``new/``, so a reader never sees half a message. Their names end in
``.eml`` so that a file manager opens them in a mail program; Maildir readers take
everything before the ``:`` as the unique name, so the suffix is just part of it.

Each file holds the message bytes exactly as given, preceded by two header lines that
record the envelope, which the message itself does not carry::

    Return-Path: <sender>
    X-Digest-Envelope-To: <recipient>

(``Return-Path`` is what a final delivery agent adds, RFC 5321 section 4.4.)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
import time
import uuid
from pathlib import Path

from digest.errors import TransportError
from digest.models import DeliveryStatus, Letter, SendResult

ENVELOPE_TO_HEADER = "X-Digest-Envelope-To"
SUFFIX = ".eml"
_SUBDIRS = ("tmp", "new", "cur")


def envelope_headers(sender: str, recipient: str, *, crlf: bool) -> bytes:
    """The header lines the outbox puts before a message, with its line endings."""
    eol = "\r\n" if crlf else "\n"
    text = f"Return-Path: <{sender}>{eol}{ENVELOPE_TO_HEADER}: <{recipient}>{eol}"
    return text.encode("utf-8")


def _has_line_break_or_control(address: str) -> bool:
    return any(ord(char) < 0x20 or ord(char) == 0x7F for char in address)


class OutboxMailer:
    """A :class:`digest.ports.Mailer` that stores messages in the Maildir ``directory``.

    The folder (and its parents) is created on first use, and again if it was removed
    while digest runs; an existing empty folder is completed with ``tmp/``, ``new/`` and
    ``cur/``. A failure to write (permissions,
    disk full, a path under a regular file) raises ``TransportError`` naming the
    folder. ``send`` may be called concurrently; file I/O runs in worker threads.
    """

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._ready = False
        self._counter = itertools.count(1)
        host = socket.gethostname() or "localhost"
        self._hostname = host.replace("/", r"\057").replace(":", r"\072")

    @property
    def directory(self) -> Path:
        return self._directory

    async def send(self, letter: Letter) -> SendResult:
        """Store the letter's message in ``new/``; ``SENT`` with reply ``stored in <file>``.

        A recipient containing a line break or control character cannot be written
        into a header: ``FAILED`` (such an address can never be delivered). The same
        in the sender is a site problem: ``TransportError``.
        """
        sender, recipient, message = letter.sender, letter.recipient, letter.message
        if _has_line_break_or_control(sender):
            raise TransportError(
                f"the envelope sender {sender!r} contains a line break or control character;"
                " fix [site] sender_email"
            )
        if _has_line_break_or_control(recipient):
            return SendResult(
                DeliveryStatus.FAILED,
                f"invalid recipient address {recipient!r}: it contains a control character",
            )
        crlf = b"\r\n" in message
        data = envelope_headers(sender, recipient, crlf=crlf) + message
        try:
            path = await asyncio.to_thread(self._store, data)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise TransportError(
                f"cannot write a message into the outbox {self._directory}: {reason}."
                " Make [delivery] outbox_dir a writable folder on a disk with free space"
                " (or configure [delivery.smtp])."
            ) from exc
        return SendResult(DeliveryStatus.SENT, f"stored in {path}")

    async def aclose(self) -> None:
        """Nothing to release: every file is closed when ``send`` returns."""

    # --- runs in a worker thread ------------------------------------------------------
    def _store(self, data: bytes) -> Path:
        if not self._ready:
            self._make_folders()
            self._ready = True
        try:
            return self._write(data)
        except FileNotFoundError:
            # Someone removed the folder while digest runs (`rm -rf var/outbox` after
            # reading the quick-start files): make it again, once, rather than fail every
            # send until a restart.
            self._make_folders()
            return self._write(data)

    def _make_folders(self) -> None:
        for sub in _SUBDIRS:
            (self._directory / sub).mkdir(mode=0o700, parents=True, exist_ok=True)

    def _write(self, data: bytes) -> Path:
        name = self._unique_name()
        tmp = self._directory / "tmp" / name
        new = self._directory / "new" / name
        try:
            with tmp.open("xb") as file:
                file.write(data)
                file.flush()
                # The ledger records SENT once this returns: the bytes must be on disk.
                os.fsync(file.fileno())
            os.rename(tmp, new)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise
        self._fsync_directory(self._directory / "new")
        return new

    def _unique_name(self) -> str:
        # The Maildir convention: seconds, then M<microseconds>, P<pid>, Q<counter>
        # and R<random> (several processes may share the folder), then the host name.
        now = time.time()
        seconds, micros = int(now), int(now % 1 * 1_000_000)
        return (
            f"{seconds}.M{micros}P{os.getpid()}Q{next(self._counter)}"
            f"R{uuid.uuid4().hex[:16]}.{self._hostname}{SUFFIX}"
        )

    @staticmethod
    def _fsync_directory(directory: Path) -> None:
        # Makes the rename itself durable; not every platform can open a directory.
        try:
            fd = os.open(directory, os.O_RDONLY)
        except OSError:
            return
        try:
            with contextlib.suppress(OSError):
                os.fsync(fd)
        finally:
            os.close(fd)
