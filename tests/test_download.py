"""The feed client refuses loopback and private addresses: in the URL, at connect time, on
redirects; a source that allows private addresses fetches them. A real HTTP server on
127.0.0.1 plays the sites; nothing goes beyond this machine."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from ipaddress import ip_address
from pathlib import Path

import httpcore
import pytest

from digest.config import SourceConfig
from digest.errors import SourceError
from digest.sources import feed_client, fetch_source
from digest.sources.addresses import IPAddress, PrivateAddress
from digest.sources.download import PublicOnlyBackend

from support.feedserver import Route, serving

FEEDS = Path(__file__).parent / "fixtures" / "feeds"
INTERNAL = (Path(__file__).parent / "fixtures" / "ssrf" / "internal.xml").read_bytes()
PUBLIC = (FEEDS / "rss20.xml").read_bytes()
ALLOW_HINT = r"set allow_private_addresses = true in \[sources\.feed\]"

# A pretend DNS: the public names resolve to a public address, the others do not.
DNS = {
    "feeds.example": ["93.184.215.14"],
    "intranet.example": ["10.1.2.3"],
    "rebound.example": ["127.0.0.1"],  # a public-looking name whose answer is loopback
    "mixed.example": ["93.184.215.14", "192.168.0.7"],
}


def source(url: str, **more: object) -> SourceConfig:
    return SourceConfig(id="feed", kind="feed", url=url, timeout_seconds=5, **more)  # type: ignore[arg-type]


async def fake_dns(host: str, port: int) -> list[IPAddress]:
    return [ip_address(address) for address in DNS[host]]


class ToLocalServer(httpcore.AsyncNetworkBackend):
    """The internet of this test: every connection, to whatever address, reaches the server."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.addresses: list[str] = []
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.addresses.append(host)
        return await self._backend.connect_tcp("127.0.0.1", self.port, timeout=timeout)


async def fetch_through(
    routes: Mapping[str, Route], url: str, now: datetime
) -> tuple[list[str], list[str], SourceError | None]:
    """Fetch ``url`` with the pretend DNS; the requests the server saw, the addresses
    connected to and the refusal (if any)."""
    with serving(routes) as server:
        internet = ToLocalServer(server.port)
        backend = PublicOnlyBackend(resolver=fake_dns, inner=internet)
        async with feed_client(backend=backend) as client:
            try:
                await fetch_source(source(url), None, client=client, now=now)
            except SourceError as exc:
                return server.requests, internet.addresses, exc
    return server.requests, internet.addresses, None


@pytest.mark.parametrize(
    ("url", "address", "kind"),
    [
        ("http://127.0.0.1/feed.xml", "127.0.0.1", "loopback"),
        ("http://localhost:8080/feed.xml", "127.0.0.1", "loopback"),
        ("http://2130706433/feed.xml", "127.0.0.1", "loopback"),
        ("http://0x7f000001/feed.xml", "127.0.0.1", "loopback"),
        ("http://127.1/feed.xml", "127.0.0.1", "loopback"),
        ("http://[::1]/feed.xml", "::1", "loopback"),
        ("http://[::ffff:127.0.0.1]/feed.xml", "::ffff:127.0.0.1", "loopback"),
        ("http://10.0.0.1/feed.xml", "10.0.0.1", "private"),
        ("http://172.16.5.4/feed.xml", "172.16.5.4", "private"),
        ("http://192.168.1.1/feed.xml", "192.168.1.1", "private"),
        ("http://[fd00::1]/feed.xml", "fd00::1", "private"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254", "link-local"),
        ("http://[fe80::1]/feed.xml", "fe80::1", "link-local"),
        ("https://0.0.0.0/feed.xml", "0.0.0.0", "unspecified"),
    ],
)
async def test_a_feed_url_at_a_private_address_is_refused(
    url: str, address: str, kind: str, now: datetime
) -> None:
    # The real client: each of these is refused before any connection is tried.
    async with feed_client() as client:
        with pytest.raises(SourceError) as refused:
            await fetch_source(source(url), None, client=client, now=now)
    message = str(refused.value)
    assert message.startswith(f"source 'feed': {url} leads to {address}, a {kind} address")
    assert "public addresses only" in message
    assert message.endswith("set allow_private_addresses = true in [sources.feed]")


async def test_a_source_that_allows_private_addresses_fetches_them(now: datetime) -> None:
    with serving({"/status.xml": Route(INTERNAL)}) as server:
        url = server.url("/status.xml")
        async with feed_client() as client:
            with pytest.raises(SourceError, match=ALLOW_HINT):
                await fetch_source(source(url), None, client=client, now=now)
        assert server.requests == []  # refused before anything was asked

        intranet = source(url, allow_private_addresses=True)
        async with feed_client(allow_private_addresses=True) as client:
            result = await fetch_source(intranet, None, client=client, now=now)
    assert [post.title for post in result.posts] == ["Internal: database password rotated"]
    assert server.requests == ["/status.xml"]


async def test_a_name_that_resolves_to_a_private_address_is_refused_at_connect(
    now: datetime,
) -> None:
    routes = {"/status.xml": Route(INTERNAL)}
    for host, address in (("rebound.example", "127.0.0.1"), ("mixed.example", "192.168.0.7")):
        requests, connected, refused = await fetch_through(routes, f"http://{host}/status.xml", now)
        assert (requests, connected) == ([], [])  # no connection was even opened
        assert refused is not None
        expected = f"source 'feed': http://{host}/status.xml leads to {address}"
        assert str(refused).startswith(expected)


async def test_a_public_name_is_fetched_at_the_address_that_was_checked(now: datetime) -> None:
    requests, connected, refused = await fetch_through(
        {"/feed.xml": Route(PUBLIC)}, "http://feeds.example/feed.xml", now
    )
    assert refused is None
    assert (requests, connected) == (["/feed.xml"], ["93.184.215.14"])


@pytest.mark.parametrize(
    ("location", "address"),
    [
        ("http://intranet.example/status.xml", "10.1.2.3"),  # refused at connect
        ("http://rebound.example/status.xml", "127.0.0.1"),
        ("http://127.0.0.1/status.xml", "127.0.0.1"),  # refused before the request
        ("http://2130706433/status.xml", "127.0.0.1"),
        ("http://[::1]/status.xml", "::1"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
    ],
)
async def test_a_redirect_to_a_private_address_is_refused(
    location: str, address: str, now: datetime
) -> None:
    routes = {
        "/feed.xml": Route(status=302, headers={"Location": "/moved.xml"}),
        "/moved.xml": Route(status=301, headers={"Location": location}),
        "/status.xml": Route(INTERNAL),
        "/latest/meta-data/": Route(INTERNAL),
    }
    requests, connected, refused = await fetch_through(routes, "http://feeds.example/feed.xml", now)
    assert requests == ["/feed.xml", "/moved.xml"]  # the private one was never asked
    assert connected == ["93.184.215.14"] * 2  # both hops at the checked public address
    assert refused is not None
    assert str(refused).startswith(
        f"source 'feed': http://feeds.example/feed.xml redirected to {location}, which leads"
        f" to {address}"
    )
    assert str(refused).endswith("set allow_private_addresses = true in [sources.feed]")


async def test_the_system_resolver_is_checked_too() -> None:
    with serving({}) as server:
        with pytest.raises(PrivateAddress, match=r"localhost is 127\.0\.0\.1, a loopback address"):
            await PublicOnlyBackend().connect_tcp("localhost", server.port, timeout=5)
        assert server.requests == []
