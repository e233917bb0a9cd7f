"""digest.noise: what is removed from excerpt text, what stays, and in linear time."""

from __future__ import annotations

import pytest

from digest.noise import clean_noise


@pytest.mark.parametrize(
    ("text", "clean"),
    [
        ("<p>Escaped</p> twice", "Escaped twice"),
        ("body{margin:0} p.x > a:hover{color:red}Text", "Text"),
        ("@media (max-width:600px){.a{color:red}}Text", "Text"),
        ("a set {1, 2} and {braces}", "a set {1, 2} and {braces}"),
        ("Use x < y and y > z", "Use x < y and y > z"),
        ("<!--[if mso]><table><![endif]-->Text", "Text"),
        ('[gallery ids="1,2"] after', "after"),
        ("[sic] stays", "[sic] stays"),
    ],
)
def test_noise_goes_and_prose_stays(text: str, clean: str) -> None:
    assert " ".join(clean_noise(text).split()) == clean


@pytest.mark.parametrize(
    "text",
    ["p   " * 3000 + "{a:b", "@x" * 3000 + "{" + "p{a:b}" * 1000, "{a:" * 4000, ".a" * 4000],
)
def test_near_misses_do_not_match_and_cost_little(text: str) -> None:
    # Bounded repeats: a text that almost is CSS comes back unchanged (no runaway
    # backtracking; a regression here shows as a test run that does not end).
    assert len(clean_noise(text)) >= len(text) // 2
