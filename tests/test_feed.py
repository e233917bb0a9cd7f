"""Feed sources: every RSS version and Atom, hostile input, and HTTP through MockTransport."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from string import Template

import httpx
import pytest

from digest.config import SourceConfig
from digest.errors import SourceError
from digest.models import Post, SourceState
from digest.sources import USER_AGENT, FetchResult, fetch_source
from digest.sources.limits import (
    MAX_AUTHOR,
    MAX_CAPTION,
    MAX_CATEGORIES,
    MAX_CONTENT,
    MAX_ITEMS,
    MAX_SUMMARY,
    MAX_TITLE,
)

FIXTURES = Path(__file__).parent / "fixtures" / "feeds"
FEED_URL = "https://transmission.example.org/feed.xml"
Handler = Callable[[httpx.Request], httpx.Response]


def _refuse_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"unexpected request to {request.url}")


@pytest.fixture
async def offline() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(_refuse_network)) as client:
        yield client


async def fetch_file(name: str, client: httpx.AsyncClient, now: datetime) -> FetchResult:
    source = SourceConfig(id="sample", kind="feed", path=FIXTURES / name)
    return await fetch_source(source, None, client=client, now=now)


async def fetch_bytes(body: bytes, now: datetime, **source: object) -> FetchResult:
    """Serve ``body`` at FEED_URL and fetch it."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": "application/xml"})

    config = replace(SourceConfig(id="inline", kind="feed", url=FEED_URL), **source)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        return await fetch_source(config, None, client=client, now=now)


def rss(items: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>T</title>'
        f"<link>https://transmission.example.org/</link>{items}</channel></rss>"
    ).encode()


def by_title(posts: tuple[Post, ...]) -> dict[str, Post]:
    return {post.title: post for post in posts}


# --- the formats ---------------------------------------------------------------------


async def test_rss_091_with_netscape_doctype(offline: httpx.AsyncClient, now: datetime) -> None:
    result = await fetch_file("rss091.xml", offline, now)
    posts = by_title(result.posts)
    assert list(posts) == ["Café Politics In Minsk", "Second Item"]
    cafe = posts["Café Politics In Minsk"]
    assert cafe.link == "https://transmission.example.org/2026/11/cafe-politics"
    assert cafe.guid == cafe.link
    assert cafe.content_html == "Sample item: who sits <em>where</em> in a Minsk café."
    # RSS 0.91 items carry no date: the fetch time is used, marked and reported per item.
    assert (cafe.published, cafe.dated) == (now, False)
    problem = "item 'Café Politics In Minsk': no date, used the time it was first seen"
    assert problem in result.problems
    # A relative item link is resolved against the channel link of a local file.
    assert posts["Second Item"].link == "https://transmission.example.org/2026/11/second-item"


async def test_rss_092_enclosure_image_and_relative_links(
    offline: httpx.AsyncClient, now: datetime
) -> None:
    [post] = (await fetch_file("rss092.xml", offline, now)).posts
    assert post.title == "Pipeline Politics"
    assert post.image_url == "https://transmission.example.org/images/pipeline.jpg"
    assert post.categories == ("Energy",)
    assert 'href="https://transmission.example.org/tags/energy"' in post.content_html


async def test_rss_10_rdf(offline: httpx.AsyncClient, now: datetime) -> None:
    result = await fetch_file("rss10.rdf", offline, now)
    [post] = result.posts
    assert result.problems == ()
    assert post.title == "Elections On The Steppe"
    assert post.link == "https://transmission.example.org/2026/11/steppe-elections"
    assert post.author == "Daisy Sindelar"
    assert post.published == datetime(2026, 11, 21, 14, 15, tzinfo=UTC)
    assert post.categories == ("Kazakhstan",)
    assert post.summary_html == "Turnout figures that would make any pollster blush."


async def test_rss_20_media_caption_content_and_summary(
    offline: httpx.AsyncClient, now: datetime
) -> None:
    result = await fetch_file("rss20.xml", offline, now)
    assert result.problems == ()
    border, thumb = result.posts
    assert border.guid == "transmission-2026-11-border"
    assert border.title == "A Border Drawn In Pencil"  # HTML in a title is stripped
    assert border.author == "Bruce Pannier"
    assert border.published == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    assert border.categories == ("Central Asia", "Borders")
    # media:description is the image caption; it must not replace summary or content.
    assert border.image_url == "https://transmission.example.org/images/border.jpg"
    assert border.image_caption == "A border post in the Fergana Valley"
    assert border.summary_html == "Short version: the map is not the territory."
    assert border.content_html.startswith(
        '<p>The long version starts <a href="https://transmission.example.org/2026/10/'
        'earlier-post" rel="noopener noreferrer">here</a>.</p>'
    )
    assert thumb.author == "Ron Synovitz"  # the name, not the address, of <author>
    assert thumb.image_url == "https://transmission.example.org/images/thumb.jpg"


async def test_atom_10(offline: httpx.AsyncClient, now: datetime) -> None:
    result = await fetch_file("atom10.xml", offline, now)
    assert result.problems == ()
    summit, updated = result.posts
    assert summit.guid == "tag:transmission.example.org,2026:summit"
    assert summit.title == "Summit & Circumstance"
    assert summit.link == "https://transmission.example.org/2026/11/summit-and-circumstance"
    assert summit.published == datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    assert summit.author == "Claire Bigg"
    assert summit.summary_html == "<p>Who came, who did not, and who left early.</p>"
    assert summit.image_url == "https://transmission.example.org/images/summit.jpg"
    assert summit.image_caption == "The family photo, minus one"
    assert 'href="https://transmission.example.org/2026/11/earlier"' in summit.content_html
    # Only <updated>: that date is used; no summary of its own (the excerpt is made from
    # the content when the digest is rendered).
    assert updated.published == datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    assert updated.summary_html == ""
    assert updated.content_html == "<p>First paragraph of XHTML content.</p><p>Second.</p>"


async def test_the_sample_feed_parses(offline: httpx.AsyncClient, now: datetime) -> None:
    source = SourceConfig(id="transmission", kind="feed", path=FIXTURES / "transmission.xml")
    result = await fetch_source(source, None, client=offline, now=now)
    assert result.problems == ()
    assert len(result.posts) >= 2
    for post in result.posts:
        assert post.link.startswith("https://transmission.example.org/")
        assert post.author
        assert post.image_url
        assert post.image_caption
        assert post.categories
        assert post.published.month == 11
        assert post.published.year == 2026


# --- hostile or broken documents -------------------------------------------------------


async def test_malformed_feed_names_source_and_cause(
    offline: httpx.AsyncClient, now: datetime
) -> None:
    with pytest.raises(SourceError) as caught:
        await fetch_file("malformed.xml", offline, now)
    message = str(caught.value)
    assert message.startswith("source 'sample': ")
    assert str(FIXTURES / "malformed.xml") in message
    assert "not a valid RSS or Atom feed (line 3: mismatched tag)" in message


async def test_html_page_is_not_a_feed(offline: httpx.AsyncClient, now: datetime) -> None:
    with pytest.raises(SourceError, match=r"source 'sample': .*not-a-feed\.html is not a valid"):
        await fetch_file("not-a-feed.html", offline, now)


async def test_well_formed_xml_that_is_no_feed_is_refused(now: datetime) -> None:
    with pytest.raises(SourceError, match="no RSS or Atom root element"):
        await fetch_bytes(b"<?xml version='1.0'?><config><item/></config>", now)


async def test_entity_declarations_are_refused(offline: httpx.AsyncClient, now: datetime) -> None:
    with pytest.raises(SourceError, match=r"source 'sample': .*entities\.xml declares XML entit"):
        await fetch_file("entities.xml", offline, now)
    hidden = (
        (FIXTURES / "entities.xml")
        .read_bytes()
        .replace(b"<!DOCTYPE", b"<!-- <a> looks like a root element --><!DOCTYPE")
    )
    with pytest.raises(SourceError, match="declares XML entities"):
        await fetch_bytes(hidden, now)
    utf16 = (FIXTURES / "entities.xml").read_text().replace("UTF-8", "UTF-16")
    with pytest.raises(SourceError, match="declares XML entities"):
        await fetch_bytes(utf16.encode("utf-16"), now)


INJECTED = (
    '<rss version="2.0"><channel><title>T</title><item><title>&e;</title>'
    "<link>https://transmission.example.org/e</link></item></channel></rss>"
)


@pytest.mark.parametrize(
    "prolog",
    [
        # "<a" in a processing instruction or a quoted string looked like the root element.
        '<!DOCTYPE rss [<?pi <a?><!ENTITY e "INJECTED">]>',
        '<!DOCTYPE rss SYSTEM "<a" [<!ENTITY e "INJECTED">]>',
        # "<!--" in a processing instruction or a literal looked like a comment.
        '<!DOCTYPE rss [<?pi > <!-- ?><!ENTITY e "INJECTED"><?pi --> ?>]>',
        '<?pi <!-- ?><!DOCTYPE rss [<!ENTITY e "INJECTED">]><?pi --> ?>',
        '<!DOCTYPE rss SYSTEM "x<!--" [<!ENTITY e "INJECTED"><!-- -->]>',
        # feedparser lifts a declaration out of a comment and declares it.
        '\n<!DOCTYPE rss>\n<!--\n<!ENTITY e "INJECTED">\n-->',
    ],
)
async def test_entity_declarations_cannot_hide(prolog: str, now: datetime) -> None:
    document = f'<?xml version="1.0"?>{prolog}\n{INJECTED}'.encode()
    with pytest.raises(SourceError, match="declares XML entities"):
        await fetch_bytes(document, now)


@pytest.mark.parametrize(
    ("document", "content_type"),
    [
        (  # "+ADw-" is "<" in UTF-7, which feedparser decodes when declared
            b'<?xml version="1.0" encoding="utf-7"?><!DOCTYPE rss [+ADw-!ENTITY e "INJECTED">]>'
            + INJECTED.encode(),
            "",
        ),
        (
            b'<!DOCTYPE rss [+ADw-!ENTITY e "INJECTED">]>' + INJECTED.encode(),
            "application/rss+xml; charset=utf-7",
        ),
        (  # EBCDIC
            f'<?xml version="1.0" encoding="cp037"?><!DOCTYPE rss [<!ENTITY e "INJECTED">]>'
            f"{INJECTED}".encode("cp037"),
            "",
        ),
    ],
)
async def test_entity_declarations_are_found_in_any_encoding_feedparser_reads(
    document: bytes, content_type: str, now: datetime
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=document, headers={"content-type": content_type})

    source = SourceConfig(id="inline", kind="feed", url=FEED_URL)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(SourceError, match="declares XML entities"):
            await fetch_source(source, None, client=client, now=now)


async def test_entity_text_inside_content_is_not_a_declaration(now: datetime) -> None:
    item = (
        "<item><title>XML</title><description>Never write &lt;!ENTITY x&gt;.</description></item>"
    )
    result = await fetch_bytes(rss(item), now)
    assert result.posts[0].title == "XML"


async def test_wrong_declared_encoding_is_read_and_reported(
    offline: httpx.AsyncClient, now: datetime
) -> None:
    result = await fetch_file("wrong-encoding.xml", offline, now)
    assert [post.title for post in result.posts] == ["Café Society"]
    assert any("declared as us-ascii" in problem for problem in result.problems)


async def test_hostile_html_is_sanitized(now: datetime) -> None:
    item = (
        "<item><title>&lt;script&gt;alert(1)&lt;/script&gt;Hi &lt;b onclick=x()&gt;there&lt;/b&gt;"
        "</title><link>https://transmission.example.org/hi</link><description><![CDATA["
        '<p onclick="steal()">Text<script>alert(1)</script> '
        '<a href="jav&#x61;script:alert(1)">a</a>'
        ' <a href="javascript:alert(2)">b</a> <img src="x.png" onerror="steal()"></p>'
        "]]></description></item>"
    )
    [post] = (await fetch_bytes(rss(item), now)).posts
    assert post.title == "Hi there"
    for bad in ("script", "onclick", "onerror", "alert"):
        assert bad not in post.content_html.lower()
    assert '<img src="https://transmission.example.org/x.png">' in post.content_html


async def test_missing_and_future_dates(now: datetime) -> None:
    items = (
        "<item><title>Undated</title><link>https://transmission.example.org/u</link></item>"
        "<item><title>Tomorrow-ish</title><link>https://transmission.example.org/t</link>"
        "<pubDate>Fri, 27 Nov 2026 20:00:00 GMT</pubDate></item>"
        "<item><title>Next year</title><link>https://transmission.example.org/n</link>"
        "<pubDate>Sat, 27 Nov 2027 07:00:00 GMT</pubDate></item>"
    )
    result = await fetch_bytes(rss(items), now)
    posts = by_title(result.posts)
    assert posts["Undated"].published == now
    # Future dates are kept, so that selection holds the posts back until then;
    # only those more than a day ahead are worth a problem.
    assert posts["Tomorrow-ish"].published == datetime(2026, 11, 27, 20, 0, tzinfo=UTC)
    assert posts["Next year"].published == datetime(2027, 11, 27, 7, 0, tzinfo=UTC)
    assert result.problems == (
        "item 'Undated': no date, used the time it was first seen",
        "item 'Next year': dated 2027-11-27T07:00:00+00:00, in the future: it waits until then",
    )


async def test_unreadable_date_without_updated_is_no_date(now: datetime) -> None:
    # feedparser answers updated_parsed with published_parsed and a DeprecationWarning
    # (an error under pytest) when the entry has no <updated>.
    items = "<item><title>Bad</title><guid>b</guid><pubDate>someday soon</pubDate></item>"
    result = await fetch_bytes(rss(items), now)
    assert result.posts[0].published == now
    assert result.problems == ("item 'Bad': no date, used the time it was first seen",)


async def test_duplicates_by_guid_and_by_link_only_without_a_guid(now: datetime) -> None:
    date = "<pubDate>Wed, 25 Nov 2026 10:00:00 GMT</pubDate>"
    items = (
        f"<item><title>One</title><guid>g1</guid><link>{FEED_URL}1</link>{date}</item>"
        f"<item><title>One again</title><guid>g1</guid><link>{FEED_URL}x</link>{date}</item>"
        f"<item><title>Same link</title><guid>g2</guid><link>{FEED_URL}1</link>{date}</item>"
        f"<item><title>No GUID</title><link>{FEED_URL}1</link>{date}</item>"
        f"<item><title>Two</title><guid>g3</guid><link>{FEED_URL}2</link>{date}</item>"
        f"<item><title>Three</title><link>{FEED_URL}3</link>{date}</item>"
        f"<item><title>Three again</title><link>{FEED_URL}3</link>{date}</item>"
    )
    result = await fetch_bytes(rss(items), now)
    assert [post.title for post in result.posts] == ["One", "Same link", "Two", "Three"]
    assert result.problems == (
        f"item 'No GUID': duplicate link {FEED_URL}1; kept the other",
        "item 'One again': duplicate GUID g1; kept the first",
        f"item 'Three again': duplicate GUID {FEED_URL}3; kept the first",
    )


async def test_items_with_own_guids_sharing_one_link_are_all_kept(now: datetime) -> None:
    # A status page (or a podcast) links every item to the same page.
    items = "".join(
        f"<item><title>Update {n}</title><link>https://status.example.org/</link>"
        f'<guid isPermaLink="false">incident-{n}</guid>'
        f"<pubDate>Wed, 2{n} Nov 2026 10:00:00 GMT</pubDate></item>"
        for n in range(1, 4)
    )
    result = await fetch_bytes(rss(items), now)
    assert [post.guid for post in result.posts] == ["incident-1", "incident-2", "incident-3"]
    assert result.problems == ()


async def test_nul_control_and_format_characters_never_reach_the_database(
    now: datetime,
) -> None:
    items = (
        "<item><title>A&#0;b&#x202E;c</title><guid>id-1&#0;</guid>"
        "<author>x@e.org (Bo&#0;b&#x200B;)</author>"
        f"<link>{FEED_URL}&#0;a</link><pubDate>Wed, 25 Nov 2026 10:00:00 GMT</pubDate></item>"
        "<item><title>Raw</title><guid>\x00id-2\u200b\u202e</guid>"
        "<pubDate>Wed, 25 Nov 2026 10:00:00 GMT</pubDate></item>"
        "<item><title>Only controls</title><guid>&#0;\u200b</guid><link>/only</link>"
        "<pubDate>Wed, 25 Nov 2026 10:00:00 GMT</pubDate></item>"
    )
    result = await fetch_bytes(rss(items), now)
    first, raw, only = result.posts
    assert (first.guid, first.title, first.author, first.link) == (
        "id-1",
        "Abc",
        "Bob",
        f"{FEED_URL}a",
    )
    assert raw.guid == "id-2"
    assert only.guid == only.link == "https://transmission.example.org/only"
    for post in result.posts:
        for field in ("guid", "title", "link", "author", "summary_html", "content_html"):
            assert "\x00" not in getattr(post, field)


async def test_guid_falls_back_to_link_then_content_hash(now: datetime) -> None:
    items = (
        "<item><title>Linked</title><link>https://transmission.example.org/l</link></item>"
        "<item><description>Nothing but text</description></item>"
    )
    linked, bare = (await fetch_bytes(rss(items), now)).posts
    assert linked.guid == "https://transmission.example.org/l"
    assert bare.title == "(untitled)"
    assert bare.link == ""
    assert bare.guid.startswith("sha256:")
    assert len(bare.guid) == len("sha256:") + 64
    again = (await fetch_bytes(rss(items), now)).posts[1]
    assert again.guid == bare.guid


# --- HTTP ----------------------------------------------------------------------------


async def test_http_200_then_conditional_get_gets_304(now: datetime) -> None:
    body = (FIXTURES / "rss20.xml").read_bytes()
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.headers.get("if-none-match") == '"v1"':
            return httpx.Response(304)
        headers = {"etag": '"v1"', "last-modified": "Wed, 25 Nov 2026 10:00:00 GMT"}
        return httpx.Response(200, content=body, headers=headers)

    source = SourceConfig(id="transmission", kind="feed", url=FEED_URL)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        first = await fetch_source(source, None, client=client, now=now)
        second = await fetch_source(source, first.state, client=client, now=now)

    assert len(first.posts) == 2
    assert not first.not_modified
    assert first.state == SourceState(
        "transmission",
        etag='"v1"',
        last_modified="Wed, 25 Nov 2026 10:00:00 GMT",
        last_fetched=now,
    )
    assert "if-none-match" not in seen[0].headers
    assert seen[0].headers["user-agent"] == USER_AGENT
    assert seen[1].headers["if-none-match"] == '"v1"'
    assert seen[1].headers["if-modified-since"] == "Wed, 25 Nov 2026 10:00:00 GMT"
    assert second.not_modified
    assert second.posts == ()
    assert second.state.etag == '"v1"'
    assert second.state.last_fetched == now


@pytest.mark.parametrize(
    ("status", "advice"),
    [(404, "check the url in [sources.transmission]"), (503, "try again at the next fetch")],
)
async def test_http_error_status_is_a_source_error(status: int, advice: str, now: datetime) -> None:
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(lambda request: httpx.Response(status))
    ) as client:
        source = SourceConfig(id="transmission", kind="feed", url=FEED_URL)
        with pytest.raises(SourceError) as caught:
            await fetch_source(source, None, client=client, now=now)
    assert str(caught.value).startswith(
        f"source 'transmission': {FEED_URL} answered HTTP {status}; "
    )
    assert advice in str(caught.value)


async def test_oversized_body_is_refused_with_or_without_content_length(now: datetime) -> None:
    with pytest.raises(SourceError, match=r"source 'inline': .* more than max_bytes = 100"):
        await fetch_bytes(b"x" * 101, now, max_bytes=100)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(50):
            yield b"x" * 10

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=chunks())  # streamed: no Content-Length

    source = SourceConfig(id="inline", kind="feed", url=FEED_URL, max_bytes=100)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(SourceError, match="more than max_bytes = 100"):
            await fetch_source(source, None, client=client, now=now)


async def test_redirects_are_followed_and_bounded(now: datetime) -> None:
    body = rss("<item><title>Moved</title><link>/moved</link></item>")
    no_channel_link = (
        b'<rss version="2.0"><channel><title>T</title>'
        b"<item><link>item</link></item></channel></rss>"
    )

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/bare":
            return httpx.Response(200, content=no_channel_link)
        if request.url.path == "/loop":
            return httpx.Response(302, headers={"location": "/loop"})
        if request.url.path == "/feed.xml":
            return httpx.Response(301, headers={"location": "https://new.example.org/rss"})
        if request.url.path == "/go":
            return httpx.Response(307, headers={"location": "https://new.example.org/bare"})
        if request.url.path == "/to-file":
            return httpx.Response(302, headers={"location": "file:///etc/passwd"})
        return httpx.Response(200, content=body)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        moved = await fetch_source(
            SourceConfig(id="moved", kind="feed", url=FEED_URL), None, client=client, now=now
        )
        # Relative links resolve against the channel link first...
        assert moved.posts[0].link == "https://transmission.example.org/moved"
        # ...and against the final URL after redirects when the channel has none.
        bare = SourceConfig(id="bare", kind="feed", url="https://transmission.example.org/go")
        bare_result = await fetch_source(bare, None, client=client, now=now)
        assert bare_result.posts[0].link == "https://new.example.org/item"
        loop = SourceConfig(id="loop", kind="feed", url="https://transmission.example.org/loop")
        with pytest.raises(SourceError, match=r"source 'loop': .* redirected more than 5 times"):
            await fetch_source(loop, None, client=client, now=now)
        to_file = replace(loop, id="file", url="https://transmission.example.org/to-file")
        with pytest.raises(SourceError, match=r"not a usable http\(s\) URL \(scheme 'file'\)"):
            await fetch_source(to_file, None, client=client, now=now)


@pytest.mark.parametrize(
    ("location", "fault"),
    [
        ("http://[oops/feed", "malformed: Invalid IPv6 URL"),
        ("//[oops", "malformed: Invalid IPv6 URL"),
        ("http://transmission.example.org:99999/feed", "malformed: Port out of range"),
        ("http://:80/feed", "no host"),
        ("ftp://transmission.example.org/feed", "scheme 'ftp'"),
    ],
)
async def test_unusable_redirect_location_is_a_source_error(
    location: str, fault: str, now: datetime
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(301, headers={"location": location})

    source = SourceConfig(id="moved", kind="feed", url=FEED_URL)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(SourceError) as caught:
            await fetch_source(source, None, client=client, now=now)
    message = str(caught.value)
    assert message.startswith(
        f"source 'moved': {FEED_URL} redirected to Location {location!r}, "
        f"which is not a usable http(s) URL ({fault}"
    )
    assert message.endswith("check the url in [sources.moved] or tell the publisher")


@pytest.mark.parametrize(
    "url", ["http://[::1/feed", "http://127.0.0.1:99999/feed", "http://127.0.0.1:-1/feed"]
)
async def test_malformed_source_url_is_a_source_error(
    url: str, offline: httpx.AsyncClient, now: datetime
) -> None:
    source = SourceConfig(id="bad", kind="feed", url=url)
    with pytest.raises(SourceError, match=r"source 'bad': .* is not a usable http\(s\) URL"):
        await fetch_source(source, None, client=offline, now=now)


async def test_non_ascii_digits_in_content_length_are_ignored(now: datetime) -> None:
    body = rss("<item><title>Fine</title><guid>f</guid></item>")

    async def stream() -> AsyncIterator[bytes]:
        yield body

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=stream(), headers=[(b"content-length", b"\xb2")])

    source = SourceConfig(id="inline", kind="feed", url=FEED_URL)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        result = await fetch_source(source, None, client=client, now=now)
    assert [post.title for post in result.posts] == ["Fine"]


async def test_network_faults_and_timeouts_become_source_errors(now: datetime) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async def stall(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200)

    source = SourceConfig(id="down", kind="feed", url=FEED_URL, timeout_seconds=0.05)
    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
        with pytest.raises(SourceError, match=r"source 'down': cannot fetch .*connection refused"):
            await fetch_source(source, None, client=client, now=now)
    async with httpx.AsyncClient(transport=httpx.MockTransport(stall)) as client:
        with pytest.raises(SourceError, match=r"did not answer within 0\.05 s"):
            await fetch_source(source, None, client=client, now=now)


async def test_non_http_url_and_missing_file(offline: httpx.AsyncClient, now: datetime) -> None:
    ftp = SourceConfig(id="ftp", kind="feed", url="ftp://example.org/feed.xml")
    with pytest.raises(SourceError, match=r"source 'ftp': 'ftp://example\.org/feed\.xml' is not"):
        await fetch_source(ftp, None, client=offline, now=now)
    with pytest.raises(SourceError, match=r"source 'sample': cannot read .*missing\.xml"):
        await fetch_file("missing.xml", offline, now)


async def test_a_media_caption_with_attributes_keeps_its_text(
    offline: httpx.AsyncClient, now: datetime
) -> None:
    result = await fetch_file("media_caption_attributes.xml", offline, now)
    posts = by_title(result.posts)
    markup, empty = posts["Caption With Markup"], posts["Empty Caption"]
    assert markup.image_caption == "Leaders at the summit in Minsk"
    assert markup.summary_html == "The story itself."  # the caption replaced nothing
    assert empty.image_caption == ""
    assert empty.summary_html == "Another story."
    assert all("{" not in post.image_caption for post in result.posts)


async def test_feedburner_original_links_replace_tracking_redirects(
    offline: httpx.AsyncClient, now: datetime
) -> None:
    result = await fetch_file("feedburner.xml", offline, now)
    posts = by_title(result.posts)
    redirected = posts["Through A Redirect"]
    assert redirected.link == "https://transmission.example.org/2026/11/through-a-redirect"
    assert "feedburner.com" not in redirected.summary_html
    assert posts["Without An Original"].link == "https://transmission.example.org/2026/11/plain"


async def test_an_item_without_an_author_takes_the_feeds(now: datetime) -> None:
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        b"<title>A Blog</title><id>tag:blog</id><updated>2026-11-23T09:00:00Z</updated>"
        b"<author><name>Ana Author</name></author>"
        b'<link href="https://blog.example.org/"/>'
        b"<entry><title>Hers</title><id>tag:1</id><updated>2026-11-23T09:00:00Z</updated>"
        b'<link href="https://blog.example.org/1"/><summary>s</summary></entry>'
        b"<entry><title>A Guest's</title><id>tag:2</id><updated>2026-11-22T09:00:00Z</updated>"
        b"<author><name>Guest Writer</name></author>"
        b'<link href="https://blog.example.org/2"/><summary>s</summary></entry>'
        b"</feed>"
    )
    posts = by_title((await fetch_bytes(body, now)).posts)
    assert posts["Hers"].author == "Ana Author"
    assert posts["A Guest's"].author == "Guest Writer"


# --- field limits ----------------------------------------------------------------------

LIMITS = Path(__file__).parent / "fixtures" / "limits"


async def test_oversized_fields_are_cut_and_reported(now: datetime) -> None:
    categories = "".join(f"<category>topic {n} {'x' * 200}</category>" for n in range(60))
    body = Template((LIMITS / "oversized.xml").read_text()).substitute(
        title="The Longest Title " * 250_000,  # 4.5 MB, as the feed that was mailed at 8 MB
        author="Bruce Pannier " * 10_000,
        summary="A summary that goes on. " * 50_000,
        content="<b>Bold</b> and <i>italic</i> words, " * 8_000,  # 300 KB
        caption="A caption that goes on. " * 10_000,
        categories=categories,
    )
    started = time.perf_counter()
    result = await fetch_bytes(body.encode(), now, max_bytes=20_000_000)
    assert time.perf_counter() - started < 30
    long, ordinary = result.posts
    assert len(long.title) <= MAX_TITLE
    assert long.title.startswith("The Longest Title The Longest")
    assert long.title.endswith(("Title…", "The…", "Longest…"))  # on a word
    assert len(long.author) <= MAX_AUTHOR
    assert len(long.image_caption) <= MAX_CAPTION
    assert len(long.summary_html) <= MAX_SUMMARY
    assert len(long.content_html) <= MAX_CONTENT
    assert long.content_html.startswith("<div><p>The lead paragraph.</p><blockquote><ul><li>")
    assert long.content_html.endswith("…</li></ul></blockquote></div>")  # still well-formed
    assert len(long.categories) == MAX_CATEGORIES
    stored = sum(len(field) for field in (long.title, long.summary_html, long.content_html))
    assert stored < 250_000
    assert ordinary.title == "An Ordinary Post"  # within the limits: untouched
    assert ordinary.categories == ("Belarus",)
    [report] = [p for p in result.problems if p.startswith("fields cut")]
    assert "the title (to 300 characters) of 1 item" in report
    for name in ("author", "image caption", "categories", "summary", "content"):
        assert f"the {name} (" in report
    assert report.endswith(f"(first: item '{long.title}')")


async def test_a_fetch_keeps_at_most_max_items_items(now: datetime) -> None:
    items = "".join(
        f"<item><title>Episode {n}</title><guid>ep-{n}</guid>"
        f"<pubDate>Thu, 26 Nov 2026 08:00:00 GMT</pubDate></item>"
        for n in range(1200, 0, -1)
    )
    body = Template((LIMITS / "many-items.xml").read_text()).substitute(items=items)
    result = await fetch_bytes(body.encode(), now)
    assert len(result.posts) == MAX_ITEMS
    assert result.posts[0].title == "Episode 1200"  # the newest, first in the feed
    assert result.problems == (
        f"1,200 items, more than digest takes from one fetch: kept the first {MAX_ITEMS}",
    )


# --- relative links of a local feed file --------------------------------------------


async def test_a_local_feed_file_without_base_url_reports_its_dropped_links(
    offline: httpx.AsyncClient, now: datetime
) -> None:
    result = await fetch_file("relative-links.xml", offline, now)
    pipeline, calendar = result.posts
    assert (pipeline.link, calendar.link, calendar.image_url) == ("", "", "")
    assert "<img" not in pipeline.content_html
    assert "href" not in calendar.content_html
    assert result.problems == (
        "6 relative links in 2 items dropped (first: item 'Pipeline Politics'): there is no"
        ' absolute address to resolve them against; set base_url = "https://..." in'
        " [sources.sample] to the web address the feed belongs to",
    )


async def test_base_url_resolves_a_local_feed_files_relative_links(
    offline: httpx.AsyncClient, now: datetime
) -> None:
    site = "https://transmission.example.org/blog/"
    source = SourceConfig(
        id="sample", kind="feed", path=FIXTURES / "relative-links.xml", base_url=site
    )
    result = await fetch_source(source, None, client=offline, now=now)
    pipeline, calendar = result.posts
    assert result.problems == ()
    assert pipeline.link == "https://transmission.example.org/2026/11/pipeline-politics/"
    assert 'href="https://transmission.example.org/tags/energy/"' in pipeline.content_html
    image = "https://transmission.example.org/2026/11/pipeline-politics/images/pipeline.jpg"
    assert (pipeline.image_url, pipeline.image_caption) == (image, "The pipeline at the border")
    assert calendar.link == "https://transmission.example.org/2026/11/the-dictators-new-calendar/"
    assert calendar.image_url == "https://transmission.example.org/images/calendar.jpg"
    assert f'href="{calendar.link}#footnote-1"' in calendar.content_html


async def test_an_item_cut_off_where_a_broken_feed_ends_is_skipped_not_stored_twice(
    now: datetime,
) -> None:
    head = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        b"<item><title>Whole</title><link>https://x.example/whole</link>"
        b"<pubDate>Tue, 24 Nov 2026 08:00:00 GMT</pubDate></item>"
    )
    cut = await fetch_bytes(head + b"<item><title>Half an item</title><link>https://x.exa", now)
    assert [post.title for post in cut.posts] == ["Whole"]
    assert any("item 2 ('Half an item'): no link or id" in p for p in cut.problems)
    assert any("not well-formed" in p for p in cut.problems)
    fixed = await fetch_bytes(
        head + b"<item><title>Half an item</title><link>https://x.example/1</link></item>"
        b"</channel></rss>",
        now,
    )
    assert [post.title for post in fixed.posts] == ["Whole", "Half an item"]
    # An item without link or id in a well-formed feed is kept (keyed by its content).
    whole = await fetch_bytes(
        head + b"<item><title>No link</title><description>x</description></item></channel></rss>",
        now,
    )
    assert [post.title for post in whole.posts] == ["Whole", "No link"]
