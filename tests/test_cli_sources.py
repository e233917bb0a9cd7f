"""`digest sources`, run in-process on a real config file, SQLite and local feeds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from digest.cli import main

from support import deployment

FEEDS = Path(__file__).resolve().parent / "fixtures" / "feeds"


@pytest.fixture(autouse=True)
def narrow_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("DIGEST_SECRET_KEY", "cli-test-" + "k" * 32)
    monkeypatch.delenv("DIGEST_CONFIG", raising=False)


def write_config(tmp_path: Path) -> Path:
    """The deployment config (a folder source, `posts`) and three more sources."""
    return deployment.write_config(
        tmp_path,
        smtp_port=1,
        web_port=1,
        transport="outbox",
        extra=f"""
[sources.quiet]
kind = "folder"
path = "{deployment.SAMPLE_POSTS}"
stale_after_days = 1

[sources.broken]
kind = "feed"
path = "{FEEDS / "malformed.xml"}"

[sources.wire]
kind = "feed"
url = "https://wire.example/feed.xml"
""",
    )


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_sources_show_health_in_80_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = ["--config", str(write_config(tmp_path))]
    assert run(capsys, "fetch", "quiet", *config)[0] == 0
    for _ in range(3):
        assert run(capsys, "fetch", "broken", *config)[0] == 1
    code, out, err = run(capsys, "sources", *config)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert max(map(len, lines)) <= 80
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:6]}
    assert rows["posts"] == ["not", "fetched", "-", "-", "-"]
    assert rows["quiet"][0] == "stale"
    assert rows["quiet"][1:3] == ["now", "now"]
    assert rows["quiet"][4:] == ["0", "0", "0/0"]
    assert rows["broken"] == ["failing", "now", "-", "-", "3", "0", "0/0"]
    assert rows["wire"] == ["not", "fetched", "-", "-", "-"]
    text = " ".join(out.split())
    assert "broken: failing since " in text
    assert "3 failed fetches in a row (alert logged; no [site] editors); next poll 20" in text
    assert "last error: source 'broken'" in text
    assert "quiet: no new post for " in text
    assert "days (stale_after_days = 1)" in text
    assert "wire: never fetched: `digest fetch wire` (or `digest run`) reads it" in text


def test_sources_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = ["--config", str(write_config(tmp_path))]
    run(capsys, "fetch", "broken", *config)
    code, out, _ = run(capsys, "sources", "--json", *config)
    assert code == 0
    found = {entry["source"]: entry for entry in json.loads(out)}
    assert list(found) == ["posts", "quiet", "broken", "wire"]
    broken = found["broken"]
    assert broken["status"] == "failing"
    assert broken["consecutive_failures"] == 1
    assert broken["editors_alerted"] is False
    assert broken["last_fetch"] == broken["failing_since"]
    assert broken["last_fetch"].endswith("+00:00")
    assert broken["next_attempt"] is not None
    assert broken["guid_churn"] == {"last_fetch": 0, "total": 0}
    assert found["wire"]["status"] == "not fetched"
    assert found["wire"]["last_fetch"] is None
    assert found["quiet"]["stale_after_days"] == 1
    assert found["posts"]["stale_after_days"] is None


def test_sources_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["sources", "--help"])
    assert exit_info.value.code == 0
    assert "List every source's health" in capsys.readouterr().out
