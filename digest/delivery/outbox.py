"""The outbox mailer: every message becomes a ``.eml`` file in a Maildir folder.

It is the default transport until an SMTP relay is configured, and what tests and
the quick start inspect. The folder is a valid Maildir (``tmp/``, ``new/``,
``cur/``) that ``mailbox.Maildir``, mutt or Dovecot can read. Files are written the
way the Maildir spec says: into ``tmp/`` under a unique name, flushed to disk, then
renamed into ``new/``, so a reader never sees half a message. Their names end in
``.eml`` so that a file manager opens them in a mail program; Maildir readers take
everything before the ``:`` as the unique name, so the suffix is just part of it.

Each ``.eml`` file holds exactly the bytes the SMTP mailer would hand a relay for the
same letter (``Letter.data``: CRLF line endings, before dot-stuffing), so a mail
program shows, and a re-injection sends, the very message. The envelope, which the
message does not carry, is kept beside it, never in it: ``envelope/<name>.json`` at the
top of the folder holds ``{"mail_from": ..., "rcpt_to": [...]}`` for ``new/<name>.eml``
(``cur/<name>.eml:2,S`` once a mail program has read it). Maildir readers ignore that
folder. It is written first, so every message in ``new/`` has its envelope.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import socket
import time
import uuid
from pathlib import Path

from digest.delivery.envelope import refuse_controls
from digest.errors import TransportError
from digest.models import DeliveryStatus, Letter, SendResult

SUFFIX = ".eml"
ENVELOPE_DIR = "envelope"
_SUBDIRS = ("tmp", "new", "cur", ENVELOPE_DIR)


def envelope_path(message: Path) -> Path:
    """The envelope file of the message file ``message`` (in ``new/`` or ``cur/``)."""
    unique = message.name.partition(":")[0].removesuffix(SUFFIX)
    return message.parent.parent / ENVELOPE_DIR / f"{unique}.json"


class OutboxMailer:
    """A :class:`digest.ports.Mailer` that stores messages in the Maildir ``directory``.

    The folder (and its parents) is created on first use, and again if it was removed
    while digest runs; an existing empty folder is completed with ``tmp/``, ``new/``,
    ``cur/`` and ``envelope/``. A failure to write (permissions, disk full, a path under
    a regular file) raises ``TransportError`` naming the folder. ``send`` may be called
    concurrently; file I/O runs in worker threads.
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
        """Store the letter's message in ``new/`` and its envelope in ``envelope/``;
        ``SENT`` with reply ``stored in <file>``.

        A recipient containing a line break or control character is ``FAILED``, as the
        SMTP mailer has it (no SMTP command can carry it; such an address can never be
        delivered). The same in the sender is a site problem: ``TransportError``.
        """
        refused = refuse_controls(letter)
        if refused is not None:
            return refused
        sender, recipient = letter.sender, letter.recipient
        envelope = json.dumps({"mail_from": sender, "rcpt_to": [recipient]}, ensure_ascii=False)
        try:
            path = await asyncio.to_thread(self._store, letter.data, envelope.encode("utf-8"))
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
    def _store(self, data: bytes, envelope: bytes) -> Path:
        if not self._ready:
            self._make_folders()
            self._ready = True
        name = self._unique_name()
        try:
            return self._write(name, data, envelope)
        except FileNotFoundError:
            # Someone removed the folder while digest runs (`rm -rf var/outbox` after
            # reading the quick-start files): make it again, once, rather than fail every
            # send until a restart.
            self._make_folders()
            return self._write(name, data, envelope)

    def _make_folders(self) -> None:
        for sub in _SUBDIRS:
            (self._directory / sub).mkdir(mode=0o700, parents=True, exist_ok=True)

    def _write(self, name: str, data: bytes, envelope: bytes) -> Path:
        # The envelope first: a message that is in new/ has its envelope beside it.
        new = self._directory / "new" / f"{name}{SUFFIX}"
        self._deliver(f"{name}.json.tmp", envelope, envelope_path(new))
        return self._deliver(f"{name}{SUFFIX}", data, new)

    def _deliver(self, temporary: str, data: bytes, final: Path) -> Path:
        """Write ``data`` into ``tmp/``, flush it to disk, then rename it to ``final``."""
        tmp = self._directory / "tmp" / temporary
        try:
            with tmp.open("xb") as file:
                file.write(data)
                file.flush()
                # The ledger records SENT once this returns: the bytes must be on disk.
                os.fsync(file.fileno())
            os.rename(tmp, final)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise
        self._fsync_directory(final.parent)
        return final

    def _unique_name(self) -> str:
        # The Maildir convention: seconds, then M<microseconds>, P<pid>, Q<counter>
        # and R<random> (several processes may share the folder), then the host name.
        now = time.time()
        seconds, micros = int(now), int(now % 1 * 1_000_000)
        return (
            f"{seconds}.M{micros}P{os.getpid()}Q{next(self._counter)}"
            f"R{uuid.uuid4().hex[:16]}.{self._hostname}"
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
