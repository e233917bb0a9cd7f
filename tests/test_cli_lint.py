"""`digest lint`, run in-process on the test deployment's config, SQLite and an outbox."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from digest.cli import _parser, main
from digest.lint import HTML_BUDGET

from support.deployment import SECRET_ENV, write_config

REPO = Path(__file__).resolve().parent.parent

LONG = (
    "The committee met again to discuss the pipeline, the dam and the calendar, and it"
    " agreed on nothing except the date of its next meeting, which is itself a kind of"
    " progress in a region where meetings are the main export. "
) * 4
BIG = """
[newsletters.big]
title = "Transmission Everything"
sources = ["posts"]
max_items = 150

[newsletters.big.schedule]
daily = "07:00"
"""


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DIGEST_CONFIG", raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def sample_config(tmp_path: Path, **changes: object) -> list[str]:
    path = write_config(tmp_path, smtp_port=2525, web_port=8000, transport="outbox", **changes)
    return ["--config", str(path)]


def long_posts(folder: Path, count: int) -> Path:
    """``count`` posts with long first paragraphs, one an hour through November 2026."""
    folder.mkdir()
    for n in range(count):
        day, hour = 1 + n // 24, n % 24
        (folder / f"post-{n:03}.md").write_text(
            f"---\ntitle: Post number {n} about the long meeting\n"
            f"date: 2026-11-{day:02}T{hour:02}:00:00Z\n"
            f"link: https://transmission.example.org/2026/11/post-{n}\n"
            f"image: https://transmission.example.org/images/{n}.jpg\n---\n{LONG}\n\nMore.\n",
            encoding="utf-8",
        )
    return folder


def test_lint_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _parser().parse_args(["lint", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "NEWSLETTER|EDITION" in out
    assert "--json" in out


def test_the_sample_newsletter_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, *sample_config(tmp_path), "lint", "daily")
    assert code == 0, out
    assert "daily: the next digest for a reader subscribing now" in out
    assert "0 error(s)" in out
    assert f"of the {HTML_BUDGET:,}-byte budget" in out
    # The test deployment serves http://127.0.0.1: its own links are named, as warnings.
    assert "link-http" in out
    assert "unsubscribe-link" in out
    assert max(len(line) for line in out.splitlines()) <= 80


def editor_templates(folder: Path) -> Path:
    """An editor's digest.html without the row that links left-out posts: a digest of many
    posts can be shortened, but no post left out, so it may stay over the budget."""
    folder.mkdir()
    shipped = (REPO / "templates" / "email" / "digest.html").read_text(encoding="utf-8")
    assert '{% include "_more.html" %}' in shipped
    (folder / "digest.html").write_text(
        shipped.replace('{% include "_more.html" %}', ""), encoding="utf-8"
    )
    return folder


def test_an_over_budget_digest_fails_and_names_its_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    posts = long_posts(tmp_path / "posts", 150)
    templates = editor_templates(tmp_path / "templates")
    extra = BIG.replace("max_items = 150", f'max_items = 150\ntemplates = "{templates}"')
    config = sample_config(tmp_path / "site", posts_dir=posts, extra=extra)
    code, out, _ = run(capsys, *config, "lint", "big")
    assert code == 1
    assert "html-size" in out
    size = re.search(r"HTML part: ([\d,]+) bytes, (\d+)% of the 95,000-byte budget", out)
    assert size is not None, out
    assert int(size.group(1).replace(",", "")) > HTML_BUDGET
    assert int(size.group(2)) > 100
    assert "1 error(s)" in out

    code, out, _ = run(capsys, *config, "lint", "big", "--json")
    assert code == 1
    report = json.loads(out)
    [message] = report["messages"]
    assert message["html_bytes"] > HTML_BUDGET
    assert message["errors"] == 1
    [size] = [f for f in message["findings"] if f["code"] == "html-size"]
    assert size["level"] == "error"
    assert f"{message['html_bytes']:,} bytes, over the budget of 95,000" in size["message"]


def test_an_edition_is_linted_from_its_stored_rendering(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = sample_config(tmp_path)
    assert run(capsys, *config, "subscribers", "add", "ana@example.net")[0] == 0
    assert run(capsys, *config, "send-now", "daily")[0] == 0
    _, out, _ = run(capsys, *config, "editions", "daily")
    prefix = next(word for word in out.split() if len(word) == 8 and word.isalnum())
    code, out, _ = run(capsys, *config, "lint", prefix[:6], "--json")
    assert code == 0
    [message] = json.loads(out)["messages"]
    assert message["checked"].startswith(f"edition {prefix} of daily (")
    assert "manual-" in message["checked"]
    assert message["errors"] == 0
    assert 0 < message["html_bytes"] < HTML_BUDGET
    assert message["subject"].startswith("Transmission Daily: ")


def test_an_unknown_target_names_the_newsletters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, *sample_config(tmp_path), "lint", "weekly")
    assert code == 1
    assert "'weekly' is not a newsletter (daily), and no edition with id 'weekly'" in err


def test_reader_options_go_with_a_newsletter_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = sample_config(tmp_path)
    code, _, err = run(capsys, *config, "lint", "0123abcd", "--subscriber", "ana@example.net")
    assert code == 2
    assert "--subscriber" in err
