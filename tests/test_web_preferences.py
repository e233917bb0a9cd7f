"""The preference center: a reader's personal page of newsletters, topics and cadence, and
a change of address confirmed at the new address."""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime, timedelta

import pytest

from digest.config import CadenceConfig, ScheduleConfig
from digest.models import SubscriptionStatus
from digest.store import SqlStore
from digest.tokens import preferences_token, unsubscribe_token
from digest.web import reconfigure_web

from support.edition import sample_site
from support.records import subscribe
from support.webapp import SECRET, Web, newsletters, store, web

ANA = "ana@example.net"


@pytest.fixture
def reader(store: SqlStore, now: datetime) -> str:
    subscriber_id, _ = subscribe(store, ANA, now, newsletter="weekly")
    subscribe(store, ANA, now, newsletter="staff")  # not public, but hers
    return subscriber_id


def url_of(reader: str) -> str:
    return f"/p/{preferences_token(SECRET, reader)}"


def csrf_of(page: str, action: str) -> str:
    match = re.search(
        rf'action="https://digest\.example\.org{re.escape(action)}">\s*'
        r'<input type="hidden" name="csrf" value="([^"]+)">',
        page,
    )
    assert match is not None, page
    return match.group(1)


def subscriptions(store: SqlStore, reader: str) -> dict[str, tuple[str, str | None, object]]:
    return {
        s.newsletter_id: (s.status, s.cadence, s.topics) for s in store.subscriptions_of(reader)
    }


def test_the_page_shows_every_choice_and_changes_nothing(
    web: Web, store: SqlStore, reader: str
) -> None:
    before = subscriptions(store, reader)
    for _ in range(2):
        page = web.client.get(url_of(reader))
        assert page.status_code == 200
    assert web.client.head(url_of(reader)).status_code == 200
    assert subscriptions(store, reader) == before
    text = page.text
    assert "a***@example.net" in text
    assert ANA not in text
    assert "<legend>Transmission Weekly</legend>" in text
    assert "<legend>Staff Notes</legend>" in text  # hers, though not public
    assert "<legend>Transmission Daily</legend>" in text  # public: offered
    assert 'id="receive-weekly" name="receive" value="weekly" checked' in text
    assert 'id="receive-daily" name="receive" value="daily">' in text
    assert 'name="cadence-weekly" value="weekly" checked' in text
    assert '<label for="topic-weekly-asia">Central Asia</label>' in text
    assert 'name="topic-weekly" value="europe" checked' in text
    assert '<label for="new-email">New email address</label>' in text
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["x-robots-tag"] == "noindex, nofollow"


def test_saving_joins_leaves_and_stores_topics_and_cadence(
    web: Web, store: SqlStore, reader: str, now: datetime
) -> None:
    url = url_of(reader)
    csrf = csrf_of(web.client.get(url).text, url)
    form = {
        "csrf": csrf,
        "offered": ["weekly", "staff", "daily", "nonesuch"],
        "receive": ["weekly", "daily", "nonesuch"],
        "cadence-weekly": "monthly",
        "topics-weekly": "shown",
        "topic-weekly": ["asia", "made-up"],
    }
    saved = web.client.post(url, data=form)
    assert saved.status_code == 200
    assert "location" not in saved.headers
    assert "Saved." in saved.text
    assert subscriptions(store, reader) == {
        "daily": ("confirmed", None, None),
        "staff": ("unsubscribed", None, None),
        "weekly": ("confirmed", "monthly", ("asia",)),
    }
    (consent,) = store.consents_of(reader)
    assert (consent.newsletter_id, consent.source, consent.confirmed_at) == (
        "daily",
        "preference page",
        now,
    )
    # Every topic again: stored as "all" (None), so topics added later come too.
    form |= {"topic-weekly": ["asia", "europe"], "cadence-weekly": "weekly"}
    web.client.post(url, data=form)
    assert subscriptions(store, reader)["weekly"] == ("confirmed", "weekly", None)


def test_the_form_needs_its_own_anti_forgery_value(web: Web, store: SqlStore, reader: str) -> None:
    url = url_of(reader)
    before = subscriptions(store, reader)
    other = csrf_of(web.client.get(url).text, url + "/address")
    for data in ({"offered": "weekly"}, {"offered": "weekly", "csrf": other}):
        assert web.client.post(url, data=data).status_code == 400
    assert subscriptions(store, reader) == before


def test_a_preferences_token_works_only_for_its_purpose(web: Web, reader: str) -> None:
    wrong = f"/p/{unsubscribe_token(SECRET, reader, 'weekly')}"
    assert web.client.get(wrong).status_code == 400
    assert web.client.get(f"/p/{preferences_token(SECRET, 'nobody')}").status_code == 404


def test_a_new_address_is_confirmed_there_before_anything_moves(
    web: Web, store: SqlStore, reader: str, now: datetime
) -> None:
    url = url_of(reader)
    csrf = csrf_of(web.client.get(url).text, url + "/address")
    asked = web.client.post(url + "/address", data={"csrf": csrf, "email": "Ana@New.example"})
    assert asked.status_code == 200
    assert "We sent a link to the new address" in asked.text
    (message,) = web.messages()
    assert message["To"] == "ana@new.example"
    assert "List-Unsubscribe" not in message
    assert store.get_subscriber(reader).email == ANA  # the old address keeps receiving
    (link,) = [u for u in web.links_in(message) if "/address/" in u]
    path = link.removeprefix("https://digest.example.org")

    page = web.client.get(path)
    assert page.status_code == 200
    assert "a***@new.example" in page.text
    assert store.get_subscriber(reader).email == ANA
    button = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert button is not None
    assert web.client.post(path).status_code == 400  # without the page's form
    moved = web.client.post(path, data={"csrf": button.group(1)})
    assert moved.status_code == 200
    assert "Address changed" in moved.text
    assert store.get_subscriber(reader).email == "ana@new.example"
    assert subscriptions(store, reader)["weekly"][0] == SubscriptionStatus.CONFIRMED

    web.clock.now = now + timedelta(days=8)
    assert web.client.get(path).status_code == 400  # the link expired


def test_a_bad_or_taken_new_address(web: Web, store: SqlStore, reader: str, now: datetime) -> None:
    url = url_of(reader)
    csrf = csrf_of(web.client.get(url).text, url + "/address")
    bad = web.client.post(url + "/address", data={"csrf": csrf, "email": "nope"})
    assert bad.status_code == 400
    assert 'aria-invalid="true"' in bad.text
    subscribe(store, "bob@example.net", now, newsletter="daily")
    web.client.post(url + "/address", data={"csrf": csrf, "email": "bob@example.net"})
    (message,) = web.messages()
    (link,) = [u for u in web.links_in(message) if "/address/" in u]
    path = link.removeprefix("https://digest.example.org")
    button = re.search(r'name="csrf" value="([^"]+)"', web.client.get(path).text)
    assert button is not None
    taken = web.client.post(path, data={"csrf": button.group(1)})
    assert taken.status_code == 409
    assert store.get_subscriber(reader).email == ANA


def test_address_changes_share_the_confirmation_limits(web: Web, reader: str) -> None:
    url = url_of(reader)
    csrf = csrf_of(web.client.get(url).text, url + "/address")
    for _ in range(5):
        web.client.post(url + "/address", data={"csrf": csrf, "email": "new@example.net"})
    web.client.post("/subscribe", data={"email": "new@example.net", "newsletter": "daily"})
    assert [m["To"] for m in web.messages()] == ["new@example.net"]


__all__ = ["store", "web"]  # fixtures


def test_a_reader_sets_their_time_zone_where_a_cadence_follows_it(
    web: Web, store: SqlStore, reader: str
) -> None:
    url = url_of(reader)
    assert 'name="timezone"' not in web.client.get(url).text  # no cadence follows it yet
    offered = newsletters()
    weekly = offered["weekly"]
    morning = CadenceConfig(
        "morning",
        "At 07:00 your time",
        ScheduleConfig("daily", "Europe/Prague", time="07:00", reader_timezone=True),
    )
    offered["weekly"] = dataclasses.replace(weekly, cadences=(*weekly.cadences, morning))
    reconfigure_web(web.app, site=sample_site(), newsletters=offered)
    page = web.client.get(url).text
    assert '<select id="timezone" name="timezone">' in page
    assert '<option value="" selected>' in page
    assert '<option value="America/New_York">America/New York</option>' in page
    form = {
        "csrf": csrf_of(page, url),
        "offered": ["weekly"],
        "receive": ["weekly"],
        "cadence-weekly": "morning",
        "timezone": "America/New_York",
    }
    assert web.client.post(url, data=form).status_code == 200
    assert store.get_subscriber(reader).timezone == "America/New_York"
    assert store.subscriptions_of(reader)[-1].cadence == "morning"
    assert '<option value="America/New_York" selected>' in web.client.get(url).text
    web.client.post(url, data=form | {"timezone": "Mars/Olympus_Mons"})  # not a zone: kept
    assert store.get_subscriber(reader).timezone == "America/New_York"
    web.client.post(url, data=form | {"timezone": ""})
    assert store.get_subscriber(reader).timezone == ""
