"""Stand-in pictures for a digest shown in a browser: no image is fetched from the network.

``serve_pictures(page)`` answers every request of a page: an image URL with a PNG of the
size its name or query declares (``...-400.png``, ``?w=600&h=400``, else 1200x800), and
anything else with 404, so a test or a screenshot never reaches outside the machine.
"""

from __future__ import annotations

import re
import struct
import zlib
from functools import lru_cache
from urllib.parse import parse_qs, urlsplit

from playwright.async_api import Page, Route

_SIZE_IN_NAME = re.compile(r"-(\d{2,4})\.(?:png|jpe?g|gif|webp)$")
_IMAGE = re.compile(r"\.(?:png|jpe?g|gif|webp)$|/img/|/images/|/photos/", re.IGNORECASE)


@lru_cache(maxsize=16)
def picture(width: int, height: int) -> bytes:
    """A PNG of ``width`` x ``height``: a sky-to-sea gradient, so it reads as a photo."""
    rows = []
    for y in range(height):
        shade = y * 255 // max(1, height - 1)
        pixel = bytes((40 + shade // 3, 90 + shade // 4, 160 - shade // 3))
        rows.append(b"\x00" + pixel * width)
    raw = zlib.compress(b"".join(rows), 6)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def picture_size(url: str) -> tuple[int, int]:
    """The size a picture URL declares (query w/h, or a width in its name), else 1200x800."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    if "w" in query and "h" in query and query["w"][0].isdigit() and query["h"][0].isdigit():
        return int(query["w"][0]), int(query["h"][0])
    found = _SIZE_IN_NAME.search(parts.path)
    if found:
        width = int(found[1])
        return width, width * 2 // 3
    return 1200, 800


async def serve_pictures(page: Page) -> None:
    """Answer the page's requests locally: pictures for image URLs, 404 for the rest."""

    async def answer(route: Route) -> None:
        url = route.request.url
        if route.request.resource_type == "image" or _IMAGE.search(urlsplit(url).path):
            width, height = picture_size(url)
            await route.fulfill(status=200, content_type="image/png", body=picture(width, height))
        else:
            await route.fulfill(status=404, body=b"")

    await page.route("**/*", answer)
