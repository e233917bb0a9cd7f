"""Use cases of the subscriber list: validate addresses, add, import, unsubscribe.

(Double opt-in signup through the web comes later; addresses added here by an editor
are taken as already consented, as in listmonk's "preconfirmed" imports.)
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from email_validator import EmailNotValidError, validate_email

from digest.errors import InvalidAddress, NotFound
from digest.models import Subscription, SubscriptionStatus
from digest.ports import Store


def normalize_address(raw: str) -> tuple[str, str]:
    """``(normalized, ascii_form)`` of an address, or ``InvalidAddress`` naming it.

    The domain goes out as an A-label (xn--); a non-ASCII local part needs SMTPUTF8,
    which digest does not send, so it is refused here rather than failing forever later.
    """
    candidate = raw.strip()
    try:
        info = validate_email(candidate, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise InvalidAddress(f"{candidate!r} is not a usable email address: {exc}") from exc
    # Mailbox providers treat local parts case-insensitively, and so does digest (as
    # Mailchimp and listmonk do): Ana@… and ana@… are one reader, never two copies.
    normalized = info.normalized.lower()
    return normalized, (info.ascii_email or info.normalized).lower()


def add_subscriber(
    store: Store, raw_email: str, newsletter_id: str, known: Iterable[str], now: datetime
) -> tuple[Subscription, bool]:
    """An editor adds a reader: confirmed at once, reviving an earlier unsubscribe."""
    _require_newsletter(newsletter_id, known)
    email, ascii_email = normalize_address(raw_email)
    return store.add_subscription(
        email=email,
        ascii_email=ascii_email,
        newsletter_id=newsletter_id,
        status=SubscriptionStatus.CONFIRMED,
        now=now,
        resubscribe=True,
    )


@dataclass
class ImportReport:
    added: int = 0
    unchanged: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line number, message)


IMPORT_BATCH = 1000  # subscriptions written per transaction


def import_csv(
    store: Store,
    text: str,
    default_newsletters: Sequence[str],
    known: Iterable[str],
    now: datetime,
) -> ImportReport:
    """Import readers from CSV text; each bad row is reported with its line number.

    Accepted shapes: a header row with an ``email`` column (and optionally a
    ``newsletters`` column of ids separated by spaces or ``;``), or no header and the
    address in the first column. Rows without newsletters use ``default_newsletters``.
    Existing subscriptions keep their status: an import never revives an unsubscribe.
    """
    known_ids = set(known)
    report = ImportReport()
    rows = list(csv.reader(io.StringIO(text)))
    header = [cell.strip().lower() for cell in rows[0]] if rows else []
    has_header = "email" in header
    email_col = header.index("email") if has_header else 0
    lists_col = header.index("newsletters") if has_header and "newsletters" in header else None
    batch: list[tuple[str, str, str]] = []
    for number, row in enumerate(rows, start=1):
        if (has_header and number == 1) or not any(cell.strip() for cell in row):
            continue
        try:
            raw = row[email_col] if email_col < len(row) else ""
            cell = row[lists_col] if lists_col is not None and lists_col < len(row) else ""
            targets = cell.replace(";", " ").split() or list(default_newsletters)
            if not targets:
                raise NotFound("no newsletter given: add a newsletters column or --newsletter")
            for newsletter_id in targets:
                _require_newsletter(newsletter_id, known_ids)
            email, ascii_email = normalize_address(raw)
        except (InvalidAddress, NotFound) as exc:
            report.errors.append((number, str(exc)))
            continue
        batch.extend((email, ascii_email, newsletter_id) for newsletter_id in targets)
        if len(batch) >= IMPORT_BATCH:
            _import(store, batch, report, now)
    _import(store, batch, report, now)
    return report


def _import(
    store: Store, batch: list[tuple[str, str, str]], report: ImportReport, now: datetime
) -> None:
    unique = list(dict.fromkeys(batch))
    added = store.add_subscriptions(unique, SubscriptionStatus.CONFIRMED, now) if unique else 0
    report.added += added
    report.unchanged += len(batch) - added
    batch.clear()


def unsubscribe(store: Store, subscriber_id: str, newsletter_id: str, now: datetime) -> bool:
    """Honour an unsubscribe at once; True if it changed anything (idempotent)."""
    return store.set_subscription_status(
        subscriber_id, newsletter_id, SubscriptionStatus.UNSUBSCRIBED, now
    )


def _require_newsletter(newsletter_id: str, known: Iterable[str]) -> None:
    known_ids = sorted(known)
    if newsletter_id not in known_ids:
        raise NotFound(
            f"unknown newsletter {newsletter_id!r}; the config declares: "
            f"{', '.join(known_ids) or 'none'}"
        )
