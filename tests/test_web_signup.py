"""Sign-up through the web: the home page, /subscribe (also from other sites), the
confirmation link, the limits that stop a form being used to mail-bomb someone, expiry."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from digest import signup
from digest.models import SubscriptionStatus
from digest.store import SqlStore
from digest.tokens import confirm_token, unsubscribe_token

from support.edition import sample_site
from support.records import subscribe
from support.webapp import SECRET, Clock, Web, running_web, store, web

ANA = "ana@example.net"


def post(web: Web, email: str = ANA, *newsletters: str, **fields: str):  # type: ignore[no-untyped-def]
    data: dict[str, object] = {"email": email, "newsletter": list(newsletters or ["daily"])}
    return web.client.post("/subscribe", data=data | fields)


def statuses(store: SqlStore, email: str) -> dict[str, SubscriptionStatus]:
    return {
        s.newsletter_id: s.status for s in store.list_subscriptions() if s.subscriber.email == email
    }


def confirm_link(web: Web) -> str:
    (message,) = web.messages()
    (link,) = [url for url in web.links_in(message) if "/confirm/" in url]
    return link.removeprefix("https://digest.example.org")


# --- home page --------------------------------------------------------------------------------
def test_home_lists_the_public_newsletters_with_their_forms(web: Web) -> None:
    response = web.client.get("/")
    assert response.status_code == 200
    page = response.text
    assert '<h2 id="title-daily">Transmission Daily</h2>' in page
    assert "Transmission Weekly" in page
    assert "The week&#39;s analysis." in page
    assert "Staff Notes" not in page  # not public
    assert "Daily at 08:00 (Europe/Prague)" in page
    assert 'href="https://digest.example.org/archive/daily"' in page
    assert 'action="https://digest.example.org/subscribe"' in page
    assert '<label for="email-daily">Your email address</label>' in page
    assert 'id="email-daily" name="email" required autocomplete="email"' in page
    assert signup.consent_text(sample_site(), web.app.state.pages.newsletters["daily"]) in page
    assert 'class="trap" aria-hidden="true"' in page  # the honeypot
    assert "<script" not in page
    assert response.headers["x-robots-tag"] == "all"  # the home page may be found
    assert web.client.head("/").status_code == 200
    assert web.client.get("/subscribe").status_code == 405


# --- subscribe --------------------------------------------------------------------------------
def test_subscribing_records_consent_and_mails_one_plain_confirmation(
    web: Web, store: SqlStore, now: datetime
) -> None:
    response = post(web, "Ana@Example.NET")
    assert response.status_code == 200
    assert "Check your inbox" in response.text
    assert "location" not in response.headers
    assert statuses(store, ANA) == {"daily": SubscriptionStatus.PENDING}
    subscription = store.find_subscription(ANA, "daily")
    assert subscription is not None
    (consent,) = store.consents_of(subscription.subscriber.id)
    assert consent.given_at == now
    assert consent.source == "subscribe form on this site"
    assert consent.ip == "testclient"
    assert consent.text == signup.consent_text(
        sample_site(), web.app.state.pages.newsletters["daily"]
    )
    assert consent.confirmed_at is None

    (message,) = web.messages()
    assert message["To"] == ANA
    assert message["Subject"] == "Confirm your subscription to Transmission Daily"
    assert message["Auto-Submitted"] == "auto-generated"
    for header in ("List-Id", "List-Unsubscribe", "List-Unsubscribe-Post", "Precedence"):
        assert header not in message
    assert message.get_body(("html",)) is not None
    text = str(message.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    assert "Ana" not in text  # nothing the reader typed
    assert ANA not in text
    assert "The link works for 7 days." in text
    assert confirm_link(web).startswith("/confirm/")


def test_other_websites_forms_post_to_the_same_endpoint(web: Web, store: SqlStore) -> None:
    response = web.client.post(
        "/subscribe",
        data={"email": ANA, "newsletter": ["weekly", "staff", "nonesuch"]},
        headers={"Origin": "https://blog.example.com"},
    )
    assert response.status_code == 200
    assert statuses(store, ANA) == {"weekly": SubscriptionStatus.PENDING}  # the rest ignored
    subscription = store.find_subscription(ANA, "weekly")
    assert subscription is not None
    (consent,) = store.consents_of(subscription.subscriber.id)
    assert consent.source == "subscribe form on https://blog.example.com"


def test_only_public_newsletters_can_be_asked_for(web: Web, store: SqlStore) -> None:
    response = post(web, ANA, "staff")
    assert response.status_code == 400
    assert "choose a newsletter" in response.text.lower()
    assert statuses(store, ANA) == {}
    assert web.messages() == []


def test_a_bad_address_shows_the_form_again_with_the_error(web: Web, store: SqlStore) -> None:
    response = post(web, "not an address", "weekly")
    assert response.status_code == 400
    assert 'aria-invalid="true" aria-describedby="error-weekly"' in response.text
    assert "does not look like an email address" in response.text
    assert 'value="not an address"' in response.text
    assert web.messages() == []
    assert store.list_subscriptions() == []


def test_the_answer_is_the_same_for_new_pending_confirmed_and_unsubscribed(
    web: Web, store: SqlStore, now: datetime
) -> None:
    subscribe(store, "conf@example.net", now, newsletter="daily")
    subscribe(
        store, "gone@example.net", now, newsletter="daily", status=SubscriptionStatus.UNSUBSCRIBED
    )
    post(web, "pend@example.net")
    answers = [post(web, email) for email in (
        "new@example.net", "pend@example.net", "conf@example.net", "gone@example.net"
    )]  # fmt: skip
    assert {(a.status_code, a.text) for a in answers} == {(answers[0].status_code, answers[0].text)}
    assert {a.headers["content-type"] for a in answers} == {"text/html; charset=utf-8"}
    # Mailed: the new one and the one who had left (the pending one had its one already).
    assert sorted(m["To"] for m in web.messages()) == [
        "gone@example.net",
        "new@example.net",
        "pend@example.net",
    ]
    assert statuses(store, "conf@example.net") == {"daily": SubscriptionStatus.CONFIRMED}
    assert statuses(store, "gone@example.net") == {"daily": SubscriptionStatus.PENDING}


def test_a_burst_of_50_requests_for_one_address_sends_one_confirmation(
    web: Web, store: SqlStore
) -> None:
    for number in range(50):
        address = ANA if number % 2 else ANA.upper()
        assert post(web, address, "daily" if number % 3 else "weekly").status_code == 200
    assert [m["To"] for m in web.messages()] == [ANA]
    assert len(store.list_subscriptions()) == 1  # over the limit nothing is recorded either


def test_the_address_window_opens_again_after_it_ends(web: Web, now: datetime) -> None:
    post(web)
    web.clock.now = now + timedelta(hours=23)
    post(web)
    assert len(web.messages()) == 1
    web.clock.now = now + timedelta(hours=24)
    post(web)
    assert len(web.messages()) == 2


@pytest.mark.parametrize(
    "rule", [{"confirmations_per_client_hour": 3}, {"confirmations_per_hour": 3}]
)
def test_a_client_and_the_site_have_their_own_limits(
    store: SqlStore, now: datetime, tmp_path: Path, rule: dict[str, int]
) -> None:
    for limited in running_web(store, Clock(now), tmp_path / "outbox", **rule):
        for number in range(5):
            post(limited, f"r{number}@example.net")
        assert len(limited.messages()) == 3
        assert len(store.list_subscriptions()) == 3
        limited.clock.now = now + timedelta(hours=1)
        post(limited, "later@example.net")
        assert len(limited.messages()) == 4


def test_the_honeypot_takes_robots_nowhere(web: Web, store: SqlStore) -> None:
    trapped = post(web, ANA, website="http://spam.example")
    assert trapped.status_code == 200
    assert "Check your inbox" in trapped.text
    assert web.messages() == []
    assert store.list_subscriptions() == []


def test_an_address_is_one_reader_whatever_its_case(web: Web, store: SqlStore) -> None:
    post(web, "Ana@Example.net", "daily")
    post(web, "ANA@example.NET", "weekly")  # over the window: not even recorded
    subscribers = {s.subscriber.id for s in store.list_subscriptions()}
    assert len(subscribers) == 1


# --- the confirmation link --------------------------------------------------------------------
def test_opening_the_link_asks_and_only_the_button_confirms(
    web: Web, store: SqlStore, now: datetime
) -> None:
    post(web, ANA, "daily")
    link = confirm_link(web)
    for _ in range(3):
        page = web.client.get(link)
        assert page.status_code == 200
    assert web.client.head(link).status_code == 200
    assert "Confirm your subscription" in page.text
    assert "<strong>Transmission Daily</strong>" in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["x-robots-tag"] == "noindex, nofollow"
    assert statuses(store, ANA) == {"daily": SubscriptionStatus.PENDING}

    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    web.clock.now = now + timedelta(minutes=5)
    done = web.client.post(link, data={"csrf": csrf.group(1)})
    assert done.status_code == 200
    assert "location" not in done.headers
    assert "this address now receives" in done.text
    assert "/p/" in done.text  # the preferences link
    assert statuses(store, ANA) == {"daily": SubscriptionStatus.CONFIRMED}
    subscription = store.find_subscription(ANA, "daily")
    assert subscription is not None
    (consent,) = store.consents_of(subscription.subscriber.id)
    assert consent.confirmed_at == now + timedelta(minutes=5)

    again = web.client.post(link, data={"csrf": csrf.group(1)})
    assert again.status_code == 200
    assert "already receives" in again.text
    assert web.client.get(link).status_code == 200


def test_the_button_needs_the_pages_own_form(web: Web, store: SqlStore) -> None:
    post(web, ANA, "daily")
    link = confirm_link(web)
    csrf = re.search(r'name="csrf" value="([^"]+)"', web.client.get(link).text)
    assert csrf is not None
    refused = [
        web.client.post(link),
        web.client.post(link, data={"csrf": "forged"}),
        web.client.post(
            link, data={"csrf": csrf.group(1)}, headers={"Origin": "https://evil.example"}
        ),
    ]
    assert [r.status_code for r in refused] == [400, 400, 400]
    assert "nothing was changed" in refused[0].text
    assert statuses(store, ANA) == {"daily": SubscriptionStatus.PENDING}
    with_null_origin = web.client.post(
        link, data={"csrf": csrf.group(1)}, headers={"Origin": "null"}
    )
    assert with_null_origin.status_code == 200


def test_an_expired_or_altered_link_offers_a_new_one(web: Web, now: datetime) -> None:
    post(web, ANA, "daily")
    link = confirm_link(web)
    altered = link[:-6] + ("A" if link[-6] != "A" else "B") + link[-5:]
    wrong_purpose = "/confirm/" + unsubscribe_token(SECRET, "someone", "daily")
    for url in (altered, wrong_purpose, "/confirm/garbage"):
        for response in (web.client.get(url), web.client.post(url)):
            assert response.status_code == 400
            assert "This link has expired" in response.text
            assert 'action="https://digest.example.org/subscribe"' in response.text
    web.clock.now = now + timedelta(days=7, seconds=1)
    expired = web.client.get(link)
    assert expired.status_code == 400
    assert "Confirmation links work for 7 days" in expired.text


def test_a_link_for_a_reader_with_nothing_pending_offers_a_new_one(web: Web, now: datetime) -> None:
    token = confirm_token(SECRET, "no-such-reader", now)
    assert web.client.get(f"/confirm/{token}").status_code == 400


def test_unconfirmed_signups_expire(web: Web, store: SqlStore, now: datetime) -> None:
    post(web, ANA, "daily")
    rules = web.app.state.pages.rules
    assert signup.purge_expired(store, rules, now + timedelta(days=6)) == 0
    assert signup.purge_expired(store, rules, now + timedelta(days=7, seconds=1)) == 1
    assert store.list_subscriptions() == []


__all__ = ["store", "web"]  # fixtures
