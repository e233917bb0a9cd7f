"""`digest lint`: what in one rendered message would hurt its delivery or its display.

Pure: :func:`lint_message` takes the wire bytes (or a parsed message) and returns the
findings, errors first. Checked here: the headers mailbox providers require of bulk mail
(From, To, Subject, Date, Message-ID exactly once; List-Unsubscribe with an https link
and List-Unsubscribe-Post for one-click), both parts, and the HTML part's size against
:data:`HTML_BUDGET`; the HTML itself is read by :mod:`digest.lint_html`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from digest.budget import HTML_BUDGET
from digest.lint_html import COLUMN_WIDTH, Finding, Level, html_findings

__all__ = ["COLUMN_WIDTH", "HTML_BUDGET", "Finding", "Level", "Lint", "lint_message"]

ONCE = ("From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post")
ONE_CLICK = "List-Unsubscribe=One-Click"
SHOWN_PER_CODE = 10  # findings of one code listed before the rest are counted


@dataclass(frozen=True, slots=True)
class Lint:
    """The findings of one message (errors first) and the size of its HTML part."""

    findings: tuple[Finding, ...]
    html_bytes: int

    @property
    def errors(self) -> int:
        return sum(finding.level is Level.ERROR for finding in self.findings)

    @property
    def warnings(self) -> int:
        return len(self.findings) - self.errors


def lint_message(message: bytes | EmailMessage, *, budget: int = HTML_BUDGET) -> Lint:
    """Everything in ``message`` that would hurt its delivery or display."""
    if isinstance(message, bytes):
        parsed = BytesParser(policy=policy.default).parsebytes(message)
        assert isinstance(parsed, EmailMessage)  # the parser makes what the policy names
        message = parsed
    findings = _header_findings(message)
    if message.get_body(("plain",)) is None:
        findings.append(
            Finding(
                Level.ERROR,
                "no-text-part",
                "no text/plain part: spam filters score HTML-only mail, and text-only"
                " readers get nothing",
            )
        )
    html_part = message.get_body(("html",))
    html_bytes = 0
    if html_part is None:
        findings.append(Finding(Level.ERROR, "no-html-part", "no text/html part"))
    else:
        payload = html_part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        html_bytes = len(data)
        if html_bytes > budget:
            findings.append(
                Finding(
                    Level.ERROR,
                    "html-size",
                    f"the HTML part is {html_bytes:,} bytes, over the budget of {budget:,}:"
                    " Gmail clips it at 102 KB and hides the rest, the unsubscribe link"
                    " included; send fewer posts (max_items) or shorter ones",
                )
            )
        findings.extend(html_findings(_decoded(data, html_part.get_content_charset())))
    return Lint(_capped(findings), html_bytes)


def _decoded(data: bytes, charset: str | None) -> str:
    try:
        return data.decode(charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know: read it as UTF-8
        return data.decode("utf-8", errors="replace")


def _header_findings(message: EmailMessage) -> list[Finding]:
    findings: list[Finding] = []
    for name in ONCE:
        count = len(message.get_all(name) or [])
        if count == 0:
            findings.append(Finding(Level.ERROR, "missing-header", f"no {name} header"))
        elif count > 1:
            findings.append(
                Finding(Level.ERROR, "repeated-header", f"{name} appears {count} times")
            )
    post = message.get("List-Unsubscribe-Post")
    if post is not None and str(post).strip() != ONE_CLICK:
        findings.append(
            Finding(
                Level.ERROR,
                "one-click",
                f"List-Unsubscribe-Post is {str(post)!r}, not {ONE_CLICK!r}",
            )
        )
    unsubscribe = message.get("List-Unsubscribe")
    if unsubscribe is not None:
        links = [link.strip().strip("<>") for link in str(unsubscribe).split(",")]
        if not any(link.startswith("https://") for link in links):
            http_only = any(link.startswith("http://") for link in links)
            findings.append(
                Finding(
                    Level.WARNING if http_only else Level.ERROR,
                    "unsubscribe-link",
                    "List-Unsubscribe has no https link, which one-click unsubscribe"
                    " (RFC 8058, required by Gmail and Yahoo) needs: check [site] base_url",
                )
            )
    return findings


def _capped(findings: list[Finding]) -> tuple[Finding, ...]:
    """Errors first; past :data:`SHOWN_PER_CODE` findings of one code, one line counts the rest."""
    ordered = sorted(findings, key=lambda finding: finding.level is not Level.ERROR)
    totals = Counter(finding.code for finding in ordered)
    seen: Counter[str] = Counter()
    shown: list[Finding] = []
    for finding in ordered:
        seen[finding.code] += 1
        if seen[finding.code] <= SHOWN_PER_CODE:
            shown.append(finding)
        more = totals[finding.code] - SHOWN_PER_CODE
        if seen[finding.code] == SHOWN_PER_CODE and more > 0:
            shown.append(Finding(finding.level, finding.code, f"… and {more} more like this"))
    return tuple(shown)
