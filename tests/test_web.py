"""The web app against a real, migrated SQLite store: unsubscribe (GET asks, POST acts),
RFC 8058 one-click, archive, health check, error pages, headers, and a real uvicorn."""

from __future__ import annotations

import asyncio
import re
import warnings
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.exceptions import StarletteDeprecationWarning

from digest.errors import ConfigError
from digest.models import Rendered, Subscription, SubscriptionStatus
from digest.store import SqlStore, create_engine_for
from digest.tokens import Keys, unsubscribe_token
from digest.web import ARCHIVE_CSP, create_web_app, listen, mask_email, serve_on

from support.databases import migrated_engine, sqlite_url
from support.edition import sample_newsletter, sample_site
from support.records import open_for_all, subscribe

# Starlette 1.10's TestClient wants the httpx2 package and warns once, on import, when it
# falls back to httpx (which the project has). Only that warning is silenced, only here.
with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore", "Using `httpx` with `starlette.testclient`", StarletteDeprecationWarning
    )
    from starlette.testclient import TestClient

SECRET = b"web-test-secret-0123456789abcdef"
TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates" / "web"
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    with migrated_engine("sqlite", tmp_path) as engine:
        yield SqlStore(engine)


def build_app(store: SqlStore, now: datetime, **newsletter: str) -> Starlette:
    return create_web_app(
        store=store,
        secret=SECRET,
        site=sample_site(),
        newsletters={"daily": sample_newsletter(**newsletter)},
        templates_dir=TEMPLATES_DIR,
        clock=lambda: now,
    )


@pytest.fixture
def client(store: SqlStore, now: datetime) -> Iterator[TestClient]:
    with TestClient(build_app(store, now), follow_redirects=False) as client:
        yield client


@pytest.fixture
def reader(store: SqlStore, now: datetime) -> Subscription:
    subscription, _ = store.add_subscription(
        email="bob@example.org",
        ascii_email="bob@example.org",
        newsletter_id="daily",
        status=SubscriptionStatus.CONFIRMED,
        now=now,
    )
    return subscription


@pytest.fixture
def url(reader: Subscription) -> str:
    return f"/u/{unsubscribe_token(SECRET, reader.subscriber.id, 'daily')}"


def status_of(store: SqlStore, reader: Subscription) -> SubscriptionStatus:
    (subscription,) = [
        s for s in store.list_subscriptions("daily") if s.subscriber.id == reader.subscriber.id
    ]
    return subscription.status


def multipart_one_click() -> tuple[bytes, dict[str, str]]:
    """The body Gmail sends: multipart/form-data with the one field and no file."""
    boundary = "----digestboundary7MA4YWxk"
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
        f"One-Click\r\n--{boundary}--\r\n"
    ).encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


# --- GET asks, never acts ---------------------------------------------------------------
def test_get_shows_a_button_and_changes_nothing(
    client: TestClient, store: SqlStore, reader: Subscription, url: str
) -> None:
    for _ in range(3):  # scanners and previews fetch links, sometimes repeatedly
        response = client.get(url)
        assert response.status_code == 200
    assert client.head(url).status_code == 200
    page = response.text
    assert response.headers["content-type"].startswith("text/html")
    assert '<form method="post">' in page
    assert '<button type="submit">Unsubscribe</button>' in page
    assert "b***@example.org" in page
    assert "bob@example.org" not in page
    assert "Transmission Daily" in page
    assert "Transmission" in page.split("<main", 1)[0]  # site name in the header
    assert "Vinohradská 159a" in page.split("<footer>", 1)[1]  # postal address in the footer
    assert response.headers["cache-control"] == "no-store"
    assert status_of(store, reader) is SubscriptionStatus.CONFIRMED


# --- POST acts: RFC 8058 one-click and the button -----------------------------------------
def test_one_click_urlencoded_unsubscribes_with_200_and_no_redirect(
    client: TestClient, store: SqlStore, reader: Subscription, url: str, now: datetime
) -> None:
    response = client.post(url, data=ONE_CLICK)
    assert response.status_code == 200
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "Unsubscribed from Transmission Daily.\n"
    assert not response.cookies
    assert status_of(store, reader) is SubscriptionStatus.UNSUBSCRIBED
    (subscription,) = store.list_subscriptions("daily")
    assert subscription.changed_at == now


def test_one_click_for_a_reader_removed_from_the_list_still_answers_200(
    client: TestClient, store: SqlStore, reader: Subscription, url: str, now: datetime
) -> None:
    store.remove_subscriber(reader.subscriber.email, "key", now)
    response = client.post(url, data=ONE_CLICK)
    assert response.status_code == 200
    assert "location" not in response.headers
    assert response.text.startswith("Not on the list of Transmission Daily")
    page = client.post(url)  # the page's own button: the friendly page that says so
    assert page.status_code == 404
    assert "removed from our list" in page.text


def test_one_click_multipart_unsubscribes(
    client: TestClient, store: SqlStore, reader: Subscription, url: str
) -> None:
    body, headers = multipart_one_click()
    response = client.post(url, content=body, headers=headers)
    assert response.status_code == 200
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/plain")
    assert status_of(store, reader) is SubscriptionStatus.UNSUBSCRIBED


def test_second_post_answers_200_again(
    client: TestClient, store: SqlStore, reader: Subscription, url: str
) -> None:
    body, headers = multipart_one_click()
    first = client.post(url, data=ONE_CLICK)
    second = client.post(url, content=body, headers=headers)
    third = client.post(url)  # and the button, after the fact
    assert [r.status_code for r in (first, second, third)] == [200, 200, 200]
    assert "You're unsubscribed from Transmission Daily" in third.text
    assert status_of(store, reader) is SubscriptionStatus.UNSUBSCRIBED


def test_button_post_shows_the_unsubscribed_page(
    client: TestClient, store: SqlStore, reader: Subscription, url: str
) -> None:
    # The page's form has no named field: the browser posts an empty urlencoded body.
    response = client.post(
        url, content=b"", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 200
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert "You're unsubscribed from Transmission Daily" in response.text
    assert "b***@example.org" in response.text
    assert "mailto:digest@example.org" in response.text
    assert response.headers["cache-control"] == "no-store"
    assert status_of(store, reader) is SubscriptionStatus.UNSUBSCRIBED


def test_unsubscribing_one_newsletter_leaves_the_others(
    client: TestClient, store: SqlStore, reader: Subscription, url: str, now: datetime
) -> None:
    store.add_subscription(
        email="bob@example.org",
        ascii_email="bob@example.org",
        newsletter_id="weekly",
        status=SubscriptionStatus.CONFIRMED,
        now=now,
    )
    assert client.post(url, data=ONE_CLICK).status_code == 200
    (weekly,) = store.list_subscriptions("weekly")
    assert weekly.status is SubscriptionStatus.CONFIRMED


# --- bad links ------------------------------------------------------------------------------
def tampered(url: str) -> str:
    # A middle character of the MAC: the last one carries padding bits the decoder ignores.
    index = len(url) - 8
    return url[:index] + ("A" if url[index] != "A" else "B") + url[index + 1 :]


def test_tampered_token_gets_a_readable_400_and_changes_nothing(
    client: TestClient, store: SqlStore, reader: Subscription, url: str
) -> None:
    for response in (client.get(tampered(url)), client.post(tampered(url), data=ONE_CLICK)):
        assert response.status_code == 400
        assert response.headers["content-type"].startswith("text/html")
        assert "This link does not work" in response.text
        assert "This link is not valid" in response.text
        assert "copy the whole link" in response.text
        assert "Traceback" not in response.text
    assert status_of(store, reader) is SubscriptionStatus.CONFIRMED


def test_truncated_token_says_to_copy_the_whole_link(client: TestClient, url: str) -> None:
    response = client.get(url.partition(".")[0])
    assert response.status_code == 400
    assert "copy the whole link from the email" in response.text


def test_token_of_an_unknown_reader_is_404_but_one_click_is_answered_200(
    client: TestClient,
) -> None:
    # Only real readers get signed links: an unknown one was removed. The page says so;
    # the one-click POST is acknowledged (idempotent: the address gets nothing more).
    url = f"/u/{unsubscribe_token(SECRET, 'no-such-reader', 'daily')}"
    for response in (client.get(url), client.post(url)):
        assert response.status_code == 404
        assert "no more emails" in response.text
    one_click = client.post(url, data=ONE_CLICK)
    assert one_click.status_code == 200
    assert "no more emails will come" in one_click.text


def test_token_for_a_newsletter_the_reader_is_not_on(
    client: TestClient, reader: Subscription
) -> None:
    url = f"/u/{unsubscribe_token(SECRET, reader.subscriber.id, 'weekly')}"
    assert client.post(url).status_code == 404
    assert client.post(url, data=ONE_CLICK).status_code == 200


def test_multipart_with_a_file_is_refused(client: TestClient, url: str) -> None:
    response = client.post(url, files={"upload": ("x.txt", b"x")})
    assert response.status_code == 400
    assert response.headers["x-content-type-options"] == "nosniff"


def test_oversized_body_is_refused(client: TestClient, store: SqlStore, url: str) -> None:
    response = client.post(url, content=b"a=" + b"x" * 100_000)
    assert response.status_code == 413


# --- archive ----------------------------------------------------------------------------------
def test_archive_of_an_unknown_edition_is_404(client: TestClient) -> None:
    response = client.get("/e/no-such-edition")
    assert response.status_code == 404
    assert "no archived edition" in response.text


def test_archive_shows_the_edition_without_a_reader_link(
    client: TestClient, store: SqlStore, now: datetime
) -> None:
    html = '<html><body><p>Hello</p><a href="%%UNSUBSCRIBE_URL%%">Unsubscribe</a></body></html>'
    subscribe(store, "reader@example.org", now, newsletter="daily")
    opened = open_for_all(
        store,
        newsletter_id="daily",
        period_key="2026-11-27",
        now=now,
        post_keys=("k1",),
        rendered=Rendered("Hello", html, "Hello\n"),
        message_id=lambda sid: f"<{sid}@example.org>",
        edition_id="ed-1",
        no_readers="",
    )
    assert opened is not None
    response = client.get("/e/ed-1")
    assert response.status_code == 200
    assert "<p>Hello</p>" in response.text
    assert "%%UNSUBSCRIBE_URL%%" not in response.text
    assert '<a href="#">Unsubscribe</a>' in response.text
    assert response.headers["content-security-policy"] == ARCHIVE_CSP
    assert response.headers["referrer-policy"] == "no-referrer"
    assert client.get("/e/ed-1.0").status_code == 404  # variant 0 has one spelling: /e/ed-1
    assert client.get("/e/ed-1.1").status_code == 404  # no second variant
    assert client.get("/e/ed-1.x").status_code == 404


# --- health and failures of the store -------------------------------------------------------
def test_healthz_answers_ok(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.text == "ok"


def test_unmigrated_store_gives_503_without_leaking_the_database(
    tmp_path: Path, now: datetime
) -> None:
    engine = create_engine_for(sqlite_url(tmp_path, "empty.db"))  # real file, no schema
    try:
        app = build_app(SqlStore(engine), now)
        with TestClient(app) as client:
            health = client.get("/healthz")
            page = client.get("/e/some-edition")
    finally:
        engine.dispose()
    assert health.status_code == 503
    assert health.text == "store unavailable"
    assert page.status_code == 503
    assert page.headers["retry-after"] == "60"
    assert "try again in a few minutes" in page.text
    assert "empty.db" not in page.text
    assert "sqlite" not in page.text.lower()


# --- pages: headers, escaping, unknown routes ----------------------------------------------
def test_security_headers_and_the_one_stylesheet(client: TestClient, url: str) -> None:
    response = client.get(url)
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-robots-tag"] == "noindex, nofollow"
    assert headers["x-frame-options"] == "DENY"
    csp = headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "style-src 'self' https://digest.example.org;" in csp
    assert "script-src" not in csp  # falls back to default-src 'none'
    assert '<link rel="stylesheet" href="https://digest.example.org/site.css">' in response.text
    assert "<style" not in response.text
    assert "<script" not in response.text
    css = client.get("/site.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert ":focus-visible" in css.text


def test_every_answer_carries_the_headers(client: TestClient) -> None:
    for response in (client.get("/healthz"), client.get("/nothing/here"), client.put("/healthz")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "default-src 'none'" in response.headers["content-security-policy"]
    missing = client.get("/nothing/here")
    assert missing.status_code == 404
    assert "There is no page at this address" in missing.text
    wrong_method = client.put("/healthz")
    assert wrong_method.status_code == 405
    assert "GET" in wrong_method.headers["allow"]


def test_titles_are_escaped(store: SqlStore, now: datetime, url: str) -> None:
    app = build_app(store, now, title='<script>alert("x")</script> & Co')
    with TestClient(app) as client:
        page = client.get(url).text
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert "&amp; Co" in page


def test_missing_templates_are_a_config_error(store: SqlStore, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="web templates"):
        create_web_app(
            store=store,
            secret=SECRET,
            site=sample_site(),
            newsletters={},
            templates_dir=tmp_path / "nowhere",
            clock=lambda: datetime.now().astimezone(),
        )


@pytest.mark.parametrize(
    ("email", "shown"),
    [
        ("bob@example.org", "b***@example.org"),
        ("b@example.org", "b***@example.org"),
        ("jürgen@bücher.example", "j***@bücher.example"),
        ("not-an-address", "***"),
    ],
)
def test_mask_email(email: str, shown: str) -> None:
    assert mask_email(email) == shown


# --- a real server ----------------------------------------------------------------------------
async def test_one_click_over_a_real_uvicorn_server(
    store: SqlStore, reader: Subscription, url: str, now: datetime
) -> None:
    sock = listen("127.0.0.1", 0)
    port = sock.getsockname()[1]
    stop = asyncio.Event()
    server = asyncio.create_task(serve_on(build_app(store, now), sock, stop))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            response = await client.post(url, data=ONE_CLICK)
    finally:
        stop.set()
        await asyncio.wait_for(server, timeout=5)
    assert response.status_code == 200
    assert "location" not in response.headers
    assert "server" not in response.headers
    assert status_of(store, reader) is SubscriptionStatus.UNSUBSCRIBED
    assert sock.fileno() == -1  # closed on shutdown


def test_listen_on_a_taken_port_is_a_config_error() -> None:
    with listen("127.0.0.1", 0) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"\[web\] cannot listen on 127.0.0.1:{port}"):
            listen("127.0.0.1", port)


# --- key rotation -----------------------------------------------------------------------------
def test_links_signed_with_a_previous_key_still_unsubscribe(
    store: SqlStore, reader: Subscription, now: datetime
) -> None:
    old = b"the-previous-key-0123456789abcdef"
    url = f"/u/{unsubscribe_token(old, reader.subscriber.id, 'daily')}"
    rotated = create_web_app(
        store=store,
        secret=Keys(SECRET, (old,)),
        site=sample_site(),
        newsletters={"daily": sample_newsletter()},
        templates_dir=TEMPLATES_DIR,
        clock=lambda: now,
    )
    with TestClient(rotated) as client:
        assert client.get(url).status_code == 200
        unknown = f"/u/{unsubscribe_token(b'x' * 32, reader.subscriber.id, 'daily')}"
        assert client.post(unknown, data=ONE_CLICK).status_code == 400
        assert status_of(store, reader) is SubscriptionStatus.CONFIRMED
        assert client.post(url, data=ONE_CLICK).status_code == 200
    assert status_of(store, reader) is SubscriptionStatus.UNSUBSCRIBED


# --- the result page: unsubscribe from all, resubscribe ---------------------------------------
def form_of(page: str, action: str) -> dict[str, str]:
    match = re.search(
        rf'<form method="post" action="https://digest\.example\.org(/u/[^"]+/{action})">\s*'
        r'<input type="hidden" name="csrf" value="([^"]+)">',
        page,
    )
    assert match is not None, page
    return {"path": match.group(1), "csrf": match.group(2)}


def test_an_empty_body_post_unsubscribes_with_200_and_no_redirect(
    client: TestClient, store: SqlStore, reader: Subscription, url: str
) -> None:
    response = client.post(url, content=b"")
    assert response.status_code == 200
    assert "location" not in response.headers
    assert status_of(store, reader) is SubscriptionStatus.UNSUBSCRIBED


def test_the_result_page_leaves_everything_or_comes_back(
    client: TestClient, store: SqlStore, reader: Subscription, url: str, now: datetime
) -> None:
    subscribe(store, "bob@example.org", now, newsletter="weekly")
    page = client.post(url).text
    assert "You still receive weekly." in page
    assert "/p/" in page  # the preferences link
    everything = form_of(page, "all")
    back = form_of(page, "resubscribe")
    assert client.get(everything["path"]).status_code == 405  # GET never acts
    refused = client.post(everything["path"], data={"csrf": back["csrf"]})
    assert refused.status_code == 400  # a value made for the other form
    (weekly,) = store.list_subscriptions("weekly")
    assert weekly.status is SubscriptionStatus.CONFIRMED

    left = client.post(everything["path"], data={"csrf": everything["csrf"]})
    assert left.status_code == 200
    assert "unsubscribed from everything" in left.text
    (weekly,) = store.list_subscriptions("weekly")
    assert weekly.status is SubscriptionStatus.UNSUBSCRIBED

    again = client.post(back["path"], data={"csrf": back["csrf"]})
    assert again.status_code == 200
    assert "You're subscribed again" in again.text
    assert status_of(store, reader) is SubscriptionStatus.CONFIRMED
    (weekly,) = store.list_subscriptions("weekly")
    assert weekly.status is SubscriptionStatus.UNSUBSCRIBED  # only the link's newsletter
    (consent,) = store.consents_of(reader.subscriber.id)
    assert consent.source == "resubscribe button of the unsubscribe page"
    assert consent.confirmed_at == now
    assert client.post(back["path"], data={"csrf": back["csrf"]}).status_code == 200  # idempotent


def test_the_link_opened_again_after_leaving_says_so_and_offers_the_way_back(
    client: TestClient, store: SqlStore, reader: Subscription, url: str
) -> None:
    assert client.post(url).status_code == 200
    for _ in range(2):  # GET still changes nothing
        again = client.get(url)
        assert again.status_code == 200
        assert status_of(store, reader) is SubscriptionStatus.UNSUBSCRIBED
    page = again.text
    assert "You're already unsubscribed from Transmission Daily" in page
    assert "Unsubscribe from Transmission Daily?" not in page
    assert '<button type="submit">Unsubscribe</button>' not in page
    assert "/p/" in page  # the preferences link
    back = form_of(page, "resubscribe")
    assert client.post(back["path"], data={"csrf": back["csrf"]}).status_code == 200
    assert status_of(store, reader) is SubscriptionStatus.CONFIRMED
    assert "Unsubscribe from Transmission Daily?" in client.get(url).text  # on the list again
