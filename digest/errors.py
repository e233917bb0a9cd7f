"""The one exception tree of digest.

Every error a user can cause derives from :class:`DigestError` and from the builtin
that matches it, and its message names the file, key, id or address at fault and
says what to do. Entry points (cli, web) catch ``DigestError`` and show the message;
anything else is a bug and may show a traceback.
"""

from __future__ import annotations


class DigestError(Exception):
    """Base of every error digest raises on purpose."""


class UsageError(DigestError, ValueError):
    """The command line is wrong (exit status 2, like argparse's own refusals)."""


class ConfigError(DigestError, ValueError):
    """The configuration is wrong; the message names file, table and key."""


class InvalidAddress(DigestError, ValueError):
    """An email address failed validation; the message names it."""


class Suppressed(DigestError, ValueError):
    """An address was removed on request: digest does not add it again."""


class MalformedFile(DigestError, ValueError):
    """A file given to a command is not what it should be; the message names file and line."""


class NotFound(DigestError, LookupError):
    """A newsletter, source, subscriber or edition id does not exist."""


class AlreadyExists(DigestError, ValueError):
    """A row that must be unique already exists."""


class SourceError(DigestError, OSError):
    """A source could not be fetched or parsed; the message names the source."""


class InvalidToken(DigestError, ValueError):
    """A signed link token is malformed, forged or for another purpose."""


class TransportError(DigestError, ConnectionError):
    """The mail transport itself is at fault (site-level, not one recipient).

    Examples: connection refused, TLS failure, 5xx on greeting, AUTH or MAIL FROM,
    an unwritable outbox. The edition is paused; no subscriber is marked bounced.
    """


class StoreError(DigestError, RuntimeError):
    """The database is unreachable or its schema is not at the expected revision."""


class SiteRefused(TransportError):
    """The relay refused the sending site, not the reader (blocklisted, policy, spam).

    Raised for a refusal at RCPT or at the end of data that names the client, the
    sender or the site; the edition pauses and the readers keep their rows.
    """


class Throttled(TransportError):
    """The relay asks digest to slow down (421, 4.7.x, rate limits); no reader is at fault."""


class NotSent(DigestError, ConnectionError):
    """A letter of a batch that was not transmitted because an earlier one ended the
    batch (a fault, a lost connection): nothing of it reached the relay; send it again."""
