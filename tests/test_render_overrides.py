"""Per-newsletter templates and branding: an editor's folder first, the shipped ones after."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.branding import Branding
from digest.errors import ConfigError
from digest.render import Renderer

from support.edition import sample_newsletter, sample_posts, sample_site

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "email"
NOW = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)


def render(renderer: Renderer, newsletter_id: str = "daily", **changes: object) -> tuple[str, str]:
    newsletter = replace(sample_newsletter(), id=newsletter_id, **changes)  # type: ignore[arg-type]
    rendered = renderer.render_edition(
        site=sample_site(),
        newsletter=newsletter,
        posts=sample_posts(),
        edition_id="e1",
        now=NOW,
    )
    return rendered.html, rendered.text


def test_an_editors_folder_overrides_some_templates_and_the_rest_are_shipped(
    tmp_path: Path,
) -> None:
    (tmp_path / "_post.html").write_text(
        '<tr><td class="post"><p class="custom-post">{{ post.title }}</p></td></tr>\n'
    )
    (tmp_path / "email.css").write_text(
        (TEMPLATES / "email.css").read_text() + "\n.custom-post { color: #6a1b9a; }\n"
    )
    renderer = Renderer(TEMPLATES, {"daily": tmp_path})
    html, text = render(renderer)
    assert 'class="custom-post"' in html
    assert "color:#6a1b9a" in html.replace(" ", "")  # the editor's stylesheet, inlined
    assert "Unsubscribe" in html  # digest.html is still the shipped one
    assert "Read more" not in html  # ... around the editor's post block
    shipped_text = render(Renderer(TEMPLATES))[1]
    assert text == shipped_text  # no digest.txt in the folder: the shipped text part
    # Another newsletter of the same renderer keeps the shipped templates.
    other_html, _ = render(renderer, "weekly")
    assert 'class="custom-post"' not in other_html
    assert "Read more" in other_html


def test_a_broken_override_is_a_config_error_naming_the_newsletter(tmp_path: Path) -> None:
    (tmp_path / "digest.html").write_text("{% if %}")
    with pytest.raises(ConfigError, match=r"\[newsletters.daily\] templates in .* cannot be"):
        Renderer(TEMPLATES, {"daily": tmp_path})


def test_branding_colours_and_logo_reach_the_inlined_email() -> None:
    branding = Branding(
        accent="#9a1b1b",
        accent_dark="#ff9e9e",
        logo_url="https://transmission.example.org/logo.png",
        logo_width=180,
    )
    html, _ = render(Renderer(TEMPLATES), branding=branding)
    compact = html.replace(" ", "")
    assert 'class="post-title-link"' in html
    assert "color:#9a1b1b" in compact  # inlined into the links
    assert "color:#0b5cad" not in compact  # the shipped accent is overridden everywhere
    assert "color:#ff9e9e!important" in compact  # the dark scheme, kept in <style>
    assert '<img class="logo" src="https://transmission.example.org/logo.png" width="180"' in html
    assert 'alt="Transmission"' in html  # the site's name when no logo_alt is given
    plain, _ = render(Renderer(TEMPLATES))
    assert 'class="logo"' not in plain


def test_a_broken_included_template_is_found_when_the_renderer_is_built(tmp_path: Path) -> None:
    post = (TEMPLATES / "_post.html").read_text()
    (tmp_path / "_post.html").write_text(post.rsplit("{% endif %}", 1)[0])  # an if left open
    with pytest.raises(ConfigError, match=r"\[newsletters.daily\] templates in .*_post\.html"):
        Renderer(TEMPLATES, {"daily": tmp_path})


def test_an_undefined_name_in_a_template_is_a_config_error_naming_the_newsletter(
    tmp_path: Path,
) -> None:
    post = (TEMPLATES / "_post.html").read_text()
    (tmp_path / "_post.html").write_text(post.replace("{{ post.title }}", "{{ nosuch(post) }}"))
    renderer = Renderer(TEMPLATES, {"daily": tmp_path})
    with pytest.raises(ConfigError, match=r"\[newsletters.daily\] the email templates fail"):
        render(renderer)
