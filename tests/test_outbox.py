"""OutboxMailer: messages become .eml files in a Maildir that mailbox.Maildir can read."""

from __future__ import annotations

import asyncio
import mailbox
import shutil
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path

import pytest

from digest.delivery.outbox import OutboxMailer, envelope_headers
from digest.errors import TransportError
from digest.models import DeliveryStatus, Letter

SENDER = "news@example.org"
READER = "reader@example.net"


def make_message(recipient: str = READER, subject: str = "This week") -> bytes:
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["From"] = f"News <{SENDER}>"
    msg["To"] = recipient
    msg["Subject"] = subject
    msg["Message-ID"] = "<e1.r1@example.org>"
    msg.set_content("Grüße aus dem Archiv.\n")
    return msg.as_bytes()


def stored_path(reply: str) -> Path:
    assert reply.startswith("stored in ")
    return Path(reply.removeprefix("stored in "))


async def test_a_message_is_stored_in_new_as_an_eml_file(tmp_path: Path) -> None:
    outbox = tmp_path / "var" / "outbox"  # parents are created too
    mailer = OutboxMailer(outbox)
    message = make_message()

    result = await mailer.send(Letter(SENDER, READER, message))
    await mailer.aclose()

    assert result.status is DeliveryStatus.SENT
    path = stored_path(result.reply)
    assert path.parent == outbox / "new"
    assert path.name.endswith(".eml")
    assert path.read_bytes() == envelope_headers(SENDER, READER, crlf=True) + message
    assert list((outbox / "tmp").iterdir()) == []
    assert (outbox / "cur").is_dir()


async def test_the_outbox_is_a_maildir_that_mailbox_reads(tmp_path: Path) -> None:
    mailer = OutboxMailer(tmp_path)
    for i in range(3):
        recipient = f"r{i}@example.net"
        await mailer.send(Letter(SENDER, recipient, make_message(recipient)))

    box = mailbox.Maildir(tmp_path, create=False)
    messages = sorted(box, key=lambda m: str(m["To"]))
    assert [m["To"] for m in messages] == [f"r{i}@example.net" for i in range(3)]
    first = messages[0]
    assert first["Return-Path"] == f"<{SENDER}>"
    assert first["X-Digest-Envelope-To"] == "<r0@example.net>"
    assert first.get_subdir() == "new"
    assert first.get_payload(decode=True) == "Grüße aus dem Archiv.\n".encode()
    assert all(key.endswith(".eml") for key in box.iterkeys())


async def test_concurrent_sends_get_distinct_files(tmp_path: Path) -> None:
    mailer = OutboxMailer(tmp_path)
    results = await asyncio.gather(
        *(mailer.send(Letter(SENDER, READER, make_message())) for _ in range(20))
    )
    paths = {stored_path(r.reply) for r in results}
    assert len(paths) == 20
    assert len(list((tmp_path / "new").iterdir())) == 20


async def test_an_existing_empty_folder_is_completed(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    result = await OutboxMailer(outbox).send(Letter(SENDER, READER, b"x\n"))
    assert (
        stored_path(result.reply).read_bytes()
        == envelope_headers(SENDER, READER, crlf=False) + b"x\n"
    )


@pytest.mark.parametrize("removed", ["outbox", "outbox/new", "outbox/tmp"])
async def test_an_outbox_removed_while_running_is_made_again(tmp_path: Path, removed: str) -> None:
    outbox = tmp_path / "outbox"
    mailer = OutboxMailer(outbox)
    await mailer.send(Letter(SENDER, READER, make_message(subject="one")))
    shutil.rmtree(tmp_path / removed)  # e.g. `rm -rf var/outbox` while digest runs

    result = await mailer.send(Letter(SENDER, READER, make_message(subject="2")))

    assert result.status is DeliveryStatus.SENT
    assert stored_path(result.reply).parent == outbox / "new"
    assert "2" in {m["Subject"] for m in mailbox.Maildir(outbox, create=False)}
    assert all((outbox / sub).is_dir() for sub in ("tmp", "new", "cur"))


async def test_an_unwritable_outbox_is_a_transport_error_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a regular file")  # tests run as root: chmod would not stop us
    outbox = blocker / "outbox"
    mailer = OutboxMailer(outbox)
    with pytest.raises(TransportError, match=rf"{outbox}.*\[delivery\] outbox_dir"):
        await mailer.send(Letter(SENDER, READER, make_message()))


async def test_control_characters_never_reach_the_envelope_headers(tmp_path: Path) -> None:
    mailer = OutboxMailer(tmp_path)
    result = await mailer.send(Letter(SENDER, "a@example.net\r\nBcc: victim@example.com", b"x"))
    assert result.status is DeliveryStatus.FAILED
    assert not (tmp_path / "new").exists()
    with pytest.raises(TransportError, match=r"sender_email"):
        await mailer.send(Letter("a@b.c\nX: y", READER, b"x"))
