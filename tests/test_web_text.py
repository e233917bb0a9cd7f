"""What the pages say, read as text: no words run together where a template tag met a
line break (Jinja's trim_blocks eats the newline after a block tag), and the wording."""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime, timedelta
from pathlib import Path

from digest.config import CadenceConfig, ScheduleConfig
from digest.models import Rendered
from digest.store import SqlStore
from digest.tokens import unsubscribe_token
from digest.web.signup import schedule_words

from support.edition import sample_newsletter
from support.pagetext import glued_words, visible_text
from support.records import open_for_all, subscribe
from support.webapp import SECRET, Clock, Web, running_web, store, web


def confirmation_link(web: Web) -> str:
    (message,) = web.messages()
    (link,) = [url for url in web.links_in(message) if "/confirm/" in url]
    return link.removeprefix("https://digest.example.org")


def csrf_in(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match is not None, page
    return match.group(1)


def test_the_subscribed_page_names_the_newsletter_after_a_space(web: Web) -> None:
    web.client.post("/subscribe", data={"email": "ana@example.net", "newsletter": "daily"})
    link = confirmation_link(web)
    confirmed = web.client.post(link, data={"csrf": csrf_in(web.client.get(link).text)})
    again = web.client.get(link)  # the link opened after confirming
    assert "Thank you: this address now receives Transmission Daily." in visible_text(
        confirmed.text
    )
    assert "This address already receives Transmission Daily." in visible_text(again.text)
    for page in (confirmed, again):
        assert page.status_code == 200
        assert glued_words(page.text) == []


def test_the_archive_pager_and_its_entries_are_separate_words(
    store: SqlStore, now: datetime, tmp_path: Path
) -> None:
    subscribe(store, "reader@example.org", now, newsletter="daily")
    for number in range(3):
        opened = open_for_all(
            store,
            newsletter_id="daily",
            period_key=f"ed-{number}",
            now=now + timedelta(days=number),
            post_keys=("k1",),
            rendered=Rendered(f"Edition {number}", "<p>x</p>", "x\n"),
            message_id=lambda sid, n=number: f"<{sid}.{n}@example.org>",
            edition_id=f"ed-{number}",
        )
        assert opened is not None
    for paged in running_web(store, Clock(now), tmp_path / "outbox", archive_page_size=1):
        middle = paged.client.get("/archive/daily?page=2")
        assert middle.status_code == 200
        text = visible_text(middle.text)
        assert "Newer editions Older editions" in text
        assert "Edition 1 28 November 2026" in text
        assert glued_words(middle.text) == []


__all__ = ["store", "web"]  # fixtures


# --- wording ----------------------------------------------------------------------------------
def test_a_broken_link_says_each_thing_once_in_sentences(web: Web) -> None:
    page = web.client.get("/u/garbage")
    assert page.status_code == 400
    lines = visible_text(page.text).split("\n")
    assert "This link is incomplete; copy the whole link from the email." in lines
    assert "If the whole link does not work either, use the one in a more recent email." in lines
    assert visible_text(page.text).count("copy the whole link") == 1


def test_the_link_of_a_removed_reader_ends_its_sentence(web: Web) -> None:
    page = web.client.get(f"/u/{unsubscribe_token(SECRET, 'removed-reader', 'daily')}")
    assert page.status_code == 404
    assert visible_text(page.text).split("\n")[3].endswith("and will get no more emails.")


def test_the_home_page_says_how_often_a_newsletter_with_cadences_comes(web: Web) -> None:
    text = visible_text(web.client.get("/").text)
    assert "How often: Every Monday or Once a month · Past editions" in text
    assert "You choose" not in text


def test_the_resubscribed_page_has_no_empty_row_of_buttons(
    web: Web, store: SqlStore, now: datetime
) -> None:
    reader, _ = subscribe(store, "ana@example.net", now, newsletter="daily")
    url = f"/u/{unsubscribe_token(SECRET, reader, 'daily')}"
    left = web.client.post(url).text
    match = re.search(r'action="https://digest\.example\.org(/u/[^"]+/resubscribe)"', left)
    assert match is not None
    back = web.client.post(match.group(1), data={"csrf": csrf_in(left[match.start() :])})
    assert "You're subscribed again" in back.text
    assert 'class="actions"' not in back.text
    assert '<div class="actions">' in left  # where there is a button, the row stays


def test_cadence_titles_with_commas_of_their_own_are_listed_with_semicolons() -> None:
    newsletter = dataclasses.replace(
        sample_newsletter(),
        cadences=tuple(
            CadenceConfig(f"c{n}", title, ScheduleConfig("daily", "Europe/Prague"))
            for n, title in enumerate(
                ["Every morning", "The week's analysis, Monday mornings", "As it happens"]
            )
        ),
    )
    assert schedule_words(newsletter) == (
        "How often: Every morning; The week's analysis, Monday mornings; or As it happens"
    )
    plain = dataclasses.replace(newsletter, cadences=newsletter.cadences[::2])
    assert schedule_words(plain) == "How often: Every morning or As it happens"
