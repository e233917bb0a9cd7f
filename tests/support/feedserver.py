"""A real HTTP server for feed tests: http.server on 127.0.0.1, port 0, in a thread.

    with serving({"/feed.xml": Route(body=FEED)}) as server:
        url = server.url("/feed.xml")  # http://127.0.0.1:<port>/feed.xml
    assert server.requests == ["/feed.xml"]

A route answers with its status, headers and body; an unknown path is a 404. Every
request path is recorded (``requests``), so a test can show that a refused address was
never asked. Leaving the ``with`` stops the server and joins its thread.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Route:
    body: bytes = b""
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=lambda: {"Content-Type": "text/xml"})


@dataclass
class FeedServer:
    port: int
    requests: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"


@contextmanager
def serving(routes: Mapping[str, Route]) -> Iterator[FeedServer]:
    recorded: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            recorded.append(self.path)
            route = routes.get(self.path, Route(status=404))
            self.send_response(route.status)
            for name, value in route.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            self.wfile.write(route.body)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: pytest shows what a test asserts, not an access log."""

    server = ThreadingHTTPServer((HOST, 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield FeedServer(server.server_address[1], recorded)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
