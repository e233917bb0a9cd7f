"""Read a folder source: Markdown or HTML files with YAML front matter, one post each.

This is how an editor publishes without a feed: drop ``2026-11-20-title.md`` into
the folder. Files are read in name order, not recursively; hidden files (editor
leftovers such as ``.#post.md``) are ignored. A file with a problem
is reported by name and skipped (or kept, for a missing link); a post dated after
``now`` is scheduled and not returned yet. A post's GUID is its front matter ``guid``,
else ``folder:<file name>``: never the link, so adding or fixing a link later does not
make it a new post (renaming the file does). Fields longer than digest's limits are cut
(``digest.sources.limits``) and reported.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import frontmatter
import yaml
from markdown_it import MarkdownIt

from digest.errors import SourceError
from digest.images import ImageCandidate, choose_lead, dimension, html_images
from digest.models import Post
from digest.sanitize import (
    absolute_url,
    clean_html,
    clean_identifier,
    plain_text,
)
from digest.sources.limits import MAX_ITEMS, Cuts, cap_post
from digest.sources.links import DroppedLinks, is_relative, relative_urls

SUFFIXES = (".md", ".html")


class _Skip(Exception):
    """A file that cannot become a post; the message is the problem to report."""


def read_folder(
    source_id: str, folder: Path, *, now: datetime, max_bytes: int
) -> tuple[list[Post], list[str]]:
    """Posts (in file-name order) and problems from the ``*.md``/``*.html`` files of ``folder``.

    Raises ``SourceError`` when the folder itself cannot be read. Files larger than
    ``max_bytes`` are reported and skipped.
    """
    try:
        files = sorted(
            entry
            for entry in folder.iterdir()
            if entry.suffix.lower() in SUFFIXES and not entry.name.startswith(".")
        )
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise SourceError(
            f"source '{source_id}': cannot read the folder {folder} ({reason}); "
            f"check the path in [sources.{source_id}]"
        ) from exc

    markdown = MarkdownIt("commonmark")
    posts: list[Post] = []
    problems: list[str] = []
    cuts, dropped = Cuts(), DroppedLinks()
    for path in files:
        if not path.is_file():
            continue
        try:
            post, lost = _read_post(
                path, source_id=source_id, markdown=markdown, max_bytes=max_bytes
            )
        except _Skip as skip:
            problems.append(f"file '{_name(path)}': {skip}; skipped")
            continue
        post, cut = cap_post(post)
        cuts.add(post, cut)
        dropped.add(post.title, lost)
        if not post.link:
            problems.append(f"file '{_name(path)}': no link in the front matter; left empty")
        if post.published <= now:
            posts.append(post)
    if len(posts) > MAX_ITEMS:
        # The newest, in file-name order still: a folder is an archive, oldest file first.
        cuts.items_found, cuts.kept = len(posts), "the newest"
        newest = set(sorted(range(len(posts)), key=lambda i: posts[i].published)[-MAX_ITEMS:])
        posts = [post for i, post in enumerate(posts) if i in newest]
    problems.extend(cuts.problems())
    problems.extend(
        dropped.problem("give those posts a link (their web address) in the front matter")
    )
    return posts, problems


def _read_post(
    path: Path, *, source_id: str, markdown: MarkdownIt, max_bytes: int
) -> tuple[Post, int]:
    """The post, and how many relative links it lost for want of a ``link`` to resolve them."""
    try:
        if path.stat().st_size > max_bytes:
            raise _Skip(f"larger than max_bytes = {max_bytes}")
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _Skip(f"not UTF-8 text (byte {exc.start})") from exc
    except OSError as exc:
        raise _Skip(f"cannot be read ({exc.strerror or type(exc).__name__})") from exc
    try:
        meta, body = frontmatter.parse(text)
    except (yaml.YAMLError, ValueError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _Skip(f"front matter is not valid YAML ({first_line})") from exc

    title = _plain(meta, "title")
    if not title:
        raise _Skip("no title in the front matter")
    published = _date(meta.get("date"))
    link = absolute_url(_text(meta, "link"), "")

    body_html = markdown.render(body) if path.suffix.lower() == ".md" else body
    content_html = clean_html(body_html, link)
    summary_text = _text(meta, "summary")
    # Without a summary, the digest's excerpt is made from the body.
    summary_html = clean_html(markdown.render(summary_text), link) if summary_text else ""
    # The editor's own choice of image is taken as it is; otherwise one of the body's.
    chosen = absolute_url(_text(meta, "image"), link)
    lead: ImageCandidate | None = ImageCandidate(
        chosen, dimension(meta.get("image_width")), 0, _plain(meta, "image_caption")
    )
    if not chosen:
        lead = choose_lead(html_images(body_html, link))
    lost = 0
    if not link:
        lost = relative_urls(body_html) + is_relative(_text(meta, "image"))
        lost += relative_urls(markdown.render(summary_text)) if summary_text else 0
    post = Post(
        source_id=source_id,
        guid=clean_identifier(_text(meta, "guid")) or _file_guid(path),
        title=title,
        link=link,
        published=published,
        author=_plain(meta, "author"),
        summary_html=summary_html,
        content_html=content_html,
        image_url=lead.url if lead else "",
        image_caption=lead.caption if lead else "",
        image_width=lead.width if lead else 0,
        categories=_categories(meta),
    )
    return post, lost


def _name(path: Path) -> str:
    """The file name as text; bytes of it that are not UTF-8 are written as ``\\xNN``."""
    return path.name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _file_guid(path: Path) -> str:
    return clean_identifier(f"folder:{_name(path)}")


def _text(meta: Mapping[str, Any], key: str) -> str:
    value = meta.get(key)
    if value is None or isinstance(value, (dict, list)):
        return ""
    return str(value)


def _plain(meta: Mapping[str, Any], key: str) -> str:
    """A front-matter value meant as text (not HTML), as one clean line."""
    return plain_text(html.escape(_text(meta, key), quote=False))


def _date(value: object) -> datetime:
    """A front-matter date: YAML date or datetime, or an ISO 8601 string; naive means UTC."""
    if value is None or value == "":
        raise _Skip("no date in the front matter")
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time(0, 0), tzinfo=UTC)
    else:
        try:
            moment = datetime.fromisoformat(str(value).strip())
        except ValueError as exc:
            raise _Skip(f"date {str(value)!r} is not an ISO 8601 date") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError as exc:  # e.g. 0001-01-01 00:00 +01:00 is before year 1 in UTC
        raise _Skip(f"date {str(value)!r} is out of range") from exc


def _categories(meta: Mapping[str, Any]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for key in ("categories", "tags"):
        values = meta.get(key)
        if isinstance(values, str):
            values = values.split(",")
        if isinstance(values, list):
            for value in values:
                term = plain_text(html.escape(str(value), quote=False))
                if term:
                    seen.setdefault(term, None)
    return tuple(seen)
