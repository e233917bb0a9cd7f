"""Mail transports: the SMTP relay mailer, the Maildir outbox, and SMTP reply rules.

This package is the only importer of aiosmtplib. Use :func:`build_mailer` to get the
:class:`digest.ports.Mailer` that ``[delivery]`` configures.
"""

from __future__ import annotations

from digest.delivery.outbox import OutboxMailer
from digest.delivery.replies import classify_reply
from digest.delivery.smtp import SmtpMailer, build_mailer

__all__ = ["OutboxMailer", "SmtpMailer", "build_mailer", "classify_reply"]
