"""Serving the web app inside `digest run`: the listening socket and uvicorn's lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator

import uvicorn
from starlette.types import ASGIApp

from digest.errors import ConfigError


class _EmbeddedServer(uvicorn.Server):
    """uvicorn that leaves SIGINT/SIGTERM alone: `digest run` owns them and sets ``stop``."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (0 picks a free port).

    Raises ``ConfigError`` naming ``[web]`` when the address is taken or unusable, instead
    of uvicorn's ``sys.exit``.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ConfigError(f"[web] host {host!r} cannot be used: {exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"[web] cannot listen on {host}:{port} ({exc.strerror or exc}): choose another "
            "host or port in [web], or stop the program that uses it"
        ) from None
    return sock


async def serve_on(app: ASGIApp, sock: socket.socket, stop: asyncio.Event) -> None:
    """Serve ``app`` on the listening ``sock`` until ``stop`` is set, then shut down.

    In-flight requests get up to 10 seconds to finish; the socket is closed on return.
    The client address of a request is the peer's, or the ``X-Forwarded-For`` of a
    reverse proxy on this machine (uvicorn trusts ``$FORWARDED_ALLOW_IPS``, by default
    127.0.0.1): the sign-up limits per client count it.
    """
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_config=None,  # the service configures logging
        access_log=False,  # request paths carry unsubscribe tokens
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    server = _EmbeddedServer(config)
    with sock:
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            server.should_exit = True
            stopping.cancel()
            await asyncio.wait({stopping})
            await serving
