"""The digest in the newsletter's language: template strings, dates, subject, direction."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from digest.errors import ConfigError
from digest.render import Renderer

from support.edition import sample_newsletter, sample_posts, sample_site

REPO = Path(__file__).resolve().parent.parent
TEMPLATES = REPO / "templates" / "email"
LOCALES = REPO / "templates" / "locale"
NOW = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)


def render(language: str, posts: list | None = None) -> tuple[str, str, str]:  # type: ignore[type-arg]
    newsletter = dataclasses.replace(sample_newsletter(), language=language)
    rendered = Renderer(TEMPLATES, languages=[language]).render_edition(
        site=sample_site(),
        newsletter=newsletter,
        posts=sample_posts() if posts is None else posts,
        edition_id="e1",
        now=NOW,
    )
    return rendered.subject, rendered.html, rendered.text


def test_a_czech_newsletter_speaks_czech_in_every_part() -> None:
    subject, html, text = render("cs")
    assert subject.endswith("(+2 další)")
    many = sample_posts() * 3  # 9 posts: Czech counts 5 and more in the genitive
    many = [dataclasses.replace(p, guid=f"{p.guid}-{n}") for n, p in enumerate(many)]
    assert render("cs", many)[0].endswith("(+8 dalších)")
    assert '<html lang="cs" dir="ltr">' in html
    assert "Autor: Bruce Pannier · 27. listopadu 2026" in html
    assert "Číst dál →" in html
    assert ">Odhlásit odběr</a>" in html
    assert ">Zobrazit v prohlížeči</a>" in html
    assert "k odběru Transmission Daily od Transmission." in html
    assert "Read more" not in html
    assert "Unsubscribe" not in html
    assert "Číst dál: https://transmission.example.org/a/" in text
    assert "Odhlásit odběr: %%UNSUBSCRIBE_URL%%" in text
    assert "Autor: Bruce Pannier · 27. listopadu 2026" in text


def test_english_dates_follow_the_region() -> None:
    assert "By Bruce Pannier · 27 November 2026" in render("en-GB")[1]
    assert "By Bruce Pannier · November 27, 2026" in render("en")[1]
    assert render("en")[0].endswith("(+2 more)")


def test_a_post_written_right_to_left_is_marked_so_and_only_it() -> None:
    seed, bare, special = sample_posts()
    arabic = dataclasses.replace(
        bare, title="قمة بحر قزوين تنتهي بمصافحة", summary_html="<p>لم يتغير الكثير.</p>"
    )
    _, html, _ = render("en-GB", [seed, arabic, special])
    assert html.count('dir="rtl"') == 1
    rtl_cell = html.split('dir="rtl"')[0].rsplit("<td", 1)[1]
    assert 'class="post"' in rtl_cell
    assert '<html lang="en-GB" dir="ltr">' in html


def test_a_language_without_a_catalogue_is_refused_when_the_renderer_is_built() -> None:
    with pytest.raises(ConfigError, match="no translation catalogue for 'de'"):
        Renderer(TEMPLATES, languages=["de"])


def test_every_marked_string_is_translated_in_every_catalogue() -> None:
    method_map = [("digest/**.py", "python"), ("templates/email/**", "jinja2")]
    options = {"templates/email/**": {"extensions": "jinja2.ext.i18n", "trim_blocks": "true"}}
    marked = {
        message
        for _, _, message, _, _ in extract_from_dir(
            str(REPO),
            method_map=method_map,
            options_map=options,
            keywords={"_": None, "gettext": None, "ngettext": (1, 2), "N_": None, "NP_": (1, 2)},
        )
    }
    assert "Read more →" in marked  # the extraction saw the templates
    assert "By %(author)s" in marked  # ... and the Python code
    assert ("(+%(count)s more)", "(+%(count)s more)") in marked  # ... and those kept in code
    catalogues = sorted(LOCALES.glob("*/LC_MESSAGES/digest.po"))
    assert catalogues
    for path in catalogues:
        with path.open("rb") as handle:
            catalogue = read_po(handle)
        translated = {m.id for m in catalogue if m.id and m.string and not m.fuzzy}
        assert marked - translated == set(), f"{path}: untranslated"
        assert translated - marked == set(), f"{path}: no longer used"
