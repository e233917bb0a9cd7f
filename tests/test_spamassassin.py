"""The digest as SpamAssassin scores it: Debian's rules, local tests only (no network).

The sample edition must score below 0.0 and every corpus digest (one per feed fixture,
see tests/support/corpus.py) below 1.0. What a receiving server adds (Received, SPF,
DKIM and DMARC results, block lists) is not part of the message and is not scored here.
Skipped when spamassassin is absent, except under CI=true where it must run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from support.corpus import corpus_digests, corpus_feeds, sample_message, wire_message
from support.spamassassin import Verdict, score

pytestmark = pytest.mark.spam

NOW = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
SAMPLE = "sample"
CORPUS = corpus_digests(NOW)


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Verdict]:
    """Every message scored by one spamassassin run: the sample and the corpus digests."""
    messages = {SAMPLE: sample_message(NOW)}
    messages |= {f"corpus-{name}": wire_message(posts, NOW) for name, posts in CORPUS.items()}
    return score(messages, Path(tmp_path_factory.mktemp("spamassassin")))


def test_the_sample_digest_scores_below_zero(verdicts: dict[str, Verdict]) -> None:
    verdict = verdicts[SAMPLE]
    assert verdict.score < 0.0, verdict.explain()
    # The preheader is hidden by display and size, not by text in the background colour.
    assert "HTML_FONT_LOW_CONTRAST" not in verdict.rules, verdict.explain()
    # The list headers are what SpamAssassin credits (List-Id, List-Unsubscribe, bulk).
    assert "MAILING_LIST_MULTI" in verdict.rules, verdict.explain()


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_every_corpus_digest_scores_below_one(verdicts: dict[str, Verdict], name: str) -> None:
    verdict = verdicts[f"corpus-{name}"]
    assert verdict.score < 1.0, f"{name}: {verdict.explain()}"


def test_the_corpus_is_every_feed_fixture_that_reads() -> None:
    names = {path.name for path in corpus_feeds()}
    assert set(CORPUS) <= names
    assert {"transmission.xml", "rss20.xml", "atom10.xml", "rss10.rdf"} <= set(CORPUS)
    refused = names - set(CORPUS)
    assert refused <= {"entities.xml", "malformed.xml", "not-a-feed.html", "wrong-encoding.xml"}
