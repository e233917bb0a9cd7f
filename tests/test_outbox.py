"""OutboxMailer: messages become .eml files in a Maildir that mailbox.Maildir can read,
byte for byte what an SMTP relay receives, with the envelope in a file beside them."""

from __future__ import annotations

import asyncio
import json
import mailbox
import shutil
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path

import pytest

from digest.config import SmtpConfig
from digest.delivery.outbox import OutboxMailer, envelope_path
from digest.delivery.smtp import SmtpMailer
from digest.errors import TransportError
from digest.models import DeliveryStatus, Letter

from support.smtpd import running_smtpd

SENDER = "news@example.org"
READER = "reader@example.net"
LF_MESSAGE = Path(__file__).parent / "fixtures" / "outbox" / "lf-line-endings.eml"


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


def envelope_of(message: Path) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(envelope_path(message).read_bytes())
    return loaded


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
    assert path.read_bytes() == message  # nothing before it, nothing after it
    assert envelope_of(path) == {"mail_from": SENDER, "rcpt_to": [READER]}
    assert envelope_path(path) == outbox / "envelope" / f"{path.name.removesuffix('.eml')}.json"
    assert list((outbox / "tmp").iterdir()) == []
    assert (outbox / "cur").is_dir()


@pytest.mark.parametrize("wire_ready", [False, True])
async def test_the_outbox_file_is_what_the_relay_receives(tmp_path: Path, wire_ready: bool) -> None:
    message = LF_MESSAGE.read_bytes()
    if wire_ready:  # as digest.letters builds them: CRLF already, no line starts with a dot
        message = make_message()
    letter = Letter(SENDER, READER, message, wire_ready=wire_ready)
    async with running_smtpd() as server:
        config = SmtpConfig(host=server.host, port=server.port, tls="none", timeout_seconds=5)
        mailer = SmtpMailer(config, local_hostname="client.test")
        assert (await mailer.send(letter)).status is DeliveryStatus.SENT
        await mailer.aclose()
    [received] = server.messages

    result = await OutboxMailer(tmp_path).send(letter)
    stored = stored_path(result.reply)

    assert stored.read_bytes() == received.data  # byte for byte
    assert envelope_of(stored) == {
        "mail_from": received.sender,
        "rcpt_to": list(received.recipients),
    }
    if not wire_ready:
        assert received.data.startswith(b"X-Fixture: LF line endings")
        assert b"\r\n.A line that starts with a dot" in received.data
        assert received.data.endswith(b"no line break\r\n")


async def test_the_outbox_is_a_maildir_that_mailbox_reads(tmp_path: Path) -> None:
    mailer = OutboxMailer(tmp_path)
    for i in range(3):
        recipient = f"r{i}@example.net"
        await mailer.send(Letter(SENDER, recipient, make_message(recipient)))

    box = mailbox.Maildir(tmp_path, create=False)
    messages = sorted(box, key=lambda m: str(m["To"]))
    assert [m["To"] for m in messages] == [f"r{i}@example.net" for i in range(3)]
    first = messages[0]
    assert "Return-Path" not in first
    assert first.get_subdir() == "new"
    assert first.get_payload(decode=True) == "Grüße aus dem Archiv.\n".encode()
    assert all(key.endswith(".eml") for key in box.iterkeys())
    assert box.list_folders() == []  # the envelope folder is no mail folder
    # A mail program that has read a message moves it to cur/ and adds its flags to the
    # name: the envelope is still found by the unique name.
    key = next(key for key in box.iterkeys() if box[key]["To"] == "r0@example.net")
    read = box[key]
    read.set_subdir("cur")
    read.add_flag("S")
    box[key] = read
    [moved] = (tmp_path / "cur").iterdir()
    assert moved.name.endswith(".eml:2,S")
    assert envelope_of(moved)["rcpt_to"] == ["r0@example.net"]


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
    assert stored_path(result.reply).read_bytes() == b"x\r\n"
    assert (outbox / "envelope").is_dir()


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
    assert all((outbox / sub).is_dir() for sub in ("tmp", "new", "cur", "envelope"))
    assert envelope_of(stored_path(result.reply))["rcpt_to"] == [READER]


async def test_an_unwritable_outbox_is_a_transport_error_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a regular file")  # tests run as root: chmod would not stop us
    outbox = blocker / "outbox"
    mailer = OutboxMailer(outbox)
    with pytest.raises(TransportError, match=rf"{outbox}.*\[delivery\] outbox_dir"):
        await mailer.send(Letter(SENDER, READER, make_message()))


async def test_control_characters_never_reach_the_envelope(tmp_path: Path) -> None:
    mailer = OutboxMailer(tmp_path)
    result = await mailer.send(Letter(SENDER, "a@example.net\r\nBcc: victim@example.com", b"x"))
    assert result.status is DeliveryStatus.FAILED
    assert not (tmp_path / "new").exists()
    with pytest.raises(TransportError, match=r"sender_email"):
        await mailer.send(Letter("a@b.c\nX: y", READER, b"x"))
