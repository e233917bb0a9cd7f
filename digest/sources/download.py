"""Get a feed's bytes with limits: HTTP(S) through httpx, or a local file.

The only outbound HTTP in digest. Every request has a User-Agent, a total
deadline, a byte cap counted on the decoded body while it streams, at most
``MAX_REDIRECTS`` redirects (http and https only) and the conditional-GET headers
of the last fetch. Unless the source allows private addresses, every hop must lead
to a public address (``digest.sources.addresses``): a numeric host is checked before
the request, and the client of ``feed_client`` checks the address each connection goes
to. Every failure becomes a ``SourceError`` naming the source.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from digest.config import SourceConfig
from digest.errors import SourceError
from digest.models import SourceState
from digest.sources.addresses import IPAddress, PrivateAddress, check, literal_address, shown

USER_AGENT = "digest/0.1 (+feed reader)"
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.8, text/xml;q=0.8, */*;q=0.5"
)
MAX_REDIRECTS = 5

Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]
"""Resolves a host name and port to the addresses to try, in order."""


@dataclass(frozen=True, slots=True)
class Download:
    """What one fetch brought back. ``url`` is the final URL after redirects."""

    body: bytes
    url: str
    etag: str = ""
    last_modified: str = ""
    content_type: str = ""
    not_modified: bool = False


async def resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses the system resolver gives for ``host``, in its order, without repeats."""
    found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(ip_address(info[4][0]) for info in found))


class PublicOnlyBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to public addresses.

    The host is resolved here, every address it resolved to is checked, and the
    connection goes to a checked address itself (TLS still verifies the host name), so
    a DNS answer cannot change between check and connection. A refused address raises
    ``PrivateAddress``. ``resolver`` and ``inner`` (the backend that opens the
    connection, httpcore's anyio one by default) are for tests.
    """

    def __init__(
        self, resolver: Resolver = resolve, inner: httpcore.AsyncNetworkBackend | None = None
    ) -> None:
        self._resolve = resolver
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await self._resolve(host, port)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host} took more than {timeout} s") from exc
        except (OSError, UnicodeError, ValueError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        if not addresses:
            raise httpcore.ConnectError(f"{host} resolves to no address")
        for address in addresses:
            check(host, address)
        failure: httpcore.ConnectError | None = None
        for address in addresses:  # the next one when one is unreachable (IPv6, then IPv4)
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _PublicOnlyTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, on a connection pool that connects through ``backend``."""

    def __init__(self, backend: httpcore.AsyncNetworkBackend) -> None:
        super().__init__()
        # httpx 0.28 takes no network backend (encode/httpx#3749 would add one), so the
        # pool it made is replaced by one built alike with the backend; pyproject pins
        # httpx below 0.29, and tests/test_download.py fails if this stops working.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=backend,
        )


def feed_client(
    *, allow_private_addresses: bool = False, backend: httpcore.AsyncNetworkBackend | None = None
) -> httpx.AsyncClient:
    """The HTTP client to ``download`` with: it connects to public addresses only, unless
    ``allow_private_addresses``. Proxy variables (``HTTPS_PROXY``...) are not used: the
    address check must see the address digest connects to. ``backend`` is for tests.
    """
    if allow_private_addresses:
        return httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(), trust_env=False)
    transport = _PublicOnlyTransport(backend or PublicOnlyBackend())
    return httpx.AsyncClient(transport=transport, trust_env=False)


def read_file(source: SourceConfig, path: Path) -> bytes:
    """Read a local file of at most ``source.max_bytes`` bytes."""
    try:
        with path.open("rb") as stream:
            data = stream.read(source.max_bytes + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise SourceError(
            f"source '{source.id}': cannot read {path} ({reason}); "
            f"check the path in [sources.{source.id}]"
        ) from exc
    if len(data) > source.max_bytes:
        raise SourceError(
            f"source '{source.id}': {path} is larger than max_bytes = {source.max_bytes}; "
            f"raise max_bytes in [sources.{source.id}] if it really is that big"
        )
    return data


async def download(
    source: SourceConfig, state: SourceState | None, *, client: httpx.AsyncClient
) -> Download:
    """GET ``source.url`` within ``source.timeout_seconds`` in total; see the module doc."""
    try:
        async with asyncio.timeout(source.timeout_seconds):
            return await _follow(source, state, client)
    except TimeoutError as exc:
        raise SourceError(
            f"source '{source.id}': {source.url} did not answer within "
            f"{source.timeout_seconds:g} s; digest will try again at the next fetch "
            f"(or raise timeout_seconds in [sources.{source.id}])"
        ) from exc
    except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, UnicodeError) as exc:
        raise SourceError(
            f"source '{source.id}': cannot fetch {source.url} ({type(exc).__name__}: {exc}); "
            f"check the url in [sources.{source.id}] and the network"
        ) from exc


def _request_headers(state: SourceState | None) -> dict[str, str]:
    headers = {"User-Agent": USER_AGENT, "Accept": ACCEPT}
    if state is not None:
        # Values come from an earlier response; anything odd in them is not worth sending.
        if state.etag and _header_safe(state.etag):
            headers["If-None-Match"] = state.etag
        if state.last_modified and _header_safe(state.last_modified):
            headers["If-Modified-Since"] = state.last_modified
    return headers


def _header_safe(value: str) -> bool:
    return value.isascii() and value.isprintable()


def _url_fault(url: str) -> str:
    """Why ``url`` cannot be fetched, or "" when it is an http(s) URL with a host.

    Checked before the request so that a malformed URL (``http://[oops``, a port out
    of range, an invalid IDNA host) is a clear ``SourceError``, not whatever
    exception urllib, httpx or the socket layer would raise for it.
    """
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError when out of range
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL) as exc:
        return f"malformed: {exc}"
    if parts.scheme.lower() not in ("http", "https"):
        return f"scheme {parts.scheme!r}" if parts.scheme else "no scheme"
    if not parts.hostname:
        return "no host"
    return ""


async def _follow(
    source: SourceConfig, state: SourceState | None, client: httpx.AsyncClient
) -> Download:
    url = source.url
    fault = _url_fault(url)
    if fault:
        raise SourceError(
            f"source '{source.id}': {url!r} is not a usable http(s) URL ({fault}); "
            f"fix the url in [sources.{source.id}] (or use path for a local file)"
        )
    headers = _request_headers(state)
    for hop in range(MAX_REDIRECTS + 1):
        try:
            if not source.allow_private_addresses:
                _check_literal_host(url)
            async with client.stream(
                "GET",
                url,
                headers=headers,
                timeout=httpx.Timeout(source.timeout_seconds),
                follow_redirects=False,
            ) as response:
                if not response.has_redirect_location:
                    return await _read_response(source, url, response)
                url = _redirect_target(source, url, response.headers["location"])
        except PrivateAddress as refused:
            raise SourceError(_refusal(source, url, refused, redirected=hop > 0)) from None
    raise SourceError(
        f"source '{source.id}': {source.url} redirected more than {MAX_REDIRECTS} times "
        f"(last to {url}); check the url in [sources.{source.id}]"
    )


def _check_literal_host(url: str) -> None:
    """Raise ``PrivateAddress`` for a URL whose host is a non-public numeric address."""
    host = urlsplit(url).hostname or ""
    address = literal_address(host)
    if address is not None:
        check(host, address)


def _refusal(source: SourceConfig, url: str, refused: PrivateAddress, *, redirected: bool) -> str:
    where = f"{source.url} redirected to {url}, which" if redirected else url
    address = f"{shown(refused.address)}, a {refused.kind} address"
    return (
        f"source '{source.id}': {where} leads to {address}: digest fetches feeds from "
        "public addresses only, so that no feed can reach this machine or its local "
        "network; if this is an intranet feed you trust, set "
        f"allow_private_addresses = true in [sources.{source.id}]"
    )


def _redirect_target(source: SourceConfig, url: str, location: str) -> str:
    try:
        target = urljoin(url, location.strip())
    except ValueError as exc:  # e.g. a malformed IPv6 host
        fault, target = f"malformed: {exc}", location
    else:
        fault = _url_fault(target)
    if fault:
        raise SourceError(
            f"source '{source.id}': {source.url} redirected to Location "
            f"{location!r}, which is not a usable http(s) URL ({fault}); "
            f"check the url in [sources.{source.id}] or tell the publisher"
        )
    return target


async def _read_response(source: SourceConfig, url: str, response: httpx.Response) -> Download:
    etag = response.headers.get("etag", "")
    last_modified = response.headers.get("last-modified", "")
    if response.status_code == httpx.codes.NOT_MODIFIED:
        return Download(b"", url, etag, last_modified, not_modified=True)
    status = response.status_code
    if not 200 <= status < 300 or status == httpx.codes.NO_CONTENT:
        if status >= 500 or status == httpx.codes.TOO_MANY_REQUESTS:
            advice = "the server has a problem; digest will try again at the next fetch"
        else:
            advice = f"check the url in [sources.{source.id}]"
        shown = source.url if url == source.url else f"{source.url} (redirected to {url})"
        raise SourceError(f"source '{source.id}': {shown} answered HTTP {status}; {advice}")
    too_big = SourceError(
        f"source '{source.id}': {source.url} sent more than max_bytes = {source.max_bytes} "
        f"bytes; raise max_bytes in [sources.{source.id}] if the feed really is that big"
    )
    declared = response.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > source.max_bytes:
        raise too_big
    chunks: list[bytes] = []
    received = 0
    async for chunk in response.aiter_bytes():
        received += len(chunk)
        if received > source.max_bytes:
            raise too_big
        chunks.append(chunk)
    return Download(
        b"".join(chunks),
        url,
        etag,
        last_modified,
        content_type=response.headers.get("content-type", ""),
    )
