"""Tests for digest.branding: colours, WCAG contrast in both schemes, the added rules."""

from __future__ import annotations

import pytest

from digest.branding import (
    DARK_BACKGROUND,
    LIGHT_BACKGROUND,
    Branding,
    brand_css,
    contrast_problems,
    contrast_ratio,
    for_dark_mode,
    parse_colour,
)


def test_colours_are_read_in_both_hex_spellings() -> None:
    assert parse_colour("#0b5cad") == (11, 92, 173)
    assert parse_colour("#FFF") == (255, 255, 255)
    for bad in ("0b5cad", "#0b5ca", "red", "#ggg", "rgb(1,2,3)"):
        with pytest.raises(ValueError, match="not a colour"):
            parse_colour(bad)


def test_contrast_ratio_matches_the_wcag_reference_values() -> None:
    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast_ratio("#ffffff", "#ffffff") == pytest.approx(1.0)
    assert contrast_ratio("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)  # the AA grey
    assert contrast_ratio("#ffffff", "#767676") == contrast_ratio("#767676", "#ffffff")


def test_the_shipped_accents_pass_and_pale_or_dark_ones_are_refused() -> None:
    assert contrast_problems(Branding()) == []
    [light] = contrast_problems(Branding(accent="#ffcc00"))  # yellow on white
    assert light.startswith("accent #ffcc00 has a contrast of 1.")
    assert LIGHT_BACKGROUND in light
    assert "choose a darker colour" in light
    [dark] = contrast_problems(Branding(accent_dark="#1f2a60"))  # navy on the dark card
    assert dark.startswith("accent_dark #1f2a60")
    assert DARK_BACKGROUND in dark
    assert "choose a lighter colour" in dark


def test_brand_css_is_empty_for_the_defaults_and_covers_both_schemes_otherwise() -> None:
    assert brand_css(Branding()) == ""
    css = brand_css(Branding(accent="#9a1b1b", accent_dark="#ff9e9e"))
    light, dark = css.split("@media (prefers-color-scheme: dark)")
    assert "color: #9a1b1b" in light
    assert "border-bottom-color: #9a1b1b" in light
    assert "color: #ff9e9e !important" in dark
    assert "#9a1b1b" not in dark


def test_a_dark_mode_accent_is_derived_from_the_light_one_and_reads_there() -> None:
    for colour in ("#9a1b1b", "#0b5cad", "#1f7a1f", "#000000"):
        dark = for_dark_mode(colour)
        assert contrast_ratio(dark, DARK_BACKGROUND) >= 4.5
        assert dark != colour
    assert for_dark_mode("#9a1b1b") == "#c27676"  # the same hue, lighter
    assert for_dark_mode("#ffffff") == "#ffffff"
