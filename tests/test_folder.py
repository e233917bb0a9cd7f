"""Folder sources: Markdown/HTML files with front matter, including a copy of the samples."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from string import Template

import httpx
import pytest

from digest.config import SourceConfig
from digest.errors import SourceError
from digest.sources import FetchResult, fetch_source
from digest.sources.limits import (
    MAX_AUTHOR,
    MAX_CAPTION,
    MAX_CATEGORIES,
    MAX_CONTENT,
    MAX_ITEMS,
    MAX_TITLE,
)

SAMPLE_POSTS = Path(__file__).parent / "fixtures" / "posts"  # a copy: the editor's may change
SEED = "https://transmission.example.org/2026/11/strains-visible-in-cis-military-alliance"


def _refuse_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"a folder source made a request to {request.url}")


@pytest.fixture
async def offline() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(_refuse_network)) as client:
        yield client


async def read(
    folder: Path, client: httpx.AsyncClient, now: datetime, max_bytes: int = 5_000_000
) -> FetchResult:
    source = SourceConfig(id="posts", kind="folder", path=folder, max_bytes=max_bytes)
    return await fetch_source(source, None, client=client, now=now)


def write(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(text, encoding="utf-8")


async def test_sample_folder_parses(offline: httpx.AsyncClient, now: datetime) -> None:
    result = await read(SAMPLE_POSTS, offline, now)
    assert result.problems == ()
    assert len(result.posts) == 3
    seed = result.posts[0]
    assert seed.title == "Strains Visible In CIS Military Alliance"
    assert seed.author == "Bruce Pannier"
    assert seed.published == datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    assert seed.link == SEED
    assert seed.guid == "folder:2026-11-20-strains-visible-in-cis-military-alliance.md"
    assert seed.image_url == "https://transmission.example.org/images/lukashenka-csto.jpg"
    assert seed.image_caption == "Belarusian Alyaksandr Lukashenka at the CSTO meeting last week"
    assert seed.categories == ("Belarus", "CSTO", "Central Asia")
    assert seed.summary_html == ""  # no summary in the front matter: excerpts use the body
    assert seed.content_html.count("<p>") == 10
    for chrome in ("Accessibility links", "Breaking News", "About This Blog", "Latest Posts"):
        assert chrome not in seed.content_html
    assert "Bruce Pannier" not in seed.content_html
    assert len({post.author for post in result.posts}) == 3
    assert result.state.last_fetched == now
    assert result.state.etag == ""


async def test_future_dated_posts_wait_for_their_date(offline: httpx.AsyncClient) -> None:
    before = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    result = await read(SAMPLE_POSTS, offline, before)
    dates = [post.published for post in result.posts]
    assert dates == [
        datetime(2026, 11, 20, 9, 30, tzinfo=UTC),
        datetime(2026, 11, 24, 8, 15, tzinfo=UTC),
    ]
    assert result.problems == ()


async def test_file_without_title_is_reported_and_skipped(
    tmp_path: Path, offline: httpx.AsyncClient, now: datetime
) -> None:
    write(
        tmp_path, "a-good.md", "---\ntitle: Good\ndate: 2026-11-01\nlink: https://e.org/g\n---\nHi"
    )
    write(tmp_path, "b-untitled.md", "---\ndate: 2026-11-02\nlink: https://e.org/u\n---\nNo title")
    write(tmp_path, "c-no-front-matter.md", "Just text.")
    result = await read(tmp_path, offline, now)
    assert [post.title for post in result.posts] == ["Good"]
    assert result.problems == (
        "file 'b-untitled.md': no title in the front matter; skipped",
        "file 'c-no-front-matter.md': no title in the front matter; skipped",
    )


@pytest.mark.parametrize(
    ("date_line", "problem"),
    [
        ("", "no date in the front matter"),
        ("date: next tuesday", "date 'next tuesday' is not an ISO 8601 date"),
    ],
)
async def test_missing_or_bad_date_is_reported_and_skipped(
    tmp_path: Path, offline: httpx.AsyncClient, now: datetime, date_line: str, problem: str
) -> None:
    write(tmp_path, "post.md", f"---\ntitle: T\n{date_line}\nlink: https://e.org/t\n---\nBody")
    result = await read(tmp_path, offline, now)
    assert result.posts == ()
    assert result.problems == (f"file 'post.md': {problem}; skipped",)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-03", datetime(2026, 11, 3, tzinfo=UTC)),
        ("2026-11-03 10:00:00", datetime(2026, 11, 3, 10, tzinfo=UTC)),
        ("'2026-11-03T10:00:00+02:00'", datetime(2026, 11, 3, 8, tzinfo=UTC)),
        ("'2026-11-03T10:00'", datetime(2026, 11, 3, 10, tzinfo=UTC)),
    ],
)
async def test_dates_naive_means_utc(
    tmp_path: Path, offline: httpx.AsyncClient, now: datetime, value: str, expected: datetime
) -> None:
    write(tmp_path, "post.md", f"---\ntitle: T\ndate: {value}\nlink: https://e.org/t\n---\nx")
    [post] = (await read(tmp_path, offline, now)).posts
    assert post.published == expected
    assert post.published.tzinfo is UTC


async def test_missing_link_is_reported_and_guid_falls_back_to_file_name(
    tmp_path: Path, offline: httpx.AsyncClient, now: datetime
) -> None:
    write(tmp_path, "2026-11-05-no-link.md", "---\ntitle: No link\ndate: 2026-11-05\n---\nText")
    write(tmp_path, "with-guid.md", "---\ntitle: G\ndate: 2026-11-05\nguid: custom-1\n---\nText")
    result = await read(tmp_path, offline, now)
    no_link, with_guid = result.posts
    assert no_link.link == ""
    assert no_link.guid == "folder:2026-11-05-no-link.md"
    assert with_guid.guid == "custom-1"
    assert "file '2026-11-05-no-link.md': no link in the front matter; left empty" in (
        result.problems
    )


async def test_adding_a_link_later_keeps_the_guid(
    tmp_path: Path, offline: httpx.AsyncClient, now: datetime
) -> None:
    # The editor follows the "no link" problem: the post must not become a new one.
    write(tmp_path, "hello.md", "---\ntitle: Hello\ndate: 2026-11-20\n---\nBody")
    [before] = (await read(tmp_path, offline, now)).posts
    write(
        tmp_path,
        "hello.md",
        "---\ntitle: Hello\ndate: 2026-11-20\nlink: https://e.org/h\n---\nBody",
    )
    [after] = (await read(tmp_path, offline, now)).posts
    assert after.link == "https://e.org/h"
    assert after.guid == before.guid == "folder:hello.md"
    assert after.key == before.key
    # Two spellings of one name (a.md, a.html) stay two posts.
    write(tmp_path, "hello.html", "---\ntitle: Hello\ndate: 2026-11-20\n---\n<p>Body</p>")
    posts = (await read(tmp_path, offline, now)).posts
    assert [post.guid for post in posts] == ["folder:hello.html", "folder:hello.md"]


async def test_guid_loses_nul_control_and_format_characters(
    tmp_path: Path, offline: httpx.AsyncClient, now: datetime
) -> None:
    write(
        tmp_path,
        "a.md",
        '---\ntitle: "T\\0i\\u202etle"\nauthor: "A\\0n\\u200bn"\nguid: " g\\0\\u200b1\\u202e "\n'
        "date: 2026-11-05\n---\nText",
    )
    write(tmp_path, "b.md", '---\ntitle: B\nguid: "\\0"\ndate: 2026-11-05\n---\nText')
    a, b = (await read(tmp_path, offline, now)).posts
    assert (a.guid, a.title, a.author) == ("g1", "Title", "Ann")
    assert b.guid == "folder:b.md"


async def test_file_name_that_is_not_utf8_gives_a_storable_guid(
    tmp_path: Path, offline: httpx.AsyncClient, now: datetime
) -> None:
    write(
        tmp_path,
        os.fsdecode(b"caf\xe9.md"),
        "---\ntitle: Latin-1 name\ndate: 2026-11-05\n---\nText",
    )
    result = await read(tmp_path, offline, now)
    [post] = result.posts
    assert post.guid == "folder:caf\\xe9.md"
    post.guid.encode("utf-8")  # a lone surrogate would raise here, and in the database
    assert result.problems == ("file 'caf\\xe9.md': no link in the front matter; left empty",)


@pytest.mark.parametrize("value", ["0001-01-01 00:00:00+01:00", "9999-12-31 23:00:00-05:00"])
async def test_date_out_of_range_in_utc_is_reported_and_skipped(
    tmp_path: Path, offline: httpx.AsyncClient, now: datetime, value: str
) -> None:
    write(tmp_path, "edge.md", f"---\ntitle: Edge\ndate: {value}\nlink: https://e.org/e\n---\nx")
    write(tmp_path, "fine.md", "---\ntitle: Fine\ndate: 2026-11-05\nlink: https://e.org/f\n---\nx")
    result = await read(tmp_path, offline, now)
    assert [post.title for post in result.posts] == ["Fine"]
    assert len(result.problems) == 1
    assert result.problems[0].startswith("file 'edge.md': date ")
    assert result.problems[0].endswith(" is out of range; skipped")


async def test_html_files_markdown_rendering_and_sanitizing(
    tmp_path: Path, offline: httpx.AsyncClient, now: datetime
) -> None:
    write(
        tmp_path,
        "a.md",
        "---\ntitle: 'AT&T <3 *md*'\ndate: 2026-11-06\nlink: https://e.org/2026/a\n"
        "tags: [One, Two]\nsummary: A *short* summary.\n---\n"
        "# Heading\n\nSee [the other post](../b) and ![Chart of gas](img/chart.png).\n\n"
        '<script>alert(1)</script><p onclick="x()">raw html</p>\n',
    )
    write(
        tmp_path,
        "b.html",
        "---\ntitle: HTML post\ndate: 2026-11-07\nlink: https://e.org/2026/b\n---\n"
        '<figure><img src="/pic.jpg"><figcaption>A caption</figcaption></figure><p>Body</p>',
    )
    write(tmp_path, "notes.txt", "---\ntitle: ignored\ndate: 2026-11-07\n---\n")
    write(tmp_path, ".#a.md", "---\ntitle: editor lock file\ndate: 2026-11-07\n---\n")
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub", "nested.md", "---\ntitle: nested\ndate: 2026-11-07\n---\n")
    result = await read(tmp_path, offline, now)
    md, page = result.posts
    assert md.title == "AT&T <3 *md*"
    assert md.categories == ("One", "Two")
    assert md.summary_html == "<p>A <em>short</em> summary.</p>"
    assert "<h2>Heading</h2>" in md.content_html
    assert 'href="https://e.org/b"' in md.content_html
    assert md.image_url == "https://e.org/2026/img/chart.png"
    assert md.image_caption == "Chart of gas"
    assert "script" not in md.content_html
    assert "onclick" not in md.content_html
    assert page.image_url == "https://e.org/pic.jpg"
    assert page.image_caption == "A caption"
    assert page.summary_html == ""
    assert [post.title for post in result.posts] == ["AT&T <3 *md*", "HTML post"]


async def test_invalid_yaml_is_reported_and_skipped(
    tmp_path: Path, offline: httpx.AsyncClient, now: datetime
) -> None:
    write(tmp_path, "broken.md", "---\ntitle: [unclosed\ndate: 2026-11-01\n---\nBody")
    result = await read(tmp_path, offline, now)
    assert result.posts == ()
    assert len(result.problems) == 1
    assert result.problems[0].startswith("file 'broken.md': front matter is not valid YAML")


async def test_unreadable_folder_is_a_source_error(
    tmp_path: Path, offline: httpx.AsyncClient, now: datetime
) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(SourceError, match=r"source 'posts': cannot read the folder .*nowhere"):
        await read(missing, offline, now)


async def test_oversized_front_matter_and_body_are_cut_and_reported(
    tmp_path: Path, offline: httpx.AsyncClient, now: datetime
) -> None:
    fixture = Path(__file__).parent / "fixtures" / "limits" / "posts" / "2026-11-20-oversized.md"
    text = Template(fixture.read_text(encoding="utf-8")).substitute(
        title="The Longest Title " * 250_000,  # 4.5 MB
        author="Bruce Pannier " * 1_000,
        caption="A caption that goes on " * 1_000,
        categories=", ".join(f"topic {n}" for n in range(100)),
        content="A paragraph of *emphasis* and more words.\n\n" * 10_000,
    )
    write(tmp_path, fixture.name, text)
    result = await read(tmp_path, offline, now, max_bytes=20_000_000)
    [post] = result.posts
    assert len(post.title) <= MAX_TITLE
    assert post.title.endswith("…")
    assert len(post.author) <= MAX_AUTHOR
    assert len(post.image_caption) <= MAX_CAPTION
    assert len(post.categories) == MAX_CATEGORIES
    assert len(post.content_html) <= MAX_CONTENT
    assert post.content_html.endswith("…</p>")
    [report] = result.problems
    assert report.startswith("fields cut to digest's limits: the title (to 300 characters) of 1")
    assert "the content (to 200,000 characters) of 1 item" in report


async def test_a_folder_fetch_keeps_the_newest_max_items_posts(
    tmp_path: Path, offline: httpx.AsyncClient, now: datetime
) -> None:
    for n in range(MAX_ITEMS + 20):
        day = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=n)
        write(
            tmp_path,
            f"{day:%Y-%m-%d}-post.md",
            f"---\ntitle: Post {n}\ndate: {day:%Y-%m-%d}\n---\nx",
        )
    result = await read(tmp_path, offline, now)
    assert len(result.posts) == MAX_ITEMS
    assert result.posts[0].title == "Post 20"  # the 20 oldest were left out
    assert result.posts[-1].title == f"Post {MAX_ITEMS + 19}"
    assert (
        f"{MAX_ITEMS + 20} items, more than digest takes from one fetch: kept the newest"
        f" {MAX_ITEMS}"
    ) in result.problems


async def test_relative_links_of_a_post_without_a_link_are_reported(
    offline: httpx.AsyncClient, now: datetime
) -> None:
    folder = Path(__file__).parent / "fixtures" / "posts-relative"
    result = await read(folder, offline, now)
    [post] = result.posts
    assert "/tags/energy/" not in post.content_html
    assert "https://en.wikipedia.org/wiki/Druzhba_pipeline" in post.content_html
    assert post.image_url == ""
    assert result.problems[-1] == (
        "3 relative links in 1 item dropped (first: item 'Relative Links Without A Link'):"
        " there is no absolute address to resolve them against; give those posts a link"
        " (their web address) in the front matter"
    )
