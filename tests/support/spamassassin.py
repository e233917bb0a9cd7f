"""Score messages with Debian's SpamAssassin, local rules only: no DNS, no network.

``-L`` (local tests only) turns off every network test: DNS block lists, URI block lists,
Razor, Pyzor, DCC, and the DNS look-ups SPF, DKIM and DMARC need; ``dns_available no``
says so a second time. Bayes is off (its verdict would depend on what this machine's
database learnt), and the user preferences live in a temporary folder, so that a run
neither reads nor writes the home folder. The rules are those the Debian package ships
(``/usr/share/spamassassin``): ``sa-update`` needs the network.

One ``spamassassin`` process scores every message (reading the rules once takes about a
second; each message adds a few milliseconds).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from email import message_from_bytes
from pathlib import Path

import pytest

SPAMASSASSIN = "spamassassin"
# Added to each message: every rule that fired with its score, "NAME=score,NAME=score".
_SCORES_HEADER = "X-Spam-Scores"
_OPTIONS = (
    "-L",  # local tests only
    "-t",  # test mode: the report is added to the message
    "-x",  # create no user preferences file
    "--cf=use_bayes 0",
    "--cf=dns_available no",
    "--cf=add_header all Scores _TESTSSCORES(,)_",  # SpamAssassin prefixes it with X-Spam-
)
_EACH_MESSAGE = re.compile(rb"(?m)^(?=X-Spam-Checker-Version: )")


@dataclass(frozen=True, slots=True)
class Verdict:
    """What SpamAssassin said of one message: the rules that fired, with their points."""

    rules: Mapping[str, float]

    @property
    def score(self) -> float:
        return sum(self.rules.values())

    def explain(self) -> str:
        """The score and every rule behind it, highest first, for an assertion message."""
        ranked = sorted(self.rules.items(), key=lambda item: (-item[1], item[0]))
        lines = [f"  {points:+6.3f} {name}" for name, points in ranked]
        return f"score {self.score:.3f} from:\n" + "\n".join(lines)


def require_spamassassin() -> str:
    """The spamassassin command; skip without it, except under CI=true, where it must run."""
    found = shutil.which(SPAMASSASSIN)
    if found is not None:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("spamassassin is required under CI=true: run `make spamassassin`")
    pytest.skip("spamassassin not installed (apt-get install spamassassin)")


def score(messages: Mapping[str, bytes], folder: Path) -> dict[str, Verdict]:
    """Each message's verdict, by name; ``folder`` holds the files and the preferences."""
    command = require_spamassassin()
    folder.mkdir(parents=True, exist_ok=True)
    prefs = folder / "user_prefs"
    prefs.write_text("", encoding="utf-8")
    paths: list[str] = []
    for name, message in messages.items():
        path = folder / f"{name}.eml"
        path.write_bytes(message)
        paths.append(str(path))
    result = subprocess.run(
        [command, *_OPTIONS, "-p", str(prefs), *paths],
        capture_output=True,
        check=False,
        env=os.environ | {"HOME": str(folder)},
        timeout=300,
    )
    outputs = [chunk for chunk in _EACH_MESSAGE.split(result.stdout) if chunk]
    if result.returncode != 0 or len(outputs) != len(paths):
        pytest.fail(
            f"spamassassin exited {result.returncode} with {len(outputs)} of {len(paths)} "
            f"messages scored: {result.stderr.decode(errors='replace')[-2000:]}"
        )
    return {name: _verdict(output) for name, output in zip(messages, outputs, strict=True)}


def _verdict(output: bytes) -> Verdict:
    head = output.split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
    headers = message_from_bytes(head + b"\n\n")
    value = headers.get(_SCORES_HEADER)
    if headers.get("X-Spam-Status") is None or value is None:
        pytest.fail(f"spamassassin gave no verdict:\n{output[:2000].decode(errors='replace')}")
    rules: dict[str, float] = {}
    for item in "".join(str(value).split()).split(","):
        if item:
            name, _, points = item.partition("=")
            rules[name] = float(points)
    return Verdict(rules)
